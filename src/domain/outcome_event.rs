//! Outcome events (contract section 8): what became of a message, as the
//! platform around the worker reads it from `P.outcomes` and operators
//! read it from `P.log` with `webhook-worker log`.
//!
//! Wire format: an AMQP message on `P.outcomes` holds one or more events
//! of **one** kind (its routing key), one JSON object per line
//! (newline-delimited JSON). Consumers split the body on `\n`; a body of
//! one event is simply one line. [`encode_batch`] writes it,
//! [`decode_batch`] reads it back.
//!
//! An event names the receiver only as `scheme://host:port`, and carries
//! no body, header value or secret: the fields are built from the
//! envelope's id, numbers and the attempt's outcome, never from text a
//! producer could fill with a secret.

use serde::{Deserialize, Serialize};

/// The kinds of outcome event; the routing key on `P.outcomes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OutcomeKind {
    /// A 2xx arrived.
    #[serde(rename = "attempt.succeeded")]
    AttemptSucceeded,
    /// An attempt failed; `next` says what follows.
    #[serde(rename = "attempt.failed")]
    AttemptFailed,
    /// Parked in `P.dead` without an attempt.
    #[serde(rename = "message.parked")]
    MessageParked,
    /// No slot at the receiver: sent to the shortest tier, no attempt.
    #[serde(rename = "message.deferred")]
    MessageDeferred,
    /// This process sees a receiver failing (state change).
    #[serde(rename = "receiver.failing")]
    ReceiverFailing,
    /// A failing receiver succeeded again.
    #[serde(rename = "receiver.recovered")]
    ReceiverRecovered,
}

impl OutcomeKind {
    /// Every kind, for pre-registering metrics.
    pub const ALL: [OutcomeKind; 6] = [
        OutcomeKind::AttemptSucceeded,
        OutcomeKind::AttemptFailed,
        OutcomeKind::MessageParked,
        OutcomeKind::MessageDeferred,
        OutcomeKind::ReceiverFailing,
        OutcomeKind::ReceiverRecovered,
    ];

    /// The name: routing key, metric label and the `kind` field.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::AttemptSucceeded => "attempt.succeeded",
            OutcomeKind::AttemptFailed => "attempt.failed",
            OutcomeKind::MessageParked => "message.parked",
            OutcomeKind::MessageDeferred => "message.deferred",
            OutcomeKind::ReceiverFailing => "receiver.failing",
            OutcomeKind::ReceiverRecovered => "receiver.recovered",
        }
    }

    /// The kind of a name, as `--kind` takes it.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Its position in [`OutcomeKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Next {
    /// Nothing: delivered.
    Done,
    /// A retry tier (`tier` names it).
    Retry,
    /// Parked in `P.dead` (`reason` says why).
    Park,
}

/// Which outcome events the worker publishes (`WEBHOOK_OUTCOMES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomesMode {
    /// Every kind.
    All,
    /// Every kind but `attempt.succeeded`.
    Failures,
    /// None.
    Off,
}

impl OutcomesMode {
    /// The name operators write.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomesMode::All => "all",
            OutcomesMode::Failures => "failures",
            OutcomesMode::Off => "off",
        }
    }

    /// Whether events of `kind` are published.
    pub fn emits(self, kind: OutcomeKind) -> bool {
        match self {
            OutcomesMode::All => true,
            OutcomesMode::Failures => kind != OutcomeKind::AttemptSucceeded,
            OutcomesMode::Off => false,
        }
    }
}

/// One outcome event. Fields are absent (not `null`) when unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeEvent {
    /// What happened.
    pub kind: OutcomeKind,
    /// When, RFC 3339 with milliseconds (UTC).
    pub at: String,
    /// The event id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The webhook number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<i64>,
    /// The event name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The Comm100 site id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_id: Option<i64>,
    /// `scheme://host:port` of the receiver, never more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    /// The attempt's number, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// The `outcome` label of `webhook_attempts_total`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The HTTP status, when one arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// How long the attempt took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// What follows an attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Next>,
    /// The retry tier (`60s`, `1h`), for `next: retry` and deferrals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Why it was parked (`expired`, `gone`, ...), for `park`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Short text of the failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The trace id of the message's `traceparent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The host name of the worker that made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
}

