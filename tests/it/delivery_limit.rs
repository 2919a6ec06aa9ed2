//! The bound of contract section 6 on every broker version: a message
//! that cannot be settled is tried at most `WEBHOOK_DELIVERY_LIMIT` + 1
//! times, whatever the broker counts as a redelivery. (The unroutable retry
//! copy, returned by `basic.reject`, which every version counts, is
//! `broker_faults::an_unroutable_retry_copy_returns_the_original_to_the_broker`.)

use std::time::Duration;

use lapin::options::{BasicGetOptions, BasicNackOptions};

use crate::harness::*;

const LONG: Duration = Duration::from_secs(60);

/// The bound of contract section 6 whatever the broker counts: a message
/// that was handed out and returned `WEBHOOK_DELIVERY_LIMIT` + 1 times
/// already (here by a consumer that `basic.nack`s it, which RabbitMQ 4.3
/// no longer counts toward `x-delivery-limit`, only in `x-acquired-count`)
/// is parked without an attempt: by the broker on 3.10 and 4.0, by the
/// worker's reject on 4.3.
#[tokio::test]
async fn a_message_returned_past_the_delivery_limit_is_parked_without_an_attempt() {
    let mut rig = Harness::new("acquired")
        .config(|c| c.topology.delivery_limit = 2)
        .ok_receiver()
        .declare()
        .await;
    let body = event("acq-1", 104, &rig.receiver().url("/a"), "{}");
    rig.broker.publish(&body).await;
    let deliveries = rig.broker.topology.deliveries().to_string();
    let ch = rig.broker.conn.create_channel().await.unwrap();
    for _ in 0..3 {
        let got = wait_for("the message ready again", LONG, async || {
            ch.basic_get(
                deliveries.as_str().into(),
                BasicGetOptions { no_ack: false },
            )
            .await
            .unwrap()
        })
        .await;
        let requeue = BasicNackOptions {
            multiple: false,
            requeue: true,
        };
        ch.basic_nack(got.delivery.delivery_tag, requeue)
            .await
            .unwrap();
    }
    let _ = ch.close(200, "returned".into()).await;
    rig.start_worker().await;

    let dead = rig.broker.dead_messages(1, LONG).await;
    assert_eq!(dead[0].data, body);
    let reason = parked_reason(&dead[0]);
    assert_eq!(reason, "delivery_limit");
    assert_eq!(rig.receiver().requests().len(), 0, "never attempted");
    rig.finish().await;
}

/// The same bound on a classic work queue, which counts no redelivery on
/// any version and has no dead-letter target: a message whose retry copy
/// comes back unroutable (its tier deleted under the running worker) is
/// tried `WEBHOOK_DELIVERY_LIMIT` + 1 times, each time returned to the
/// queue by a copy counting it (`webhook-unsettled`), then parked by the
/// worker with reason `delivery_limit`. (Before, it looped against its
/// receiver for as long as the tier was missing.)
#[tokio::test]
async fn an_unroutable_retry_copy_from_a_classic_queue_is_tried_at_most_limit_plus_one_times() {
    let rig = Harness::new("unroutablec")
        .config(|c| {
            classic(c);
            c.topology.delivery_limit = 2;
        })
        .receiver(|_, _| Reply::status(500))
        .start()
        .await;
    let (broker, receiver, worker) = (&rig.broker, rig.receiver(), rig.worker());
    broker.delete_retry_tier(Duration::from_millis(200)).await;

    let body = event("uc-1", 104, &receiver.url("/u"), "{}");
    broker.publish(&body).await;
    let dead = broker.dead_messages(1, LONG).await;
    assert_eq!(dead[0].data, body);
    let reason = parked_reason(&dead[0]);
    assert_eq!(reason, "delivery_limit");
    // 3: the first delivery and 2 returns; fewer when a delivery was
    // deferred without an attempt (a receiver slow to answer on a loaded
    // machine), whose copy to the missing tier fails the same way.
    let attempts = receiver.requests().len();
    assert!(
        (1..=3).contains(&attempts),
        "{attempts} attempts, at most 3"
    );
    let text = worker.scrape().await;
    assert_eq!(
        sample(&text, r#"webhook_dropped_total{reason="delivery_limit"}"#),
        1.0
    );
    let deliveries = broker.topology.deliveries().to_string();
    assert_eq!(broker.depth(&deliveries).await, 0, "nothing left behind");
    rig.finish().await;
}

/// With `P.dead` gone too, nothing can settle the message: it is still
/// tried at most `WEBHOOK_DELIVERY_LIMIT` + 1 times, then goes round
/// without an attempt (a failed parking each second), and stays in its
/// work queue for when the topology is back.
#[tokio::test]
async fn a_classic_message_that_cannot_even_be_parked_is_not_attempted_past_the_limit() {
    let rig = Harness::new("unparkable")
        .config(|c| {
            classic(c);
            c.topology.delivery_limit = 2;
        })
        .receiver(|_, _| Reply::status(500))
        .start()
        .await;
    let tiers = rig.broker.topology.tiers();
    let tier = rig
        .broker
        .topology
        .retry_queue(tiers.of(Duration::from_millis(200)).unwrap());
    for q in [tier.as_str(), rig.broker.topology.dead()] {
        let ch = &rig.broker.channel;
        ch.queue_delete(q.into(), Default::default()).await.unwrap();
    }
    let body = event("up-1", 104, &rig.receiver().url("/u"), "{}");
    rig.broker.publish(&body).await;
    // 3 unroutable retry copies, then failed parkings: wait for 3 of those.
    wait_for("three failed parkings", LONG, async || {
        let text = rig.worker().scrape().await;
        (sample(&text, "webhook_publish_failures_total") >= 6.0).then_some(())
    })
    .await;
    let attempts = rig.receiver().requests().len();
    assert!(
        (1..=3).contains(&attempts),
        "{attempts} attempts, at most 3"
    );
    rig.worker().stop().await.unwrap();
    let deliveries = rig.broker.topology.deliveries().to_string();
    let left = rig.broker.drain(&deliveries).await;
    assert_eq!(left.len(), 1, "still in its work queue");
    assert_eq!(left[0].data, body);
    rig.finish().await;
}
