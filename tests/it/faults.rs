//! Fault tests of the worker process against the real broker: workers
//! killed mid-flight, SIGTERM drains, a second signal, a message that keeps
//! killing workers, two workers sharing a queue. Every test counts every
//! event. (The broker's faults: `broker_faults`; a retired channel:
//! `channel_rotation`; metrics and logs: `reporting`.)

use std::time::Duration;

use crate::harness::*;

const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn kill_9_mid_flight_loses_nothing() {
    let rig = Harness::new("kill9")
        .alone()
        .receiver(|_, _| Reply::ok().after(Duration::from_millis(20)))
        .declare()
        .await;
    let (broker, receiver, prefix) = (&rig.broker, rig.receiver(), rig.prefix());
    const N: usize = 3000;
    broker
        .publish_many((0..N).map(|i| event(&format!("k-{i}"), 104, &receiver.url("/k"), "{}")))
        .await;

    let first = WorkerProcess::start(prefix, &["--concurrency", "100"], &[]).await;
    let before = first.kill_9_after(receiver, 300).await;
    assert!(before < N, "killed mid-flight ({before} of {N} done)");

    let second = WorkerProcess::start(prefix, &["--concurrency", "100"], &[]).await;
    let seen = receiver.wait_ids(N, LONG).await;
    assert!((0..N).all(|i| seen.contains_key(&format!("k-{i}"))));
    let duplicates: usize = seen.values().map(|c| c - 1).sum();
    // Redelivered are the messages unacked at the kill: at most a prefetch
    // (100) per open lane, and a session has its lane plus at most four
    // retired ones (`MAX_RETIRED` in src/worker/session.rs) when slow
    // deliveries made it rotate, as a loaded machine can (122 were seen
    // once on RabbitMQ 4.0 under CI load).
    assert!(
        duplicates <= 100 * (1 + 4),
        "at most the unacked window of the open lanes is redelivered, got {duplicates}"
    );
    assert_eq!(broker.depth(broker.topology.dead()).await, 0, "none parked");
    let by_second = sample(
        &second.scrape().await,
        r#"webhook_delivered_total{webhook="104"}"#,
    );
    assert!(
        by_second >= (N - before) as f64,
        "the second worker finished the rest ({by_second})"
    );
    drop(second);
    rig.finish().await;
}

#[tokio::test]
async fn sigterm_drains_in_flight_deliveries_and_exits_0() {
    let rig = Harness::new("sigterm")
        .receiver(|_, _| Reply::ok().after(Duration::from_millis(1500)))
        .declare()
        .await;
    let (broker, receiver, prefix) = (&rig.broker, rig.receiver(), rig.prefix());
    const N: usize = 200;
    broker
        .publish_many((0..N).map(|i| event(&format!("s-{i}"), 104, &receiver.url("/s"), "{}")))
        .await;

    let mut w = WorkerProcess::start(
        prefix,
        &["--concurrency", "50", "--shutdown-grace", "10s"],
        &[],
    )
    .await;
    wait_for("50 in flight", LONG, async || {
        (receiver.requests().len() >= 50).then_some(())
    })
    .await;
    w.terminate();
    let (code, took) = w.wait_exit(Duration::from_secs(20)).await;
    assert_eq!(code, Some(0), "graceful exit");
    assert!(took < Duration::from_secs(10), "within the grace: {took:?}");
    assert!(w.log_text().contains("drained"), "{}", w.log_text());

    // Every in-flight delivery finished and was acked; everything else is
    // still in the queue. Nothing lost, nothing parked.
    let delivered = receiver.delivery_counts();
    let remaining = broker.depth(broker.topology.deliveries()).await as usize;
    assert_eq!(
        delivered.len() + remaining,
        N,
        "delivered {} + queued {remaining}",
        delivered.len()
    );
    assert!(
        delivered.values().all(|&c| c == 1),
        "nothing delivered twice before the restart"
    );
    assert_eq!(broker.depth(broker.topology.dead()).await, 0);
    rig.finish().await;
}

