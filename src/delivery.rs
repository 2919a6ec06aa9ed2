//! Delivery: one HTTP attempt to a receiver (contract section 4).
//!
//! One [`Deliverer`] per process holds the one HTTP client (rustls, a shared
//! connection pool, no redirects, no proxies) and builds every request's
//! headers in one place, [`Deliverer::headers`]. An attempt never returns an
//! error: every way it can end is an [`AttemptOutcome`], which the retry
//! policy and the metrics both read.

use std::{
    error::Error as _,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use reqwest::{
    StatusCode,
    header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT},
};

use crate::{
    message::Envelope,
    signing::SigningKey,
    target::{ForbiddenTarget, GuardedResolver, is_forbidden},
};

/// Response bodies are read at most this far, then dropped.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The `User-Agent` of every request.
pub const USER_AGENT_VALUE: &str = concat!("webhook-worker/", env!("CARGO_PKG_VERSION"));

/// How one attempt ended. The label is the `outcome` of
/// `webhook_attempts_total`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx arrived in time.
    Success {
        /// The status code.
        status: u16,
    },
    /// No status within `WEBHOOK_TIMEOUT`.
    Timeout,
    /// Connection, TLS or transport error, with a short description.
    ConnectError(String),
    /// A non-2xx status other than 410.
    HttpError {
        /// The status code.
        status: u16,
        /// `Retry-After` of a 429 or 503, when present and readable.
        retry_after: Option<Duration>,
    },
    /// `410 Gone`: the receiver asks never to be called again.
    Gone,
    /// The URL points at a non-public address.
    ForbiddenTarget(String),
}

impl AttemptOutcome {
    /// Every label, for pre-registering metrics.
    pub const LABELS: [&'static str; 6] = [
        "success",
        "timeout",
        "connect_error",
        "http_error",
        "gone",
        "forbidden_target",
    ];

    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            AttemptOutcome::Success { .. } => "success",
            AttemptOutcome::Timeout => "timeout",
            AttemptOutcome::ConnectError(_) => "connect_error",
            AttemptOutcome::HttpError { .. } => "http_error",
            AttemptOutcome::Gone => "gone",
            AttemptOutcome::ForbiddenTarget(_) => "forbidden_target",
        }
    }

    /// Whether this is a success.
    pub fn is_success(&self) -> bool {
        matches!(self, AttemptOutcome::Success { .. })
    }

    /// Short text for `webhook-last-error` and the log.
    pub fn describe(&self, timeout: Duration) -> String {
        match self {
            AttemptOutcome::Success { status } => format!("HTTP {status}"),
            AttemptOutcome::Timeout => format!(
                "timeout: no response within {}",
                humantime::format_duration(timeout)
            ),
            AttemptOutcome::ConnectError(e) => format!("connect error: {e}"),
            AttemptOutcome::HttpError {
                status,
                retry_after: Some(d),
            } => {
                format!(
                    "HTTP {status} (Retry-After {})",
                    humantime::format_duration(*d)
                )
            }
            AttemptOutcome::HttpError {
                status,
                retry_after: None,
            } => format!("HTTP {status}"),
            AttemptOutcome::Gone => "HTTP 410 Gone".to_string(),
            AttemptOutcome::ForbiddenTarget(e) => format!("forbidden target: {e}"),
        }
    }
}

/// Settings of the delivery side, taken from [`crate::config::Config`].
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Allow non-public targets.
    pub allow_private_targets: bool,
    /// Default signing key.
    pub default_key: Option<SigningKey>,
    /// Idle connections kept per host.
    pub pool_per_host: usize,
}

/// The one HTTP client of the process, with the request-building rules.
#[derive(Debug, Clone)]
pub struct Deliverer {
    client: reqwest::Client,
    timeout: Duration,
    allow_private_targets: bool,
    default_key: Option<SigningKey>,
}

impl Deliverer {
    /// Builds the client. Fails only if the TLS backend cannot start.
    pub fn new(config: DeliveryConfig) -> Result<Self, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // The worker retries through the broker; reqwest's own retry
            // policy would only copy every request's headers.
            .retry(reqwest::retry::never().max_retries_per_request(0))
            .no_proxy()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .pool_max_idle_per_host(config.pool_per_host)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .user_agent(USER_AGENT_VALUE);
        if !config.allow_private_targets {
            builder = builder.dns_resolver(GuardedResolver::shared());
        }
        Ok(Self {
            client: builder.build()?,
            timeout: config.timeout,
            allow_private_targets: config.allow_private_targets,
            default_key: config.default_key,
        })
    }

    /// The whole-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Every header of a delivery request, in one place: the worker's own
    /// (section 4), the Standard Webhooks signature when a secret is known,
    /// then the message's extra headers (validated not to collide).
    pub fn headers(&self, env: &Envelope<'_>, attempt: u32, unix_secs: i64) -> HeaderMap {
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
            None => self.default_key.as_ref(),
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

    /// Makes one attempt. `body` is the message body the envelope was parsed
    /// from; the request body is a zero-copy slice of it (`data`'s bytes).
    pub async fn attempt(&self, env: &Envelope<'_>, body: &Bytes, attempt: u32) -> AttemptOutcome {
        if !self.allow_private_targets
            && let Some(ip) = literal_ip(&env.url)
            && is_forbidden(ip)
        {
            return AttemptOutcome::ForbiddenTarget(format!("{ip} is not a public address"));
        }
        let payload = body.slice_ref(env.data.get().as_bytes());
        let headers = self.headers(env, attempt, unix_secs_now());
        let response = self
            .client
            .post(env.url.clone())
            .headers(headers)
            .body(payload)
            .send()
            .await;
        let mut response = match response {
            Ok(r) => r,
            Err(e) => return classify_error(e),
        };
        let status = response.status();
        let retry_after = if status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::SERVICE_UNAVAILABLE
        {
            response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| parse_retry_after(v.as_bytes(), SystemTime::now()))
        } else {
            None
        };
        // The status decides. Reading a bounded prefix of the body lets the
        // connection go back to the pool; errors while reading are ignored.
        let mut read = 0;
        while read < MAX_RESPONSE_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                _ => break,
            }
        }
        if status.is_success() {
            AttemptOutcome::Success {
                status: status.as_u16(),
            }
        } else if status == StatusCode::GONE {
            AttemptOutcome::Gone
        } else {
            AttemptOutcome::HttpError {
                status: status.as_u16(),
                retry_after,
            }
        }
    }
}

