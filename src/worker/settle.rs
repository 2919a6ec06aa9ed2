//! Settling deliveries: one task per consumer channel turns the outcomes of
//! concurrent deliveries into as few acks as possible.
//!
//! Deliveries finish out of order. Acking each one costs a frame and a
//! promise; acking a run with `multiple = true` costs one. The settler keeps
//! the channel's unsettled delivery tags in order and, after each batch of
//! completions, acks the longest finished prefix with one `multiple` ack.
//! A finished delivery behind an unfinished one waits up to 20 ms for the
//! prefix to catch up (usually it does, and one `multiple` ack covers both);
//! when the one in front has been unfinished longer than that (a slow
//! receiver, or a long wait for its receiver's slot), what finishes behind
//! it waits only 5 ms before it is acked on its own, so it never holds a
//! prefetch slot while the slow one runs, yet deliveries that finish
//! together still leave in one `multiple` ack once the one in front does.
//!
//! A delivery that stays unfinished for long ([`STUCK`]) makes every later
//! ack a single one, which costs the broker one queue command per message
//! (on a quorum queue, a Raft log entry each). The settler then raises its
//! [`Stuck`] signal, and the consumer loop moves consumption to a fresh
//! channel, whose acks can be `multiple` again; the old channel keeps only
//! the slow deliveries it already has (see [`super::lane`]).
//!
//! A delivery that is never completed (abandoned at shutdown, or its task
//! lost with the connection) stays in the map as a hole: no `multiple` ack
//! ever covers it, so the broker redelivers it. That is what makes
//! "settle only after the outcome is durable" hold with batching.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use lapin::{
    Channel,
    options::{BasicAckOptions, BasicRejectOptions},
};
use tokio::{
    sync::{Notify, mpsc},
    task::JoinHandle,
};

use super::burst::{Frame, Unsent};
use crate::telemetry::metrics::Metrics;

/// How a delivery ends, as far as the broker is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settlement {
    /// Done: delivered, or its retry/dead copy is confirmed.
    Ack,
    /// Not done: give it back to the broker now (`basic.reject` with
    /// requeue, which every supported version counts toward
    /// `x-delivery-limit`; RabbitMQ 4.3 does not count a `basic.nack`).
    Requeue,
    /// Delivered more often than `WEBHOOK_DELIVERY_LIMIT` allows: the
    /// broker dead-letters it to `P.dead` (`basic.reject` without requeue).
    DeadLetter,
}

enum Event {
    Received(u64),
    Settled(u64, Settlement),
}

/// Cheap handle the consume loop and delivery tasks use to report.
#[derive(Debug, Clone)]
pub(crate) struct SettlerHandle {
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
    pub(crate) fn received(&self, tag: u64) {
        let _ = self.tx.send(Event::Received(tag));
    }

    /// Reports how a delivery ended.
    pub(crate) fn settle(&self, tag: u64, settlement: Settlement) {
        let _ = self.tx.send(Event::Settled(tag, settlement));
    }
}

/// Raised (at most one stored wake-up) when finished deliveries have to be
/// acked one by one behind a delivery unfinished for longer than [`STUCK`].
pub(super) type Stuck = Arc<Notify>;

/// Starts the settler of `channel`. It runs until every handle is dropped,
/// flushing what it has before it returns.
pub(super) fn spawn(
    channel: Channel,
    metrics: Arc<Metrics>,
) -> (SettlerHandle, JoinHandle<()>, Stuck) {
    let (tx, rx) = mpsc::unbounded_channel();
    let stuck = Stuck::default();
    let task = tokio::spawn(run(channel, rx, metrics, stuck.clone()));
    (SettlerHandle { tx }, task, stuck)
}

/// Most events folded into one flush.
const BATCH: usize = 512;

/// How long a finished delivery behind an unfinished one may wait for the
/// prefix to catch up (and be covered by one `multiple` ack) before it is
/// acked on its own. A blocker already in flight longer than this is a slow
/// receiver: then everything finished behind it is acked at once, so a
/// hanging receiver holds only its own prefetch slots.
const LINGER: Duration = Duration::from_millis(20);

/// How long a finished delivery waits behind a blocker unfinished for
/// longer than [`LINGER`]. Not zero: deliveries finish in clumps (a batch
/// of outcome events confirmed together, a receiver's burst of answers)
/// and their blocker is often a few milliseconds behind them, so a short
/// wait turns most of them into one `multiple` ack. Measured on RabbitMQ
/// 3.10.8 with outcome events on, 100 000 deliveries: 41 700–49 600 ack
/// frames without it, 12 800–23 500 with 5 ms; a classic queue's instant
/// drain 1.19 × as fast, a 100 ms receiver's 1.03–1.04 ×
/// (bench/README.md, "Acks behind a slow delivery").
const LINGER_BEHIND_SLOW: Duration = Duration::from_millis(5);

/// The wait behind a slow blocker under `linger` (zero when flushing at
/// close).
fn behind_slow(linger: Duration) -> Duration {
    linger.min(LINGER_BEHIND_SLOW)
}

/// How long the oldest unfinished delivery may block `multiple` acks
/// before the settler raises [`Stuck`]. Long enough that ordinary jitter
/// never triggers it; short against the 10 s a hanging receiver holds one.
pub(super) const STUCK: Duration = Duration::from_millis(500);

