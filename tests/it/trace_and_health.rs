//! Trace context forwarded to receivers (contract section 4) and into
//! outcome events; receiver health as `receiver.failing` /
//! `receiver.recovered` events and in `GET /receivers`.

use std::time::Duration;

use lapin::{
    BasicProperties,
    types::{AMQPValue, FieldTable},
};
use webhook_worker::domain::{
    outcome_event::OutcomeKind,
    receiver_health::{FAILING_AFTER, MIN_STATE_TIME},
};

use crate::{harness::*, outcomes::Seen};

const LONG: Duration = Duration::from_secs(30);
const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn traced(traceparent: &str, tracestate: &str) -> BasicProperties {
    let mut h = FieldTable::default();
    h.insert(
        "traceparent".into(),
        AMQPValue::LongString(traceparent.into()),
    );
    h.insert(
        "tracestate".into(),
        AMQPValue::LongString(tracestate.into()),
    );
    BasicProperties::default().with_headers(h)
}

#[tokio::test]
async fn trace_context_is_forwarded_unchanged_and_a_malformed_one_dropped() {
    let rig = Harness::new("trace").ok_receiver().start().await;
    let (broker, receiver) = (&rig.broker, rig.receiver());
    let tap = broker.outcomes_tap("#").await;
    let url = receiver.url("/");
    broker
        .publish_with(
            &event("t-good", 104, &url, "{}"),
            traced(PARENT, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
        )
        .await;
    broker
        .publish_with(
            &event("t-bad", 104, &url, "{}"),
            traced("00-zz-bad-01", "congo=x"),
        )
        .await;
    broker.publish(&event("t-none", 104, &url, "{}")).await;
    let requests = receiver.wait_requests(3, LONG).await;
    let of = |id: &str| {
        requests
            .iter()
            .find(|r| r.header("x-comm100-delivery-id") == id)
            .unwrap()
            .headers
            .clone()
    };
    let good = of("t-good");
    assert_eq!(good["traceparent"], PARENT);
    assert_eq!(
        good["tracestate"],
        "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    );
    for id in ["t-bad", "t-none"] {
        let h = of(id);
        assert!(
            h.get("traceparent").is_none() && h.get("tracestate").is_none(),
            "{id}: {h:?}"
        );
    }
    let mut seen = Seen::default();
    seen.until_all(broker, &tap, 3).await;
    assert_eq!(
        seen.of("t-good")[0].trace_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(seen.of("t-bad")[0].trace_id, None, "never invented");
    assert_eq!(seen.of("t-none")[0].trace_id, None);
    rig.finish().await;
}

#[tokio::test]
async fn a_failing_receiver_is_reported_once_then_recovered() {
    let rig = Harness::new("health")
        .config(|c| c.topology.retry_schedule = "10m".parse().unwrap())
        .receiver(|r, _| {
            if r.path == "/down" {
                Reply::status(500)
            } else {
                Reply::ok()
            }
        })
        .start()
        .await;
    let (broker, receiver, worker) = (&rig.broker, rig.receiver(), rig.worker());
    let tap = broker.outcomes_tap("receiver.*").await;
    let n = FAILING_AFTER as usize + 5;
    broker
        .publish_many((0..n).map(|i| event(&format!("h-{i}"), 104, &receiver.url("/down"), "{}")))
        .await;
    let mut seen = Seen::default();
    seen.until_all(broker, &tap, 1).await;
    receiver.wait_requests(n, LONG).await;
    let failing = &seen.events[0];
    assert_eq!(failing.kind, OutcomeKind::ReceiverFailing);
    let key = format!("http://{}", receiver.addr);
    assert_eq!(failing.receiver.as_deref(), Some(key.as_str()));
    assert_eq!(
        (failing.outcome.as_deref(), failing.status),
        (Some("http_error"), Some(500))
    );
    assert!(
        failing
            .error
            .as_deref()
            .unwrap()
            .starts_with(&format!("{FAILING_AFTER} failed attempts in a row"))
    );
    assert_eq!(failing.id, None, "about the receiver, not a message");
    let row = worker.receiver(receiver).await.unwrap();
    assert_eq!(row["health"], "failing", "{row}");

    // A success within the window is not believed yet: no event.
    broker
        .publish(&event("h-up-1", 104, &receiver.url("/up"), "{}"))
        .await;
    wait_for("h-up-1 delivered", LONG, async || {
        let text = worker.scrape().await;
        (sample(&text, r#"webhook_delivered_total{webhook="104"}"#) == 1.0).then_some(())
    })
    .await;
    let row = worker.receiver(receiver).await.unwrap();
    assert_eq!(row["health"], "failing", "too soon to believe: {row}");
    seen.collect(broker, &tap).await;
    assert_eq!(seen.events.len(), 1, "{:?}", seen.events);
    // Past the window, a success recovers it: one event.
    tokio::time::sleep(MIN_STATE_TIME).await;
    broker
        .publish(&event("h-up-2", 104, &receiver.url("/up"), "{}"))
        .await;
    seen.until_all(broker, &tap, 2).await;
    let kinds: Vec<_> = seen.events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [OutcomeKind::ReceiverFailing, OutcomeKind::ReceiverRecovered]
    );
    assert_eq!(seen.events[1].status, Some(200));
    let row = worker.receiver(receiver).await.unwrap();
    assert_eq!(row["health"], "healthy", "{row}");
    rig.finish().await;
}

/// The trace id is on the worker's log lines of a traced message, also
/// where it is parked without an attempt (a malformed envelope) or after
/// one (a 410), so `grep <trace id>` over the logs finds its whole story.
#[tokio::test]
async fn the_trace_id_is_on_the_park_lines_with_and_without_an_attempt() {
    let prefix = unique_prefix("trace-log");
    let broker = Broker::new(&test_config(&prefix)).await;
    let receiver = Receiver::start(|_, _| Reply::status(410)).await;
    let worker = WorkerProcess::start(&prefix, &[], &[]).await;
    let gone = event("t-gone", 104, &receiver.url("/gone"), "{}");
    broker.publish_with(&gone, traced(PARENT, "")).await;
    broker
        .publish_with(b"{not json", traced(PARENT, "congo=x"))
        .await;
    let dead = broker.topology.dead().to_string();
    wait_for("both parked", LONG, async || {
        (broker.depth(&dead).await == 2).then_some(())
    })
    .await;
    let log = worker.log_text();
    let parks: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("parked in the dead queue"))
        .collect();
    assert_eq!(parks.len(), 2, "{log}");
    for line in parks {
        assert!(
            line.contains("trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\""),
            "{line}"
        );
    }
    broker.cleanup().await;
}
