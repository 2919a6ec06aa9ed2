//! The broker's faults: it closes one of the worker's connections, it is
//! not there at all, or it returns a retry copy it cannot route. Every
//! test counts every event.

use std::{collections::HashSet, time::Duration};

use webhook_worker::broker::publisher::{PublishError, Publisher};

use crate::harness::*;

const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn broker_closing_either_connection_is_survived() {
    let rig = Harness::new("reconnect")
        .receiver(|_, _| Reply::ok().after(Duration::from_millis(5)))
        .start()
        .await;
    let (broker, receiver, worker, prefix) =
        (&rig.broker, rig.receiver(), rig.worker(), rig.prefix());
    let readyz = format!("http://{}/readyz", worker.metrics_addr);

    broker
        .publish_many(
            (0..200).map(|i| event(&format!("before-{i}"), 104, &receiver.url("/b"), "{}")),
        )
        .await;
    receiver.wait_requests(50, LONG).await;

    // Close the worker's connections from the broker's side: the consuming
    // one mid-flight, then the publishing one while the worker is idle, so
    // no failed publish tells the worker; its watch on the connection must.
    for (round, role) in [Role::Consuming, Role::Publishing].into_iter().enumerate() {
        if let Role::Publishing = role {
            let deliveries = broker.topology.deliveries();
            let sent: HashSet<String> = (0..200)
                .map(|i| format!("before-{i}"))
                .chain((0..100).map(|i| format!("during-0-{i}")))
                .collect();
            wait_for(
                "every message so far delivered and acked",
                LONG,
                async || {
                    let seen: HashSet<String> = receiver.delivery_counts().into_keys().collect();
                    let q = management_queue(deliveries).await;
                    (sent.is_subset(&seen) && q["messages"].as_u64() == Some(0)).then_some(())
                },
            )
            .await;
        }
        close_worker_connection(prefix, role).await;
        // /readyz tells the truth: 503 while reconnecting, 200 once consuming.
        wait_for("readyz 503", LONG, async || {
            (reqwest::get(&readyz).await.ok()?.status() == 503).then_some(())
        })
        .await;
        broker
            .publish_many((0..100).map(|i| {
                event(
                    &format!("during-{round}-{i}"),
                    104,
                    &receiver.url("/d"),
                    "{}",
                )
            }))
            .await;
        wait_for("readyz 200", LONG, async || {
            (reqwest::get(&readyz).await.ok()?.status() == 200).then_some(())
        })
        .await;
        let healthz = reqwest::get(format!("http://{}/healthz", worker.metrics_addr))
            .await
            .unwrap();
        assert_eq!(healthz.status(), 200, "healthz stays 200");
    }
    broker
        .publish_many(
            (0..100).map(|i| event(&format!("after-{i}"), 104, &receiver.url("/a"), "{}")),
        )
        .await;
    let expected: HashSet<String> = (0..200)
        .map(|i| format!("before-{i}"))
        .chain((0..2).flat_map(|r| (0..100).map(move |i| format!("during-{r}-{i}"))))
        .chain((0..100).map(|i| format!("after-{i}")))
        .collect();
    wait_for("all delivered", LONG, async || {
        let seen: HashSet<String> = receiver.delivery_counts().into_keys().collect();
        expected.is_subset(&seen).then_some(())
    })
    .await;
    let text = worker.scrape().await;
    assert_eq!(sample(&text, "webhook_broker_reconnects_total"), 2.0);
    assert_eq!(sample(&text, "webhook_broker_connected"), 1.0);
    worker.stop().await.unwrap();
    assert_eq!(broker.depth(broker.topology.dead()).await, 0);
    rig.finish().await;
}

