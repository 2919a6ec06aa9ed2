//! Outcome events on `P.outcomes` (contract section 8), read through a
//! queue the test binds itself, as a platform would: every kind with its
//! fields, the `failures` and `off` modes, and never a secret, a password,
//! a URL path or query in any event.

use std::{sync::Arc, time::Duration};

use webhook_worker::{
    broker::{outcomes::OutcomeSink, publisher::Publisher},
    domain::outcome_event::{Next, OutcomeEvent, OutcomeKind, OutcomesMode, decode_batch},
};

use crate::harness::*;

const LONG: Duration = Duration::from_secs(30);

/// Everything a tap received so far.
#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) events: Vec<OutcomeEvent>,
    /// Every body, as text, for grepping.
    pub(crate) raw: String,
}

impl Seen {
    /// Takes what the tap holds; every line must be an event whose kind
    /// is its message's routing key.
    pub(crate) async fn collect(&mut self, broker: &Broker, tap: &str) {
        for (key, body) in broker.tapped(tap).await {
            let (events, unreadable) = decode_batch(&body);
            assert_eq!(unreadable, 0, "{}", String::from_utf8_lossy(&body));
            for e in &events {
                assert_eq!(e.kind.as_str(), key, "the routing key is the kind");
            }
            self.raw.push_str(&String::from_utf8_lossy(&body));
            self.raw.push('\n');
            self.events.extend(events);
        }
    }

    /// The events of one event id, in order of publication.
    pub(crate) fn of(&self, id: &str) -> Vec<&OutcomeEvent> {
        self.events
            .iter()
            .filter(|e| e.id.as_deref() == Some(id))
            .collect()
    }

    /// Collects until at least `n` events came.
    pub(crate) async fn until_all(&mut self, broker: &Broker, tap: &str, n: usize) {
        self.until(broker, tap, &format!("{n} events"), |s| s.events.len() >= n)
            .await;
    }

    /// Collects until `done` holds.
    async fn until(
        &mut self,
        broker: &Broker,
        tap: &str,
        what: &str,
        done: impl Fn(&Seen) -> bool,
    ) {
        wait_for(what, LONG, async || {
            self.collect(broker, tap).await;
            done(self).then_some(())
        })
        .await;
    }
}

fn kinds(events: &[&OutcomeEvent]) -> Vec<OutcomeKind> {
    events.iter().map(|e| e.kind).collect()
}

/// The fields every event about a parsed message carries.
fn assert_subject(e: &OutcomeEvent, receiver: &Receiver) {
    assert_eq!(e.webhook, Some(104), "{e:?}");
    assert_eq!(e.event.as_deref(), Some("Chat.started"));
    assert_eq!(e.site_id, Some(77));
    assert_eq!(
        e.receiver.as_deref(),
        Some(format!("http://{}", receiver.addr).as_str())
    );
    assert!(e.worker.as_deref().is_some_and(|w| !w.is_empty()));
    assert!(e.at_ms().is_some(), "at is RFC 3339: {}", e.at);
}

/// A message with a secret and a URL with a path and query, none of
/// which may show in any event.
fn secretive(id: &str, receiver: &Receiver, path: &str) -> Vec<u8> {
    let url = format!("{}?token=q-s3cret", receiver.url(path));
    event_with(
        id,
        104,
        &url,
        r#"{"chat":{"text":"body-s3cret"}}"#,
        r#""site_id":77,"secret":"whsec-s3cret","headers":{"X-Api-Key":"hdr-s3cret"}"#,
    )
}

