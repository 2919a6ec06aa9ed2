//! One receiver's trouble stays its own: slow ones isolated, stalled ones capped, busy ones waited.

use std::time::Duration;

use super::LONG;
use crate::harness::*;

#[tokio::test]
async fn a_slow_receiver_does_not_hold_up_the_others() {
    let rig = Harness::new("isolation")
        .config(|c| c.delivery.timeout = Duration::from_secs(10))
        .receiver(|r, _| {
            if r.path == "/slow" {
                Reply::ok().after(Duration::from_secs(4))
            } else {
                Reply::ok()
            }
        })
        .start()
        .await;
    let (broker, receiver) = (&rig.broker, rig.receiver());
    broker
        .publish_many(
            (0..5).map(|i| event(&format!("slow-{i}"), 104, &receiver.url("/slow"), "{}")),
        )
        .await;
    broker
        .publish_many(
            (0..50).map(|i| event(&format!("fast-{i}"), 104, &receiver.url("/fast"), "{}")),
        )
        .await;
    wait_for("fast deliveries", Duration::from_secs(3), async || {
        (receiver.requests_to("/fast").len() == 50).then_some(())
    })
    .await;
    rig.finish().await;
}

#[tokio::test]
async fn a_stalled_receiver_is_capped_and_its_overflow_deferred() {
    let rig = Harness::new("hostcap")
        .config(|c| {
            c.delivery.host_concurrency = 2;
            c.delivery.timeout = Duration::from_secs(2);
        })
        .receiver(|_, _| Reply::ok().after(Duration::from_secs(5)))
        .ok_receiver()
        .start()
        .await;
    let (broker, worker) = (&rig.broker, rig.worker());
    let (stalled, healthy) = (&rig.receivers[0], &rig.receivers[1]);

    broker
        .publish_many(
            (0..10).map(|i| event(&format!("stalled-{i}"), 104, &stalled.url("/h"), "{}")),
        )
        .await;
    broker
        .publish_many(
            (0..50).map(|i| event(&format!("healthy-{i}"), 104, &healthy.url("/ok"), "{}")),
        )
        .await;
    healthy.wait_requests(50, LONG).await;
    assert_eq!(
        stalled.requests().len(),
        2,
        "two slots for the stalled receiver, no more"
    );
    // A receiver too new to judge is waited for (250 ms), then deferred.
    let text = wait_for("the other eight deferred", LONG, async || {
        let text = worker.scrape().await;
        (sample(&text, "webhook_deferred_total") >= 8.0).then_some(text)
    })
    .await;
    assert_eq!(stalled.requests().len(), 2, "still no more than two");
    // Deferred deliveries are not attempts.
    assert_eq!(
        sample(
            &text,
            r#"webhook_attempts_total{outcome="success",webhook="104"}"#
        ),
        50.0
    );
    rig.finish().await;
}

#[tokio::test]
async fn a_busy_answering_receiver_is_waited_for_not_deferred() {
    let mut rig = Harness::new("hostbusy")
        .alone()
        .config(|c| c.delivery.host_concurrency = 4)
        .receiver(|_, _| Reply::ok().after(Duration::from_millis(20)))
        .declare()
        .await;
    let (broker, receiver) = (&rig.broker, rig.receiver());
    // A backlog at start-up for a receiver the worker has never seen: 100
    // at once to a receiver that takes 4 at a time, 20 ms each. It answers,
    // so each delivery waits for its turn; none is deferred.
    broker
        .publish_many(
            (0..100).map(|i| event(&format!("burst-{i}"), 104, &receiver.url("/b"), "{}")),
        )
        .await;
    rig.start_worker().await;
    let (receiver, worker) = (rig.receiver(), rig.worker());
    let text = wait_for("100 delivered", LONG, async || {
        let text = worker.scrape().await;
        (sample(&text, r#"webhook_delivered_total{webhook="104"}"#) == 100.0).then_some(text)
    })
    .await;
    assert_eq!(sample(&text, "webhook_deferred_total"), 0.0);
    assert_eq!(receiver.requests().len(), 100, "each once");
    rig.finish().await;
}
