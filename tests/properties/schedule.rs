//! Properties of the retry schedule grammar (`RetrySchedule::from_str`,
//! `parse_duration`) over edge durations and counts, against a model.

use std::time::Duration;

use proptest::{collection::vec, prelude::*, sample::select, test_runner::TestCaseError};
use webhook_worker::domain::{
    duration::{MAX_TTL, parse_duration, parse_positive_duration, parse_ttl},
    schedule::{MAX_RETRIES, RetrySchedule},
};

use crate::{cfg, json::*};

fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => string_of(1usize..5, DIGITS),
        1 => string_of(15usize..31, DIGITS),
        2 => select(vec![
            "0", "00", "1", "60", "-1", "-0", "+5", "1.5", ".5", "1_000", "1,5", "9223372036854775807",
            "18446744073709551615", "18446744073709551616", "584542046091", "584554049253", "213503982334601",
            "9007199254740993", "١٢", "６０", "²", "٣", "0x10", "1e3", "", " 1 ", "\u{a0}1", "1\u{3000}",
        ])
        .prop_map(String::from),
    ]
}

fn unit_text() -> impl Strategy<Value = String> {
    select(vec![
        "", "ms", "msec", "millis", "s", "sec", "secs", "second", "seconds", "m", "min", "mins",
        "minute", "h", "hr", "hrs", "hour", "hours", "d", "day", "days", "w", "week", "weeks", "M",
        "month", "months", "y", "year", "years", "ns", "nsec", "us", "usec", "µs", "μs", " s", "S",
        "H", "MS", "分", "\u{0}",
    ])
    .prop_map(String::from)
}

fn duration_text() -> impl Strategy<Value = String> {
    vec(
        (
            (number_text(), unit_text()),
            select(vec!["", " ", "  ", "\t", "\n"]),
        ),
        1..4,
    )
    .prop_map(|parts| {
        let mut s = String::new();
        for (i, ((n, u), sep)) in parts.iter().enumerate() {
            if i > 0 {
                s.push_str(sep);
            }
            s.push_str(n);
            s.push_str(u);
        }
        s
    })
}

fn count_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => string_of(1usize..4, DIGITS),
        2 => select(vec![
            "0", "1", "3", "999", "1000", "1001", "-1", "-0", "+3", "٣", "３", "1e3", "1.0", "", " ", "3 ", " 3",
            "4294967296", "9223372036854775807", "18446744073709551615", "18446744073709551616", "*", "3*2",
        ])
        .prop_map(String::from),
    ]
}

fn space() -> impl Strategy<Value = &'static str> {
    prop_oneof![6 => Just(""), 1 => Just(" "), 1 => Just("\t"), 1 => Just("\u{3000}"), 1 => Just("\u{a0}"), 1 => Just("\n")]
}

fn schedule_text() -> impl Strategy<Value = String> {
    let entry = (
        space(),
        duration_text(),
        space(),
        proptest::option::of((space(), count_text())),
        space(),
    )
        .prop_map(|(a, d, b, c, e)| match c {
            Some((s, c)) => format!("{a}{d}{b}*{s}{c}{e}"),
            None => format!("{a}{d}{b}{e}"),
        });
    (
        vec(entry, 1..6),
        select(vec!["", ",", " ,", "**", ",,"]),
        any::<bool>(),
    )
        .prop_map(|(entries, junk, front)| {
            let s = entries.join(",");
            if front {
                format!("{junk}{s}")
            } else {
                format!("{s}{junk}")
            }
        })
}

/// The grammar's model: `Ok(n)` retries, or `Err` for a refused schedule.
fn schedule_model(s: &str) -> Result<u128, ()> {
    let mut total: u128 = 0;
    for entry in s.split(',') {
        let entry = entry.trim();
        if entry.is_empty() {
            return Err(());
        }
        let (d, count) = match entry.split_once('*') {
            Some((d, c)) => (d, c.trim().parse::<u64>().map_err(|_| ())?),
            None => (entry, 1),
        };
        if count == 0 || parse_ttl(d).is_err() {
            return Err(());
        }
        total += u128::from(count);
        if total > u128::from(MAX_RETRIES) {
            return Err(());
        }
    }
    Ok(total)
}

