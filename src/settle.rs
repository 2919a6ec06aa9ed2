//! Settling deliveries: one task per consumer channel turns the outcomes of
//! concurrent deliveries into as few acks as possible.
//!
//! Deliveries finish out of order. Acking each one costs a frame and a
//! promise; acking a run with `multiple = true` costs one. The settler keeps
//! the channel's unsettled delivery tags in order and, after each batch of
//! completions, acks the longest finished prefix with one `multiple` ack.
//! A finished delivery stuck behind a slow one is acked on its own right
//! away, so it never holds a prefetch slot while the slow one runs.
//!
//! A delivery that is never completed (abandoned at shutdown, or its task
//! lost with the connection) stays in the map as a hole: no `multiple` ack
//! ever covers it, so the broker redelivers it. That is what makes
//! "settle only after the outcome is durable" hold with batching.

use std::{collections::BTreeMap, sync::Arc};

use lapin::{
    Channel,
    options::{BasicAckOptions, BasicNackOptions},
};
use tokio::{sync::mpsc, task::JoinHandle};

use crate::telemetry::Metrics;

/// How a delivery ends, as far as the broker is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Done: delivered, or its retry/dead copy is confirmed.
    Ack,
    /// Not done: give it back to the broker now (`nack` with requeue).
    Requeue,
}

enum Event {
    Received(u64),
    Settled(u64, Settlement),
}

/// Cheap handle the consume loop and delivery tasks use to report.
#[derive(Debug, Clone)]
pub struct SettlerHandle {
    tx: mpsc::UnboundedSender<Event>,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Received(t) => write!(f, "Received({t})"),
            Event::Settled(t, s) => write!(f, "Settled({t}, {s:?})"),
        }
    }
}

impl SettlerHandle {
    /// Records a delivery tag as received; call before its task starts, so
    /// the settler always knows the tag before its settlement.
    pub fn received(&self, tag: u64) {
        let _ = self.tx.send(Event::Received(tag));
    }

    /// Reports how a delivery ended.
    pub fn settle(&self, tag: u64, settlement: Settlement) {
        let _ = self.tx.send(Event::Settled(tag, settlement));
    }
}

/// Starts the settler of `channel`. It runs until every handle is dropped,
/// flushing what it has before it returns.
pub fn spawn(channel: Channel, metrics: Arc<Metrics>) -> (SettlerHandle, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(channel, rx, metrics));
    (SettlerHandle { tx }, task)
}

/// Most events folded into one flush.
const BATCH: usize = 512;

async fn run(channel: Channel, mut rx: mpsc::UnboundedReceiver<Event>, metrics: Arc<Metrics>) {
    let mut pending = Pending::default();
    let mut events = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut events, BATCH).await > 0 {
        let mut requeue = Vec::new();
        for event in events.drain(..) {
            match event {
                Event::Received(tag) => pending.received(tag),
                Event::Settled(tag, Settlement::Ack) => pending.done(tag),
                Event::Settled(tag, Settlement::Requeue) => {
                    pending.forget(tag);
                    requeue.push(tag);
                }
            }
        }
        for tag in requeue {
            let r = channel
                .basic_nack(
                    tag,
                    BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    },
                )
                .await;
            report(&metrics, r, 1, "nack");
        }
        let plan = pending.take_acks();
        if let Some((tag, count)) = plan.prefix {
            let r = channel
                .basic_ack(
                    tag,
                    BasicAckOptions {
                        multiple: count > 1,
                    },
                )
                .await;
            report(&metrics, r, count, "ack");
        }
        for tag in plan.singles {
            let r = channel
                .basic_ack(tag, BasicAckOptions { multiple: false })
                .await;
            report(&metrics, r, 1, "ack");
        }
    }
}

fn report(metrics: &Metrics, result: lapin::Result<()>, count: u64, what: &str) {
    if let Err(e) = result {
        metrics.settle_failures.inc_by(count);
        tracing::warn!(error = %e, messages = count, "{what} could not reach the broker; it will redeliver");
    }
}

/// The bookkeeping, apart from I/O so it can be tested directly.
#[derive(Debug, Default)]
struct Pending {
    /// Unsettled tags; `true` once the delivery is done.
    tags: BTreeMap<u64, bool>,
}

/// The acks one flush sends.
#[derive(Debug, Default, PartialEq, Eq)]
struct AckPlan {
    /// Highest tag of the finished prefix and the number of tags it covers.
    prefix: Option<(u64, u64)>,
    /// Finished tags behind an unfinished one.
    singles: Vec<u64>,
}

impl Pending {
    fn received(&mut self, tag: u64) {
        self.tags.insert(tag, false);
    }

    fn done(&mut self, tag: u64) {
        if let Some(done) = self.tags.get_mut(&tag) {
            *done = true;
        }
    }

    fn forget(&mut self, tag: u64) {
        self.tags.remove(&tag);
    }

    fn take_acks(&mut self) -> AckPlan {
        let mut plan = AckPlan::default();
        let mut count = 0;
        while let Some((&tag, &true)) = self.tags.first_key_value() {
            self.tags.pop_first();
            count += 1;
            plan.prefix = Some((tag, count));
        }
        plan.singles = self
            .tags
            .iter()
            .filter(|(_, done)| **done)
            .map(|(t, _)| *t)
            .collect();
        for tag in &plan.singles {
            self.tags.remove(tag);
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_prefix_is_one_multiple_ack() {
        let mut p = Pending::default();
        (1..=5).for_each(|t| p.received(t));
        [2, 1, 3].into_iter().for_each(|t| p.done(t));
        assert_eq!(
            p.take_acks(),
            AckPlan {
                prefix: Some((3, 3)),
                singles: vec![]
            }
        );
        p.done(5);
        assert_eq!(
            p.take_acks(),
            AckPlan {
                prefix: None,
                singles: vec![5]
            }
        );
        p.done(4);
        assert_eq!(
            p.take_acks(),
            AckPlan {
                prefix: Some((4, 1)),
                singles: vec![]
            }
        );
        assert!(p.tags.is_empty());
    }

    #[test]
    fn a_hole_is_never_covered_by_a_multiple_ack() {
        let mut p = Pending::default();
        (1..=4).for_each(|t| p.received(t));
        // 2 is abandoned (never settled); 1, 3, 4 finish.
        [1, 3, 4].into_iter().for_each(|t| p.done(t));
        assert_eq!(
            p.take_acks(),
            AckPlan {
                prefix: Some((1, 1)),
                singles: vec![3, 4]
            }
        );
        (5..=6).for_each(|t| p.received(t));
        [5, 6].into_iter().for_each(|t| p.done(t));
        // 5 and 6 sit behind the hole at 2: acked one by one, never multiple.
        assert_eq!(
            p.take_acks(),
            AckPlan {
                prefix: None,
                singles: vec![5, 6]
            }
        );
        assert_eq!(p.tags.keys().copied().collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn requeued_tags_leave_the_map() {
        let mut p = Pending::default();
        (1..=3).for_each(|t| p.received(t));
        p.forget(1);
        p.done(2);
        assert_eq!(
            p.take_acks(),
            AckPlan {
                prefix: Some((2, 1)),
                singles: vec![]
            }
        );
    }
}