#[tokio::test]
async fn sigterm_with_grace_exhausted_still_exits_0_and_returns_messages() {
    let rig = Harness::new("grace")
        .receiver(|_, _| Reply::ok().after(Duration::from_secs(30)))
        .declare()
        .await;
    let (broker, receiver, prefix) = (&rig.broker, rig.receiver(), rig.prefix());
    broker
        .publish_many((0..10).map(|i| event(&format!("g-{i}"), 104, &receiver.url("/g"), "{}")))
        .await;
    let mut w = WorkerProcess::start(
        prefix,
        &["--shutdown-grace", "500ms", "--timeout", "60s"],
        &[],
    )
    .await;
    receiver.wait_requests(10, LONG).await;
    w.terminate();
    let (code, took) = w.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(5), "grace 500ms, took {took:?}");
    // The abandoned deliveries went back to the queue.
    wait_for("messages returned", LONG, async || {
        (broker.depth(broker.topology.deliveries()).await == 10).then_some(())
    })
    .await;
    rig.finish().await;
}

#[tokio::test]
async fn second_signal_exits_at_once_and_loses_nothing() {
    let rig = Harness::new("twice")
        .receiver(|_, _| Reply::ok().after(Duration::from_secs(30)))
        .declare()
        .await;
    let (broker, receiver, prefix) = (&rig.broker, rig.receiver(), rig.prefix());
    broker
        .publish_many((0..5).map(|i| event(&format!("t-{i}"), 104, &receiver.url("/t"), "{}")))
        .await;
    let mut w = WorkerProcess::start(prefix, &["--timeout", "60s"], &[]).await;
    receiver.wait_requests(5, LONG).await;
    w.terminate();
    wait_for("draining", LONG, async || {
        w.log_text().contains("draining").then_some(())
    })
    .await;
    w.interrupt();
    let (code, took) = w.wait_exit(Duration::from_secs(5)).await;
    assert_ne!(code, Some(0), "forced exit");
    assert!(took < Duration::from_secs(2));
    wait_for("messages returned", LONG, async || {
        (broker.depth(broker.topology.deliveries()).await == 5).then_some(())
    })
    .await;
    rig.finish().await;
}

#[tokio::test]
async fn a_message_that_keeps_killing_workers_is_parked_by_the_broker() {
    let rig = Harness::new("poison")
        .config(|c| c.topology.delivery_limit = 2)
        // The receiver never answers in time: every worker that takes the
        // message is killed while holding it.
        .receiver(|_, _| Reply::ok().after(Duration::from_secs(60)))
        .declare()
        .await;
    let (broker, receiver, prefix) = (&rig.broker, rig.receiver(), rig.prefix());
    broker
        .publish(&event("poison-1", 104, &receiver.url("/p"), "{}"))
        .await;
    let args = ["--delivery-limit", "2", "--timeout", "60s"];
    for round in 1..=3 {
        let mut w = WorkerProcess::start(prefix, &args, &[]).await;
        receiver.wait_requests(round, LONG).await;
        w.kill_9();
        w.wait_exit(LONG).await;
    }
    let dead = broker.dead_messages(1, LONG).await;
    assert_eq!(
        header(&dead[0], "webhook-drop-reason"),
        None,
        "parked by the broker, not the worker"
    );
    let reason = parked_reason(&dead[0]);
    assert_eq!(reason, "delivery_limit", "the broker's x-death says why");
    assert_eq!(broker.depth(broker.topology.deliveries()).await, 0);
    rig.finish().await;
}

#[tokio::test]
async fn two_workers_share_the_queue_exactly_once() {
    let rig = Harness::new("twoworkers")
        .receiver(|_, _| Reply::ok().after(Duration::from_millis(2)))
        .start()
        .await;
    let (broker, receiver, a) = (&rig.broker, rig.receiver(), rig.worker());
    let b = RunningWorker::start(rig.config.clone()).await;
    const N: usize = 2000;
    broker
        .publish_many((0..N).map(|i| event(&format!("w-{i}"), 201, &receiver.url("/w"), "{}")))
        .await;
    let seen = receiver.wait_ids(N, LONG).await;
    assert!(
        seen.values().all(|&c| c == 1),
        "exactly once when receivers succeed"
    );
    let da = sample(
        &a.scrape().await,
        r#"webhook_delivered_total{webhook="201"}"#,
    );
    let db = sample(
        &b.scrape().await,
        r#"webhook_delivered_total{webhook="201"}"#,
    );
    assert_eq!(da + db, N as f64);
    assert!(da > 0.0 && db > 0.0, "both workers did work: {da} + {db}");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    rig.finish().await;
}
