//! The retry policy (contract section 5): a pure function from the
//! schedule, the message's retry state, the clock and the attempt's outcome
//! to a [`Decision`]. No I/O happens here, so every row of the default
//! timeline is a unit test.
//!
//! Retry state travels with the message (in AMQP headers, encoded by the
//! broker edge), never in the worker: that is what keeps any number of
//! workers stateless and interchangeable.

use std::time::Duration;

use super::{
    outcome::AttemptOutcome,
    schedule::{RetrySchedule, Tier, Tiers},
};

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
    /// Delivered more often than `WEBHOOK_DELIVERY_LIMIT` allows because
    /// its copies could not be settled: parked by the worker where the
    /// broker does not (a classic work queue). The broker's own parking
    /// carries the same name in `x-death`.
    DeliveryLimit,
}

impl DropReason {
    /// Every reason, for pre-registering metric labels.
    pub const ALL: [DropReason; 6] = [
        DropReason::Expired,
        DropReason::Gone,
        DropReason::Malformed,
        DropReason::TooLarge,
        DropReason::ForbiddenTarget,
        DropReason::DeliveryLimit,
    ];

    /// Its place in [`Self::ALL`], for arrays indexed by reason.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The value of `webhook-drop-reason` and of the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Expired => "expired",
            DropReason::Gone => "gone",
            DropReason::Malformed => "malformed",
            DropReason::TooLarge => "too_large",
            DropReason::ForbiddenTarget => "forbidden_target",
            DropReason::DeliveryLimit => "delivery_limit",
        }
    }
}

/// What to do with a message after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Publish to this retry tier.
    Retry(Tier),
    /// Park in `P.dead` with this reason.
    Drop(DropReason),
}

/// The retry state a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetryState {
    /// Attempts made before this delivery (0 for a fresh event).
    pub attempts: u32,
    /// Unix ms of the first attempt, when one was made.
    pub first_attempt_ms: Option<i64>,
}

impl RetryState {
    /// The number of the attempt about to be made (1 on the first).
    pub fn this_attempt(&self) -> u32 {
        self.attempts.saturating_add(1)
    }
}

/// The retry schedule plus the max age: everything the decision needs
/// besides the message and the clock.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// The tier of each retry, in schedule order.
    steps: Vec<Tier>,
    tiers: Tiers,
    max_age_ms: i64,
}

impl RetryPolicy {
    /// A policy from the configured schedule and max age.
    pub fn new(schedule: &RetrySchedule, max_age: Duration) -> Self {
        let tiers = schedule.tiers();
        let steps = schedule
            .delays()
            .iter()
            .map(|d| tiers.of(*d).expect("every delay is a tier"))
            .collect();
        Self {
            steps,
            tiers,
            max_age_ms: max_age.as_millis().min(i64::MAX as u128) as i64,
        }
    }

    /// The retry tiers, shortest first.
    pub fn tiers(&self) -> &Tiers {
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
        let Some(&nth) = self.steps.get(attempt.saturating_sub(1) as usize) else {
            return Decision::Drop(DropReason::Expired);
        };
        let tier = match retry_after {
            None => nth,
            Some(wanted) => self.tiers.at_least(wanted),
        };
        if self.passes_max_age(tier, first_attempt_ms, now_ms) {
            return Decision::Drop(DropReason::Expired);
        }
        Decision::Retry(tier)
    }

    /// Where a delivery goes that found no slot for its receiver: the
    /// shortest tier, without an attempt, unless that would pass the max
    /// age (then it is dropped as `expired`).
    pub fn defer(&self, first_attempt_ms: i64, now_ms: i64) -> Decision {
        let tier = self.tiers.shortest();
        if self.passes_max_age(tier, first_attempt_ms, now_ms) {
            return Decision::Drop(DropReason::Expired);
        }
        Decision::Retry(tier)
    }

    /// Exact, in i128: saturating i64 sums would compare two clamped
    /// values near `i64::MAX` (a clock or a `webhook-first-attempt-ms`
    /// header there) and let a retry through that falls after the max age.
    fn passes_max_age(&self, tier: Tier, first_attempt_ms: i64, now_ms: i64) -> bool {
        let due = i128::from(now_ms) + self.tiers.delay(tier).as_millis() as i128;
        due > i128::from(first_attempt_ms) + i128::from(self.max_age_ms)
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
            &"60s*3,1h*3,24h*3".parse().unwrap(),
            Duration::from_secs(48 * 3600),
        )
    }

    /// The decision to retry in the tier of `delay`.
    fn retry(p: &RetryPolicy, delay: Duration) -> Decision {
        Decision::Retry(p.tiers().of(delay).expect("a tier of the schedule"))
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
                Decision::Retry(t) if attempt < 8 => now += p.tiers().delay(t).as_millis() as i64,
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
            retry(&p, Duration::from_secs(86400))
        );
        assert_eq!(
            p.decide(7, first, 24 * HOUR + 1, &timeout()),
            Decision::Drop(DropReason::Expired)
        );
    }

    /// Found by `fuzz/` (target `retry_headers`): with the clock and the
    /// first-attempt header at `i64::MAX`, both sides of the max-age check
    /// saturated to `i64::MAX` and a retry an hour later passed a max age
    /// of 30 minutes.
    #[test]
    fn max_age_is_exact_near_the_end_of_the_clock() {
        let p = RetryPolicy::new(&"1h".parse().unwrap(), Duration::from_secs(1800));
        let end = i64::MAX;
        assert_eq!(
            p.decide(1, end, end, &timeout()),
            Decision::Drop(DropReason::Expired)
        );
        assert_eq!(p.defer(end, end), Decision::Drop(DropReason::Expired));
        assert_eq!(
            p.decide(1, end - 1_800_000, end - 3_600_000, &timeout()),
            retry(&p, Duration::from_secs(3600))
        );
    }

    #[test]
    fn exhausted_schedule_expires() {
        let p = RetryPolicy::new(&"200ms*2,500ms".parse().unwrap(), Duration::from_secs(3600));
        assert_eq!(
            p.decide(1, 0, 10, &timeout()),
            retry(&p, Duration::from_millis(200))
        );
        assert_eq!(
            p.decide(2, 0, 10, &timeout()),
            retry(&p, Duration::from_millis(200))
        );
        assert_eq!(
            p.decide(3, 0, 10, &timeout()),
            retry(&p, Duration::from_millis(500))
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
            retry(&p, secs(60))
        );
        assert_eq!(
            p.decide(1, 0, 0, &http(503, Some(secs(61)))),
            retry(&p, secs(3600))
        );
        assert_eq!(
            p.decide(1, 0, 0, &http(503, Some(secs(3600)))),
            retry(&p, secs(3600))
        );
        assert_eq!(
            p.decide(1, 0, 0, &http(429, Some(secs(90000)))),
            retry(&p, secs(86400))
        );
        // Even on the 4th attempt (whose n-th delay is 1 h), Retry-After rules.
        assert_eq!(
            p.decide(4, 0, 0, &http(429, Some(secs(1)))),
            retry(&p, secs(60))
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
        assert_eq!(p.decide(4, 0, 0, &http(500, None)), retry(&p, secs(3600)));
    }
}
