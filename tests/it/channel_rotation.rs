//! A slow delivery that holds back `multiple` acks moves consumption to a
//! fresh channel: every event still arrives, also when the connection
//! drops during the rotation, and shutdown drains the retired channel.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use crate::harness::*;

const LONG: Duration = Duration::from_secs(60);

/// A worker with one delivery held by a slow receiver (`/slow`, answered
/// after `slow`) and fast events (`/fast`) published behind it until the
/// worker has moved consumption to a fresh channel.
struct Rotated {
    concurrency: u64,
    rig: Rig,
    /// Fast events published so far (`fast-0` ...).
    sent: usize,
}

impl Rotated {
    async fn start(name: &str, slow: Duration) -> Self {
        let rig = Harness::new(name)
            .config(|c| c.delivery.timeout = Duration::from_secs(20))
            .receiver(move |r, _| {
                if r.path == "/slow" {
                    Reply::ok().after(slow)
                } else {
                    Reply::ok()
                }
            })
            .start()
            .await;
        let concurrency = u64::from(rig.config.delivery.concurrency);
        rig.broker
            .publish(&event("slow", 104, &rig.receiver().url("/slow"), "{}"))
            .await;
        let mut r = Self {
            concurrency,
            rig,
            sent: 0,
        };
        // Fast events keep finishing behind the slow one until the worker
        // rotates.
        wait_for("a consumer rotation", LONG, async || {
            r.publish_fast(20).await;
            let text = r.worker().scrape().await;
            (sample(&text, "webhook_consumer_rotations_total") >= 1.0).then_some(())
        })
        .await;
        r
    }

    async fn publish_fast(&mut self, n: usize) {
        let url = self.receiver().url("/fast");
        let from = self.sent;
        self.broker()
            .publish_many((from..from + n).map(|i| event(&format!("fast-{i}"), 104, &url, "{}")))
            .await;
        self.sent += n;
    }

    fn prefix(&self) -> &str {
        self.rig.prefix()
    }

    fn broker(&self) -> &Broker {
        &self.rig.broker
    }

    fn receiver(&self) -> &Receiver {
        self.rig.receiver()
    }

    fn worker(&self) -> &RunningWorker {
        self.rig.worker()
    }

    fn deliveries(&self) -> String {
        format!("{}.deliveries", self.prefix())
    }

    async fn stop(self) {
        self.rig.finish().await;
    }
}

/// A delivery that stays unfinished blocks `multiple` acks for everything
/// behind it; the worker then consumes on a fresh channel and retires the
/// old one once its slow delivery settles. Every event arrives exactly
/// once, the queue ends empty with one consumer, and the retired channel
/// is closed.
#[tokio::test]
async fn a_slow_delivery_moves_consumption_to_a_fresh_channel() {
    const SLOW: Duration = Duration::from_secs(5);
    let mut r = Rotated::start("rotate", SLOW).await;
    // The fresh channel delivers while the slow one is still in flight.
    r.publish_fast(200).await;
    let total = r.sent + 1;
    let got = r.receiver().wait_requests(total, LONG).await;
    let slow_answered = got.iter().find(|q| q.path == "/slow").unwrap().at + SLOW;
    assert!(
        got.iter().all(|q| q.at < slow_answered),
        "every fast event arrived while the slow one was held"
    );
    let mut seen = HashSet::new();
    for q in &got {
        assert!(
            seen.insert(q.header("x-comm100-delivery-id").to_string()),
            "delivered twice: {}",
            q.header("x-comm100-delivery-id")
        );
    }
    assert!(seen.contains("slow"));
    // Everything is acked, one consumer is left, and the retired channel
    // is closed: the consuming connection keeps its one consumer channel,
    // and the publishing connection has its publisher's (in confirm mode)
    // only.
    let deliveries = r.deliveries();
    wait_for(
        "queue settled, one consumer, one consumer channel, the publisher's apart",
        LONG,
        async || {
            let q = management_queue(&deliveries).await;
            let consuming = worker_channels(r.prefix(), Role::Consuming).await;
            let publishing = worker_channels(r.prefix(), Role::Publishing).await;
            (q["messages"].as_u64() == Some(0)
                && q["consumers"].as_u64() == Some(1)
                && q["consumer_details"][0]["prefetch_count"].as_u64() == Some(r.concurrency)
                && consuming.len() == 1
                && consuming[0]["confirm"] != true
                && !publishing.is_empty()
                && publishing.iter().all(|c| c["confirm"] == true))
            .then_some(())
        },
    )
    .await;
    let text = r.worker().scrape().await;
    assert_eq!(
        sample(&text, r#"webhook_delivered_total{webhook="104"}"#),
        total as f64
    );
    r.stop().await;
}

/// The connection drops while a retired channel still holds a slow
/// delivery: the worker reconnects, and every event still arrives (the slow
/// one possibly twice: its ack died with the connection).
#[tokio::test]
async fn losing_the_connection_during_a_rotation_loses_nothing() {
    let mut r = Rotated::start("rotlost", Duration::from_secs(3)).await;
    close_worker_connection(r.prefix(), Role::Consuming).await;
    wait_for("a reconnect", LONG, async || {
        let text = r.worker().scrape().await;
        (sample(&text, "webhook_broker_reconnects_total") >= 1.0).then_some(())
    })
    .await;
    r.publish_fast(100).await;
    let expected: HashSet<String> = (0..r.sent)
        .map(|i| format!("fast-{i}"))
        .chain(["slow".to_string()])
        .collect();
    wait_for("every event delivered", LONG, async || {
        let seen: HashSet<String> = r
            .receiver()
            .requests()
            .iter()
            .map(|q| q.header("x-comm100-delivery-id").to_string())
            .collect();
        expected.is_subset(&seen).then_some(())
    })
    .await;
    let deliveries = r.deliveries();
    wait_for("the queue settled", LONG, async || {
        let q = management_queue(&deliveries).await;
        (q["messages"].as_u64() == Some(0)).then_some(())
    })
    .await;
    assert_eq!(
        r.broker().depth(&format!("{}.dead", r.prefix())).await,
        0,
        "nothing parked"
    );
    r.stop().await;
}

/// Shutdown's drain covers a retired channel: its slow delivery finishes
/// within the grace and is acked before the worker stops, so the broker has
/// nothing to redeliver.
#[tokio::test]
async fn shutdown_drains_a_retired_channel() {
    const SLOW: Duration = Duration::from_secs(3);
    let r = Rotated::start("rotstop", SLOW).await;
    let fast = r.sent;
    wait_for("the fast events delivered", LONG, async || {
        (r.receiver().requests_to("/fast").len() == fast).then_some(())
    })
    .await;
    let slow_at = r.receiver().requests_to("/slow")[0].at;
    assert!(
        Instant::now() < slow_at + SLOW,
        "the slow one is still held"
    );
    let deliveries = r.deliveries();
    r.worker().stop().await.unwrap();
    assert!(
        Instant::now() >= slow_at + SLOW,
        "the worker waited for the retired channel's delivery"
    );
    assert_eq!(r.receiver().requests_to("/slow").len(), 1);
    assert_eq!(r.receiver().requests_to("/fast").len(), fast);
    assert_eq!(
        r.broker().depth(&deliveries).await,
        0,
        "nothing returned to the queue"
    );
    r.stop().await;
}