#[tokio::test]
async fn unreachable_broker_is_retried_forever_with_health_up() {
    let prefix = unique_prefix("nobroker");
    // A port nothing listens on, held for the whole test.
    let (_held, broker_port) = closed_port();
    let amqp_url = format!("amqp://guest:guest@127.0.0.1:{broker_port}/%2f");
    let mut w = WorkerProcess::spawn(&prefix, &[], &[("AMQP_URL", &amqp_url)]);
    let base = w.base_url().await;
    wait_for("three failed attempts logged", LONG, async || {
        let text = w.log_text();
        (text.matches("cannot connect to the broker node").count() >= 3).then_some(())
    })
    .await;
    assert!(w.is_running(), "still running");
    assert_eq!(
        reqwest::get(format!("{base}/healthz"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        reqwest::get(format!("{base}/readyz"))
            .await
            .unwrap()
            .status(),
        503
    );
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(sample(&metrics, "webhook_broker_connected"), 0.0);
    w.terminate();
    let (code, _) = w.wait_exit(LONG).await;
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn an_unroutable_retry_copy_returns_the_original_to_the_broker() {
    let rig = Harness::new("unroutable")
        .config(|c| c.topology.delivery_limit = 2)
        .receiver(|_, _| Reply::status(500))
        .start()
        .await;
    let (broker, receiver, worker) = (&rig.broker, rig.receiver(), rig.worker());
    // Someone deletes the retry tier after the worker declared it: the
    // retry copy comes back unroutable (mandatory).
    broker.delete_retry_tier(Duration::from_millis(200)).await;

    let body = event("u-1", 104, &receiver.url("/u"), "{}");
    broker.publish(&body).await;
    // Never acked: nacked back each time, until the delivery limit parks it.
    let dead = broker.dead_messages(1, LONG).await;
    assert_eq!(dead[0].data, body);
    let reason = parked_reason(&dead[0]);
    assert_eq!(
        reason, "delivery_limit",
        "parked by the broker, not acked by the worker"
    );
    assert_eq!(
        receiver.requests().len(),
        3,
        "first delivery + 2 redeliveries, then parked"
    );
    let text = worker.scrape().await;
    assert_eq!(sample(&text, "webhook_publish_failures_total"), 3.0);
    assert_eq!(sample(&text, r#"webhook_retried_total{tier="200ms"}"#), 0.0);
    rig.finish().await;
}

/// Concurrent `mandatory` publishes each learn their own fate: a return
/// carries no delivery tag, and on one shared channel lapin handed it to
/// whichever publish of a `basic.ack(multiple)` it completed first — a
/// routed copy reported unroutable (its original given back: twice), an
/// unroutable one reported confirmed (its original acked: lost). Half of
/// 400 publishes here go to a queue that does not exist.
#[tokio::test]
async fn concurrent_publishes_to_a_missing_queue_are_each_reported_returned() {
    let rig = Harness::new("returns").declare().await;
    let broker = &rig.broker;
    let publisher = Publisher::open(&broker.conn).await.unwrap();
    let deliveries = broker.topology.deliveries().to_string();
    let missing = format!("{}.missing", rig.prefix());
    let mut publishes = tokio::task::JoinSet::new();
    for i in 0..400 {
        let to = if i % 2 == 0 { &deliveries } else { &missing }.clone();
        let publisher = publisher.clone();
        publishes.spawn(async move {
            let body = format!("m-{i}").into_bytes();
            (i, publisher.publish(&to, &body, Default::default()).await)
        });
    }
    let mut wrong = Vec::new();
    while let Some(done) = publishes.join_next().await {
        let (i, result) = done.unwrap();
        match (i % 2 == 0, &result) {
            (true, Ok(())) | (false, Err(PublishError::Returned(..))) => {}
            _ => wrong.push(format!("m-{i}: {result:?}")),
        }
    }
    assert!(wrong.is_empty(), "reported wrongly: {wrong:?}");
    let landed: HashSet<String> = broker
        .drain(&deliveries)
        .await
        .iter()
        .map(|d| String::from_utf8_lossy(&d.data).into_owned())
        .collect();
    let expected: HashSet<String> = (0..400).step_by(2).map(|i| format!("m-{i}")).collect();
    assert_eq!(landed, expected, "every routed publish, once");
    publisher.close().await;
    rig.finish().await;
}
