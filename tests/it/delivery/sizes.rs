//! Large bodies: an 8 MiB response; a message near the 1 MiB limit across many AMQP frames.

use super::LONG;
use crate::harness::*;

#[tokio::test]
async fn a_large_response_body_does_not_fail_the_delivery() {
    let rig = Harness::new("bigbody")
        // 8 MiB answers: the status decides (the worker reads at most 64 KiB
        // of a body, then drops the connection).
        .receiver(|_, _| Reply::ok().body(vec![b'x'; 8 << 20]))
        .start()
        .await;
    let (broker, receiver, worker) = (&rig.broker, rig.receiver(), rig.worker());
    broker
        .publish_many((0..5).map(|i| event(&format!("big-{i}"), 104, &receiver.url("/big"), "{}")))
        .await;
    receiver.wait_requests(5, LONG).await;
    let text = wait_for("five successes", LONG, async || {
        let text = worker.scrape().await;
        (sample(&text, r#"webhook_delivered_total{webhook="104"}"#) == 5.0).then_some(text)
    })
    .await;
    assert_eq!(
        sample(
            &text,
            r#"webhook_attempts_total{outcome="success",webhook="104"}"#
        ),
        5.0
    );
    assert_eq!(receiver.requests().len(), 5, "no retries");
    rig.finish().await;
}

/// The worker asks for 16 KiB AMQP frames; a message near the 1 MiB limit
/// then crosses the broker in dozens of frames each way — delivered, failed,
/// published as a retry copy, redelivered — and arrives byte for byte.
#[tokio::test]
async fn a_message_near_the_size_limit_crosses_many_frames_intact() {
    let rig = Harness::new("bigmsg")
        .receiver(|_, seen| {
            if seen == 0 {
                Reply::status(500)
            } else {
                Reply::ok()
            }
        })
        .start()
        .await;
    let config = &rig.config;
    assert_eq!(
        config.delivery.max_message_bytes,
        1 << 20,
        "the contract's default"
    );
    let (broker, receiver, prefix) = (&rig.broker, rig.receiver(), rig.prefix());
    let data = format!(r#"{{"blob":"{}"}}"#, "x".repeat(1_000_000));
    let message = event("big-1", 105, &receiver.url("/big"), &data);
    assert!(message.len() < 1 << 20);
    broker.publish(&message).await;
    let got = receiver.wait_requests(2, LONG).await;
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.header("x-comm100-attempt"), (i + 1).to_string());
        assert!(r.body == data.as_bytes(), "attempt {} body intact", i + 1);
    }
    let connection = worker_connection(prefix, Role::Consuming).await;
    assert_eq!(connection["frame_max"].as_u64(), Some(16 * 1024));
    rig.finish().await;
}
