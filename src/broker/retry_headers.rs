//! The retry state in AMQP headers (contract section 5): how the domain's
//! [`RetryState`] and [`DropReason`] travel with a message. No `x-` prefix:
//! the broker reserves those, and `x-death` is not an attempt counter.

use lapin::types::{AMQPValue, FieldTable, ShortString};

use crate::domain::policy::{DropReason, RetryState};

/// Header: attempts made so far (an AMQP integer).
pub const HEADER_ATTEMPTS: &str = "webhook-attempts";
/// Header: unix milliseconds of the first attempt (an AMQP integer).
pub const HEADER_FIRST_ATTEMPT_MS: &str = "webhook-first-attempt-ms";
/// Header: short text of the last failure.
pub const HEADER_LAST_ERROR: &str = "webhook-last-error";
/// Header: why the message was parked in `P.dead`.
pub const HEADER_DROP_REASON: &str = "webhook-drop-reason";
/// Header: unix milliseconds when the worker parked the message (what
/// `dead ... --since/--until` select on; the broker's own parking carries
/// `x-death` instead).
pub const HEADER_PARKED_AT_MS: &str = "webhook-parked-at-ms";

/// Header: how often the worker returned this message to a classic work
/// queue because its retry or dead copy could not be settled (an AMQP
/// integer; see `worker::unsettled`).
pub const HEADER_UNSETTLED: &str = "webhook-unsettled";

/// Why and when a dead copy is parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parking {
    /// `webhook-drop-reason`.
    pub reason: DropReason,
    /// `webhook-parked-at-ms`.
    pub at_ms: i64,
}

/// Longest `webhook-last-error`, in characters: headers are not a log.
pub const MAX_LAST_ERROR_CHARS: usize = 256;

/// A retry header that is present but unusable: the message is then
/// malformed (the text is its `webhook-last-error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("header {0} is not a non-negative AMQP integer")]
pub struct HeaderError(pub &'static str);

/// Reads the retry headers. Absent headers mean a fresh event; a header of
/// the wrong type is an error.
pub fn read_retry_state(headers: Option<&FieldTable>) -> Result<RetryState, HeaderError> {
    let Some(h) = headers else {
        return Ok(RetryState::default());
    };
    let attempts = match h.inner().get(HEADER_ATTEMPTS) {
        None => 0,
        Some(v) => as_integer(v)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(HeaderError(HEADER_ATTEMPTS))?,
    };
    let first_attempt_ms = match h.inner().get(HEADER_FIRST_ATTEMPT_MS) {
        None => None,
        Some(v) => Some(
            as_integer(v)
                .filter(|n| *n >= 0)
                .ok_or(HeaderError(HEADER_FIRST_ATTEMPT_MS))?,
        ),
    };
    Ok(RetryState {
        attempts,
        first_attempt_ms,
    })
}

/// How often the broker handed this message out before, as its own
/// annotations count: `x-delivery-count` (every return on RabbitMQ 3.10 and
/// 4.0; only failed ones on 4.3) and `x-acquired-count` (4.3: every
/// delivery), the larger; 0 when neither is there (a first delivery, or a
/// classic queue before 4.3).
pub fn broker_redeliveries(headers: Option<&FieldTable>) -> u64 {
    let Some(h) = headers else { return 0 };
    BROKER_COUNTS
        .iter()
        .filter_map(|name| h.inner().get(*name).and_then(as_integer))
        .filter_map(|n| u64::try_from(n).ok())
        .max()
        .unwrap_or(0)
}

/// The broker's delivery counters.
const BROKER_COUNTS: [&str; 2] = ["x-delivery-count", "x-acquired-count"];

/// The counters a copy must not carry over: the broker's, and the
/// worker's own count of unsettled returns.
const COPY_DROPS: [&str; 3] = ["x-delivery-count", "x-acquired-count", HEADER_UNSETTLED];

/// How often the worker returned this message because a copy of it could
/// not be settled (`webhook-unsettled`; 0 when absent or unusable).
pub fn unsettled(headers: Option<&FieldTable>) -> u64 {
    headers
        .and_then(|h| h.inner().get(HEADER_UNSETTLED))
        .and_then(as_integer)
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0)
}

/// The headers of a message returned to its work queue by a copy: as
/// they were, the broker's counters dropped, `webhook-unsettled` = `n`.
pub fn with_unsettled(headers: Option<&FieldTable>, n: u64) -> FieldTable {
    let mut map = headers.map(|h| h.inner().clone()).unwrap_or_default();
    for name in COPY_DROPS {
        map.remove(&ShortString::from(name));
    }
    let mut table: FieldTable = map.into();
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    table.insert(HEADER_UNSETTLED.into(), AMQPValue::LongLongInt(n));
    table
}

