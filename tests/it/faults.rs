//! Fault tests against the real broker: workers killed mid-flight, SIGTERM
//! drains, connections closed by the broker, poison messages, a broker that
//! is not there, two workers sharing a queue, secrets kept out of logs.
//! Every test counts every event.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use crate::harness::*;

const LONG: Duration = Duration::from_secs(60);

fn ids(requests: &[Received]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in requests {
        *m.entry(r.header("x-comm100-delivery-id").to_string())
            .or_insert(0) += 1;
    }
    m
}

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

    let mut first = WorkerProcess::start(prefix, &["--concurrency", "100"], &[]).await;
    wait_for("some deliveries", LONG, async || {
        (receiver.requests().len() > 300).then_some(())
    })
    .await;
    first.kill_9();
    first.wait_exit(LONG).await;
    let before = receiver.requests().len();
    assert!(before < N, "killed mid-flight ({before} of {N} done)");

    let second = WorkerProcess::start(prefix, &["--concurrency", "100"], &[]).await;
    let seen = wait_for("every id delivered", LONG, async || {
        let m = ids(&receiver.requests());
        (m.len() == N).then_some(m)
    })
    .await;
    assert!((0..N).all(|i| seen.contains_key(&format!("k-{i}"))));
    let duplicates: usize = seen.values().map(|c| c - 1).sum();
    assert!(
        duplicates <= 100,
        "at most the in-flight window is redelivered, got {duplicates}"
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
    let delivered = ids(&receiver.requests());
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
async fn broker_closing_the_connection_is_survived() {
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

    // Close the worker's connection from the broker's side, twice.
    for round in 0..2 {
        close_worker_connection(prefix).await;
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
        let seen: HashSet<String> = ids(&receiver.requests()).into_keys().collect();
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
    let reason =
        webhook_worker::broker::dead_letters::parked_reason(dead[0].properties.headers().as_ref());
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
    let seen = wait_for("all delivered", LONG, async || {
        let m = ids(&receiver.requests());
        (m.len() == N).then_some(m)
    })
    .await;
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

#[tokio::test]
async fn metrics_agree_with_receivers_and_the_dead_queue() {
    let rig = Harness::new("metrics")
        // /ok succeeds; /flaky fails its first attempt per id; /gone is 410;
        // /down always 500 (4 attempts, then expired).
        .receiver(|r, _| match r.path.as_str() {
            "/ok" => Reply::ok(),
            "/flaky" if r.header("x-comm100-attempt") == "1" => Reply::status(503),
            "/flaky" => Reply::ok(),
            "/gone" => Reply::status(410),
            _ => Reply::status(500),
        })
        .start()
        .await;
    let (broker, receiver, worker) = (&rig.broker, rig.receiver(), rig.worker());
    let mut bodies = Vec::new();
    bodies.extend((0..20).map(|i| event(&format!("ok-{i}"), 101, &receiver.url("/ok"), "{}")));
    bodies.extend((0..10).map(|i| event(&format!("fl-{i}"), 102, &receiver.url("/flaky"), "{}")));
    bodies.extend((0..5).map(|i| event(&format!("go-{i}"), 103, &receiver.url("/gone"), "{}")));
    bodies.extend((0..3).map(|i| event(&format!("dn-{i}"), 104, &receiver.url("/down"), "{}")));
    bodies.extend((0..4).map(|i| format!("garbage {i}").into_bytes()));
    broker.publish_many(bodies).await;

    let dead = broker.dead_messages(5 + 3 + 4, LONG).await;
    receiver.wait_requests(20 + 20 + 5 + 12, LONG).await;
    let text = worker.scrape().await;
    let reasons = |r: &str| {
        dead.iter()
            .filter(|d| header_str(d, "webhook-drop-reason").as_deref() == Some(r))
            .count() as f64
    };
    assert_eq!(
        sample(&text, r#"webhook_dropped_total{reason="gone"}"#),
        reasons("gone")
    );
    assert_eq!(
        sample(&text, r#"webhook_dropped_total{reason="expired"}"#),
        reasons("expired")
    );
    assert_eq!(
        sample(&text, r#"webhook_dropped_total{reason="malformed"}"#),
        reasons("malformed")
    );
    assert_eq!(
        (reasons("gone"), reasons("expired"), reasons("malformed")),
        (5.0, 3.0, 4.0)
    );

    let delivered = |w: u16| {
        sample(
            &text,
            &format!(r#"webhook_delivered_total{{webhook="{w}"}}"#),
        )
    };
    assert_eq!(delivered(101), receiver.requests_to("/ok").len() as f64);
    assert_eq!(delivered(102), 10.0);
    assert_eq!(
        sample(
            &text,
            r#"webhook_attempts_total{outcome="http_error",webhook="102"}"#
        ),
        10.0
    );
    assert_eq!(
        sample(
            &text,
            r#"webhook_attempts_total{outcome="gone",webhook="103"}"#
        ),
        5.0
    );
    assert_eq!(
        sample(
            &text,
            r#"webhook_attempts_total{outcome="http_error",webhook="104"}"#
        ),
        12.0
    );
    let all_attempts: f64 = text
        .lines()
        .filter(|l| l.starts_with("webhook_attempts_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(
        all_attempts,
        receiver.requests().len() as f64,
        "one attempt per request received"
    );
    assert_eq!(
        sample(&text, r#"webhook_retried_total{tier="200ms"}"#),
        10.0 + 3.0 * 2.0
    );
    assert_eq!(sample(&text, r#"webhook_retried_total{tier="500ms"}"#), 3.0);
    assert_eq!(
        sample(
            &text,
            "webhook_attempt_duration_seconds_count{webhook=\"101\"}"
        ),
        20.0
    );
    assert_eq!(
        sample(&text, "webhook_delivery_latency_seconds_count"),
        30.0
    );
    assert_eq!(sample(&text, "webhook_in_flight"), 0.0);
    rig.finish().await;
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let rig = Harness::new("secrets")
        .receiver(|r, _| {
            if r.path == "/ok" {
                Reply::ok()
            } else {
                Reply::status(500)
            }
        })
        .declare()
        .await;
    let (broker, receiver, prefix) = (&rig.broker, rig.receiver(), rig.prefix());
    let default_secret = "default-SECRET-d9f8a7";
    let message_secret = "message-SECRET-71c2e0";
    let mut w = WorkerProcess::start(
        prefix,
        &["--signing-secret", default_secret],
        &[("RUST_LOG", "trace")],
    )
    .await;
    let extra = format!(r#""secret":"{message_secret}""#);
    broker
        .publish(&event_with(
            "sec-1",
            104,
            &receiver.url("/fail"),
            "{}",
            &extra,
        ))
        .await;
    broker
        .publish(&event("sec-2", 104, &receiver.url("/ok"), "{}"))
        .await;
    broker
        .publish(&event_with(
            "sec-3",
            400,
            &receiver.url("/ok"),
            "{}",
            &extra,
        ))
        .await; // malformed
    broker.dead_messages(2, LONG).await;
    w.terminate();
    w.wait_exit(LONG).await;
    let log = w.log_text();
    assert!(
        log.contains("sec-1") && log.contains("dropped"),
        "the log has the failures: {log}"
    );
    assert!(!log.contains(default_secret), "default secret leaked");
    assert!(!log.contains(message_secret), "message secret leaked");
    rig.finish().await;
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
    let tiers = broker.topology.tiers();
    let tier = broker
        .topology
        .retry_queue(tiers.of(Duration::from_millis(200)).unwrap());
    broker
        .channel
        .queue_delete(tier.as_str().into(), Default::default())
        .await
        .unwrap();

    let body = event("u-1", 104, &receiver.url("/u"), "{}");
    broker.publish(&body).await;
    // Never acked: nacked back each time, until the delivery limit parks it.
    let dead = broker.dead_messages(1, LONG).await;
    assert_eq!(dead[0].data, body);
    let reason =
        webhook_worker::broker::dead_letters::parked_reason(dead[0].properties.headers().as_ref());
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

/// A worker with one delivery held by a slow receiver (`/slow`, answered
/// after `slow`) and fast events (`/fast`) published behind it until the
/// worker has moved consumption to a fresh channel.
struct Rotated {
    concurrency: u64,
    rig: Rig,
    /// Fast events published so far (`fast-0` ...).
    sent: usize,
}

impl Rotated {
    async fn start(name: &str, slow: Duration) -> Self {
        let rig = Harness::new(name)
            .config(|c| c.delivery.timeout = Duration::from_secs(20))
            .receiver(move |r, _| {
                if r.path == "/slow" {
                    Reply::ok().after(slow)
                } else {
                    Reply::ok()
                }
            })
            .start()
            .await;
        let concurrency = u64::from(rig.config.delivery.concurrency);
        rig.broker
            .publish(&event("slow", 104, &rig.receiver().url("/slow"), "{}"))
            .await;
        let mut r = Self {
            concurrency,
            rig,
            sent: 0,
        };
        // Fast events keep finishing behind the slow one until the worker
        // rotates.
        wait_for("a consumer rotation", LONG, async || {
            r.publish_fast(20).await;
            let text = r.worker().scrape().await;
            (sample(&text, "webhook_consumer_rotations_total") >= 1.0).then_some(())
        })
        .await;
        r
    }

    async fn publish_fast(&mut self, n: usize) {
        let url = self.receiver().url("/fast");
        let from = self.sent;
        self.broker()
            .publish_many((from..from + n).map(|i| event(&format!("fast-{i}"), 104, &url, "{}")))
            .await;
        self.sent += n;
    }

    fn prefix(&self) -> &str {
        self.rig.prefix()
    }

    fn broker(&self) -> &Broker {
        &self.rig.broker
    }

    fn receiver(&self) -> &Receiver {
        self.rig.receiver()
    }

    fn worker(&self) -> &RunningWorker {
        self.rig.worker()
    }

    fn deliveries(&self) -> String {
        format!("{}.deliveries", self.prefix())
    }

    async fn stop(self) {
        self.rig.finish().await;
    }
}

/// A delivery that stays unfinished blocks `multiple` acks for everything
/// behind it; the worker then consumes on a fresh channel and retires the
/// old one once its slow delivery settles. Every event arrives exactly
/// once, the queue ends empty with one consumer, and the retired channel
/// is closed.
#[tokio::test]
async fn a_slow_delivery_moves_consumption_to_a_fresh_channel() {
    const SLOW: Duration = Duration::from_secs(5);
    let mut r = Rotated::start("rotate", SLOW).await;
    // The fresh channel delivers while the slow one is still in flight.
    r.publish_fast(200).await;
    let total = r.sent + 1;
    let got = r.receiver().wait_requests(total, LONG).await;
    let slow_answered = got.iter().find(|q| q.path == "/slow").unwrap().at + SLOW;
    assert!(
        got.iter().all(|q| q.at < slow_answered),
        "every fast event arrived while the slow one was held"
    );
    let mut seen = HashSet::new();
    for q in &got {
        assert!(
            seen.insert(q.header("x-comm100-delivery-id").to_string()),
            "delivered twice: {}",
            q.header("x-comm100-delivery-id")
        );
    }
    assert!(seen.contains("slow"));
    // Everything is acked, one consumer is left, and the retired channel
    // is closed: the worker's connection keeps its consumer and publisher
    // channels only.
    let deliveries = r.deliveries();
    wait_for(
        "queue settled, one consumer, two channels",
        LONG,
        async || {
            let q = management_queue(&deliveries).await;
            let channels = worker_channels(r.prefix()).await;
            (q["messages"].as_u64() == Some(0)
                && q["consumers"].as_u64() == Some(1)
                && q["consumer_details"][0]["prefetch_count"].as_u64() == Some(r.concurrency)
                && channels.len() == 2)
                .then_some(())
        },
    )
    .await;
    let text = r.worker().scrape().await;
    assert_eq!(
        sample(&text, r#"webhook_delivered_total{webhook="104"}"#),
        total as f64
    );
    r.stop().await;
}

/// The connection drops while a retired channel still holds a slow
/// delivery: the worker reconnects, and every event still arrives (the slow
/// one possibly twice: its ack died with the connection).
#[tokio::test]
async fn losing_the_connection_during_a_rotation_loses_nothing() {
    let mut r = Rotated::start("rotlost", Duration::from_secs(3)).await;
    close_worker_connection(r.prefix()).await;
    wait_for("a reconnect", LONG, async || {
        let text = r.worker().scrape().await;
        (sample(&text, "webhook_broker_reconnects_total") >= 1.0).then_some(())
    })
    .await;
    r.publish_fast(100).await;
    let expected: HashSet<String> = (0..r.sent)
        .map(|i| format!("fast-{i}"))
        .chain(["slow".to_string()])
        .collect();
    wait_for("every event delivered", LONG, async || {
        let seen: HashSet<String> = r
            .receiver()
            .requests()
            .iter()
            .map(|q| q.header("x-comm100-delivery-id").to_string())
            .collect();
        expected.is_subset(&seen).then_some(())
    })
    .await;
    let deliveries = r.deliveries();
    wait_for("the queue settled", LONG, async || {
        let q = management_queue(&deliveries).await;
        (q["messages"].as_u64() == Some(0)).then_some(())
    })
    .await;
    assert_eq!(
        r.broker().depth(&format!("{}.dead", r.prefix())).await,
        0,
        "nothing parked"
    );
    r.stop().await;
}

/// Shutdown's drain covers a retired channel: its slow delivery finishes
/// within the grace and is acked before the worker stops, so the broker has
/// nothing to redeliver.
#[tokio::test]
async fn shutdown_drains_a_retired_channel() {
    const SLOW: Duration = Duration::from_secs(3);
    let r = Rotated::start("rotstop", SLOW).await;
    let fast = r.sent;
    wait_for("the fast events delivered", LONG, async || {
        (r.receiver().requests_to("/fast").len() == fast).then_some(())
    })
    .await;
    let slow_at = r.receiver().requests_to("/slow")[0].at;
    assert!(
        Instant::now() < slow_at + SLOW,
        "the slow one is still held"
    );
    let deliveries = r.deliveries();
    r.worker().stop().await.unwrap();
    assert!(
        Instant::now() >= slow_at + SLOW,
        "the worker waited for the retired channel's delivery"
    );
    assert_eq!(r.receiver().requests_to("/slow").len(), 1);
    assert_eq!(r.receiver().requests_to("/fast").len(), fast);
    assert_eq!(
        r.broker().depth(&deliveries).await,
        0,
        "nothing returned to the queue"
    );
    r.stop().await;
}
