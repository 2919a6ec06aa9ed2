//! The contract, restated independently of `src/` (sections 3 and 4): the
//! webhook catalog, the reserved headers, HTTP tokens and header values,
//! the envelope's known fields.

pub(crate) const CATALOG: [(i64, &str); 12] = [
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

pub(crate) fn catalog(n: i64) -> Option<&'static str> {
    CATALOG.iter().find(|(k, _)| *k == n).map(|(_, e)| *e)
}

pub(crate) fn valid_number(n: i64) -> bool {
    matches!(n, 101..=199 | 201..=299 | 301..=399)
}

/// Headers `headers` may not set: section 4's, `Host`, `Content-Length` and
/// the hop-by-hop ones (RFC 7230 6.1, plus `Proxy-Connection`).
pub(crate) const RESERVED: [&str; 21] = [
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

pub(crate) fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name.to_ascii_lowercase().as_str())
}

/// RFC 7230 `tchar`.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A header value an HTTP client can send: no control bytes but tab.
pub(crate) fn is_header_value(v: &str) -> bool {
    v.bytes().all(|b| (b >= 0x20 && b != 0x7f) || b == b'\t')
}

pub(crate) const KNOWN: [&str; 9] = [
    "id",
    "webhook",
    "url",
    "data",
    "event",
    "site_id",
    "created_at",
    "headers",
    "secret",
];
pub(crate) const F_ID: usize = 0;
pub(crate) const F_WEBHOOK: usize = 1;
pub(crate) const F_URL: usize = 2;
pub(crate) const F_DATA: usize = 3;
pub(crate) const F_EVENT: usize = 4;
pub(crate) const F_SITE_ID: usize = 5;
pub(crate) const F_CREATED_AT: usize = 6;
pub(crate) const F_HEADERS: usize = 7;
pub(crate) const F_SECRET: usize = 8;
