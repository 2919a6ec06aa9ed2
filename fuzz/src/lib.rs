//! What the fuzz targets share: the properties every parsed envelope must
//! have, restated from contract section 3 independently of `src/`, and the
//! re-parse check. A failed property panics, which libFuzzer reports as a
//! crash with the input that caused it.

use std::fmt::Write as _;

use webhook_worker::domain::{
    envelope::{self, Envelope, Rejection},
    policy::DropReason,
};

/// `WEBHOOK_MAX_MESSAGE_BYTES` where the size limit is not under test.
pub const MAX: usize = 1 << 20;

/// The catalog of contract section 3.
pub const CATALOG: [(u16, &str); 12] = [
    (101, "Chat.Request.start"),
    (102, "Chat.beforeAssigning"),
    (103, "Chat.afterAssigning"),
    (104, "Chat.started"),
    (105, "Chat.Message.received"),
    (106, "Chat.Message.sent"),
    (107, "Chat.Agent.joinChat"),
    (108, "Chat.Visitor.banned"),
    (109, "Chat.ended"),
    (110, "Chat.wrapup"),
    (201, "OfflineMessage.submitted"),
    (301, "App.installed"),
];

/// The catalog's event name of a webhook number.
pub fn catalog(n: i64) -> Option<&'static str> {
    CATALOG
        .iter()
        .find(|(k, _)| i64::from(*k) == n)
        .map(|(_, e)| *e)
}

/// Valid webhook numbers: 101-199, 201-299, 301-399.
pub fn valid_number(n: i64) -> bool {
    matches!(n, 101..=199 | 201..=299 | 301..=399)
}

/// Headers `headers` may not set: section 4's, `Host`, `Content-Length` and
/// the hop-by-hop ones (RFC 7230 6.1, plus `Proxy-Connection`).
pub const RESERVED: [&str; 21] = [
    "content-type",
    "user-agent",
    "x-comm100-webhook-no",
    "x-comm100-event",
    "x-comm100-delivery-id",
    "x-comm100-attempt",
    "x-comm100-site-id",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether `headers` may not set this name (case-insensitively).
pub fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name.to_ascii_lowercase().as_str())
}

/// RFC 7230 `tchar`.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A header value an HTTP client can send: no control bytes but tab.
pub fn is_header_value(v: &str) -> bool {
    v.bytes().all(|b| (b >= 0x20 && b != 0x7f) || b == b'\t')
}

/// Parses `body` with limit `max` and checks every property that holds for
/// any input; returns whether it was accepted.
pub fn check_parse(body: &[u8], max: usize) -> bool {
    // `identify` reads the same hostile bytes for log lines: never panics.
    let _ = envelope::identify(body);
    match envelope::parse(body, max) {
        Err(rejection) => {
            check_rejection(&rejection, body, max);
            false
        }
        Ok(env) => {
            check_accepted(&env, body);
            check_reparse(&env);
            true
        }
    }
}

/// A rejection always says why, and its reason is malformed or too_large.
pub fn check_rejection(rejection: &Rejection, body: &[u8], max: usize) {
    let text = rejection.to_string();
    assert!(
        !text.trim().is_empty(),
        "rejection without text: {rejection:?}"
    );
    match (rejection, rejection.reason()) {
        (Rejection::TooLarge { size, limit }, DropReason::TooLarge) => {
            assert_eq!(*size, body.len());
            assert_eq!(*limit, max);
            assert!(size > limit, "TooLarge but {size} <= {limit}");
        }
        (Rejection::Malformed(_), DropReason::Malformed) => {
            assert!(
                body.len() <= max,
                "an oversized body must be TooLarge, got {rejection:?}"
            );
        }
        (r, reason) => panic!("rejection {r:?} parks as {reason:?}"),
    }
}

