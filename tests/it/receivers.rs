//! Per-receiver adaptive limits against real receivers on loopback: a slow
//! but healthy receiver gets the slots it needs, a hanging one is held to a
//! few, an overloaded one converges below its threshold, and `GET
//! /receivers` shows it all.

use std::time::{Duration, Instant};

use crate::harness::*;

const LONG: Duration = Duration::from_secs(60);

fn ids(n: usize, tag: &str, url: &str) -> impl Iterator<Item = Vec<u8>> {
    (0..n).map(move |i| event(&format!("{tag}-{i}"), 104, url, "{}"))
}

#[tokio::test]
async fn a_100ms_receiver_gets_more_than_64_in_flight() {
    let mut rig = Harness::new("slowfat")
        .alone()
        .config(|c| c.delivery.concurrency = 1024)
        .receiver(|_, _| Reply::ok().after(Duration::from_millis(100)))
        .declare()
        .await;
    rig.broker
        .publish_many(ids(3000, "s", &rig.receiver().url("/s")))
        .await;
    rig.start_worker().await;
    let (receiver, worker) = (rig.receiver(), rig.worker());
    // While the backlog drains, the receiver's limit grows past the old
    // fixed cap of 64...
    let row = wait_for("a limit above 64", LONG, async || {
        let row = worker.receiver(receiver).await?;
        (row["limit"].as_u64()? > 64).then_some(row)
    })
    .await;
    receiver.wait_requests(3000, LONG).await;
    // ...and the receiver really had more than 64 requests at once.
    assert!(
        receiver.peak_in_flight() > 64,
        "peak {} in flight (limit was {row})",
        receiver.peak_in_flight()
    );
    wait_for("3000 delivered", LONG, async || {
        let text = worker.scrape().await;
        (sample(&text, r#"webhook_delivered_total{webhook="104"}"#) == 3000.0).then_some(())
    })
    .await;
    assert_eq!(receiver.requests().len(), 3000, "each once");
    rig.finish().await;
}

#[tokio::test]
async fn a_burst_to_a_healthy_100ms_receiver_is_never_deferred() {
    // A fresh worker at its default concurrency, a backlog several times
    // that: the receiver's line is long at first while its limit grows.
    // Deferred events would come back after 1 s, so the count below, not
    // a timeout, is what fails.
    let mut rig = Harness::new("burstfifo")
        .alone()
        .config(|c| c.topology.retry_schedule = "1s*5".parse().unwrap())
        .receiver(|_, _| Reply::ok().after(Duration::from_millis(100)))
        .declare()
        .await;
    rig.broker
        .publish_many(ids(4000, "b", &rig.receiver().url("/b")))
        .await;
    rig.start_worker().await;
    let (receiver, worker) = (rig.receiver(), rig.worker());
    receiver.wait_requests(4000, LONG).await;
    wait_for("4000 delivered", LONG, async || {
        let text = worker.scrape().await;
        (sample(&text, r#"webhook_delivered_total{webhook="104"}"#) == 4000.0).then_some(())
    })
    .await;
    let text = worker.scrape().await;
    assert!(text.contains("\nwebhook_deferred_total "), "{text}");
    assert_eq!(sample(&text, "webhook_deferred_total"), 0.0, "{text}");
    assert_eq!(receiver.requests().len(), 4000, "each once");
    rig.finish().await;
}

#[tokio::test]
async fn a_hanging_receiver_is_held_to_a_few_slots_while_a_healthy_one_delivers() {
    let rig = hanging_and_healthy(Harness::new("hang")).start().await;
    // 200 of the 1000 events are for the hanging receiver; those past its
    // slots are deferred.
    let text = publish_hang_mix(&rig, 1000).await;
    assert!(sample(&text, "webhook_deferred_total") >= 150.0, "{text}");
    assert!(
        text.contains("\nwebhook_receivers{state=\"stalled\"} "),
        "the receivers gauge by state: {text}"
    );
    rig.finish().await;
}

#[tokio::test]
async fn a_receiver_answering_429_above_20_in_flight_converges_near_20() {
    let mut rig = Harness::new("overload")
        .alone()
        .config(|c| {
            c.delivery.concurrency = 512;
            // The backlog beyond what the receiver clears within the wait
            // budget is deferred (and comes back after the short tier) until
            // it drains: the max age must outlast that.
            c.topology.retry_schedule = "200ms*20".parse().unwrap();
            c.retry.max_age = Duration::from_secs(600);
        })
        .receiver_loaded(|_, load| {
            if load.in_flight > 20 {
                Reply::status(429)
            } else {
                Reply::ok().after(Duration::from_millis(50))
            }
        })
        .declare()
        .await;
    rig.broker
        .publish_many(ids(3000, "o", &rig.receiver().url("/o")))
        .await;
    rig.start_worker().await;
    let (receiver, worker) = (rig.receiver(), rig.worker());
    let requests = receiver.wait_requests(3000, LONG).await;
    wait_for("all delivered", LONG, async || {
        let text = worker.scrape().await;
        (sample(&text, r#"webhook_delivered_total{webhook="104"}"#) == 3000.0).then_some(())
    })
    .await;
    let text = worker.scrape().await;
    let ok = sample(
        &text,
        r#"webhook_attempts_total{outcome="success",webhook="104"}"#,
    );
    let refused = sample(
        &text,
        r#"webhook_attempts_total{outcome="http_error",webhook="104"}"#,
    );
    // The 429s are rare: at most 10 % of all attempts, the start-up
    // overshoot included (no 429 storm into the retry tiers).
    assert!(
        refused <= 0.1 * (ok + refused),
        "{refused} refused of {} attempts",
        ok + refused
    );
    let row = worker.receiver(receiver).await.expect("listed");
    let limit = row["limit"].as_u64().unwrap();
    assert!(
        (8..=30).contains(&limit),
        "limit {limit} is not near 20: {row}"
    );
    assert!(requests.len() >= 3000);
    assert!(
        sample(
            &text,
            r#"webhook_receiver_limit_decreases_total{cause="too_many_requests"}"#
        ) >= 1.0
    );
    rig.finish().await;
}

#[tokio::test]
async fn a_receiver_first_fast_then_hanging_loses_its_slots_quickly() {
    let rig = Harness::new("turnsbad")
        .alone()
        .config(|c| {
            c.delivery.concurrency = 512;
            c.delivery.timeout = Duration::from_secs(10);
            c.topology.retry_schedule = "30s".parse().unwrap();
        })
        // The first 1 500 requests are answered in 20 ms; then it hangs.
        .receiver(|_, seen| {
            if seen < 1500 {
                Reply::ok().after(Duration::from_millis(20))
            } else {
                Reply::ok().after(Duration::from_secs(60))
            }
        })
        .start()
        .await;
    let (broker, receiver, worker) = (&rig.broker, rig.receiver(), rig.worker());
    broker
        .publish_many(ids(4000, "t", &receiver.url("/t")))
        .await;
    receiver.wait_requests(1500, LONG).await;
    let hung_at = Instant::now();
    let row = wait_for("the receiver stalled", LONG, async || {
        let row = worker.receiver(receiver).await?;
        (row["state"] == "stalled").then_some(row)
    })
    .await;
    let stalled_after = hung_at.elapsed();
    assert!(
        stalled_after < Duration::from_secs(2),
        "judged stalled only {stalled_after:?} after it hung: {row}"
    );
    // What it holds is what was in flight when it hung, plus probes.
    let held = receiver.in_flight();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        receiver.in_flight() <= held + 4,
        "{} in flight, {held} when stalled",
        receiver.in_flight()
    );
    rig.finish().await;
}
