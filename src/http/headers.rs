//! The one place that builds a delivery request's headers (contract
//! section 4): the worker's own, the Standard Webhooks signature when a
//! secret is known, then the message's extra headers (validated by the
//! envelope parser not to collide with any of these).

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};

use crate::domain::{envelope::Envelope, signing::SigningKey, trace::TraceContext};

/// The `User-Agent` of every request.
pub const USER_AGENT_VALUE: &str = concat!("webhook-worker/", env!("CARGO_PKG_VERSION"));

/// Every header of a delivery request, in one place: the worker's own
/// (section 4), the Standard Webhooks signature when a secret is known,
/// then the message's extra headers (validated not to collide).
pub fn request_headers(
    env: &Envelope<'_>,
    attempt: u32,
    unix_secs: i64,
    default_key: Option<&SigningKey>,
) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(10 + env.headers.len());
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    h.insert(names::WEBHOOK_NO, HeaderValue::from(env.webhook));
    // Validated as visible ASCII by the envelope parser.
    h.insert(
        names::EVENT,
        HeaderValue::from_str(&env.event).expect("validated"),
    );
    h.insert(
        names::DELIVERY_ID,
        HeaderValue::from_str(&env.id).expect("validated"),
    );
    h.insert(names::ATTEMPT, HeaderValue::from(attempt));
    if let Some(site) = env.site_id {
        h.insert(names::SITE_ID, HeaderValue::from(site));
    }
    let message_key;
    let key = match &env.secret {
        Some(secret) => {
            message_key = SigningKey::from_secret(secret).ok();
            message_key.as_ref()
        }
        None => default_key,
    };
    if let Some(key) = key {
        let signature = key.sign(&env.id, unix_secs, env.data.get().as_bytes());
        h.insert(
            names::SIG_ID,
            HeaderValue::from_str(&env.id).expect("validated"),
        );
        h.insert(names::SIG_TIMESTAMP, HeaderValue::from(unix_secs));
        h.insert(
            names::SIG_SIGNATURE,
            HeaderValue::from_str(&signature).expect("base64 is ASCII"),
        );
    }
    for (name, value) in &env.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            h.append(n, v);
        }
    }
    h
}

/// Adds the message's W3C trace context, unchanged (section 4): it wins
/// over a `traceparent` the message's `headers` may carry.
pub fn with_trace(h: &mut HeaderMap, trace: &TraceContext) {
    // Both were checked to be visible ASCII by `TraceContext::from_headers`.
    if let Ok(v) = HeaderValue::from_str(&trace.traceparent) {
        h.insert(names::TRACEPARENT, v);
    }
    h.remove(names::TRACESTATE);
    if let Some(v) = trace
        .tracestate
        .as_deref()
        .and_then(|s| HeaderValue::from_str(s).ok())
    {
        h.insert(names::TRACESTATE, v);
    }
}

/// Header names of section 4, parsed once.
mod names {
    use reqwest::header::HeaderName;
    pub(super) const WEBHOOK_NO: HeaderName = HeaderName::from_static("x-comm100-webhook-no");
    pub(super) const EVENT: HeaderName = HeaderName::from_static("x-comm100-event");
    pub(super) const DELIVERY_ID: HeaderName = HeaderName::from_static("x-comm100-delivery-id");
    pub(super) const ATTEMPT: HeaderName = HeaderName::from_static("x-comm100-attempt");
    pub(super) const SITE_ID: HeaderName = HeaderName::from_static("x-comm100-site-id");
    pub(super) const SIG_ID: HeaderName = HeaderName::from_static("webhook-id");
    pub(super) const SIG_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
    pub(super) const SIG_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
    pub(super) const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
    pub(super) const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(body: &[u8], default_secret: Option<&str>, attempt: u32, now: i64) -> HeaderMap {
        let env = crate::domain::envelope::parse(body, 1 << 20).unwrap();
        let key = default_secret.map(|s| SigningKey::from_secret(s).unwrap());
        request_headers(&env, attempt, now, key.as_ref())
    }

    #[test]
    fn headers_of_section_4() {
        let body = br#"{"id":"e1","webhook":109,"url":"https://x.io/","site_id":7,"data":{"a":1},"headers":{"X-Tenant":"t"}}"#;
        let h = headers(body, None, 3, 1_700_000_000);
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(h["user-agent"], USER_AGENT_VALUE);
        assert_eq!(h["x-comm100-webhook-no"], "109");
        assert_eq!(h["x-comm100-event"], "Chat.ended");
        assert_eq!(h["x-comm100-delivery-id"], "e1");
        assert_eq!(h["x-comm100-attempt"], "3");
        assert_eq!(h["x-comm100-site-id"], "7");
        assert_eq!(h["x-tenant"], "t");
        assert!(
            !h.contains_key("webhook-signature"),
            "no secret, no signature"
        );
    }

    #[test]
    fn message_secret_overrides_default() {
        let body = br#"{"id":"e1","webhook":101,"url":"https://x.io/","data":{},"secret":"mine"}"#;
        let h = headers(body, Some("default"), 1, 42);
        let expected = SigningKey::from_secret("mine")
            .unwrap()
            .sign("e1", 42, b"{}");
        assert_eq!(h["webhook-signature"], expected.as_str());
        assert_eq!(h["webhook-id"], "e1");
        assert_eq!(h["webhook-timestamp"], "42");
        let body = br#"{"id":"e1","webhook":101,"url":"https://x.io/","data":{}}"#;
        let h = headers(body, Some("default"), 1, 42);
        let expected = SigningKey::from_secret("default")
            .unwrap()
            .sign("e1", 42, b"{}");
        assert_eq!(h["webhook-signature"], expected.as_str());
    }
}
