//! What the worker reports agrees with what happened: its metrics with
//! the receivers and the dead queue, and its logs never hold a secret.

use std::time::Duration;

use crate::harness::*;

const LONG: Duration = Duration::from_secs(60);

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
