//! Parked for more than the body: bad retry headers, too large, private targets.

use lapin::{
    BasicProperties,
    types::{AMQPValue, FieldTable},
};

use super::LONG;
use crate::harness::*;

#[tokio::test]
async fn bad_retry_headers_are_malformed() {
    let rig = Harness::new("badheaders").ok_receiver().start().await;
    let (broker, receiver) = (&rig.broker, rig.receiver());

    let body = event("h-1", 101, &receiver.url("/h"), "{}");
    let mut h = FieldTable::default();
    h.insert(
        "webhook-attempts".into(),
        AMQPValue::LongString("three".into()),
    );
    broker
        .publish_with(&body, BasicProperties::default().with_headers(h))
        .await;
    let mut h = FieldTable::default();
    h.insert("webhook-first-attempt-ms".into(), AMQPValue::LongInt(-5));
    broker
        .publish_with(&body, BasicProperties::default().with_headers(h))
        .await;

    let dead = broker.dead_messages(2, LONG).await;
    for d in &dead {
        assert_eq!(
            header_str(d, "webhook-drop-reason").as_deref(),
            Some("malformed")
        );
        assert!(
            header_str(d, "webhook-last-error")
                .unwrap()
                .contains("not a non-negative AMQP integer")
        );
    }
    assert!(receiver.requests().is_empty());
    rig.finish().await;
}

#[tokio::test]
async fn too_large_messages_are_parked() {
    let rig = Harness::new("toolarge")
        .config(|c| c.delivery.max_message_bytes = 1000)
        .ok_receiver()
        .start()
        .await;
    let (broker, receiver, worker) = (&rig.broker, rig.receiver(), rig.worker());

    let big = event(
        "big",
        101,
        &receiver.url("/big"),
        &format!(r#"{{"pad":"{}"}}"#, "x".repeat(2000)),
    );
    let fits = event("fits", 101, &receiver.url("/fits"), r#"{"pad":"x"}"#);
    broker.publish(&big).await;
    broker.publish(&fits).await;
    let dead = broker.dead_messages(1, LONG).await;
    assert_eq!(dead[0].data, big);
    assert_eq!(
        header_str(&dead[0], "webhook-drop-reason").as_deref(),
        Some("too_large")
    );
    assert!(
        header_str(&dead[0], "webhook-last-error")
            .unwrap()
            .contains("more than the limit of 1000")
    );
    receiver.wait_requests(1, LONG).await;
    assert!(receiver.requests_to("/big").is_empty());
    let text = worker.scrape().await;
    assert_eq!(
        sample(&text, r#"webhook_dropped_total{reason="too_large"}"#),
        1.0
    );
    rig.finish().await;
}

#[tokio::test]
async fn private_targets_are_forbidden_by_ip_and_by_name() {
    let rig = Harness::new("forbidden")
        .config(|c| c.delivery.allow_private_targets = false)
        .ok_receiver()
        .start()
        .await;
    let (broker, receiver, worker) = (&rig.broker, rig.receiver(), rig.worker());

    // Loopback only: other private ranges are covered by the guard's unit
    // tests, and no test sends traffic off this machine even by mistake.
    let port = receiver.addr.port();
    let targets = [
        format!("http://127.0.0.1:{port}/ip"),
        format!("http://localhost:{port}/dns"),
        format!("http://[::1]:{port}/v6"),
    ];
    for (i, url) in targets.iter().enumerate() {
        broker
            .publish(&event(&format!("f-{i}"), 101, url, "{}"))
            .await;
    }
    let dead = broker.dead_messages(targets.len(), LONG).await;
    for d in &dead {
        assert_eq!(
            header_str(d, "webhook-drop-reason").as_deref(),
            Some("forbidden_target")
        );
        assert!(
            header_str(d, "webhook-last-error")
                .unwrap()
                .starts_with("forbidden target")
        );
        assert_eq!(header_int(d, "webhook-attempts"), Some(1));
    }
    assert!(
        receiver.requests().is_empty(),
        "nothing reached the private receiver"
    );
    let text = worker.scrape().await;
    assert_eq!(
        sample(
            &text,
            r#"webhook_attempts_total{outcome="forbidden_target",webhook="101"}"#
        ),
        targets.len() as f64
    );
    assert_eq!(
        sample(&text, r#"webhook_dropped_total{reason="forbidden_target"}"#),
        targets.len() as f64
    );
    rig.finish().await;
}
