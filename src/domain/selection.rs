//! Which parked messages a `dead` command acts on (contract section 5):
//! the selection shared by `dead list`, `stats`, `show`, `replay` and
//! `purge`, as a value with a pure [`Selection::matches`].
//!
//! The time bounds (`--since`, `--until`) say when a message was *parked*.
//! Operators write them as an RFC 3339 timestamp (`2024-05-01T12:00:00Z`)
//! or as an age (`2h`: two hours ago); [`parse_time_spec`] reads both, and
//! [`TimeSpec::resolve`] turns an age into an instant once the command
//! knows its clock, so parsing stays a pure function of the text.

use std::time::Duration;

use super::duration::parse_duration;

/// A point in time as `--since` / `--until` take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    /// An absolute instant, unix milliseconds.
    At(i64),
    /// This long before the command runs.
    Ago(Duration),
}

/// Why a `--since` / `--until` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid time '{0}' (use an RFC 3339 timestamp such as 2024-05-01T12:00:00Z, or an age such as 30m, 2h, 1d)"
)]
pub struct TimeSpecError(pub String);

/// Parses `--since` / `--until`: an RFC 3339 timestamp, else a humantime
/// age. Never panics, whatever the input.
pub fn parse_time_spec(s: &str) -> Result<TimeSpec, TimeSpecError> {
    let s = s.trim();
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        let ms = t.unix_timestamp_nanos() / 1_000_000;
        return i64::try_from(ms)
            .map(TimeSpec::At)
            .map_err(|_| TimeSpecError(s.into()));
    }
    parse_duration(s)
        .map(TimeSpec::Ago)
        .map_err(|_| TimeSpecError(s.into()))
}

impl TimeSpec {
    /// The instant, unix milliseconds, for a command started at `now_ms`.
    pub fn resolve(self, now_ms: i64) -> i64 {
        match self {
            TimeSpec::At(ms) => ms,
            TimeSpec::Ago(age) => {
                now_ms.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
            }
        }
    }
}

/// What a selection is tested against: the facts of one parked message.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParkedFacts<'a> {
    /// The event id, when the body has one.
    pub id: Option<&'a str>,
    /// The webhook number, when the body has one.
    pub webhook: Option<i64>,
    /// The host of the body's `url`, when it has one.
    pub host: Option<&'a str>,
    /// Why it was parked (`gone`, `expired`, ..., or the broker's
    /// `delivery_limit`).
    pub reason: &'a str,
    /// When it was parked, unix milliseconds, when known.
    pub parked_at_ms: Option<i64>,
}

/// The messages a `dead` command acts on. Every criterion given must hold;
/// none given selects everything. `limit` caps how many are selected (in
/// queue order) and is applied by whoever walks the queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// `--reason`.
    pub reason: Option<String>,
    /// `--webhook`.
    pub webhook: Option<i64>,
    /// `--host`, compared case-insensitively.
    pub host: Option<String>,
    /// `--id` (repeatable): any of them.
    pub ids: Vec<String>,
    /// `--since`, resolved: parked at or after, unix ms.
    pub since_ms: Option<i64>,
    /// `--until`, resolved: parked at or before, unix ms.
    pub until_ms: Option<i64>,
    /// `--limit`.
    pub limit: Option<u64>,
}

impl Selection {
    /// Whether the message is selected (the limit aside). A message whose
    /// parking time is unknown is never selected by a time bound.
    pub fn matches(&self, m: &ParkedFacts<'_>) -> bool {
        let reason = self.reason.as_deref().is_none_or(|r| r == m.reason);
        let webhook = self.webhook.is_none_or(|w| m.webhook == Some(w));
        let host = self
            .host
            .as_deref()
            .is_none_or(|h| m.host.is_some_and(|mh| mh.eq_ignore_ascii_case(h)));
        let id = self.ids.is_empty() || m.id.is_some_and(|id| self.ids.iter().any(|i| i == id));
        let since = self
            .since_ms
            .is_none_or(|s| m.parked_at_ms.is_some_and(|t| t >= s));
        let until = self
            .until_ms
            .is_none_or(|u| m.parked_at_ms.is_some_and(|t| t <= u));
        reason && webhook && host && id && since && until
    }