impl OutcomeEvent {
    /// An event of `kind` at `at_ms` (unix ms) with every other field
    /// absent.
    pub fn new(kind: OutcomeKind, at_ms: i64) -> Self {
        Self {
            kind,
            at: rfc3339_millis(at_ms),
            id: None,
            webhook: None,
            event: None,
            site_id: None,
            receiver: None,
            attempt: None,
            outcome: None,
            status: None,
            duration_ms: None,
            next: None,
            tier: None,
            reason: None,
            error: None,
            trace_id: None,
            worker: None,
        }
    }

    /// `at` as unix milliseconds, when it parses.
    pub fn at_ms(&self) -> Option<i64> {
        let t =
            time::OffsetDateTime::parse(&self.at, &time::format_description::well_known::Rfc3339)
                .ok()?;
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
    }
}

/// Unix milliseconds as RFC 3339 with milliseconds, UTC.
pub fn rfc3339_millis(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

/// The body of one AMQP message holding `events`: one JSON object per line.
pub fn encode_batch<'a>(events: impl IntoIterator<Item = &'a OutcomeEvent>) -> Vec<u8> {
    let mut body = Vec::with_capacity(512);
    for (i, e) in events.into_iter().enumerate() {
        if i > 0 {
            body.push(b'\n');
        }
        serde_json::to_writer(&mut body, e).expect("an event always serialises");
    }
    body
}

/// The events of one message body; lines that are not events (blank, or
/// from a future version with an unknown kind) are counted, not fatal.
pub fn decode_batch(body: &[u8]) -> (Vec<OutcomeEvent>, usize) {
    let mut events = Vec::new();
    let mut unreadable = 0;
    for line in body.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(e) => events.push(e),
            Err(_) => unreadable += 1,
        }
    }
    (events, unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_by_name() {
        for k in OutcomeKind::ALL {
            assert_eq!(OutcomeKind::parse(k.as_str()), Some(k));
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
            assert_eq!(OutcomeKind::ALL[k.index()], k);
        }
        assert_eq!(OutcomeKind::parse("attempt"), None);
    }

    #[test]
    fn modes_filter_kinds() {
        for k in OutcomeKind::ALL {
            assert!(OutcomesMode::All.emits(k));
            assert!(!OutcomesMode::Off.emits(k));
            assert_eq!(
                OutcomesMode::Failures.emits(k),
                k != OutcomeKind::AttemptSucceeded
            );
        }
    }

    #[test]
    fn absent_fields_are_left_out_and_batches_round_trip() {
        let mut e = OutcomeEvent::new(OutcomeKind::AttemptFailed, 1_700_000_000_123);
        e.id = Some("e-1".into());
        e.next = Some(Next::Retry);
        e.tier = Some("60s".into());
        let text = String::from_utf8(encode_batch([&e])).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"attempt.failed","at":"2023-11-14T22:13:20.123Z","id":"e-1","next":"retry","tier":"60s"}"#
        );
        assert_eq!(e.at_ms(), Some(1_700_000_000_123));
        let other = OutcomeEvent::new(OutcomeKind::AttemptFailed, 5);
        let body = encode_batch([&e, &other]);
        let mut with_junk = body.clone();
        with_junk.extend_from_slice(b"\n{\"kind\":\"future.kind\",\"at\":\"x\"}\n\n");
        assert_eq!(decode_batch(&body), (vec![e.clone(), other.clone()], 0));
        assert_eq!(decode_batch(&with_junk), (vec![e, other], 1));
    }
}
