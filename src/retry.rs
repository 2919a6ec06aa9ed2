//! The retry policy (contract section 5): a pure function from the schedule,
//! the message's retry headers, the clock and the attempt's outcome to a
//! [`Decision`]. No I/O happens here, so every row of the default timeline is
//! a unit test.
//!
//! Retry state travels with the message in AMQP headers, never in the
//! worker: `webhook-attempts` (attempts made), `webhook-first-attempt-ms`
//! (unix ms of the first attempt) and `webhook-last-error`. That is what
//! keeps any number of workers stateless and interchangeable.

use std::time::Duration;

use lapin::types::{AMQPValue, FieldTable, ShortString};

use crate::{config::RetrySchedule, delivery::AttemptOutcome};

/// Header: attempts made so far (an AMQP integer).
pub const HEADER_ATTEMPTS: &str = "webhook-attempts";
/// Header: unix milliseconds of the first attempt (an AMQP integer).
pub const HEADER_FIRST_ATTEMPT_MS: &str = "webhook-first-attempt-ms";
/// Header: short text of the last failure.
pub const HEADER_LAST_ERROR: &str = "webhook-last-error";
/// Header: why the message was parked in `P.dead`.
pub const HEADER_DROP_REASON: &str = "webhook-drop-reason";

/// Longest `webhook-last-error`, in characters: headers are not a log.
pub const MAX_LAST_ERROR_CHARS: usize = 256;

/// Why a message was parked in `P.dead`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// No retry left in the schedule, or the next would pass the max age.
    Expired,
    /// The receiver answered `410 Gone`.
    Gone,
    /// The message breaks a rule of contract section 3.
    Malformed,
    /// The message is larger than `WEBHOOK_MAX_MESSAGE_BYTES`.
    TooLarge,
    /// The URL resolves to a private address while those are not allowed.
    ForbiddenTarget,
}

impl DropReason {
    /// Every reason, for pre-registering metric labels.
    pub const ALL: [DropReason; 5] = [
        DropReason::Expired,
        DropReason::Gone,
        DropReason::Malformed,
        DropReason::TooLarge,
        DropReason::ForbiddenTarget,
    ];

    /// The value of `webhook-drop-reason` and of the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Expired => "expired",
            DropReason::Gone => "gone",
            DropReason::Malformed => "malformed",
            DropReason::TooLarge => "too_large",
            DropReason::ForbiddenTarget => "forbidden_target",
        }
    }
}

/// What to do with a message after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Publish to the retry tier with this delay.
    Retry(Duration),
    /// Park in `P.dead` with this reason.
    Drop(DropReason),
}

/// The retry state a message carries in its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetryState {
    /// Attempts made before this delivery (0 for a fresh event).
    pub attempts: u32,
    /// Unix ms of the first attempt, when one was made.
    pub first_attempt_ms: Option<i64>,
}

impl RetryState {
    /// Reads the retry headers. Absent headers mean a fresh event; a header
    /// of the wrong type is an error (the message is then malformed).
    pub fn from_headers(headers: Option<&FieldTable>) -> Result<Self, String> {
        let Some(h) = headers else {
            return Ok(Self::default());
        };
        let attempts = match h.inner().get(HEADER_ATTEMPTS) {
            None => 0,
            Some(v) => as_integer(v)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    format!("header {HEADER_ATTEMPTS} is not a non-negative AMQP integer")
                })?,
        };
        let first_attempt_ms = match h.inner().get(HEADER_FIRST_ATTEMPT_MS) {
            None => None,
            Some(v) => Some(as_integer(v).filter(|n| *n >= 0).ok_or_else(|| {
                format!("header {HEADER_FIRST_ATTEMPT_MS} is not a non-negative AMQP integer")
            })?),
        };
        Ok(Self {
            attempts,
            first_attempt_ms,
        })
    }

    /// The number of the attempt about to be made (1 on the first).
    pub fn this_attempt(&self) -> u32 {
        self.attempts.saturating_add(1)
    }
}

/// Any AMQP integer type, widened.
fn as_integer(v: &AMQPValue) -> Option<i64> {
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
    drop_reason: Option<DropReason>,
) -> FieldTable {
    let mut table = headers.cloned().unwrap_or_default();
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
    if let Some(reason) = drop_reason {
        table.insert(
            HEADER_DROP_REASON.into(),
            AMQPValue::LongString(reason.as_str().into()),
        );
    }
    table
}

/// The headers of a replayed message: retry state cleared so the schedule
/// and max age start over, everything the producer set kept.
pub fn without_retry_headers(headers: Option<&FieldTable>) -> FieldTable {
    let mut map = headers.map(|h| h.inner().clone()).unwrap_or_default();
    for name in [
        HEADER_ATTEMPTS,
        HEADER_FIRST_ATTEMPT_MS,
        HEADER_LAST_ERROR,
        HEADER_DROP_REASON,
        "x-death",
    ] {
        map.remove(&ShortString::from(name));
    }
    map.into()
}

