//! Durations as operators write them (`500ms`, `60s`, `1h`, `7d`): the
//! humantime forms, restricted to whole milliseconds because the broker's
//! TTLs are whole milliseconds.

use std::time::Duration;

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// A duration not in the humantime forms (or one too large to be a
    /// number of milliseconds).
    #[error("invalid duration '{0}' (use forms like 500ms, 60s, 1h, 7d)")]
    Invalid(String),
    /// A duration of zero where a positive one is needed.
    #[error("duration must be greater than zero")]
    Zero,
    /// A duration that is not a whole number of milliseconds.
    #[error("duration '{0}' is not a whole number of milliseconds")]
    SubMillisecond(String),
    /// A queue TTL longer than the broker accepts.
    #[error("duration '{0}' is longer than the broker's limit for queue TTLs (10 years)")]
    TooLong(String),
}

/// Longest queue TTL RabbitMQ accepts (`x-message-ttl`): 10 years.
pub const MAX_TTL: Duration = Duration::from_millis(315_360_000_000);

/// Parses a humantime duration, refusing sub-millisecond precision.
///
/// The terms are read here rather than by `humantime::parse_duration`,
/// which panics on some sums near `u64::MAX` seconds
/// (`18446744073709551615s1000ms`): this reader keeps humantime's units,
/// its arithmetic and its limits, checks every step, so what parses here
/// parses to the same value there (the `schedule` fuzz target checks it).
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError::Invalid(s.into());
    let text = s.trim();
    let d = if text == "0" {
        Duration::ZERO
    } else {
        terms_total(text).ok_or_else(invalid)?
    };
    if d.subsec_nanos() % 1_000_000 != 0 {
        return Err(DurationError::SubMillisecond(s.into()));
    }
    if d.as_millis() > i64::MAX as u128 {
        return Err(invalid());
    }
    Ok(d)
}

/// The sum of `NUMBER[.FRACTION] UNIT` terms, each optionally followed by
/// whitespace; `None` when the text is not that or the sum overflows.
fn terms_total(text: &str) -> Option<Duration> {
    let mut rest = text;
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        rest = add_term(rest, &mut total)?.trim_start();
    }
    (!text.is_empty()).then_some(total)
}

/// Adds the term at the start of `text` to `total`; the text after it.
fn add_term<'a>(text: &'a str, total: &mut Duration) -> Option<&'a str> {
    let (whole, rest) = split_while(text, |c| c.is_ascii_digit());
    let whole: u64 = whole.parse().ok()?;
    let (fraction, rest) = match rest.strip_prefix('.') {
        Some(after_dot) => {
            let (digits, rest) = split_while(after_dot, |c| c.is_ascii_digit());
            (Some(Fraction::read(digits)?), rest)
        }
        None => (None, rest),
    };
    let (unit, rest) = split_while(rest.trim_start(), |c| c.is_ascii_alphabetic() || c == 'µ');
    let unit = Unit::named(unit)?;
    *total = add_part(*total, unit.whole(whole)?)?;
    if let Some(fraction) = fraction {
        *total = add_part(*total, unit.fraction(fraction)?)?;
    }
    Some(rest)
}

/// `total` plus a term's part of `(seconds, nanoseconds)`, step by step as
/// humantime adds it (its `add_current`), where humantime would fail or
/// panic (`Duration::new` carrying past `u64::MAX` seconds) `None`.
fn add_part(total: Duration, (secs, nanos): (u64, u64)) -> Option<Duration> {
    let mut nanos = u64::from(total.subsec_nanos()).checked_add(nanos)?;
    let mut secs = secs;
    if nanos > 1_000_000_000 {
        secs = secs.checked_add(nanos / 1_000_000_000)?;
        nanos %= 1_000_000_000;
    }
    let secs = total.as_secs().checked_add(secs)?;
    Duration::from_secs(secs).checked_add(Duration::from_nanos(nanos))
}

fn split_while(text: &str, keep: impl Fn(char) -> bool) -> (&str, &str) {
    text.split_at(text.find(|c| !keep(c)).unwrap_or(text.len()))
}

/// Digits after a decimal point, as humantime holds them: a `u64`
/// numerator over a power of ten that must fit a `u64`.
#[derive(Clone, Copy)]
struct Fraction {
    numerator: u64,
    denominator: u64,
}

impl Fraction {
    fn read(digits: &str) -> Option<Self> {
        if digits.is_empty() {
            return None;
        }
        let denominator = 10u64.checked_pow(u32::try_from(digits.len()).ok()?)?;
        let significant = digits.trim_start_matches('0');
        let numerator = if significant.is_empty() {
            0
        } else {
            significant.parse().ok()?
        };
        Some(Self {
            numerator,
            denominator,
        })
    }
}

/// A humantime unit: what one of it is worth, counted in `scale`, for the
/// whole part and for the fraction (humantime counts hours and longer in
/// seconds, so their fractions must come to whole seconds).
struct Unit {
    whole_factor: u64,
    whole_scale: Scale,
    fraction_factor: Option<u64>,
    fraction_scale: Scale,
}

/// What a unit's count is counted in.
#[derive(Clone, Copy)]
enum Scale {
    Nanos,
    Secs,
}

impl Scale {
    fn part(self, count: u64) -> (u64, u64) {
        match self {
            Scale::Nanos => (0, count),
            Scale::Secs => (count, 0),
        }
    }
}

use Scale::{Nanos as NS, Secs as SEC};