#[tokio::test]
async fn each_attempt_reports_what_followed_it() {
    let rig = Harness::new("outc")
        .receiver(|r, seen| match r.path.as_str() {
            "/hidden/ok" => Reply::ok(),
            "/hidden/flaky" if seen == 0 => Reply::status(503),
            "/hidden/flaky" => Reply::ok(),
            _ => Reply::status(500),
        })
        .start()
        .await;
    let (broker, receiver) = (&rig.broker, rig.receiver());
    let tap = broker.outcomes_tap("#").await;
    for (id, path) in [
        ("ok", "/hidden/ok"),
        ("flaky", "/hidden/flaky"),
        ("down", "/hidden/down"),
    ] {
        broker.publish(&secretive(id, receiver, path)).await;
    }
    let mut seen = Seen::default();
    seen.until(broker, &tap, "every outcome", |s| {
        s.of("ok").len() == 1 && s.of("flaky").len() == 2 && s.of("down").len() == 4
    })
    .await;

    let ok = seen.of("ok");
    assert_eq!(kinds(&ok), [OutcomeKind::AttemptSucceeded]);
    assert_subject(ok[0], receiver);
    assert_eq!(
        (ok[0].attempt, ok[0].outcome.as_deref(), ok[0].status),
        (Some(1), Some("success"), Some(200))
    );
    assert_eq!(ok[0].next, Some(Next::Done));
    assert!(ok[0].duration_ms.is_some());

    let flaky = seen.of("flaky");
    assert_eq!(
        kinds(&flaky),
        [OutcomeKind::AttemptFailed, OutcomeKind::AttemptSucceeded]
    );
    assert_subject(flaky[0], receiver);
    assert_eq!(
        (flaky[0].outcome.as_deref(), flaky[0].status, flaky[0].next),
        (Some("http_error"), Some(503), Some(Next::Retry))
    );
    assert_eq!(flaky[0].tier.as_deref(), Some("200ms"));
    assert_eq!(flaky[0].error.as_deref(), Some("HTTP 503"));
    assert_eq!(flaky[1].attempt, Some(2));

    let down = seen.of("down");
    let tiers: Vec<_> = down.iter().map(|e| e.tier.as_deref()).collect();
    assert_eq!(tiers, [Some("200ms"), Some("200ms"), Some("500ms"), None]);
    let last = down[3];
    assert_eq!(last.kind, OutcomeKind::AttemptFailed);
    assert_eq!(
        (last.attempt, last.next, last.reason.as_deref()),
        (Some(4), Some(Next::Park), Some("expired"))
    );

    assert_no_secret(&seen.raw);
    let text = rig.worker().scrape().await;
    assert_eq!(
        sample(
            &text,
            r#"webhook_outcomes_published_total{kind="attempt.failed"}"#
        ),
        5.0
    );
    assert_eq!(
        sample(
            &text,
            r#"webhook_outcomes_published_total{kind="attempt.succeeded"}"#
        ),
        2.0
    );
    rig.finish().await;
}

/// No secret, header value, body, password, path or query in the events.
pub(crate) fn assert_no_secret(raw: &str) {
    assert!(!raw.is_empty());
    for needle in ["s3cret", "hidden", "token", "guest", "X-Api-Key", "chat"] {
        assert!(!raw.contains(needle), "'{needle}' in an event: {raw}");
    }
}

