//! Which outcome events `webhook-worker log` prints (contract section 8),
//! as a value with a pure [`LogSelection::matches`]. The options are
//! parsed like the `dead` commands' ([`super::selection`]): `--since` and
//! `--until` by [`super::selection::parse_time_spec`], `--receiver` by
//! [`super::selection::parse_host`]; the time bounds say when the event
//! happened (its `at`).

use super::outcome_event::{OutcomeEvent, OutcomeKind};

/// The events a `log` command prints. Every criterion given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSelection {
    /// `--id` (repeatable): any of them.
    pub ids: Vec<String>,
    /// `--receiver`: the host of the receiver, compared case-insensitively.
    pub receiver_host: Option<String>,
    /// `--webhook`.
    pub webhook: Option<i64>,
    /// `--site`.
    pub site_id: Option<i64>,
    /// `--kind`.
    pub kind: Option<OutcomeKind>,
    /// `--since`, resolved (unix ms): at or after.
    pub since_ms: i64,
    /// `--until`, resolved (unix ms): at or before.
    pub until_ms: Option<i64>,
    /// `--limit`: at most this many events printed.
    pub limit: Option<u64>,
}

impl LogSelection {
    /// Whether the event is selected (the limit aside).
    pub fn matches(&self, e: &OutcomeEvent) -> bool {
        let id = self.ids.is_empty() || e.id.as_ref().is_some_and(|id| self.ids.contains(id));
        let receiver = self.receiver_host.as_deref().is_none_or(|h| {
            e.receiver
                .as_deref()
                .and_then(receiver_host)
                .is_some_and(|r| r.eq_ignore_ascii_case(h))
        });
        let webhook = self.webhook.is_none_or(|w| e.webhook == Some(w));
        let site = self.site_id.is_none_or(|s| e.site_id == Some(s));
        let kind = self.kind.is_none_or(|k| e.kind == k);
        id && receiver && webhook && site && kind && self.in_window(e.at_ms())
    }

    /// Whether an event at `at_ms` (unknown: never) falls in the window.
    pub fn in_window(&self, at_ms: Option<i64>) -> bool {
        at_ms.is_some_and(|t| t >= self.since_ms && self.until_ms.is_none_or(|u| t <= u))
    }

    /// Whether the window ends before it starts.
    pub fn is_empty_window(&self) -> bool {
        self.until_ms.is_some_and(|u| u < self.since_ms)
    }

    /// Whether `printed` events already reach the limit.
    pub fn is_full(&self, printed: u64) -> bool {
        self.limit.is_some_and(|l| printed >= l)
    }

    /// Whether a line of a batch body may hold a selected event: a cheap
    /// test before parsing it (with ids, the line must contain one).
    pub fn may_match_line(&self, line: &str) -> bool {
        self.ids.is_empty() || self.ids.iter().any(|id| line.contains(id.as_str()))
    }
}

/// The host of a receiver key (`scheme://host:port`).
pub fn receiver_host(key: &str) -> Option<&str> {
    let rest = key.split_once("://")?.1;
    let (host, _port) = rest.rsplit_once(':')?;
    Some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: i64 = 1_700_000_000_000;

    fn ev() -> OutcomeEvent {
        let mut e = OutcomeEvent::new(OutcomeKind::AttemptFailed, AT);
        e.id = Some("e-1".into());
        e.webhook = Some(104);
        e.site_id = Some(7);
        e.receiver = Some("https://Hooks.Example.com:443".into());
        e
    }

    #[test]
    fn every_given_criterion_must_hold() {
        let e = ev();
        let all = LogSelection::default();
        assert!(all.matches(&e));
        let only = |f: fn(&mut LogSelection)| {
            let mut s = LogSelection::default();
            f(&mut s);
            s.matches(&e)
        };
        assert!(only(|s| s.ids = vec!["x".into(), "e-1".into()]));
        assert!(!only(|s| s.ids = vec!["e-2".into()]));
        assert!(only(|s| s.receiver_host = Some("hooks.example.com".into())));
        assert!(!only(|s| s.receiver_host = Some("example.com".into())));
        assert!(only(|s| s.webhook = Some(104)));
        assert!(!only(|s| s.webhook = Some(105)));
        assert!(only(|s| s.site_id = Some(7)));
        assert!(!only(|s| s.site_id = Some(8)));
        assert!(only(|s| s.kind = Some(OutcomeKind::AttemptFailed)));
        assert!(!only(|s| s.kind = Some(OutcomeKind::AttemptSucceeded)));
        assert!(only(|s| s.since_ms = AT));
        assert!(!only(|s| s.since_ms = AT + 1));
        assert!(only(|s| s.until_ms = Some(AT)));
        assert!(!only(|s| s.until_ms = Some(AT - 1)));
    }

    #[test]
    fn windows_limits_and_lines() {
        let s = LogSelection {
            since_ms: 10,
            until_ms: Some(5),
            limit: Some(2),
            ids: vec!["e-1".into()],
            ..LogSelection::default()
        };
        assert!(s.is_empty_window());
        assert!(!s.is_full(1) && s.is_full(2));
        assert!(s.may_match_line(r#"{"id":"e-1"}"#));
        assert!(!s.may_match_line(r#"{"id":"e-2"}"#));
        assert!(!s.in_window(None));
        assert_eq!(receiver_host("http://[::1]:8080"), Some("[::1]"));
        assert_eq!(receiver_host("nonsense"), None);
    }
}
