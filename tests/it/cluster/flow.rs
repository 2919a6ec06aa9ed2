//! Events flowing to a receiver while nodes die (`Flow`), and the worker under test.

use std::{collections::HashSet, time::Instant};

use super::*;

/// Events flowing: the receiver answers each after a short delay, so the
/// worker (16 in flight) is mid-stream when a node goes.
pub(super) struct Flow {
    /// The worker under test. First, so that it is gone before the
    /// topology is deleted (else it would declare it again).
    pub(super) worker: WorkerProcess,
    prefix: String,
    /// The node published through, up again at the end.
    via: usize,
    /// Deletes the topology when the test fails before `check_complete`.
    publisher: Broker,
    receiver: Receiver,
    events: usize,
}

impl Flow {
    /// Declares the topology through node `via`, publishes `events` for
    /// `worker`.
    pub(super) async fn publish(
        worker: WorkerProcess,
        prefix: &str,
        via: usize,
        events: usize,
    ) -> Self {
        let receiver = Receiver::start(|_, _| Reply::ok().after(Duration::from_millis(30))).await;
        let broker = Broker::on(&node_url(via), &test_config(prefix)).await;
        let url = receiver.url("/hook");
        broker
            .publish_many((0..events).map(|n| event(&format!("ev-{n}"), 101, &url, "{}")))
            .await;
        Self {
            worker,
            prefix: prefix.to_string(),
            via,
            publisher: broker,
            receiver,
            events,
        }
    }

    /// Publishes `n` more events (numbered on from the last) through the
    /// node `via`; returns their ids.
    pub(super) async fn publish_more(&mut self, n: usize) -> Vec<String> {
        let url = self.receiver.url("/hook");
        let ids: Vec<String> = (self.events..self.events + n)
            .map(|i| format!("ev-{i}"))
            .collect();
        self.publisher
            .publish_many(ids.iter().map(|id| event(id, 101, &url, "{}")))
            .await;
        self.events += n;
        ids
    }

    /// Waits until all but at most `spare` of `ids` arrived.
    pub(super) async fn wait_ids(&self, ids: &[String], spare: usize) {
        wait_for(
            &format!("{} of {} given ids delivered", ids.len() - spare, ids.len()),
            LONG,
            async || {
                let got = self.delivered();
                let missing = ids.iter().filter(|id| !got.contains(*id)).count();
                (missing <= spare).then_some(())
            },
        )
        .await;
    }

    /// The longest pause between `from` and `to`: between two arrivals, or
    /// from `from` to the first arrival after it.
    pub(super) fn longest_pause(&self, from: Instant, to: Instant) -> Duration {
        let mut at: Vec<Instant> = self.receiver.requests().iter().map(|r| r.at).collect();
        at.retain(|&t| t >= from && t <= to);
        at.sort();
        let first = at.first().map_or(to - from, |&t| t - from);
        at.windows(2)
            .map(|w| w[1] - w[0])
            .fold(first, Duration::max)
    }

    pub(super) fn delivered(&self) -> HashSet<String> {
        self.receiver
            .requests()
            .iter()
            .map(|r| r.header("x-comm100-delivery-id").to_string())
            .collect()
    }

    pub(super) async fn wait_delivered(&self, n: usize) {
        wait_for(&format!("{n} distinct ids delivered"), LONG, async || {
            (self.delivered().len() >= n).then_some(())
        })
        .await;
    }

    /// Every id arrived, none was parked; the longest pause between two
    /// arrivals, and how many arrivals were duplicates. Stops the worker
    /// and deletes the topology.
    pub(super) async fn check_complete(self) -> (Duration, usize) {
        self.wait_delivered(self.events).await;
        let got = self.delivered();
        drop(self.worker);
        for n in 0..self.events {
            assert!(got.contains(&format!("ev-{n}")), "ev-{n} never arrived");
        }
        // A fresh connection: the publisher's may have gone with its node.
        let fresh = Broker::on(&node_url(self.via), &test_config(&self.prefix)).await;
        let dead = fresh.depth(fresh.topology.dead()).await;
        assert_eq!(dead, 0, "nothing may be parked");
        let mut at: Vec<(Instant, String)> = self
            .receiver
            .requests()
            .iter()
            .map(|r| (r.at, r.header("x-comm100-delivery-id").to_string()))
            .collect();
        at.sort();
        let (after, gap) = at
            .windows(2)
            .enumerate()
            .map(|(i, w)| (i + 1, w[1].0 - w[0].0))
            .max_by_key(|&(_, gap)| gap)
            .unwrap_or_default();
        let duplicates = at.len() - got.len();
        let seen_before: HashSet<&str> = at[..after].iter().map(|(_, id)| id.as_str()).collect();
        let late_repeats = at[after..]
            .iter()
            .filter(|(_, id)| seen_before.contains(id.as_str()))
            .count();
        eprintln!(
            "{}: {} events, {} duplicates, longest gap {gap:?} after arrival {after} of {} \
             ({late_repeats} of the {} arrivals after it had arrived before)",
            self.prefix,
            self.events,
            duplicates,
            at.len(),
            at.len() - after
        );
        fresh.cleanup().await;
        (gap, duplicates)
    }
}

/// The cluster tests' worker's `--concurrency` (and so its prefetch).
pub(super) const CONCURRENCY: usize = 16;

pub(super) async fn start_worker(prefix: &str, nodes: &[usize]) -> WorkerProcess {
    let concurrency = CONCURRENCY.to_string();
    WorkerProcess::start(
        prefix,
        &["--concurrency", concurrency.as_str()],
        &[("AMQP_URL", urls(nodes).as_str())],
    )
    .await
}
