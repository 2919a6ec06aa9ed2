//! W3C trace context (contract section 4): a message's `traceparent` and
//! `tracestate` AMQP headers go onto the request unchanged, and the trace
//! id into outcome events and log lines. A malformed `traceparent` is left
//! out (with its `tracestate`, which means nothing without it); none is
//! ever invented.

/// Longest `tracestate` forwarded (the W3C limit is 32 members of at most
/// 256 characters each; anything longer is not a tracestate).
pub const MAX_TRACESTATE_CHARS: usize = 32 * 257;

/// A valid trace context, as the message carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// The `traceparent` value, unchanged.
    pub traceparent: String,
    /// The `tracestate` value, unchanged, when given and printable.
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// The context of the two header values, `None` when `traceparent` is
    /// missing or malformed.
    pub fn from_headers(traceparent: Option<&str>, tracestate: Option<&str>) -> Option<Self> {
        let traceparent = traceparent.filter(|t| is_valid_traceparent(t))?;
        let tracestate = tracestate
            .filter(|s| {
                s.len() <= MAX_TRACESTATE_CHARS && s.bytes().all(|b| (0x20..0x7f).contains(&b))
            })
            .map(str::to_string);
        Some(Self {
            traceparent: traceparent.to_string(),
            tracestate,
        })
    }

    /// The 32 hex digits of the trace id.
    pub fn trace_id(&self) -> &str {
        &self.traceparent[3..35]
    }
}

/// Whether `s` is a `traceparent` of the W3C format:
/// `version-traceid-parentid-flags`, lower-case hex, ids not all zero,
/// version not `ff`; a version other than `00` may carry more fields
/// after a `-`.
pub fn is_valid_traceparent(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 55 {
        return false;
    }
    let hex =
        |r: std::ops::Range<usize>| b[r].iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    let zero = |r: std::ops::Range<usize>| b[r].iter().all(|c| *c == b'0');
    let shape = hex(0..2)
        && b[2] == b'-'
        && hex(3..35)
        && b[35] == b'-'
        && hex(36..52)
        && b[52] == b'-'
        && hex(53..55);
    if !shape || &b[0..2] == b"ff" || zero(3..35) || zero(36..52) {
        return false;
    }
    match &b[0..2] {
        b"00" => b.len() == 55,
        _ => b.len() == 55 || b[55] == b'-',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn valid_traceparents_pass_with_their_state() {
        let t = TraceContext::from_headers(Some(GOOD), Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(t.traceparent, GOOD);
        assert_eq!(t.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
        assert_eq!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(is_valid_traceparent(&format!("01{}-extra", &GOOD[2..])));
        assert!(is_valid_traceparent(&format!("cc{}", &GOOD[2..])));
    }

    #[test]
    fn malformed_traceparents_are_dropped_with_their_state() {
        for bad in [
            "",
            "garbage",
            &GOOD.to_uppercase(),
            &format!("ff{}", &GOOD[2..]),
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            &format!("{GOOD}-extra"),
            &GOOD.replace('-', "_"),
            &GOOD[..54],
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert!(!is_valid_traceparent(bad), "{bad}");
            assert_eq!(TraceContext::from_headers(Some(bad), Some("a=b")), None);
        }
        assert_eq!(TraceContext::from_headers(None, Some("a=b")), None);
        let unprintable = TraceContext::from_headers(Some(GOOD), Some("a=b\n")).unwrap();
        assert_eq!(unprintable.tracestate, None);
    }
}
