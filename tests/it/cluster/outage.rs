//! Every node down at once: the worker waits, not ready, and resumes once the cluster is back.

use std::time::Instant;

use super::flow::{Flow, start_worker};
use super::*;

/// Every node stopped: the worker waits (not ready, logging), and resumes
/// once the cluster is back. The nodes are started together: RabbitMQ
/// 3.10 boots a clustered node only once a peer's Mnesia tables are
/// reachable (it waits up to 10 x 30 s, then fails), and a quorum queue
/// needs two of three nodes anyway, so "one node started" cannot serve.
#[tokio::test(flavor = "multi_thread")]
async fn with_every_node_down_the_worker_waits_and_then_resumes() {
    let cluster = Cluster::take_turn().await;
    let prefix = unique_prefix("cl-all");
    let worker = start_worker(&prefix, &[0, 1, 2]).await;
    let on = worker_node(&prefix, None).await;
    let flow = Flow::publish(worker, &prefix, on, 4000).await;
    flow.wait_delivered(200).await;

    tokio::join!(
        cluster.stop_app(0),
        cluster.stop_app(1),
        cluster.stop_app(2)
    );
    wait_for("the worker not ready", LONG, async || {
        (flow.worker.readyz().await == Some(503)).then_some(())
    })
    .await;
    wait_for("the worker logging the outage", LONG, async || {
        flow.worker
            .log_text()
            .contains("no broker node reachable; retrying")
            .then_some(())
    })
    .await;
    let before = flow.delivered().len();
    assert!(before < 4000, "the outage came too late to matter");

    tokio::join!(cluster.restore(0), cluster.restore(1), cluster.restore(2));
    let up = Instant::now();
    wait_for("the worker consuming again", LONG, async || {
        (flow.worker.readyz().await == Some(200)).then_some(())
    })
    .await;
    eprintln!("ready again {:?} after the cluster was back", up.elapsed());
    let log = flow.worker.log_text();
    flow.check_complete().await;
    assert!(!log.contains("guest:guest"), "a password in the log");
}
