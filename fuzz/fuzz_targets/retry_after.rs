//! A receiver's `Retry-After` (`parse_retry_after`: delay-seconds or an
//! HTTP date, relative to any clock) and the retry tier it selects
//! (`Tiers::at_least`). Never panics; the value agrees with a model
//! (whole seconds as written, a date's distance from now, zero for the
//! past, nothing for anything else); the tier chosen is the shortest at
//! least as long as wanted, or the longest when none is.
#![no_main]

use std::time::{Duration, SystemTime};

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use webhook_worker::domain::{retry_after::parse_retry_after, schedule::RetrySchedule};

#[derive(Arbitrary, Debug)]
enum Value {
    Raw(Vec<u8>),
    Seconds(u64, u8),
    /// An HTTP date this many seconds from now, in one of the three forms.
    Date(i64, u8),
}

fn run(data: &[u8]) -> arbitrary::Result<()> {
    let mut u = Unstructured::new(data);
    let now_secs: u64 = match u.int_in_range(0..=2)? {
        0 => u.arbitrary()?,
        1 => 1_700_000_000 + u.int_in_range(0..=100_000_000)?,
        _ => *u.choose(&[0, 253_402_300_799, 253_402_300_800])?,
    };
    let Some(now) = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(now_secs)) else {
        return Ok(());
    };
    let value: Value = u.arbitrary()?;
    let bytes: Vec<u8> = match &value {
        Value::Raw(b) => b.clone(),
        Value::Seconds(n, pad) => {
            let ws = [" ", "\t", "", ""][usize::from(pad % 4)];
            format!("{ws}{n}{ws}").into_bytes()
        }
        Value::Date(offset, form) => {
            let Some(at) = (if *offset >= 0 {
                now.checked_add(Duration::from_secs(offset.unsigned_abs()))
            } else {
                now.checked_sub(Duration::from_secs(offset.unsigned_abs()))
            }) else {
                return Ok(());
            };
            let Ok(since) = at.duration_since(SystemTime::UNIX_EPOCH) else {
                return Ok(());
            };
            // httpdate writes years 1970-9999 only.
            if since.as_secs() > 253_402_300_799 {
                return Ok(());
            }
            let imf = httpdate::fmt_http_date(at);
            let text = match form % 3 {
                0 => imf,
                // The obsolete forms, rebuilt from the IMF-fixdate.
                1 => {
                    let p: Vec<&str> = imf.split(' ').collect();
                    let day = match p[0] {
                        "Mon," => "Monday",
                        "Tue," => "Tuesday",
                        "Wed," => "Wednesday",
                        "Thu," => "Thursday",
                        "Fri," => "Friday",
                        "Sat," => "Saturday",
                        _ => "Sunday",
                    };
                    let yy = &p[3][2..];
                    // Two-digit years read as 1970-2069.
                    if !(1970..=2069).contains(&p[3].parse::<u16>().unwrap()) {
                        return Ok(());
                    }
                    format!("{day}, {}-{}-{yy} {} GMT", p[1], p[2], p[4])
                }
                _ => {
                    let p: Vec<&str> = imf.split(' ').collect();
                    let day: u8 = p[1].parse().unwrap();
                    format!("{} {} {day:>2} {} {}", &p[0][..3], p[2], p[4], p[3])
                }
            };
            text.into_bytes()
        }
    };

    let got = parse_retry_after(&bytes, now);

    // The model.
    let want = match std::str::from_utf8(&bytes) {
        Err(_) => None,
        Ok(text) => {
            let t = text.trim_matches([' ', '\t']);
            if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                t.parse::<u64>().ok().map(Duration::from_secs)
            } else {
                httpdate::parse_http_date(t)
                    .ok()
                    .map(|at| at.duration_since(now).unwrap_or(Duration::ZERO))
            }
        }
    };
    // Past the models's grammar (other Unicode whitespace, a `+` sign) the
    // parser may be more lenient, but never reads a different value.
    match (got, want) {
        (g, w) if g == w => {}
        (Some(_), None) => {}
        (g, w) => panic!(
            "Retry-After {:?}: got {g:?}, the model says {w:?}",
            String::from_utf8_lossy(&bytes)
        ),
    }
    match &value {
        Value::Seconds(n, _) => assert_eq!(got, Some(Duration::from_secs(*n))),
        Value::Date(offset, _) => {
            assert_eq!(
                got,
                Some(Duration::from_secs((*offset).max(0) as u64)),
                "{:?}",
                String::from_utf8_lossy(&bytes)
            )
        }
        Value::Raw(_) => {}
    }

    // The tier it selects, for any schedule.
    let Some(wanted) = got else { return Ok(()) };
    let n = u.int_in_range(1..=8)?;
    let mut delays = Vec::new();
    for _ in 0..n {
        let ms = match u.int_in_range(0..=1)? {
            0 => u.int_in_range(1..=315_360_000_000u64)?,
            _ => 1000 * u.int_in_range(1..=100_000u64)?,
        };
        delays.push(Duration::from_millis(ms));
    }
    let tiers = RetrySchedule::new(delays).tiers();
    let tier = tiers.at_least(wanted);
    let delay = tiers.delay(tier);
    let longest = tiers.iter().last().unwrap();
    if delay < wanted {
        assert_eq!(
            (tier, delay),
            longest,
            "tier {delay:?} is shorter than {wanted:?}"
        );
    }
    for (t, d) in tiers.iter() {
        if d >= wanted {
            assert!(
                t >= tier,
                "tier {d:?} is shorter than the chosen {delay:?} and long enough"
            );
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
