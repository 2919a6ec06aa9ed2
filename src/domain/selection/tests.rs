//! The selection's parsers and matching, case by case.
use super::*;

#[test]
fn reasons_are_the_known_ones_only() {
    for r in known_reasons() {
        assert_eq!(parse_reason(r).as_deref(), Ok(r));
    }
    assert_eq!(known_reasons().len(), DropReason::ALL.len());
    assert!(known_reasons().contains(&BROKER_DELIVERY_LIMIT));
    for bad in ["expird", "", "Expired", "delivery-limit"] {
        let err = parse_reason(bad).unwrap_err().to_string();
        assert!(err.contains("one of: expired, gone"), "{err}");
    }
}

#[test]
fn hosts_are_written_as_a_url_writes_them() {
    assert_eq!(parse_host("Example.COM").as_deref(), Ok("example.com"));
    assert_eq!(parse_host("10.0.0.7").as_deref(), Ok("10.0.0.7"));
    assert_eq!(parse_host("::1").as_deref(), Ok("[::1]"));
    assert_eq!(parse_host("[::1]").as_deref(), Ok("[::1]"));
    assert_eq!(
        parse_host("my_host.local.").as_deref(),
        Ok("my_host.local.")
    );
    assert_eq!(
        parse_host("a.example:8443"),
        Err(SelectionError::HostWithPort {
            given: "a.example:8443".into(),
            host: "a.example".into()
        })
    );
    assert!(matches!(
        parse_host("[::1]:80"),
        Err(SelectionError::HostWithPort { host, .. }) if host == "[::1]"
    ));
    for bad in [
        "",
        "https://a.example",
        "a.example/x",
        "a..example",
        "a b",
        "user@a",
        "a:",
        "a:x",
        "[::1",
        "[nope]",
    ] {
        assert!(
            matches!(parse_host(bad), Err(SelectionError::MalformedHost(_))),
            "{bad}"
        );
    }
}

#[test]
fn a_window_ending_before_it_starts_is_empty() {
    let window = |since_ms, until_ms| Selection {
        since_ms,
        until_ms,
        ..Selection::default()
    };
    assert!(window(Some(2), Some(1)).is_empty_window());
    assert!(!window(Some(1), Some(1)).is_empty_window());
    assert!(!window(Some(2), None).is_empty_window());
    assert!(!window(None, Some(1)).is_empty_window());
}

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
