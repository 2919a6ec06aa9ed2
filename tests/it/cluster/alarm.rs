//! A memory alarm: the cluster blocks every connection that publishes. The
//! worker publishes on a connection of its own, so the acks of deliveries
//! that publish nothing still reach the queue.

use std::collections::HashSet;

use super::*;

const HELD: usize = 10;
const PASSING: usize = 100;

/// Under a memory alarm, the deliveries whose retry copies cannot be
/// published wait, and the successes (which publish nothing with
/// `--outcomes failures`) are acked all the same: `P.deliveries` keeps
/// the held ones only. On a shared connection the first blocked publish
/// would have stopped every ack behind it. Once the alarm clears, the
/// held ones are retried and arrive.
#[tokio::test(flavor = "multi_thread")]
async fn under_a_memory_alarm_the_successes_are_still_acked() {
    let cluster = Cluster::take_turn().await;
    let prefix = unique_prefix("cl-alarm");
    // `/held` fails each event's first attempt, so its retry copy must be
    // published.
    let receiver = Receiver::start(|r, _| {
        if r.path == "/held" && r.header("x-comm100-attempt") == "1" {
            Reply::status(500)
        } else {
            Reply::ok()
        }
    })
    .await;
    let broker = Broker::on(&node_url(0), &test_config(&prefix)).await;
    let held: Vec<String> = (0..HELD).map(|i| format!("held-{i}")).collect();
    let passing: Vec<String> = (0..PASSING).map(|i| format!("ok-{i}")).collect();
    // The held ones first: with one connection, acks would stop at once.
    broker
        .publish_many(
            held.iter()
                .map(|id| event(id, 101, &receiver.url("/held"), "{}"))
                .chain(
                    passing
                        .iter()
                        .map(|id| event(id, 101, &receiver.url("/ok"), "{}")),
                ),
        )
        .await;
    // Returns once the node reports the alarm.
    cluster.memory_alarm(0).await;

    let worker = WorkerProcess::start(
        &prefix,
        &["--concurrency", "16", "--outcomes", "failures"],
        &[("AMQP_URL", urls(&[0]).as_str())],
    )
    .await;
    let queue = format!("queues/%2f/{}", broker.topology.deliveries());
    let expected: HashSet<&String> = passing.iter().collect();
    wait_for(
        "every success delivered and acked, the held ones still in the queue",
        LONG,
        async || {
            let counts = receiver.delivery_counts();
            let seen: HashSet<&String> = counts.keys().collect();
            let q: serde_json::Value =
                serde_json::from_slice(&node_api(0, &queue).await?.bytes().await.ok()?).ok()?;
            let left = q["messages"].as_u64()? as usize;
            (expected.is_subset(&seen) && left <= HELD).then_some(())
        },
    )
    .await;
    assert!(
        worker
            .log_text()
            .contains("the broker blocked the publishing connection"),
        "the block is logged"
    );

    cluster.clear_memory_alarm(0).await;
    wait_for("the held events retried and delivered", LONG, async || {
        let counts = receiver.delivery_counts();
        held.iter()
            .all(|id| counts.get(id).is_some_and(|&n| n >= 2))
            .then_some(())
    })
    .await;
    wait_for("the unblock logged", LONG, async || {
        worker
            .log_text()
            .contains("the broker unblocked the publishing connection")
            .then_some(())
    })
    .await;
    drop(worker);
    assert_eq!(broker.depth(broker.topology.dead()).await, 0, "none parked");
    broker.cleanup().await;
}