/// An accepted envelope obeys section 3, and its `data` is the producer's
/// bytes: a slice of the body, not a copy.
pub fn check_accepted(env: &Envelope<'_>, body: &[u8]) {
    assert!(std::str::from_utf8(body).is_ok(), "accepted non-UTF-8");
    let webhook = i64::from(env.webhook);
    assert!(valid_number(webhook), "accepted webhook {webhook}");
    let id_chars = env.id.chars().count();
    assert!(
        (1..=200).contains(&id_chars),
        "accepted id of {id_chars} chars"
    );
    assert!(
        env.id.bytes().all(|b| (0x20..=0x7e).contains(&b)),
        "accepted id {:?}",
        env.id
    );
    match catalog(webhook) {
        Some(known) => assert_eq!(env.event.as_ref(), known),
        None => {
            let n = env.event.chars().count();
            assert!(
                (1..=200).contains(&n) && env.event.bytes().all(|b| b.is_ascii_graphic()),
                "accepted event {:?}",
                env.event
            );
        }
    }
    assert!(
        matches!(env.url.scheme(), "http" | "https"),
        "accepted url {}",
        env.url
    );
    assert!(
        env.url.host_str().is_some_and(|h| !h.is_empty()),
        "accepted url without host {}",
        env.url
    );

    let data = env.data.get();
    assert!(
        data.starts_with('{') && data.ends_with('}'),
        "data {data:?}"
    );
    let body_range = body.as_ptr_range();
    let data_range = data.as_bytes().as_ptr_range();
    assert!(
        body_range.start <= data_range.start && data_range.end <= body_range.end,
        "data is not a slice of the body"
    );

    let mut seen: Vec<String> = Vec::new();
    for (name, value) in &env.headers {
        assert!(
            !name.is_empty() && name.bytes().all(is_tchar),
            "header name {name:?}"
        );
        assert!(!is_reserved(name), "reserved header {name:?} accepted");
        assert!(is_header_value(value), "header value {value:?}");
        let lower = name.to_ascii_lowercase();
        assert!(!seen.contains(&lower), "header {name:?} twice");
        seen.push(lower);
    }
    if let Some(secret) = &env.secret {
        assert!(!secret.is_empty(), "accepted an empty secret");
    }
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// A body built from the parsed fields: what a producer who sent exactly
/// these values would publish.
pub fn rebuild(env: &Envelope<'_>) -> String {
    let mut out = String::from("{");
    let _ = write!(
        out,
        r#""id":{},"webhook":{},"event":{},"url":{},"data":{}"#,
        json_string(&env.id),
        env.webhook,
        json_string(&env.event),
        json_string(env.url.as_str()),
        env.data.get()
    );
    if let Some(site) = env.site_id {
        let _ = write!(out, r#","site_id":{site}"#);
    }
    if let Some(ms) = env.created_at_ms {
        let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .expect("a parsed created_at is in range");
        let text = at
            .format(&time::format_description::well_known::Rfc3339)
            .expect("formats as RFC 3339");
        let _ = write!(out, r#","created_at":{}"#, json_string(&text));
    }
    if !env.headers.is_empty() {
        out.push_str(r#","headers":{"#);
        for (i, (name, value)) in env.headers.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{}:{}", json_string(name), json_string(value));
        }
        out.push('}');
    }
    if let Some(secret) = &env.secret {
        let _ = write!(out, r#","secret":{}"#, json_string(secret));
    }
    out.push('}');
    out
}

/// Re-parsing the envelope rebuilt from the parsed fields gives the same
/// envelope.
pub fn check_reparse(env: &Envelope<'_>) {
    let body = rebuild(env);
    // The URL is rebuilt in its normalised form, which can be longer than
    // the producer's text (percent-encoding, punycode): past 2048
    // characters the rebuilt message is rightly refused.
    let url_chars = env.url.as_str().chars().count();
    let again = envelope::parse(body.as_bytes(), usize::MAX);
    if url_chars > 2048 {
        assert!(
            matches!(&again, Err(Rejection::Malformed(m)) if m.contains("'url'")),
            "rebuilt {body:?}: {again:?}"
        );
        return;
    }
    let again = match again {
        Ok(e) => e,
        Err(e) => panic!("rebuilt envelope {body:?} refused: {e}"),
    };
    assert_eq!(again.id, env.id);
    assert_eq!(again.webhook, env.webhook);
    assert_eq!(again.event, env.event);
    assert_eq!(again.url, env.url, "url does not re-parse to itself");
    assert_eq!(again.data.get(), env.data.get());
    assert_eq!(again.site_id, env.site_id);
    assert_eq!(again.created_at_ms, env.created_at_ms);
    assert_eq!(again.headers, env.headers);
    assert_eq!(again.secret, env.secret);
}