/// The retry schedule plus the max age: everything the decision needs
/// besides the message and the clock.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    schedule: RetrySchedule,
    tiers: Vec<Duration>,
    max_age_ms: i64,
}

impl RetryPolicy {
    /// A policy from the configured schedule and max age.
    pub fn new(schedule: RetrySchedule, max_age: Duration) -> Self {
        let tiers = schedule.tiers();
        Self {
            schedule,
            tiers,
            max_age_ms: max_age.as_millis().min(i64::MAX as u128) as i64,
        }
    }

    /// `WEBHOOK_MAX_AGE` in milliseconds.
    pub fn max_age_ms(&self) -> i64 {
        self.max_age_ms
    }

    /// The distinct delays, ascending: one retry queue each.
    pub fn tiers(&self) -> &[Duration] {
        &self.tiers
    }

    /// Decides what follows attempt number `attempt` (1-based) of a message
    /// whose first attempt was at `first_attempt_ms`, finished at `now_ms`.
    ///
    /// `410` drops as `gone` and a forbidden target as `forbidden_target`,
    /// whatever the schedule; any other failure takes the `attempt`-th delay
    /// (or the tier `Retry-After` asks for) unless the schedule is exhausted
    /// or the retry would fall after the max age: then `expired`.
    pub fn decide(
        &self,
        attempt: u32,
        first_attempt_ms: i64,
        now_ms: i64,
        outcome: &AttemptOutcome,
    ) -> Decision {
        let retry_after = match outcome {
            AttemptOutcome::Success { .. } => unreachable!("decide is only asked about failures"),
            AttemptOutcome::Gone => return Decision::Drop(DropReason::Gone),
            AttemptOutcome::ForbiddenTarget(_) => {
                return Decision::Drop(DropReason::ForbiddenTarget);
            }
            AttemptOutcome::HttpError { retry_after, .. } => *retry_after,
            AttemptOutcome::Timeout | AttemptOutcome::ConnectError(_) => None,
        };
        let Some(&nth) = self
            .schedule
            .delays()
            .get(attempt.saturating_sub(1) as usize)
        else {
            return Decision::Drop(DropReason::Expired);
        };
        let delay = match retry_after {
            None => nth,
            Some(wanted) => self.tier_at_least(wanted),
        };
        let due = now_ms.saturating_add(delay.as_millis() as i64);
        if due > first_attempt_ms.saturating_add(self.max_age_ms) {
            return Decision::Drop(DropReason::Expired);
        }
        Decision::Retry(delay)
    }

    /// The shortest tier at least `wanted` long, else the longest tier.
    pub fn tier_at_least(&self, wanted: Duration) -> Duration {
        self.tiers
            .iter()
            .copied()
            .find(|t| *t >= wanted)
            .unwrap_or(*self.tiers.last().expect("schedule is never empty"))
    }
}

