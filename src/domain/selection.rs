//! Which parked messages a `dead` command acts on (contract section 5):
//! the selection shared by `dead list`, `stats`, `show`, `replay` and
//! `purge`, as a value with a pure [`Selection::matches`].
//!
//! The time bounds (`--since`, `--until`) say when a message was *parked*.
//! Operators write them as an RFC 3339 timestamp (`2024-05-01T12:00:00Z`)
//! or as an age (`2h`: two hours ago); [`parse_time_spec`] reads both, and
//! [`TimeSpec::resolve`] turns an age into an instant once the command
//! knows its clock, so parsing stays a pure function of the text.

use std::{net::Ipv6Addr, time::Duration};

use super::{duration::parse_duration, policy::DropReason};

/// The reason the broker gives a message it parked by itself after
/// `x-delivery-limit` redeliveries.
pub const BROKER_DELIVERY_LIMIT: &str = "delivery_limit";

/// Why a `--reason` or `--host` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    /// Not a reason any parked message can carry.
    #[error("unknown reason '{0}' (one of: {reasons})", reasons = known_reasons().join(", "))]
    UnknownReason(String),
    /// A host with a port, as the `/receivers` keys write it.
    #[error("'{given}' has a port: --host takes the host alone, e.g. '{host}'")]
    HostWithPort {
        /// What was given.
        given: String,
        /// The host in it.
        host: String,
    },
    /// Not a host name or an IP address.
    #[error("'{0}' is not a host name or IP address (e.g. example.com, 10.0.0.7, [::1])")]
    MalformedHost(String),
}

/// Every reason a parked message can carry: the worker's drop reasons
/// (`delivery_limit` among them, the broker's name too).
pub fn known_reasons() -> Vec<&'static str> {
    DropReason::ALL.iter().map(|r| r.as_str()).collect()
}

/// Parses `--reason`: one of [`known_reasons`], exactly.
pub fn parse_reason(s: &str) -> Result<String, SelectionError> {
    let s = s.trim();
    if known_reasons().contains(&s) {
        Ok(s.to_string())
    } else {
        Err(SelectionError::UnknownReason(s.to_string()))
    }
}

/// Parses `--host` as a URL's host is written (the form it is compared
/// with): a DNS name or IPv4 address in lower case, an IPv6 address in
/// brackets. A port, a scheme or a path is refused.
pub fn parse_host(s: &str) -> Result<String, SelectionError> {
    let given = s.trim();
    let malformed = || SelectionError::MalformedHost(given.to_string());
    let port_of = |host: &str, port: &str| {
        if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            SelectionError::HostWithPort {
                given: given.to_string(),
                host: host.to_string(),
            }
        } else {
            malformed()
        }
    };
    if let Some(rest) = given.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or_else(malformed)?;
        let ip: Ipv6Addr = inside.parse().map_err(|_| malformed())?;
        let host = format!("[{ip}]");
        return match after.strip_prefix(':') {
            None if after.is_empty() => Ok(host),
            Some(port) => Err(port_of(&host, port)),
            None => Err(malformed()),
        };
    }
    if let Ok(ip) = given.parse::<Ipv6Addr>() {
        return Ok(format!("[{ip}]"));
    }
    if let Some((host, port)) = given.rsplit_once(':') {
        return Err(if is_host_name(host) {
            port_of(&host.to_ascii_lowercase(), port)
        } else {
            malformed()
        });
    }
    if is_host_name(given) {
        Ok(given.to_ascii_lowercase())
    } else {
        Err(malformed())
    }
}

/// DNS labels (letters, digits, `-`, `_`) joined by dots; an IPv4 address
/// is one too.
fn is_host_name(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

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

    /// Whether `--since` falls after `--until`, so that nothing can match.
    pub fn is_empty_window(&self) -> bool {
        matches!((self.since_ms, self.until_ms), (Some(s), Some(u)) if s > u)
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
mod tests;
