//! The retry state in AMQP headers (contract section 5): `webhook-attempts`
//! and `webhook-first-attempt-ms` may arrive as any AMQP integer type; a
//! value in range is read whatever its width, anything else is refused.

use lapin::types::AMQPValue;

/// Any AMQP integer, widened to i128; `None` for any other type.
pub fn widen(v: &AMQPValue) -> Option<i128> {
    Some(match v {
        AMQPValue::ShortShortInt(n) => (*n).into(),
        AMQPValue::ShortShortUInt(n) => (*n).into(),
        AMQPValue::ShortInt(n) => (*n).into(),
        AMQPValue::ShortUInt(n) => (*n).into(),
        AMQPValue::LongInt(n) => (*n).into(),
        AMQPValue::LongUInt(n) => (*n).into(),
        AMQPValue::LongLongInt(n) => (*n).into(),
        AMQPValue::Timestamp(n) => (*n).into(),
        _ => return None,
    })
}

/// `webhook-attempts` as the model reads it: absent is 0, else a u32.
pub fn attempts(v: Option<&AMQPValue>) -> Option<u32> {
    match v {
        None => Some(0),
        Some(v) => widen(v).and_then(|n| u32::try_from(n).ok()),
    }
}

/// `webhook-first-attempt-ms` as the model reads it: absent is `Some(None)`,
/// else a non-negative i64; `None` when refused.
pub fn first_attempt_ms(v: Option<&AMQPValue>) -> Option<Option<i64>> {
    match v {
        None => Some(None),
        Some(v) => widen(v)
            .and_then(|n| i64::try_from(n).ok())
            .filter(|n| *n >= 0)
            .map(Some),
    }
}