/// Header names of section 4, parsed once.
mod names {
    use reqwest::header::HeaderName;
    pub const WEBHOOK_NO: HeaderName = HeaderName::from_static("x-comm100-webhook-no");
    pub const EVENT: HeaderName = HeaderName::from_static("x-comm100-event");
    pub const DELIVERY_ID: HeaderName = HeaderName::from_static("x-comm100-delivery-id");
    pub const ATTEMPT: HeaderName = HeaderName::from_static("x-comm100-attempt");
    pub const SITE_ID: HeaderName = HeaderName::from_static("x-comm100-site-id");
    pub const SIG_ID: HeaderName = HeaderName::from_static("webhook-id");
    pub const SIG_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
    pub const SIG_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
}

fn literal_ip(url: &url::Url) -> Option<std::net::IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(v4.into()),
        url::Host::Ipv6(v6) => Some(v6.into()),
        url::Host::Domain(_) => None,
    }
}

fn unix_secs_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Maps a client error to an outcome, with a description that names no URL.
fn classify_error(e: reqwest::Error) -> AttemptOutcome {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(f) = s.downcast_ref::<ForbiddenTarget>() {
            return AttemptOutcome::ForbiddenTarget(f.to_string());
        }
        source = s.source();
    }
    if e.is_timeout() {
        return AttemptOutcome::Timeout;
    }
    // The innermost cause is the informative one ("Connection refused").
    let mut innermost = None;
    let mut source = e.source();
    while let Some(s) = source {
        innermost = Some(s.to_string());
        source = s.source();
    }
    AttemptOutcome::ConnectError(innermost.unwrap_or_else(|| e.without_url().to_string()))
}

/// Parses `Retry-After`: delay-seconds or an HTTP date (relative to `now`).
pub fn parse_retry_after(value: &[u8], now: SystemTime) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        assert_eq!(
            parse_retry_after(b"120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(b" 0 ", now), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(3600));
        assert_eq!(
            parse_retry_after(later.as_bytes(), now),
            Some(Duration::from_secs(3600))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(5));
        assert_eq!(
            parse_retry_after(earlier.as_bytes(), now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after(b"-5", now), None);
        assert_eq!(parse_retry_after(b"soon", now), None);
    }

    fn deliverer(default_secret: Option<&str>) -> Deliverer {
        Deliverer::new(DeliveryConfig {
            timeout: Duration::from_secs(1),
            allow_private_targets: false,
            default_key: default_secret.map(|s| SigningKey::from_secret(s).unwrap()),
            pool_per_host: 1,
        })
        .unwrap()
    }

    #[test]
    fn headers_of_section_4() {
        let body = br#"{"id":"e1","webhook":109,"url":"https://x.io/","site_id":7,"data":{"a":1},"headers":{"X-Tenant":"t"}}"#;
        let env = crate::message::parse(body, 1 << 20).unwrap();
        let h = deliverer(None).headers(&env, 3, 1_700_000_000);
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
        let env = crate::message::parse(body, 1 << 20).unwrap();
        let h = deliverer(Some("default")).headers(&env, 1, 42);
        let expected = SigningKey::from_secret("mine")
            .unwrap()
            .sign("e1", 42, b"{}");
        assert_eq!(h["webhook-signature"], expected.as_str());
        assert_eq!(h["webhook-id"], "e1");
        assert_eq!(h["webhook-timestamp"], "42");
        let body = br#"{"id":"e1","webhook":101,"url":"https://x.io/","data":{}}"#;
        let env = crate::message::parse(body, 1 << 20).unwrap();
        let h = deliverer(Some("default")).headers(&env, 1, 42);
        let expected = SigningKey::from_secret("default")
            .unwrap()
            .sign("e1", 42, b"{}");
        assert_eq!(h["webhook-signature"], expected.as_str());
    }

    #[tokio::test]
    async fn literal_private_ip_is_refused_without_a_request() {
        let body = Bytes::from_static(
            br#"{"id":"e1","webhook":101,"url":"http://127.0.0.1:9/","data":{}}"#,
        );
        let env = crate::message::parse(&body, 1 << 20).unwrap();
        let outcome = deliverer(None).attempt(&env, &body, 1).await;
        assert_eq!(outcome.label(), "forbidden_target");
    }
}
