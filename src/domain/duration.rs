//! Durations as operators write them (`500ms`, `60s`, `1h`, `7d`): the
//! humantime forms, restricted to whole milliseconds because the broker's
//! TTLs are whole milliseconds.

use std::time::Duration;

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// A duration that humantime cannot read (or one too large to be a
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
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let d = humantime::parse_duration(s.trim()).map_err(|_| DurationError::Invalid(s.into()))?;
    if d.subsec_nanos() % 1_000_000 != 0 {
        return Err(DurationError::SubMillisecond(s.into()));
    }
    if d.as_millis() > i64::MAX as u128 {
        return Err(DurationError::Invalid(s.into()));
    }
    Ok(d)
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