/// The `<delay>` suffix of a retry queue: whole hours, else whole seconds,
/// else milliseconds (`1h`, `24h`, `60s`, `90s`, `500ms`).
pub fn tier_suffix(delay: Duration) -> String {
    let ms = delay.as_millis();
    if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;
    const MIN: i64 = 60 * S;
    const HOUR: i64 = 60 * MIN;

    fn default_policy() -> RetryPolicy {
        RetryPolicy::new(
            "60s*3,1h*3,24h*3".parse().unwrap(),
            Duration::from_secs(48 * 3600),
        )
    }

    fn timeout() -> AttemptOutcome {
        AttemptOutcome::Timeout
    }

    fn http(status: u16, retry_after: Option<Duration>) -> AttemptOutcome {
        AttemptOutcome::HttpError {
            status,
            retry_after,
        }
    }

    /// The contract's default timeline, attempt by attempt: attempts at 0,
    /// 1 min, 2 min, 3 min, 1 h 3 min, 2 h 3 min, 3 h 3 min and 27 h 3 min;
    /// the 8th failing drops as expired because the 9th would fall at
    /// 51 h 3 min, after 48 h.
    #[test]
    fn default_timeline() {
        let p = default_policy();
        let first = 1_700_000_000_000;
        let expected_attempt_times = [
            0,
            MIN,
            2 * MIN,
            3 * MIN,
            HOUR + 3 * MIN,
            2 * HOUR + 3 * MIN,
            3 * HOUR + 3 * MIN,
            27 * HOUR + 3 * MIN,
        ];
        let mut now = first;
        for (i, at) in expected_attempt_times.iter().enumerate() {
            let attempt = i as u32 + 1;
            assert_eq!(now - first, *at, "attempt {attempt} time");
            match p.decide(attempt, first, now, &timeout()) {
                Decision::Retry(d) if attempt < 8 => now += d.as_millis() as i64,
                Decision::Drop(DropReason::Expired) if attempt == 8 => {}
                other => panic!("attempt {attempt}: unexpected {other:?}"),
            }
        }
        // Failing the 8th attempt (at 27 h 3 min) drops it.
        assert_eq!(
            p.decide(8, first, first + 27 * HOUR + 3 * MIN, &timeout()),
            Decision::Drop(DropReason::Expired)
        );
    }

    #[test]
    fn time_spent_in_attempts_counts_against_max_age() {
        let p = default_policy();
        let first = 0;
        // 7th attempt failing just before 24 h + its delay would pass 48 h.
        assert_eq!(
            p.decide(7, first, 24 * HOUR, &timeout()),
            Decision::Retry(Duration::from_secs(86400))
        );
        assert_eq!(
            p.decide(7, first, 24 * HOUR + 1, &timeout()),
            Decision::Drop(DropReason::Expired)
        );
    }

    #[test]
    fn exhausted_schedule_expires() {
        let p = RetryPolicy::new("200ms*2,500ms".parse().unwrap(), Duration::from_secs(3600));
        assert_eq!(
            p.decide(1, 0, 10, &timeout()),
            Decision::Retry(Duration::from_millis(200))
        );
        assert_eq!(
            p.decide(2, 0, 10, &timeout()),
            Decision::Retry(Duration::from_millis(200))
        );
        assert_eq!(
            p.decide(3, 0, 10, &timeout()),
            Decision::Retry(Duration::from_millis(500))
        );
        assert_eq!(
            p.decide(4, 0, 10, &timeout()),
            Decision::Drop(DropReason::Expired)
        );
        assert_eq!(
            p.decide(u32::MAX, 0, 10, &timeout()),
            Decision::Drop(DropReason::Expired)
        );
    }

    #[test]
    fn gone_and_forbidden_drop_at_once() {
        let p = default_policy();
        assert_eq!(
            p.decide(1, 0, 0, &AttemptOutcome::Gone),
            Decision::Drop(DropReason::Gone)
        );
        assert_eq!(
            p.decide(
                1,
                0,
                0,
                &AttemptOutcome::ForbiddenTarget("127.0.0.1".into())
            ),
            Decision::Drop(DropReason::ForbiddenTarget)
        );
    }

    #[test]
    fn retry_after_picks_the_shortest_tier_at_least_that_long() {
        let p = default_policy();
        let secs = Duration::from_secs;
        assert_eq!(
            p.decide(1, 0, 0, &http(429, Some(secs(5)))),
            Decision::Retry(secs(60))
        );
        assert_eq!(
            p.decide(1, 0, 0, &http(503, Some(secs(61)))),
            Decision::Retry(secs(3600))
        );
        assert_eq!(
            p.decide(1, 0, 0, &http(503, Some(secs(3600)))),
            Decision::Retry(secs(3600))
        );
        assert_eq!(
            p.decide(1, 0, 0, &http(429, Some(secs(90000)))),
            Decision::Retry(secs(86400))
        );
        // Even on the 4th attempt (whose n-th delay is 1 h), Retry-After rules.
        assert_eq!(
            p.decide(4, 0, 0, &http(429, Some(secs(1)))),
            Decision::Retry(secs(60))
        );
        // Max age still applies.
        assert_eq!(
            p.decide(1, 0, 40 * HOUR, &http(429, Some(secs(86400)))),
            Decision::Drop(DropReason::Expired)
        );
        // Schedule exhaustion still applies.
        assert_eq!(
            p.decide(10, 0, 0, &http(429, Some(secs(1)))),
            Decision::Drop(DropReason::Expired)
        );
        // Other statuses take the n-th delay.
        assert_eq!(
            p.decide(4, 0, 0, &http(500, None)),
            Decision::Retry(secs(3600))
        );
    }

    #[test]
    fn suffixes() {
        let ms = Duration::from_millis;
        assert_eq!(tier_suffix(ms(60_000)), "60s");
        assert_eq!(tier_suffix(ms(3_600_000)), "1h");
        assert_eq!(tier_suffix(ms(86_400_000)), "24h");
        assert_eq!(tier_suffix(ms(604_800_000)), "168h");
        assert_eq!(tier_suffix(ms(90_000)), "90s");
        assert_eq!(tier_suffix(ms(7_200_000 + 1000)), "7201s");
        assert_eq!(tier_suffix(ms(500)), "500ms");
        assert_eq!(tier_suffix(ms(1500)), "1500ms");
    }

    #[test]
    fn headers_round_trip() {
        assert_eq!(
            RetryState::from_headers(None).unwrap(),
            RetryState::default()
        );
        let mut producer = FieldTable::default();
        producer.insert("trace".into(), AMQPValue::LongString("t1".into()));
        let h = with_retry_headers(
            Some(&producer),
            3,
            Some(1234),
            Some("HTTP 500"),
            Some(DropReason::Expired),
        );
        let state = RetryState::from_headers(Some(&h)).unwrap();
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
            assert_eq!(RetryState::from_headers(Some(&h)).unwrap().attempts, 2);
        }
        for v in [
            AMQPValue::LongString("2".into()),
            AMQPValue::LongInt(-1),
            AMQPValue::Double(2.0),
        ] {
            let mut h = FieldTable::default();
            h.insert(HEADER_ATTEMPTS.into(), v);
            assert!(RetryState::from_headers(Some(&h)).is_err());
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
