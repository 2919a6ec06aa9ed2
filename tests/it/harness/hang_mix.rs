//! The isolation setup the receiver-limit and proxy tests share: one
//! receiver that hangs 30 s and one that answers in 20 ms, the worker at
//! 256 deliveries in flight with an 8 s timeout and a 30 s retry tier;
//! every fifth event of a mix goes to the hanging receiver.

use std::time::{Duration, Instant};

use super::{Harness, Reply, Rig, event, wait_for};

/// How long the mix may take to show its effects.
const LONG: Duration = Duration::from_secs(60);

/// `harness` (alone on the machine) with the hanging receiver as
/// `receivers[0]` and the healthy one as `receivers[1]`; further
/// `.config(...)` calls may change the rest.
pub(crate) fn hanging_and_healthy(harness: Harness) -> Harness {
    harness
        .alone()
        .config(|c| {
            c.delivery.concurrency = 256;
            c.delivery.timeout = Duration::from_secs(8);
            c.topology.retry_schedule = "30s".parse().unwrap();
        })
        .receiver(|_, _| Reply::ok().after(Duration::from_secs(30)))
        .receiver(|_, _| Reply::ok().after(Duration::from_millis(20)))
}

/// Publishes `n` events, every fifth for the hanging receiver, and checks
/// the isolation: the healthy receiver gets its four fifths within one
/// timeout, the hanging one never more than its initial 16 slots plus a
/// probe or two, and within its grace (2 s without any answer) it is
/// judged stalled and held to the floor. Returns the worker's metrics.
pub(crate) async fn publish_hang_mix(rig: &Rig, n: usize) -> String {
    let (broker, worker) = (&rig.broker, rig.worker());
    let (hanging, healthy) = (&rig.receivers[0], &rig.receivers[1]);
    let before = healthy.requests().len();
    let bodies = (0..n).map(|i| {
        let (tag, url) = if i % 5 == 0 {
            ("hang", hanging.url("/h"))
        } else {
            ("ok", healthy.url("/ok"))
        };
        event(&format!("{tag}-{i}"), 104, &url, "{}")
    });
    let started = Instant::now();
    broker.publish_many(bodies).await;
    let healthy_n = n - n.div_ceil(5);
    healthy.wait_requests(before + healthy_n, LONG).await;
    let healthy_done = started.elapsed();
    assert!(
        hanging.peak_in_flight() <= 18,
        "{} in flight at the hanging receiver",
        hanging.peak_in_flight()
    );
    assert!(
        healthy_done < Duration::from_secs(8),
        "the healthy receiver's {healthy_n} took {healthy_done:?}, longer than one timeout"
    );
    let row = wait_for("the hanging receiver stalled", LONG, async || {
        let row = worker.receiver(hanging).await?;
        (row["state"] == "stalled").then_some(row)
    })
    .await;
    assert!(row["limit"].as_u64().unwrap() <= 2, "{row}");
    worker.scrape().await
}
