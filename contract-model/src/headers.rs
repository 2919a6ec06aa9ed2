//! Request headers (contract section 4): which names a message's `headers`
//! may not set, and what a name and a value may hold.

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

/// Why a `headers` object is refused, or `Ok` when every pair may be sent:
/// a token name, not reserved, a sendable value, no name twice (in any case).
pub fn check_headers<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), String> {
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in pairs {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(format!("header name {name:?}"));
        }
        if is_reserved(name) {
            return Err(format!("reserved header {name:?}"));
        }
        if !is_header_value(value) {
            return Err(format!("header value {value:?}"));
        }
        let lower = name.to_ascii_lowercase();
        if seen.contains(&lower) {
            return Err(format!("header {name:?} twice"));
        }
        seen.push(lower);
    }
    Ok(())
}
