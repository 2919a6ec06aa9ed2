//! `dead list` and `dead replay` against the real broker.

use std::time::Duration;

use lapin::types::{AMQPValue, FieldTable};

use crate::harness::*;

const LONG: Duration = Duration::from_secs(30);

/// The cells of a `dead list` table row (columns are two or more spaces
/// apart).
fn columns(l: &str) -> Vec<&str> {
    l.split("  ")
        .filter(|c| !c.is_empty())
        .map(str::trim)
        .collect()
}

#[tokio::test]
async fn list_shows_parked_messages_without_consuming_them() {
    let rig = Harness::new("deadlist")
        .receiver(|_, _| Reply::status(410))
        .start()
        .await;
    let (broker, receiver, worker, prefix) =
        (&rig.broker, rig.receiver(), rig.worker(), rig.prefix());
    broker
        .publish(&event("gone-1", 104, &receiver.url("/g"), "{}"))
        .await;
    broker.publish(b"garbage").await;
    wait_for("two parked", LONG, async || {
        (broker.depth(broker.topology.dead()).await == 2).then_some(())
    })
    .await;
    worker.stop().await.unwrap();

    let out = cli(&["dead", "list", "--prefix", prefix]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();

    assert_eq!(
        columns(lines[0]),
        [
            "ID",
            "WEBHOOK",
            "HOST",
            "REASON",
            "ATTEMPTS",
            "PARKED AT",
            "LAST ERROR"
        ]
    );
    let gone = lines
        .iter()
        .find(|l| l.starts_with("gone-1 "))
        .expect(&stdout);
    let gone = columns(gone);
    assert_eq!(
        gone[..5],
        ["gone-1", "104", "127.0.0.1", "gone", "1"],
        "{stdout}"
    );
    assert_eq!(gone[6], "HTTP 410 Gone");
    let garbage = lines
        .iter()
        .find(|l| l.contains("malformed"))
        .expect(&stdout);
    assert!(
        garbage.starts_with("? ") && garbage.ends_with("body is not a JSON object"),
        "{stdout}"
    );
    assert_eq!(
        broker.depth(broker.topology.dead()).await,
        2,
        "listing consumes nothing"
    );

    let out = cli(&["dead", "list", "--prefix", prefix, "--limit", "1"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        2,
        "header + 1"
    );
    rig.finish().await;
}

#[tokio::test]
async fn replay_moves_messages_back_with_retry_state_cleared() {
    // The receiver is gone at first, then comes back.
    let back = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let b = back.clone();
    let rig = Harness::new("replay")
        .receiver(move |_, _| {
            if b.load(std::sync::atomic::Ordering::SeqCst) {
                Reply::ok()
            } else {
                Reply::status(410)
            }
        })
        .start()
        .await;
    let (broker, receiver, worker, prefix) =
        (&rig.broker, rig.receiver(), rig.worker(), rig.prefix());

    for i in 0..5 {
        let mut h = FieldTable::default();
        h.insert(
            "trace-id".into(),
            AMQPValue::LongString(format!("trace-{i}").into()),
        );
        let body = event(&format!("rp-{i}"), 201, &receiver.url("/r"), "{}");
        broker
            .publish_with(&body, lapin::BasicProperties::default().with_headers(h))
            .await;
    }
    broker.publish(b"not json").await;
    wait_for("six parked", LONG, async || {
        (broker.depth(broker.topology.dead()).await == 6).then_some(())
    })
    .await;
    assert_eq!(receiver.requests().len(), 5);

    back.store(true, std::sync::atomic::Ordering::SeqCst);
    // --limit 2 --reason gone: two move, the rest stay.
    let out = cli(&[
        "dead", "replay", "--prefix", prefix, "--reason", "gone", "--limit", "2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("replayed 2 message(s)"));
    receiver.wait_requests(7, LONG).await;
    assert_eq!(broker.depth(broker.topology.dead()).await, 4);

    // Only `gone` ones: the malformed one stays parked.
    let out = cli(&["dead", "replay", "--prefix", prefix, "--reason", "gone"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("replayed 3 message(s); 1 left parked\n  by reason: gone 3"),
        "{stdout}"
    );
    let got = receiver.wait_requests(10, LONG).await;
    let replayed = &got[5..];
    for r in replayed {
        assert_eq!(
            r.header("x-comm100-attempt"),
            "1",
            "attempts cleared: the replay is a first attempt"
        );
    }
    let mut ids: Vec<_> = replayed
        .iter()
        .map(|r| r.header("x-comm100-delivery-id").to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["rp-0", "rp-1", "rp-2", "rp-3", "rp-4"]);
    wait_for(
        "malformed one re-parked? no: still parked",
        LONG,
        async || (broker.depth(broker.topology.dead()).await == 1).then_some(()),
    )
    .await;
    let text = worker.scrape().await;
    assert_eq!(
        sample(&text, r#"webhook_delivered_total{webhook="201"}"#),
        5.0
    );
    worker.stop().await.unwrap();

    // Replay without a filter moves the rest; it comes back as malformed
    // (there is no worker now, so it stays in deliveries).
    let out = cli(&["dead", "replay", "--prefix", prefix]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("replayed 1 message(s); 0 left parked"));
    let back = broker.drain(broker.topology.deliveries()).await;
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].data, b"not json");
    assert_eq!(header(&back[0], "webhook-attempts"), None);
    assert_eq!(header(&back[0], "webhook-first-attempt-ms"), None);
    assert_eq!(header(&back[0], "webhook-drop-reason"), None);
    rig.finish().await;
}