fn check_schedule(s: &str) -> Result<(), TestCaseError> {
    let parsed = s.parse::<RetrySchedule>();
    match (&parsed, schedule_model(s)) {
        (Ok(sch), Ok(n)) => {
            let delays = sch.delays();
            prop_assert_eq!(delays.len() as u128, n);
            prop_assert!(!delays.is_empty() && delays.len() as u64 <= MAX_RETRIES);
            for d in delays {
                prop_assert!(!d.is_zero(), "zero delay from {:?}", s);
                prop_assert_eq!(d.subsec_nanos() % 1_000_000, 0, "sub-ms delay from {:?}", s);
                prop_assert!(*d <= MAX_TTL, "delay {:?} from {:?}", d, s);
            }
            let tiers: Vec<Duration> = sch.tiers().iter().map(|(_, d)| d).collect();
            prop_assert!(tiers.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(delays.iter().all(|d| tiers.contains(d)));
            // What the worker logs reads back as the same schedule, when
            // humantime can read it: it refuses a term of more than u64::MAX
            // ns (`18446744073710ms`), and the display writes ms whole.
            let shown = sch.to_string();
            let again = shown.parse::<RetrySchedule>();
            let readable = delays
                .iter()
                .all(|d| d.as_nanos() <= u128::from(u64::MAX) || d.subsec_millis() == 0);
            if readable {
                prop_assert!(
                    again.as_ref() == Ok(sch),
                    "{:?} shows as {:?}, which reads back as {:?}",
                    s,
                    shown,
                    again
                );
            }
        }
        (Err(e), Err(())) => prop_assert!(!e.to_string().trim().is_empty()),
        (got, model) => {
            return Err(TestCaseError::fail(format!(
                "schedule {s:?}: got {got:?}, model says {model:?}"
            )));
        }
    }
    Ok(())
}

fn check_duration(s: &str) -> Result<(), TestCaseError> {
    match parse_duration(s) {
        Ok(d) => {
            prop_assert_eq!(d.subsec_nanos() % 1_000_000, 0);
            prop_assert!(d.as_millis() <= i64::MAX as u128);
            prop_assert_eq!(Ok(d), humantime::parse_duration(s.trim()).map_err(|_| ()));
            prop_assert_eq!(parse_positive_duration(s).is_ok(), !d.is_zero());
        }
        Err(e) => {
            prop_assert!(!e.to_string().trim().is_empty());
            prop_assert!(parse_positive_duration(s).is_err());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cfg(15_000))]

    /// Schedules from the grammar's edges: huge, zero and negative counts,
    /// unicode digits, odd whitespace, overflowing durations.
    #[test]
    fn schedule_grammar_matches_its_model(s in schedule_text()) {
        check_schedule(&s)?;
    }

    /// `parse_duration` on the same edge durations.
    #[test]
    fn durations_are_whole_milliseconds_or_refused(s in duration_text()) {
        check_duration(&s)?;
    }
}

proptest! {
    #![proptest_config(cfg(6_000))]

    /// Any string at all.
    #[test]
    fn schedule_and_duration_survive_any_string(s in prop_oneof![
        any_string(24),
        vec(select(vec!['0', '1', '9', ' ', ',', '*', 'm', 's', 'h', 'd', 'y', '.', '-', '+', '\t', '٣', '６']), 0..24)
            .prop_map(|v| v.into_iter().collect::<String>()),
    ]) {
        check_schedule(&s)?;
        check_duration(&s)?;
    }
}

/// Found by `schedule_grammar_matches_its_model`: a count near `u64::MAX`
/// after an earlier entry overflowed the running total (a panic in debug
/// builds; in release the total wrapped and the expansion tried to allocate
/// `u64::MAX` delays).
#[test]
fn schedule_count_overflow_is_refused() {
    for s in [
        "1ms,1ms*18446744073709551615",
        "60s*3,1h*18446744073709551614",
        "1s*1000,1s*18446744073709551615",
    ] {
        assert!(s.parse::<RetrySchedule>().is_err(), "{s:?} must be refused");
    }
}
