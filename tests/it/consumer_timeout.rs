//! RabbitMQ's consumer timeout: a delivery held longer than it allows makes
//! the broker end the consumer. The nodes keep their default of 30
//! minutes; the test gives its own work queue a 1 s timeout with a policy
//! of its own (`consumer-timeout`, RabbitMQ 3.12 and later; 3.10 refuses
//! the key, so there it sets none). Measured: 4.3 enforces it on a quorum
//! queue within a second or two, and the worker's session ends and starts
//! again; 4.0 checks it on a periodic tick and did not fire it within the
//! 5 s the delivery is held (it may, by chance of the tick). The
//! test asserts the timeout and the recovery on 4.3, and on every version
//! that nothing is lost.

use std::time::Duration;

use crate::harness::*;

const LONG: Duration = Duration::from_secs(90);

/// A receiver that takes 5 s on its first request holds that delivery past
/// the queue's 1 s consumer timeout. The broker gives up on the consumer,
/// and the worker consumes again: the event is delivered (twice where the
/// timeout applies: the late 200 cannot be acked any more), nothing is
/// parked or left in the queue, and an event published afterwards is
/// delivered too.
#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_timeout_loses_nothing_and_the_worker_consumes_again() {
    let mut rig = Harness::new("ctimeout")
        .config(|c| {
            c.delivery.timeout = Duration::from_secs(30);
            c.delivery.concurrency = 4;
        })
        .receiver(|_, seen| match seen {
            0 => Reply::ok().after(Duration::from_secs(5)),
            _ => Reply::ok(),
        })
        .declare()
        .await;
    let (major, minor) = broker_version().await;
    let enforced = (major, minor) >= (4, 3);
    let deliveries = rig.broker.topology.deliveries().to_string();
    let pattern = format!("^{}$", deliveries.replace('.', "\\."));
    let timeout = serde_json::json!({"consumer-timeout": 1000});
    let name = format!("{}-ct", rig.prefix());
    let _policy = match major >= 4 {
        true => Some(Policy::set(&name, &pattern, timeout).await),
        false => None, // 3.10 refuses the key
    };
    rig.start_worker().await;
    let url = rig.receiver().url("/ct");
    rig.broker.publish(&event("ct-1", 104, &url, "{}")).await;

    let first = rig.receiver().wait_requests(1, LONG).await;
    assert_eq!(first[0].header("x-comm100-delivery-id"), "ct-1");
    let expected = if enforced { 2 } else { 1 };
    wait_for("ct-1 attempted again, acked", LONG, async || {
        let q = management_queue(&deliveries).await;
        let empty = q["messages"] == 0;
        (empty && rig.receiver().requests().len() >= expected).then_some(())
    })
    .await;
    rig.broker.publish(&event("ct-2", 104, &url, "{}")).await;
    let ids = rig.receiver().wait_ids(2, LONG).await;
    assert!(ids["ct-1"] >= expected && ids["ct-2"] >= 1, "{ids:?}");
    if enforced {
        let metrics = rig.worker().scrape().await;
        let ended = sample(&metrics, "webhook_broker_reconnects_total");
        assert!(ended >= 1.0, "the consumer ended and the worker came back");
    }
    assert_eq!(rig.broker.depth(rig.broker.topology.dead()).await, 0);
    wait_for("the queue empty, nothing unacked", LONG, async || {
        (management_queue(&deliveries).await["messages"] == 0).then_some(())
    })
    .await;
    rig.finish().await;
}
