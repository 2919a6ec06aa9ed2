//! The webhook catalog and the header rules of contract sections 3 and 4:
//! facts, not code paths, kept in one place so the parser, the HTTP edge
//! and the tests agree.

/// The catalog of known webhooks: number and event name.
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

/// The event name of a catalogued webhook number.
pub fn catalog_event(webhook: u16) -> Option<&'static str> {
    CATALOG.iter().find(|(n, _)| *n == webhook).map(|(_, e)| *e)
}

/// Whether a number lies in one of the families' ranges (101–199, 201–299,
/// 301–399).
pub fn is_valid_webhook_number(n: i64) -> bool {
    matches!(n, 101..=199 | 201..=299 | 301..=399)
}

/// Longest `id`, in characters.
pub const MAX_ID_CHARS: usize = 200;
/// Longest `url`, in characters.
pub const MAX_URL_CHARS: usize = 2048;
/// Longest `event` name, in characters.
pub const MAX_EVENT_CHARS: usize = 200;

/// Header names a message's `headers` may not set: the worker's own
/// (section 4), `Host`, `Content-Length` and the hop-by-hop headers of
/// RFC 7230 (and RFC 2616's list). Lower case; compared case-insensitively.
pub const RESERVED_HEADERS: [&str; 21] = [
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

/// Longest header name the HTTP stack accepts.
const MAX_HEADER_NAME_BYTES: usize = 65_535;

/// Whether `name` is an HTTP field name (an RFC 9110 token).
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_HEADER_NAME_BYTES
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// Whether `value` is a header value the HTTP stack sends as it is:
/// visible characters, spaces and tabs, no control characters (so no CR or
/// LF that could split a header).
pub fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// Whether a message's `headers` may not set `name` (compared
/// case-insensitively).
pub fn is_reserved_header(name: &str) -> bool {
    RESERVED_HEADERS
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_tokens() {
        assert!(is_header_name("X-Tenant"));
        assert!(is_header_name("a!#$%&'*+-.^_`|~9"));
        for bad in ["", "a b", "a:b", "a\u{e9}", "a\n", "(x)"] {
            assert!(!is_header_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn header_values_have_no_control_characters() {
        assert!(is_header_value("a b\tc \u{e9}"));
        assert!(is_header_value(""));
        for bad in ["a\r\nb", "a\nb", "\u{7f}", "\u{0}"] {
            assert!(!is_header_value(bad), "{bad:?}");
        }
        assert!(is_reserved_header("Transfer-Encoding"));
        assert!(!is_reserved_header("X-Tenant"));
    }

    #[test]
    fn catalog_numbers_lie_in_their_families() {
        assert!(
            CATALOG
                .iter()
                .all(|(n, _)| is_valid_webhook_number((*n).into()))
        );
        assert_eq!(catalog_event(109), Some("Chat.ended"));
        assert_eq!(catalog_event(111), None);
    }
}
