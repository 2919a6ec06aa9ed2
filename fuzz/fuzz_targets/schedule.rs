//! The operator's duration grammar: `RetrySchedule::from_str` and the
//! `domain::duration` parsers over any string. Never panics; every error
//! has a text; what parses obeys the grammar's limits (1..=1000 delays of
//! whole milliseconds, 1 ms to 10 years), agrees with humantime, and prints
//! back (Display, `format_delay`) to text that parses to the same value.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use webhook_worker::domain::{
    duration::{MAX_TTL, format_delay, parse_duration, parse_positive_duration, parse_ttl},
    schedule::{MAX_RETRIES, RetrySchedule},
};

/// Whether humantime can read back a printed delay: it refuses a term of
/// more than u64::MAX nanoseconds (`18446744073710ms`), see
/// tests/properties/schedule.rs `schedule_grammar_matches_its_model`.
fn readable(d: Duration) -> bool {
    d.as_nanos() <= u128::from(u64::MAX)
}

fn check_schedule(s: &str) {
    match s.parse::<RetrySchedule>() {
        Ok(schedule) => {
            let delays = schedule.delays();
            assert!(!delays.is_empty());
            assert!(
                delays.len() as u64 <= MAX_RETRIES,
                "{} delays",
                delays.len()
            );
            for d in delays {
                assert!(!d.is_zero() && *d <= MAX_TTL, "delay {d:?} from {s:?}");
                assert_eq!(d.subsec_nanos() % 1_000_000, 0, "delay {d:?} from {s:?}");
            }
            let tiers = schedule.tiers();
            let mut want: Vec<Duration> = delays.to_vec();
            want.sort();
            want.dedup();
            let got: Vec<Duration> = tiers.iter().map(|(_, d)| d).collect();
            assert_eq!(got, want);
            for (tier, d) in tiers.iter() {
                assert_eq!(tiers.of(d), Some(tier));
                assert_eq!(parse_ttl(&tiers.suffix(tier)), Ok(d), "suffix of {d:?}");
            }
            let shown = schedule.to_string();
            if delays.iter().copied().all(readable) {
                assert_eq!(
                    shown.parse::<RetrySchedule>().as_ref(),
                    Ok(&schedule),
                    "{s:?} shows as {shown:?}"
                );
            }
        }
        Err(e) => assert!(!e.to_string().trim().is_empty(), "{s:?}: {e:?}"),
    }
}

fn check_durations(s: &str) {
    match parse_duration(s) {
        Ok(d) => {
            assert_eq!(d.subsec_nanos() % 1_000_000, 0, "{s:?} -> {d:?}");
            assert!(d.as_millis() <= i64::MAX as u128, "{s:?} -> {d:?}");
            assert_eq!(Ok(d), humantime::parse_duration(s.trim()).map_err(|_| ()));
            assert_eq!(
                parse_positive_duration(s).ok(),
                Some(d).filter(|d| !d.is_zero())
            );
            assert_eq!(
                parse_ttl(s).ok(),
                Some(d).filter(|d| !d.is_zero() && *d <= MAX_TTL)
            );
            if readable(d) {
                let shown = format_delay(d);
                assert_eq!(parse_duration(&shown), Ok(d), "{s:?} shows as {shown:?}");
            }
        }
        Err(e) => {
            assert!(!e.to_string().trim().is_empty());
            assert!(parse_positive_duration(s).is_err());
            assert!(parse_ttl(s).is_err());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    check_schedule(s);
    check_durations(s);
});