async fn run(
    channel: Channel,
    mut rx: mpsc::UnboundedReceiver<Event>,
    metrics: Arc<Metrics>,
    stuck: Stuck,
) {
    let mut pending = Pending::default();
    let mut unsent = Unsent::default();
    let mut events = Vec::with_capacity(BATCH);
    loop {
        let received = match pending.next_deadline(LINGER) {
            Some(at) => tokio::select! {
                n = rx.recv_many(&mut events, BATCH) => n,
                () = tokio::time::sleep_until(at.into()) => usize::MAX,
            },
            None => rx.recv_many(&mut events, BATCH).await,
        };
        // Every handle dropped: flush everything finished, then stop.
        let closed = received == 0;
        let now = Instant::now();
        let mut rejects = Vec::new();
        for event in events.drain(..) {
            match event {
                Event::Received(tag) => pending.received(tag, now),
                Event::Settled(tag, Settlement::Ack) => pending.done(tag, now),
                Event::Settled(tag, Settlement::Requeue) => {
                    pending.forget(tag);
                    rejects.push((tag, true));
                }
                Event::Settled(tag, Settlement::DeadLetter) => {
                    pending.forget(tag);
                    rejects.push((tag, false));
                }
            }
        }
        for (tag, requeue) in rejects {
            if unsent.channel_gone() {
                unsent.count(&metrics, Frame::Nack, 1);
                continue;
            }
            let r = channel
                .basic_reject(tag, BasicRejectOptions { requeue })
                .await;
            unsent.check(&metrics, r, Frame::Nack, 1);
        }
        let plan = pending.take_acks(now, if closed { Duration::ZERO } else { LINGER });
        if !plan.singles.is_empty() && pending.blocked_for(now) >= STUCK {
            stuck.notify_one();
        }
        send_acks(&channel, &metrics, plan, &mut unsent).await;
        if closed {
            unsent.log();
            return;
        }
    }
}

/// Sends every ack frame of a flush first (the first poll of `basic_ack`
/// queues its frame), then waits for them all: one round trip to lapin's I/O
/// thread per flush instead of one per ack.
async fn send_acks(channel: &Channel, metrics: &Metrics, plan: AckPlan, unsent: &mut Unsent) {
    let acks = plan
        .prefix
        .map(|(tag, count)| (tag, count, count > 1))
        .into_iter()
        .chain(plan.singles.into_iter().map(|tag| (tag, 1, false)));
    let mut waiting = Vec::new();
    for (tag, count, multiple) in acks {
        if unsent.channel_gone() {
            unsent.count(metrics, Frame::Ack, count);
            continue;
        }
        let mut ack = Box::pin(channel.basic_ack(tag, BasicAckOptions { multiple }));
        match futures_lite::future::poll_once(ack.as_mut()).await {
            Some(r) => unsent.check(metrics, r, Frame::Ack, count),
            None => waiting.push((count, ack)),
        }
    }
    for (count, ack) in waiting {
        unsent.check(metrics, ack.await, Frame::Ack, count);
    }
}

/// The bookkeeping, apart from I/O (and with the clock passed in) so it can
/// be tested directly.
#[derive(Debug, Default)]
struct Pending {
    /// Unsettled tags: when received, and when done (once it is).
    tags: BTreeMap<u64, (Instant, Option<Instant>)>,
}

/// The acks one flush sends.
#[derive(Debug, Default, PartialEq, Eq)]
struct AckPlan {
    /// Highest tag of the finished prefix and the number of tags it covers.
    prefix: Option<(u64, u64)>,
    /// Finished tags behind an unfinished one, due now.
    singles: Vec<u64>,
}

impl Pending {
    fn received(&mut self, tag: u64, now: Instant) {
        self.tags.insert(tag, (now, None));
    }

    fn done(&mut self, tag: u64, now: Instant) {
        if let Some((_, done)) = self.tags.get_mut(&tag) {
            *done = Some(now);
        }
    }

    fn forget(&mut self, tag: u64) {
        self.tags.remove(&tag);
    }

    /// The unfinished tag at the front of the rest, blocking the prefix.
    fn blocker(&self) -> Option<Instant> {
        self.tags
            .values()
            .find(|(_, done)| done.is_none())
            .map(|(received, _)| *received)
    }

    /// How long the blocker has been unfinished (zero without one).
    fn blocked_for(&self, now: Instant) -> Duration {
        self.blocker()
            .map_or(Duration::ZERO, |b| now.saturating_duration_since(b))
    }

    /// When the next finished tag behind the blocker falls due.
    fn next_deadline(&self, linger: Duration) -> Option<Instant> {
        let oldest_done = self.tags.values().filter_map(|(_, done)| *done).min()?;
        let due = oldest_done + linger;
        let behind_slow = oldest_done + behind_slow(linger);
        Some(
            self.blocker()
                .map_or(due, |b| due.min((b + linger).max(behind_slow))),
        )
    }

    fn take_acks(&mut self, now: Instant, linger: Duration) -> AckPlan {
        let mut plan = AckPlan::default();
        let mut count = 0;
        while let Some((&tag, &(_, Some(_)))) = self.tags.first_key_value() {
            self.tags.pop_first();
            count += 1;
            plan.prefix = Some((tag, count));
        }
        let blocked_long = self.blocker().is_some_and(|b| b + linger <= now);
        let wait = if blocked_long {
            behind_slow(linger)
        } else {
            linger
        };
        plan.singles = self
            .tags
            .iter()
            .filter(|(_, (_, done))| done.is_some_and(|t| t + wait <= now))
            .map(|(t, _)| *t)
            .collect();
        for tag in &plan.singles {
            self.tags.remove(tag);
        }
        plan
    }
}

#[cfg(test)]
mod tests;
