//! Properties of the retry decision: `RetryPolicy::decide` over any
//! attempt, clock and outcome, against a model; a retry is always one of
//! the schedule's tiers.

use std::time::Duration;

use proptest::{collection::vec, prelude::*, sample::select};
use webhook_worker::domain::{
    duration::MAX_TTL,
    outcome::AttemptOutcome,
    policy::{Decision, DropReason, RetryPolicy},
    schedule::RetrySchedule,
};

use crate::cfg;

/// A decision as the model states it: the retry's delay, not its tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Modelled {
    Retry(Duration),
    Drop(DropReason),
}

fn modelled(policy: &RetryPolicy, d: Decision) -> Modelled {
    match d {
        Decision::Retry(tier) => Modelled::Retry(policy.tiers().delay(tier)),
        Decision::Drop(reason) => Modelled::Drop(reason),
    }
}

/// The distinct delays of a schedule, ascending: the independent model of
/// its tiers.
fn model_tiers(delays: &[Duration]) -> Vec<Duration> {
    let mut t = delays.to_vec();
    t.sort();
    t.dedup();
    t
}

fn policy_tiers(policy: &RetryPolicy) -> Vec<Duration> {
    policy.tiers().iter().map(|(_, d)| d).collect()
}

/// Delays a parsed schedule can hold: whole ms, 1 ms ..= the 10-year TTL
/// limit.
fn schedule_delay() -> impl Strategy<Value = Duration> {
    const MAX_MS: u64 = MAX_TTL.as_millis() as u64;
    prop_oneof![
        1u64..=1000,
        1u64..=100_000_000,
        1u64..=MAX_MS,
        select(vec![1u64, 60_000, 3_600_000, 86_400_000, MAX_MS]),
    ]
    .prop_map(Duration::from_millis)
}

fn parsed_schedule() -> impl Strategy<Value = RetrySchedule> {
    prop_oneof![
        vec(schedule_delay(), 1..20).prop_map(RetrySchedule::new),
        vec((schedule_delay(), 1u64..5), 1..5).prop_map(|entries| {
            // humantime reads at most u64::MAX ns per unit term: write the
            // seconds and the milliseconds apart.
            let text: Vec<String> = entries
                .iter()
                .map(|(d, n)| format!("{}s {}ms*{n}", d.as_secs(), d.subsec_millis()))
                .collect();
            text.join(",")
                .parse()
                .expect("a schedule of whole positive ms")
        }),
        select(vec![
            "60s*3,1h*3,24h*3",
            "1ms",
            "200ms*2,500ms",
            "24h,1s,1h,1s"
        ])
        .prop_map(|s| s.parse().unwrap()),
    ]
}

fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        schedule_delay(),
        select(vec![
            Duration::ZERO,
            Duration::MAX,
            Duration::from_nanos(1),
            Duration::from_millis(i64::MAX as u64 + 1)
        ]),
    ]
}

fn failure() -> impl Strategy<Value = AttemptOutcome> {
    prop_oneof![
        Just(AttemptOutcome::Timeout),
        ".{0,8}".prop_map(AttemptOutcome::ConnectError),
        (any::<u16>(), proptest::option::of(any_duration())).prop_map(|(status, retry_after)| {
            AttemptOutcome::HttpError {
                status,
                retry_after,
            }
        }),
        Just(AttemptOutcome::Gone),
        ".{0,8}".prop_map(AttemptOutcome::ForbiddenTarget),
    ]
}

fn any_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        select(vec![0, -1, 1, i64::MIN, i64::MAX, 1_700_000_000_000]),
        -1_000_000i64..1_000_000
    ]
}

fn any_attempt() -> impl Strategy<Value = u32> {
    prop_oneof![any::<u32>(), 0u32..25, Just(u32::MAX)]
}

proptest! {
    #![proptest_config(cfg(12_000))]

    /// Against the model of contract section 5, for schedules the grammar
    /// can produce: any attempt number, any clock, any failure.
    #[test]
    fn decide_matches_the_model(
        schedule in parsed_schedule(),
        max_age in any_duration(),
        attempt in any_attempt(),
        first in any_i64(),
        now in any_i64(),
        outcome in failure(),
    ) {
        let policy = RetryPolicy::new(&schedule, max_age);
        let got = modelled(&policy, policy.decide(attempt, first, now, &outcome));
        let delays = schedule.delays();
        let tiers = model_tiers(delays);
        prop_assert_eq!(policy_tiers(&policy), tiers.clone());
        let retry_after = match &outcome {
            AttemptOutcome::Gone => { prop_assert_eq!(got, Modelled::Drop(DropReason::Gone)); return Ok(()); }
            AttemptOutcome::ForbiddenTarget(_) => {
                prop_assert_eq!(got, Modelled::Drop(DropReason::ForbiddenTarget));
                return Ok(());
            }
            AttemptOutcome::HttpError { retry_after, .. } => *retry_after,
            _ => None,
        };
        let want = match delays.get(attempt.saturating_sub(1) as usize) {
            None => Modelled::Drop(DropReason::Expired),
            Some(&nth) => {
                let delay = match retry_after {
                    None => nth,
                    Some(w) => tiers.iter().copied().find(|t| *t >= w).unwrap_or(*tiers.last().unwrap()),
                };
                let max_age_ms = max_age.as_millis().min(i64::MAX as u128) as i128;
                // Exact: no saturation near the end of the clock.
                let due = i128::from(now) + delay.as_millis() as i128;
                let limit = i128::from(first) + max_age_ms;
                if due > limit { Modelled::Drop(DropReason::Expired) } else { Modelled::Retry(delay) }
            }
        };
        prop_assert_eq!(got, want);
        if let Modelled::Retry(d) = got {
            prop_assert!(tiers.contains(&d), "retry delay {:?} is not a tier of {:?}", d, tiers);
        }
    }
}

proptest! {
    #![proptest_config(cfg(5_000))]

    /// Any schedule at all (including ones the grammar refuses: empty, zero,
    /// sub-millisecond, longer than i64 ms): never a panic, and a retry is
    /// always one of the tiers.
    #[test]
    fn decide_never_panics_for_any_schedule(
        delays in vec(any_duration(), 0..12),
        max_age in any_duration(),
        attempt in any_attempt(),
        first in any_i64(),
        now in any_i64(),
        outcome in failure(),
    ) {
        let policy = RetryPolicy::new(&RetrySchedule::new(delays.clone()), max_age);
        if let Modelled::Retry(d) = modelled(&policy, policy.decide(attempt, first, now, &outcome)) {
            prop_assert!(policy_tiers(&policy).contains(&d));
            prop_assert!(!delays.is_empty());
        }
        if !delays.is_empty() {
            let w = policy.tiers().delay(policy.tiers().at_least(max_age));
            prop_assert!(policy_tiers(&policy).contains(&w));
        }
    }
}