/// A text header's value (long or short string), lossily decoded.
pub fn text(v: &AMQPValue) -> Option<String> {
    match v {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}

/// The message's `webhook-last-error`, when it has one.
pub fn last_error(headers: Option<&FieldTable>) -> Option<String> {
    text(headers?.inner().get(HEADER_LAST_ERROR)?)
}

/// Any AMQP integer type, widened.
pub fn as_integer(v: &AMQPValue) -> Option<i64> {
    Some(match *v {
        AMQPValue::ShortShortInt(n) => n.into(),
        AMQPValue::ShortShortUInt(n) => n.into(),
        AMQPValue::ShortInt(n) => n.into(),
        AMQPValue::ShortUInt(n) => n.into(),
        AMQPValue::LongInt(n) => n.into(),
        AMQPValue::LongUInt(n) => n.into(),
        AMQPValue::LongLongInt(n) => n,
        AMQPValue::Timestamp(n) => i64::try_from(n).ok()?,
        _ => return None,
    })
}

/// Writes the retry headers onto a copy of the message's headers: the same
/// names in one place for retry copies and dead copies alike.
pub fn with_retry_headers(
    headers: Option<&FieldTable>,
    attempts: u32,
    first_attempt_ms: Option<i64>,
    last_error: Option<&str>,
    parking: Option<Parking>,
) -> FieldTable {
    // a copy is a new message to the broker: the original's delivery
    // counters would count against it
    let mut map = headers.map(|h| h.inner().clone()).unwrap_or_default();
    for name in COPY_DROPS {
        map.remove(&ShortString::from(name));
    }
    let mut table: FieldTable = map.into();
    table.insert(
        HEADER_ATTEMPTS.into(),
        AMQPValue::LongLongInt(attempts.into()),
    );
    if let Some(first) = first_attempt_ms {
        table.insert(
            HEADER_FIRST_ATTEMPT_MS.into(),
            AMQPValue::LongLongInt(first),
        );
    }
    if let Some(err) = last_error {
        let err: String = err.chars().take(MAX_LAST_ERROR_CHARS).collect();
        table.insert(HEADER_LAST_ERROR.into(), AMQPValue::LongString(err.into()));
    }
    if let Some(Parking { reason, at_ms }) = parking {
        table.insert(
            HEADER_DROP_REASON.into(),
            AMQPValue::LongString(reason.as_str().into()),
        );
        table.insert(HEADER_PARKED_AT_MS.into(), AMQPValue::LongLongInt(at_ms));
    }
    table
}

/// The headers of a replayed message: retry state and parking cleared so
/// the schedule and max age start over (and the broker's `x-death` and
/// `x-delivery-count` annotations dropped), everything the producer set
/// kept.
pub fn without_retry_headers(headers: Option<&FieldTable>) -> FieldTable {
    let mut map = headers.map(|h| h.inner().clone()).unwrap_or_default();
    for name in [
        HEADER_ATTEMPTS,
        HEADER_FIRST_ATTEMPT_MS,
        HEADER_LAST_ERROR,
        HEADER_DROP_REASON,
        HEADER_PARKED_AT_MS,
        HEADER_UNSETTLED,
        "x-death",
        "x-delivery-count",
        "x-acquired-count",
    ] {
        map.remove(&ShortString::from(name));
    }
    map.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_redeliveries_is_the_larger_counter_and_copies_drop_both() {
        assert_eq!(broker_redeliveries(None), 0);
        let mut h = FieldTable::default();
        h.insert("x-delivery-count".into(), AMQPValue::LongLongInt(2));
        assert_eq!(broker_redeliveries(Some(&h)), 2);
        h.insert("x-acquired-count".into(), AMQPValue::LongInt(7));
        assert_eq!(broker_redeliveries(Some(&h)), 7);
        let copy = with_retry_headers(Some(&h), 1, Some(5), None, None);
        assert_eq!(broker_redeliveries(Some(&copy)), 0);
        let returned = with_unsettled(Some(&h), 3);
        assert_eq!(
            (
                broker_redeliveries(Some(&returned)),
                unsettled(Some(&returned))
            ),
            (0, 3)
        );
        let retried = with_retry_headers(Some(&returned), 1, Some(5), None, None);
        assert_eq!(unsettled(Some(&retried)), 0, "a settled copy starts over");
        assert!(copy.inner().get("x-acquired-count").is_none());
    }

    #[test]
    fn headers_round_trip() {
        assert_eq!(read_retry_state(None).unwrap(), RetryState::default());
        let mut producer = FieldTable::default();
        producer.insert("trace".into(), AMQPValue::LongString("t1".into()));
        let h = with_retry_headers(
            Some(&producer),
            3,
            Some(1234),
            Some("HTTP 500"),
            Some(Parking {
                reason: DropReason::Expired,
                at_ms: 5678,
            }),
        );
        let state = read_retry_state(Some(&h)).unwrap();
        assert_eq!(
            state,
            RetryState {
                attempts: 3,
                first_attempt_ms: Some(1234)
            }
        );
        assert_eq!(state.this_attempt(), 4);
        assert_eq!(
            h.inner().get("webhook-drop-reason"),
            Some(&AMQPValue::LongString("expired".into()))
        );
        assert_eq!(
            h.inner().get("webhook-parked-at-ms"),
            Some(&AMQPValue::LongLongInt(5678))
        );
        assert!(h.contains_key("trace"));
        let cleared = without_retry_headers(Some(&h));
        assert_eq!(cleared.inner().len(), 1);
        assert!(cleared.contains_key("trace"));
    }

    #[test]
    fn any_integer_type_is_read_and_others_refused() {
        for v in [
            AMQPValue::ShortShortUInt(2),
            AMQPValue::LongInt(2),
            AMQPValue::LongUInt(2),
            AMQPValue::ShortInt(2),
        ] {
            let mut h = FieldTable::default();
            h.insert(HEADER_ATTEMPTS.into(), v);
            assert_eq!(read_retry_state(Some(&h)).unwrap().attempts, 2);
        }
        for v in [
            AMQPValue::LongString("2".into()),
            AMQPValue::LongInt(-1),
            AMQPValue::Double(2.0),
        ] {
            let mut h = FieldTable::default();
            h.insert(HEADER_ATTEMPTS.into(), v);
            assert!(read_retry_state(Some(&h)).is_err());
        }
    }

    #[test]
    fn last_error_is_bounded() {
        let h = with_retry_headers(None, 1, None, Some(&"e".repeat(10_000)), None);
        match h.inner().get(HEADER_LAST_ERROR) {
            Some(AMQPValue::LongString(s)) => assert_eq!(s.len(), MAX_LAST_ERROR_CHARS),
            other => panic!("{other:?}"),
        }
    }
}