    /// Whether `selected` messages already reach the limit.
    pub fn is_full(&self, selected: u64) -> bool {
        self.limit.is_some_and(|l| selected >= l)
    }

    /// Whether any criterion other than the limit is given.
    pub fn is_everything(&self) -> bool {
        *self
            == Selection {
                limit: self.limit,
                ..Selection::default()
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn time_specs_are_timestamps_or_ages() {
        assert_eq!(
            parse_time_spec("2023-11-14T22:13:20Z").unwrap(),
            TimeSpec::At(NOW)
        );
        assert_eq!(
            parse_time_spec("2023-11-14T23:13:20+01:00").unwrap(),
            TimeSpec::At(NOW)
        );
        assert_eq!(
            parse_time_spec(" 2h ").unwrap(),
            TimeSpec::Ago(Duration::from_secs(7200))
        );
        assert_eq!(parse_time_spec("2h").unwrap().resolve(NOW), NOW - 7_200_000);
        assert_eq!(
            parse_time_spec("1d 30m").unwrap().resolve(NOW),
            NOW - 88_200_000
        );
        assert_eq!(TimeSpec::At(5).resolve(NOW), 5);
        for bad in ["", "yesterday", "2023-11-14", "-2h", "2023-13-01T00:00:00Z"] {
            assert!(parse_time_spec(bad).is_err(), "{bad}");
        }
        assert_eq!(TimeSpec::Ago(Duration::MAX).resolve(NOW), NOW - i64::MAX);
    }

    fn facts<'a>(
        id: &'a str,
        webhook: i64,
        host: &'a str,
        reason: &'a str,
        at: i64,
    ) -> ParkedFacts<'a> {
        ParkedFacts {
            id: Some(id),
            webhook: Some(webhook),
            host: Some(host),
            reason,
            parked_at_ms: Some(at),
        }
    }

    #[test]
    fn every_given_criterion_must_hold() {
        let m = facts("e-1", 104, "hooks.example.com", "gone", NOW);
        assert!(Selection::default().matches(&m));
        assert!(Selection::default().is_everything());
        let only = |f: fn(&mut Selection)| {
            let mut s = Selection::default();
            f(&mut s);
            assert!(!s.is_everything());
            s.matches(&m)
        };
        assert!(only(|s| s.reason = Some("gone".into())));
        assert!(!only(|s| s.reason = Some("expired".into())));
        assert!(only(|s| s.webhook = Some(104)));
        assert!(!only(|s| s.webhook = Some(105)));
        assert!(only(|s| s.host = Some("HOOKS.example.com".into())));
        assert!(!only(|s| s.host = Some("example.com".into())));
        assert!(only(|s| s.ids = vec!["x".into(), "e-1".into()]));
        assert!(!only(|s| s.ids = vec!["e-2".into()]));
        assert!(only(|s| s.since_ms = Some(NOW)));
        assert!(!only(|s| s.since_ms = Some(NOW + 1)));
        assert!(only(|s| s.until_ms = Some(NOW)));
        assert!(!only(|s| s.until_ms = Some(NOW - 1)));
        let both = Selection {
            reason: Some("gone".into()),
            webhook: Some(105),
            ..Selection::default()
        };
        assert!(!both.matches(&m), "all criteria must hold");
    }

    #[test]
    fn unknown_facts_never_match_a_criterion_on_them() {
        let m = ParkedFacts {
            reason: "malformed",
            ..ParkedFacts::default()
        };
        assert!(Selection::default().matches(&m));
        for s in [
            Selection {
                webhook: Some(104),
                ..Selection::default()
            },
            Selection {
                host: Some("a".into()),
                ..Selection::default()
            },
            Selection {
                ids: vec!["a".into()],
                ..Selection::default()
            },
            Selection {
                since_ms: Some(0),
                ..Selection::default()
            },
            Selection {
                until_ms: Some(NOW),
                ..Selection::default()
            },
        ] {
            assert!(!s.matches(&m), "{s:?}");
        }
    }

    #[test]
    fn the_limit_caps_the_count() {
        let s = Selection {
            limit: Some(2),
            ..Selection::default()
        };
        assert!(s.is_everything(), "a limit alone still selects everything");
        assert!(!s.is_full(1));
        assert!(s.is_full(2));
        assert!(!Selection::default().is_full(u64::MAX));
    }
}