impl Unit {
    fn named(name: &str) -> Option<Self> {
        let (whole_factor, whole_scale, fraction_factor, fraction_scale) = match name {
            "nanos" | "nsec" | "ns" => (1, NS, None, NS),
            "usec" | "us" | "µs" => (1000, NS, Some(1000), NS),
            "millis" | "msec" | "ms" => (1_000_000, NS, Some(1_000_000), NS),
            "seconds" | "second" | "secs" | "sec" | "s" => (1, SEC, Some(1_000_000_000), NS),
            "minutes" | "minute" | "min" | "mins" | "m" => (60, SEC, Some(60_000_000_000), NS),
            "hours" | "hour" | "hr" | "hrs" | "h" => (3600, SEC, Some(3600), SEC),
            "days" | "day" | "d" => (86_400, SEC, Some(86_400), SEC),
            "weeks" | "week" | "wk" | "wks" | "w" => (604_800, SEC, Some(604_800), SEC),
            "months" | "month" | "M" => (2_630_016, SEC, Some(2_630_016), SEC),
            "years" | "year" | "yr" | "yrs" | "y" => (31_557_600, SEC, Some(31_557_600), SEC),
            _ => return None,
        };
        Some(Self {
            whole_factor,
            whole_scale,
            fraction_factor,
            fraction_scale,
        })
    }

    /// The whole part's `(seconds, nanoseconds)`.
    fn whole(&self, n: u64) -> Option<(u64, u64)> {
        Some(self.whole_scale.part(n.checked_mul(self.whole_factor)?))
    }

    /// The fraction's `(seconds, nanoseconds)`: exact, or `None`.
    fn fraction(&self, f: Fraction) -> Option<(u64, u64)> {
        let scaled = f.numerator.checked_mul(self.fraction_factor?)?;
        (scaled % f.denominator == 0).then(|| self.fraction_scale.part(scaled / f.denominator))
    }
}

/// A duration that must be greater than zero.
pub fn parse_positive_duration(s: &str) -> Result<Duration, DurationError> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(DurationError::Zero);
    }
    Ok(d)
}

/// A duration used as a queue TTL: positive and at most [`MAX_TTL`].
pub fn parse_ttl(s: &str) -> Result<Duration, DurationError> {
    let d = parse_positive_duration(s)?;
    if d > MAX_TTL {
        return Err(DurationError::TooLong(s.into()));
    }
    Ok(d)
}

/// A delay as the contract names retry queues: whole hours, else whole
/// seconds, else milliseconds (`1h`, `24h`, `60s`, `90s`, `500ms`). It is
/// also how schedules print, and it parses back to the same duration.
pub fn format_delay(delay: Duration) -> String {
    let ms = delay.as_millis();
    if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// A setting's duration as the docs write it, and as it parses back:
/// whole days beyond two days (`7d`), else as [`format_delay`] (`48h`,
/// `10s`, `500ms`), never humantime's `2days`.
pub fn format_setting(d: Duration) -> String {
    const DAY_MS: u128 = 86_400_000;
    let ms = d.as_millis();
    if ms > 2 * DAY_MS && ms.is_multiple_of(DAY_MS) {
        format!("{}d", ms / DAY_MS)
    } else {
        format_delay(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_format_as_the_docs_write_them() {
        for (d, shown) in [
            (Duration::from_secs(48 * 3600), "48h"),
            (Duration::from_secs(7 * 86_400), "7d"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_secs(3 * 86_400 + 1), "259201s"),
        ] {
            assert_eq!(format_setting(d), shown);
            assert_eq!(parse_duration(shown), Ok(d), "{shown} parses back");
        }
    }

    #[test]
    fn durations_must_be_whole_milliseconds() {
        assert_eq!(
            parse_duration("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert!(parse_duration("1ns").is_err());
        assert!(parse_positive_duration("0s").is_err());
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert!(parse_ttl("11years").is_err());
    }

    #[test]
    fn reads_the_humantime_forms_as_humantime_does() {
        for text in [
            "500ms",
            "60s",
            "1h",
            "7d",
            "2h 37min",
            "1h30m",
            "4.2s",
            "1.5h",
            "0.25 s",
            " 2 weeks ",
            "1M",
            "1y",
            "3000usec",
            "1000000ns",
            "0",
            "0s",
            "1.000s",
            "5 min",
            "18446744073709ms",
            "106751991167d",
        ] {
            let want = humantime::parse_duration(text.trim()).unwrap();
            assert_eq!(parse_duration(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn what_humantime_refuses_or_panics_on_is_one_error() {
        for text in [
            "18446744073709551615s1000ms", // humantime 2.4 panics here
            "0.3s 18446744073709ms",       // the carried nanoseconds overflow
            "18446744073709551615s",
            "18446744073710ms", // more than u64::MAX ns in one term
            "9223372036854775808ms",
            "1.0001h", // not whole seconds, as humantime counts hours
            "1.5ns",
            "1.s",
            ".5s",
            "1",
            "1 parsec",
            "1h,2m",
            "1.00000000000000000000s", // a denominator past u64
            "",
        ] {
            assert!(
                matches!(parse_duration(text), Err(DurationError::Invalid(_))),
                "{text:?}: {:?}",
                parse_duration(text)
            );
        }
    }

    #[test]
    fn delays_format_as_queue_suffixes() {
        let ms = Duration::from_millis;
        assert_eq!(format_delay(ms(60_000)), "60s");
        assert_eq!(format_delay(ms(3_600_000)), "1h");
        assert_eq!(format_delay(ms(86_400_000)), "24h");
        assert_eq!(format_delay(ms(604_800_000)), "168h");
        assert_eq!(format_delay(ms(90_000)), "90s");
        assert_eq!(format_delay(ms(7_200_000 + 1000)), "7201s");
        assert_eq!(format_delay(ms(500)), "500ms");
        assert_eq!(format_delay(ms(1500)), "1500ms");
    }
}
