//! One parked message as the `dead` commands see it: the body's facts, the
//! retry state and parking from its headers, and the headers in the only
//! form that may be printed.

use lapin::{
    BasicProperties,
    types::{AMQPValue, FieldTable},
};

use crate::{
    broker::retry_headers::{
        HEADER_DROP_REASON, HEADER_PARKED_AT_MS, as_integer, last_error, read_retry_state, text,
    },
    domain::{
        parked::{REDACTED, body_facts},
        selection::ParkedFacts,
    },
};

/// One parked message, summarised. Holds nothing secret: no body, no
/// producer header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    /// The event id, when the body has one.
    pub id: Option<String>,
    /// The webhook number, when the body has one.
    pub webhook: Option<i64>,
    /// The event name, when the body or the catalog gives one.
    pub event: Option<String>,
    /// The host of the receiver's URL, when the body has one.
    pub host: Option<String>,
    /// `webhook-drop-reason`, or the broker's `x-death` reason (e.g.
    /// `delivery_limit`) for messages the broker parked itself.
    pub reason: String,
    /// `webhook-attempts` (0 when absent or unreadable).
    pub attempts: u32,
    /// `webhook-first-attempt-ms`.
    pub first_attempt_ms: Option<i64>,
    /// `webhook-parked-at-ms`, else the time of the broker's first
    /// `x-death`.
    pub parked_at_ms: Option<i64>,
    /// `webhook-last-error`.
    pub last_error: String,
    /// The body's size in bytes.
    pub size: usize,
}

impl Parked {
    /// Reads a parked message; never fails.
    pub fn read(body: &[u8], props: &BasicProperties) -> Self {
        let facts = body_facts(body);
        let headers = props.headers().as_ref();
        let state = read_retry_state(headers).unwrap_or_default();
        Parked {
            id: facts.id,
            webhook: facts.webhook,
            event: facts.event,
            host: facts.host,
            reason: parked_reason(headers),
            attempts: state.attempts,
            first_attempt_ms: state.first_attempt_ms,
            parked_at_ms: parked_at_ms(headers),
            last_error: last_error(headers).unwrap_or_default(),
            size: body.len(),
        }
    }

    /// What a selection is tested against.
    pub fn facts(&self) -> ParkedFacts<'_> {
        ParkedFacts {
            id: self.id.as_deref(),
            webhook: self.webhook,
            host: self.host.as_deref(),
            reason: &self.reason,
            parked_at_ms: self.parked_at_ms,
        }
    }
}

/// The broker's first `x-death` entry, when the broker parked the message.
fn first_death(headers: &FieldTable) -> Option<&FieldTable> {
    match headers.inner().get("x-death")? {
        AMQPValue::FieldArray(deaths) => match deaths.as_slice().first()? {
            AMQPValue::FieldTable(first) => Some(first),
            _ => None,
        },
        _ => None,
    }
}

/// The reason a message was parked: ours, else the broker's first `x-death`.
pub fn parked_reason(headers: Option<&FieldTable>) -> String {
    let Some(h) = headers else {
        return "unknown".into();
    };
    if let Some(r) = h.inner().get(HEADER_DROP_REASON).and_then(text) {
        return r;
    }
    match first_death(h).and_then(|d| d.inner().get("reason").and_then(text)) {
        // the worker rejects (without requeue) only a message delivered
        // more often than WEBHOOK_DELIVERY_LIMIT allows
        Some(r) if r == "rejected" => "delivery_limit".into(),
        Some(r) => r,
        None => "unknown".into(),
    }
}

/// When a message was parked: ours (unix ms), else the broker's first
/// `x-death` time (an AMQP timestamp, in seconds).
pub fn parked_at_ms(headers: Option<&FieldTable>) -> Option<i64> {
    let h = headers?;
    if let Some(ms) = h.inner().get(HEADER_PARKED_AT_MS).and_then(as_integer) {
        return Some(ms);
    }
    let secs = as_integer(first_death(h)?.inner().get("time")?)?;
    secs.checked_mul(1000)
}

/// A header's value as JSON, for `dead show`.
fn json_value(v: &AMQPValue) -> serde_json::Value {
    use serde_json::Value;
    match v {
        AMQPValue::Boolean(b) => Value::Bool(*b),
        AMQPValue::Float(f) => serde_json::json!(f),
        AMQPValue::Double(f) => serde_json::json!(f),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(json_value).collect()),
        AMQPValue::FieldTable(t) => Value::Object(
            t.inner()
                .iter()
                .map(|(k, v)| (k.to_string(), json_value(v)))
                .collect(),
        ),
        AMQPValue::ByteArray(b) => Value::String(String::from_utf8_lossy(b.as_slice()).into()),
        AMQPValue::Void => Value::Null,
        other => match (text(other), as_integer(other)) {
            (Some(s), _) => Value::String(s),
            (None, Some(n)) => Value::from(n),
            (None, None) => Value::String(format!("{other:?}")),
        },
    }
}

/// The headers as `dead show` prints them: the worker's (`webhook-*`) and
/// the broker's (`x-*`) with their values; any other header is the
/// producer's and may be a credential, so only its name is shown.
pub fn shown_headers(props: &BasicProperties) -> serde_json::Map<String, serde_json::Value> {
    let Some(h) = props.headers().as_ref() else {
        return serde_json::Map::new();
    };
    h.inner()
        .iter()
        .map(|(k, v)| {
            let name = k.as_str();
            let value = if name.starts_with("webhook-") || name.starts_with("x-") {
                json_value(v)
            } else {
                serde_json::Value::String(REDACTED.into())
            };
            (name.to_string(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn death(reason: &str, time: u64) -> FieldTable {
        let mut death = FieldTable::default();
        death.insert("reason".into(), AMQPValue::LongString(reason.into()));
        death.insert("time".into(), AMQPValue::Timestamp(time));
        let mut broker = FieldTable::default();
        broker.insert(
            "x-death".into(),
            AMQPValue::FieldArray(vec![AMQPValue::FieldTable(death)].into()),
        );
        broker
    }

    #[test]
    fn reason_and_time_from_our_headers_or_the_brokers_x_death() {
        let mut ours = FieldTable::default();
        ours.insert(
            HEADER_DROP_REASON.into(),
            AMQPValue::LongString("gone".into()),
        );
        ours.insert(HEADER_PARKED_AT_MS.into(), AMQPValue::LongLongInt(1234));
        assert_eq!(parked_reason(Some(&ours)), "gone");
        assert_eq!(parked_at_ms(Some(&ours)), Some(1234));

        let broker = death("delivery_limit", 1_700_000_000);
        assert_eq!(parked_reason(Some(&broker)), "delivery_limit");
        assert_eq!(parked_at_ms(Some(&broker)), Some(1_700_000_000_000));
        assert_eq!(parked_reason(None), "unknown");
        assert_eq!(parked_at_ms(None), None);
    }

    #[test]
    fn producer_headers_are_shown_by_name_only() {
        let mut h = death("delivery_limit", 7);
        h.insert(
            "authorization".into(),
            AMQPValue::LongString("Bearer s3cret".into()),
        );
        h.insert("webhook-attempts".into(), AMQPValue::LongLongInt(3));
        let shown = shown_headers(&BasicProperties::default().with_headers(h));
        assert_eq!(shown["authorization"], REDACTED);
        assert_eq!(shown["webhook-attempts"], 3);
        assert_eq!(shown["x-death"][0]["reason"], "delivery_limit");
        assert!(!serde_json::to_string(&shown).unwrap().contains("s3cret"));
    }
}