#[tokio::test]
async fn parking_without_an_attempt_is_message_parked() {
    let rig = Harness::new("outcpark")
        .config(|c| {
            c.delivery.max_message_bytes = 600;
            c.delivery.allow_private_targets = false;
        })
        .start()
        .await;
    let broker = &rig.broker;
    let tap = broker.outcomes_tap("message.*").await;
    broker.publish(b"not json, s3cret").await;
    let big = "x".repeat(700);
    broker
        .publish(&event(
            "big",
            104,
            "http://example.com/",
            &format!(r#"{{"a":"{big}"}}"#),
        ))
        .await;
    broker
        .publish(&event(
            "private",
            104,
            "http://10.1.2.3/hidden?token=1",
            "{}",
        ))
        .await;
    let mut seen = Seen::default();
    seen.until(broker, &tap, "three parked", |s| s.events.len() == 3)
        .await;
    let reason = |e: &OutcomeEvent| e.reason.clone().unwrap();
    let mut reasons: Vec<_> = seen.events.iter().map(reason).collect();
    reasons.sort();
    assert_eq!(reasons, ["forbidden_target", "malformed", "too_large"]);
    for e in &seen.events {
        assert_eq!(e.kind, OutcomeKind::MessageParked);
        assert_eq!(e.next, Some(Next::Park));
        assert_eq!(e.attempt, None, "no attempt: {e:?}");
        assert!(e.error.is_some());
    }
    let private = seen.of("private");
    assert_eq!(private[0].receiver.as_deref(), Some("http://10.1.2.3:80"));
    assert_eq!(private[0].outcome.as_deref(), Some("forbidden_target"));
    assert_eq!(seen.of("big")[0].webhook, Some(104));
    assert_no_secret(&seen.raw);
    rig.finish().await;
}

#[tokio::test]
async fn a_receiver_without_a_slot_gets_message_deferred() {
    let rig = Harness::new("outcdefer")
        .config(|c| {
            c.delivery.host_concurrency = 1;
            c.delivery.timeout = Duration::from_secs(5);
            c.topology.retry_schedule = "1s,2s".parse().unwrap();
        })
        .receiver(|_, _| Reply::ok().after(Duration::from_secs(3)))
        .start()
        .await;
    let (broker, receiver) = (&rig.broker, rig.receiver());
    let tap = broker.outcomes_tap("message.deferred").await;
    broker
        .publish_many((0..3).map(|i| event(&format!("d-{i}"), 104, &receiver.url("/"), "{}")))
        .await;
    let mut seen = Seen::default();
    seen.until(broker, &tap, "a deferral", |s| !s.events.is_empty())
        .await;
    let e = &seen.events[0];
    assert_eq!(e.kind, OutcomeKind::MessageDeferred);
    assert_eq!((e.next, e.tier.as_deref()), (Some(Next::Retry), Some("1s")));
    assert_eq!(e.attempt, None);
    assert_eq!(
        e.receiver.as_deref(),
        Some(format!("http://{}", receiver.addr).as_str())
    );
    rig.finish().await;
}

#[tokio::test]
async fn failures_mode_leaves_out_successes_and_off_publishes_nothing() {
    for (mode, expected) in [("failures", 1), ("off", 0)] {
        let rig = Harness::new(&format!("outc{mode}"))
            .config(|c| {
                c.outcomes.outcomes = match mode {
                    "failures" => OutcomesMode::Failures,
                    _ => OutcomesMode::Off,
                }
            })
            .receiver(|r, _| {
                if r.path == "/ok" {
                    Reply::ok()
                } else {
                    Reply::status(410)
                }
            })
            .start()
            .await;
        let (broker, receiver) = (&rig.broker, rig.receiver());
        let tap = broker.outcomes_tap("#").await;
        broker
            .publish(&event("ok", 104, &receiver.url("/ok"), "{}"))
            .await;
        broker
            .publish(&event("gone", 104, &receiver.url("/gone"), "{}"))
            .await;
        receiver.wait_requests(2, LONG).await;
        broker.dead_messages(1, LONG).await;
        let published = wait_for("the events counted", LONG, async || {
            let total = rig.worker().outcomes_published().await;
            (total >= expected as f64).then_some(total)
        })
        .await;
        assert_eq!(published, expected as f64, "{mode}");
        // A stopped worker has settled everything: whatever it published
        // is in the tap.
        rig.worker().stop().await.unwrap();
        let mut seen = Seen::default();
        seen.collect(broker, &tap).await;
        assert_eq!(seen.events.len(), expected, "{mode}: {:?}", seen.events);
        if expected == 1 {
            let e = &seen.events[0];
            assert_eq!(e.kind, OutcomeKind::AttemptFailed);
            assert_eq!(
                (e.outcome.as_deref(), e.reason.as_deref()),
                (Some("gone"), Some("gone"))
            );
        }
        rig.finish().await;
    }
}

/// The sink's group commit on the real broker: events handed over together
/// while a gather waits for its confirms leave in a few messages, one kind
/// each, and each `publish` returns only once its event is routed (the tap
/// holds all of them the moment the last one returns).
#[tokio::test]
async fn events_handed_over_together_leave_in_a_few_messages_of_one_kind() {
    let rig = Harness::new("outcgather").declare().await;
    let broker = &rig.broker;
    let tap = broker.outcomes_tap("#").await;
    let publisher = Publisher::open(&broker.conn).await.unwrap();
    let (sink, task) = OutcomeSink::spawn(
        publisher.clone(),
        broker.topology.outcomes().to_string(),
        Arc::new(|_, _| {}),
    );
    let kinds = [OutcomeKind::AttemptSucceeded, OutcomeKind::AttemptFailed];
    let mut publishes = tokio::task::JoinSet::new();
    for i in 0..1000_i64 {
        let sink = sink.clone();
        let kind = kinds[(i % 2) as usize];
        publishes.spawn(async move { sink.publish(OutcomeEvent::new(kind, i)).await });
    }
    while let Some(done) = publishes.join_next().await {
        done.unwrap().expect("confirmed");
    }
    let tapped = broker.tapped(&tap).await;
    let mut seen = Seen::default();
    for (key, body) in &tapped {
        let (events, unreadable) = decode_batch(body);
        assert_eq!(unreadable, 0);
        assert!(
            events.iter().all(|e| e.kind.as_str() == key),
            "one kind a message"
        );
        seen.events.extend(events);
    }
    let mut stamps: Vec<i64> = seen.events.iter().filter_map(OutcomeEvent::at_ms).collect();
    stamps.sort_unstable();
    assert_eq!(stamps, (0..1000).collect::<Vec<_>>(), "every event, once");
    assert!(
        tapped.len() <= 100,
        "1 000 events handed over together took {} messages",
        tapped.len()
    );
    drop(sink);
    task.await.unwrap();
    publisher.close().await;
    rig.finish().await;
}
