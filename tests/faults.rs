//! Fault tests against the real broker: workers killed mid-flight, SIGTERM
//! drains, connections closed by the broker, poison messages, a broker that
//! is not there, two workers sharing a queue, secrets kept out of logs.
//! Every test counts every event.

mod common;

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::*;
use webhook_worker::config::Config;

const LONG: Duration = Duration::from_secs(60);

/// A worker process (the release-or-debug binary built for the tests).
struct WorkerProcess {
    child: Child,
    metrics: String,
    log: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl WorkerProcess {
    /// Starts `webhook-worker run` with `args` after the test defaults.
    async fn start(prefix: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("{prefix}-{port}.log"));
        let metrics_addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_webhook-worker"));
        cmd.args([
            "run",
            "--prefix",
            prefix,
            "--metrics-addr",
            &metrics_addr,
            "--allow-private-targets",
        ])
        .args(["--retry-schedule", "200ms*2,500ms", "--dead-ttl", "10m"])
        .args(args)
        .env("AMQP_URL", amqp_url())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let w = Self {
            child,
            metrics: format!("http://{metrics_addr}"),
            log,
        };
        wait_for("worker process ready", LONG, async || {
            (w.readyz().await == Some(200)).then_some(())
        })
        .await;
        w
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        let r = reqwest::get(format!("{}{path}", self.metrics)).await.ok()?;
        let status = r.status().as_u16();
        Some((status, r.text().await.ok()?))
    }

    async fn readyz(&self) -> Option<u16> {
        self.get("/readyz").await.map(|(s, _)| s)
    }

    async fn scrape(&self) -> String {
        self.get("/metrics").await.expect("metrics").1
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }

    /// Waits for the process to exit; returns its code and how long it took.
    async fn wait_exit(&mut self, deadline: Duration) -> (Option<i32>, Duration) {
        let start = Instant::now();
        let status = wait_for("worker exit", deadline, async || {
            self.child.try_wait().unwrap()
        })
        .await;
        (status.code(), start.elapsed())
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn ids(requests: &[Received]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in requests {
        *m.entry(r.header("x-comm100-delivery-id").to_string())
            .or_insert(0) += 1;
    }
    m
}

/// Config used to declare the topology the worker processes expect.
fn process_config(prefix: &str) -> Config {
    let mut c = test_config(prefix);
    c.dead_ttl = Duration::from_secs(600);
    c
}

#[tokio::test]
async fn kill_9_mid_flight_loses_nothing() {
    let prefix = unique_prefix("kill9");
    let broker = Broker::new(&process_config(&prefix)).await;
    let receiver = Receiver::start(|_, _| Reply::ok().after(Duration::from_millis(20))).await;
    const N: usize = 3000;
    broker
        .publish_many((0..N).map(|i| event(&format!("k-{i}"), 104, &receiver.url("/k"), "{}")))
        .await;

    let mut first = WorkerProcess::start(&prefix, &["--concurrency", "100"], &[]).await;
    wait_for("some deliveries", LONG, async || {
        (receiver.requests().len() > 300).then_some(())
    })
    .await;
    first.signal("-KILL");
    first.wait_exit(LONG).await;
    let before = receiver.requests().len();
    assert!(before < N, "killed mid-flight ({before} of {N} done)");

    let second = WorkerProcess::start(&prefix, &["--concurrency", "100"], &[]).await;
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
    broker.cleanup().await;
}

#[tokio::test]
async fn sigterm_drains_in_flight_deliveries_and_exits_0() {
    let prefix = unique_prefix("sigterm");
    let broker = Broker::new(&process_config(&prefix)).await;
    let receiver = Receiver::start(|_, _| Reply::ok().after(Duration::from_millis(1500))).await;
    const N: usize = 200;
    broker
        .publish_many((0..N).map(|i| event(&format!("s-{i}"), 104, &receiver.url("/s"), "{}")))
        .await;

    let mut w = WorkerProcess::start(
        &prefix,
        &["--concurrency", "50", "--shutdown-grace", "10s"],
        &[],
    )
    .await;
    wait_for("50 in flight", LONG, async || {
        (receiver.requests().len() >= 50).then_some(())
    })
    .await;
    w.signal("-TERM");
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
    broker.cleanup().await;
}

#[tokio::test]
async fn sigterm_with_grace_exhausted_still_exits_0_and_returns_messages() {
    let prefix = unique_prefix("grace");
    let broker = Broker::new(&process_config(&prefix)).await;
    let receiver = Receiver::start(|_, _| Reply::ok().after(Duration::from_secs(30))).await;
    broker
        .publish_many((0..10).map(|i| event(&format!("g-{i}"), 104, &receiver.url("/g"), "{}")))
        .await;
    let mut w = WorkerProcess::start(
        &prefix,
        &["--shutdown-grace", "500ms", "--timeout", "60s"],
        &[],
    )
    .await;
    receiver.wait_requests(10, LONG).await;
    w.signal("-TERM");
    let (code, took) = w.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(5), "grace 500ms, took {took:?}");
    // The abandoned deliveries went back to the queue.
    wait_for("messages returned", LONG, async || {
        (broker.depth(broker.topology.deliveries()).await == 10).then_some(())
    })
    .await;
    broker.cleanup().await;
}

#[tokio::test]
async fn second_signal_exits_at_once_and_loses_nothing() {
    let prefix = unique_prefix("twice");
    let broker = Broker::new(&process_config(&prefix)).await;
    let receiver = Receiver::start(|_, _| Reply::ok().after(Duration::from_secs(30))).await;
    broker
        .publish_many((0..5).map(|i| event(&format!("t-{i}"), 104, &receiver.url("/t"), "{}")))
        .await;
    let mut w = WorkerProcess::start(&prefix, &["--timeout", "60s"], &[]).await;
    receiver.wait_requests(5, LONG).await;
    w.signal("-TERM");
    wait_for("draining", LONG, async || {
        w.log_text().contains("draining").then_some(())
    })
    .await;
    w.signal("-INT");
    let (code, took) = w.wait_exit(Duration::from_secs(5)).await;
    assert_ne!(code, Some(0), "forced exit");
    assert!(took < Duration::from_secs(2));
    wait_for("messages returned", LONG, async || {
        (broker.depth(broker.topology.deliveries()).await == 5).then_some(())
    })
    .await;
    broker.cleanup().await;
}

#[tokio::test]
async fn broker_closing_the_connection_is_survived() {
    let prefix = unique_prefix("reconnect");
    let config = process_config(&prefix);
    let broker = Broker::new(&config).await;
    let receiver = Receiver::start(|_, _| Reply::ok().after(Duration::from_millis(5))).await;
    let worker = RunningWorker::start(config).await;
    let readyz = format!("http://{}/readyz", worker.metrics_addr);

    broker
        .publish_many(
            (0..200).map(|i| event(&format!("before-{i}"), 104, &receiver.url("/b"), "{}")),
        )
        .await;
    receiver.wait_requests(50, LONG).await;

    // Close the worker's connection from the broker's side, twice.
    for round in 0..2 {
        let name = worker_connection(&prefix).await;
        management(
            reqwest::Method::DELETE,
            &format!("connections/{}", urlencode(&name)),
        )
        .await;
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
    broker.cleanup().await;
}

/// The management API's name of the connection of the worker with `prefix`
/// (its client-provided name carries the prefix), once it is listed.
async fn worker_connection(prefix: &str) -> String {
    wait_for("worker connection listed", LONG, async || {
        management_connections().await.into_iter().find_map(|c| {
            let n = c
                .get("client_properties")?
                .get("connection_name")?
                .as_str()?;
            n.contains(&format!("prefix {prefix} "))
                .then(|| c["name"].as_str().unwrap().to_string())
        })
    })
    .await
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn unreachable_broker_is_retried_forever_with_health_up() {
    let prefix = unique_prefix("nobroker");
    let port = free_port();
    let log = std::env::temp_dir().join(format!("{prefix}.log"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_webhook-worker"))
        .args([
            "--prefix",
            &prefix,
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .env(
            "AMQP_URL",
            format!("amqp://guest:guest@127.0.0.1:{}/%2f", free_port()),
        )
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_for("three failed attempts logged", LONG, async || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        (text.matches("cannot reach the broker; retrying").count() >= 3).then_some(())
    })
    .await;
    assert!(child.try_wait().unwrap().is_none(), "still running");
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
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = wait_for("exit", LONG, async || child.try_wait().unwrap()).await;
    assert_eq!(status.code(), Some(0));
    let _ = std::fs::remove_file(&log);
}

#[tokio::test]
async fn a_message_that_keeps_killing_workers_is_parked_by_the_broker() {
    let prefix = unique_prefix("poison");
    let mut config = process_config(&prefix);
    config.delivery_limit = 2;
    let broker = Broker::new(&config).await;
    // The receiver never answers in time: every worker that takes the
    // message is killed while holding it.
    let receiver = Receiver::start(|_, _| Reply::ok().after(Duration::from_secs(60))).await;
    broker
        .publish(&event("poison-1", 104, &receiver.url("/p"), "{}"))
        .await;
    let args = ["--delivery-limit", "2", "--timeout", "60s"];
    for round in 1..=3 {
        let mut w = WorkerProcess::start(&prefix, &args, &[]).await;
        receiver.wait_requests(round, LONG).await;
        w.signal("-KILL");
        w.wait_exit(LONG).await;
    }
    let dead = broker.dead_messages(1, LONG).await;
    assert_eq!(
        header(&dead[0], "webhook-drop-reason"),
        None,
        "parked by the broker, not the worker"
    );
    let reason = webhook_worker::dead::parked_reason(dead[0].properties.headers().as_ref());
    assert_eq!(reason, "delivery_limit", "the broker's x-death says why");
    assert_eq!(broker.depth(broker.topology.deliveries()).await, 0);
    broker.cleanup().await;
}

#[tokio::test]
async fn two_workers_share_the_queue_exactly_once() {
    let prefix = unique_prefix("twoworkers");
    let config = process_config(&prefix);
    let broker = Broker::new(&config).await;
    let receiver = Receiver::start(|_, _| Reply::ok().after(Duration::from_millis(2))).await;
    let a = RunningWorker::start(config.clone()).await;
    let b = RunningWorker::start(config).await;
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
    broker.cleanup().await;
}

#[tokio::test]
async fn metrics_agree_with_receivers_and_the_dead_queue() {
    let prefix = unique_prefix("metrics");
    let config = process_config(&prefix);
    let broker = Broker::new(&config).await;
    // /ok succeeds; /flaky fails its first attempt per id; /gone is 410;
    // /down always 500 (4 attempts, then expired).
    let receiver = Receiver::start(|r, _| match r.path.as_str() {
        "/ok" => Reply::ok(),
        "/flaky" if r.header("x-comm100-attempt") == "1" => Reply::status(503),
        "/flaky" => Reply::ok(),
        "/gone" => Reply::status(410),
        _ => Reply::status(500),
    })
    .await;
    let worker = RunningWorker::start(config).await;
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
    worker.stop().await.unwrap();
    broker.cleanup().await;
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let prefix = unique_prefix("secrets");
    let broker = Broker::new(&process_config(&prefix)).await;
    let receiver = Receiver::start(|r, _| {
        if r.path == "/ok" {
            Reply::ok()
        } else {
            Reply::status(500)
        }
    })
    .await;
    let default_secret = "default-SECRET-d9f8a7";
    let message_secret = "message-SECRET-71c2e0";
    let mut w = WorkerProcess::start(
        &prefix,
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
    w.signal("-TERM");
    w.wait_exit(LONG).await;
    let log = w.log_text();
    assert!(
        log.contains("sec-1") && log.contains("dropped"),
        "the log has the failures: {log}"
    );
    assert!(!log.contains(default_secret), "default secret leaked");
    assert!(!log.contains(message_secret), "message secret leaked");
    broker.cleanup().await;
}

#[tokio::test]
async fn an_unroutable_retry_copy_returns_the_original_to_the_broker() {
    let prefix = unique_prefix("unroutable");
    let mut config = process_config(&prefix);
    config.delivery_limit = 2;
    let broker = Broker::new(&config).await;
    let receiver = Receiver::start(|_, _| Reply::status(500)).await;
    let worker = RunningWorker::start(config).await;
    // Someone deletes the retry tier after the worker declared it: the
    // retry copy comes back unroutable (mandatory).
    let tier = broker.topology.retry_queue(Duration::from_millis(200));
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
    let reason = webhook_worker::dead::parked_reason(dead[0].properties.headers().as_ref());
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
    worker.stop().await.unwrap();
    broker.cleanup().await;
}

/// A delivery that stays unfinished blocks `multiple` acks for everything
/// behind it; the worker then consumes on a fresh channel and retires the
/// old one once its slow delivery settles. Every event arrives exactly
/// once, the queue ends empty with one consumer, and the retired channel
/// is closed.
#[tokio::test]
async fn a_slow_delivery_moves_consumption_to_a_fresh_channel() {
    const SLOW: Duration = Duration::from_secs(5);
    let prefix = unique_prefix("rotate");
    let mut config = process_config(&prefix);
    config.timeout = Duration::from_secs(20);
    let concurrency = u64::from(config.concurrency);
    let broker = Broker::new(&config).await;
    let receiver = Receiver::start(|r, _| {
        if r.path == "/slow" {
            Reply::ok().after(SLOW)
        } else {
            Reply::ok()
        }
    })
    .await;
    let worker = RunningWorker::start(config).await;
    broker
        .publish(&event("slow", 104, &receiver.url("/slow"), "{}"))
        .await;
    let fast = |from: usize, n: usize| {
        (from..from + n).map(|i| event(&format!("fast-{i}"), 104, &receiver.url("/fast"), "{}"))
    };
    // Fast events keep finishing behind the slow one until the worker
    // moves to a fresh channel.
    let mut sent = 0;
    wait_for("a consumer rotation", LONG, async || {
        broker.publish_many(fast(sent, 20)).await;
        sent += 20;
        let text = worker.scrape().await;
        (sample(&text, "webhook_consumer_rotations_total") >= 1.0).then_some(())
    })
    .await;
    // The fresh channel delivers while the slow one is still in flight.
    broker.publish_many(fast(sent, 200)).await;
    let total = sent + 200 + 1;
    let got = receiver.wait_requests(total, LONG).await;
    let slow_answered = got.iter().find(|r| r.path == "/slow").unwrap().at + SLOW;
    assert!(
        got.iter().all(|r| r.at < slow_answered),
        "every fast event arrived while the slow one was held"
    );
    let mut seen = HashSet::new();
    for r in &got {
        assert!(
            seen.insert(r.header("x-comm100-delivery-id").to_string()),
            "delivered twice: {}",
            r.header("x-comm100-delivery-id")
        );
    }
    assert!(seen.contains("slow"));
    // Everything is acked, one consumer is left, and the retired channel
    // is closed: the worker's connection keeps its consumer and publisher
    // channels only.
    let deliveries = format!("{prefix}.deliveries");
    let connection = worker_connection(&prefix).await;
    wait_for(
        "queue settled, one consumer, two channels",
        LONG,
        async || {
            let q = management_queue(&deliveries).await;
            let channels: Vec<serde_json::Value> =
                management_json(&format!("connections/{}/channels", urlencode(&connection))).await;
            (q["messages"].as_u64() == Some(0)
                && q["consumers"].as_u64() == Some(1)
                && q["consumer_details"][0]["prefetch_count"].as_u64() == Some(concurrency)
                && channels.len() == 2)
                .then_some(())
        },
    )
    .await;
    let text = worker.scrape().await;
    assert_eq!(
        sample(&text, r#"webhook_delivered_total{webhook="104"}"#),
        total as f64
    );
    worker.stop().await.unwrap();
    broker.cleanup().await;
}

/// The connection drops while a retired channel still holds a slow
/// delivery: the worker reconnects, and every event still arrives (the slow
/// one possibly twice: its ack died with the connection).
#[tokio::test]
async fn losing_the_connection_during_a_rotation_loses_nothing() {
    const SLOW: Duration = Duration::from_secs(3);
    let prefix = unique_prefix("rotlost");
    let mut config = process_config(&prefix);
    config.timeout = Duration::from_secs(20);
    let broker = Broker::new(&config).await;
    let receiver = Receiver::start(|r, _| {
        if r.path == "/slow" {
            Reply::ok().after(SLOW)
        } else {
            Reply::ok()
        }
    })
    .await;
    let worker = RunningWorker::start(config).await;
    let fast = |from: usize, n: usize| {
        (from..from + n).map(|i| event(&format!("fast-{i}"), 104, &receiver.url("/fast"), "{}"))
    };
    broker
        .publish(&event("slow", 104, &receiver.url("/slow"), "{}"))
        .await;
    let mut sent = 0;
    wait_for("a consumer rotation", LONG, async || {
        broker.publish_many(fast(sent, 20)).await;
        sent += 20;
        let text = worker.scrape().await;
        (sample(&text, "webhook_consumer_rotations_total") >= 1.0).then_some(())
    })
    .await;
    let name = worker_connection(&prefix).await;
    management(
        reqwest::Method::DELETE,
        &format!("connections/{}", urlencode(&name)),
    )
    .await;
    wait_for("a reconnect", LONG, async || {
        let text = worker.scrape().await;
        (sample(&text, "webhook_broker_reconnects_total") >= 1.0).then_some(())
    })
    .await;
    broker.publish_many(fast(sent, 100)).await;
    sent += 100;
    let expected: HashSet<String> = (0..sent)
        .map(|i| format!("fast-{i}"))
        .chain(["slow".to_string()])
        .collect();
    wait_for("every event delivered", LONG, async || {
        let seen: HashSet<String> = receiver
            .requests()
            .iter()
            .map(|r| r.header("x-comm100-delivery-id").to_string())
            .collect();
        expected.is_subset(&seen).then_some(())
    })
    .await;
    let deliveries = format!("{prefix}.deliveries");
    wait_for("the queue settled", LONG, async || {
        let q = management_queue(&deliveries).await;
        (q["messages"].as_u64() == Some(0)).then_some(())
    })
    .await;
    assert_eq!(
        broker.depth(&format!("{prefix}.dead")).await,
        0,
        "nothing parked"
    );
    worker.stop().await.unwrap();
    broker.cleanup().await;
}
