//! The bound of contract section 6 on every broker version: a message
//! that cannot be settled is tried at most `WEBHOOK_DELIVERY_LIMIT` + 1
//! times, whatever the broker counts as a redelivery. (The unroutable retry
//! copy, returned by `basic.reject`, which every version counts, is
//! `faults::an_unroutable_retry_copy_returns_the_original_to_the_broker`.)

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
    let reason =
        webhook_worker::broker::dead_letters::parked_reason(dead[0].properties.headers().as_ref());
    assert_eq!(reason, "delivery_limit");
    assert_eq!(rig.receiver().requests().len(), 0, "never attempted");
    rig.finish().await;
}
