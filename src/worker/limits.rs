//! Per-receiver limits: how many attempts run at once against one receiver
//! (scheme, host, port), adapted to it by the pure controller of
//! [`crate::domain::limit`], and what a delivery does when its receiver has
//! no free slot.
//!
//! All workers share one queue and the broker hands out messages in queue
//! order, so without a limit a receiver that hangs until the timeout would
//! collect every delivery slot and stall delivery to everyone else; with a
//! fixed limit, a healthy receiver that merely takes 100 ms drains at
//! limit ÷ 0.1 s. The adaptive limit grows while the receiver's latency
//! holds and shrinks on back-pressure and on attempts that grow old against
//! its own latency, below the hard ceiling `WEBHOOK_HOST_CONCURRENCY`.
//!
//! A delivery that finds its receiver full joins the receiver's line or is
//! *deferred* (moved to the shortest retry tier without an attempt, so it
//! holds no slot while the receiver is slow). The line is first come, first
//! served: a freed slot is handed to the oldest waiter under the lock that
//! frees it, and an arrival finding anyone waiting joins the end, so no
//! arrival overtakes a waiter (`receiver.rs`). How long a delivery waits
//! depends on the receiver's health (the controller's
//! [`WaitVerdict`]):
//!
//! - **healthy** (it answers, its latency is known, no timeout, connection
//!   error, 429 or 503 for 10 s): the delivery waits for its turn and is
//!   never deferred while the receiver stays healthy. Only an arrival that
//!   finds a line it could not clear within [`HEALTHY_LINE_BUDGET`] at the
//!   receiver's pace (once its limit has stopped doubling) is deferred, so a
//!   receiver that cannot keep up with its share does not hold the
//!   process's slots from the others;
//! - **troubled** (it pushed back lately): it waits at most
//!   [`WAIT_BUDGET`], and joins only a line that clears within it;
//! - **new** (no answer yet): at most [`NEW_RECEIVER_WAIT`], unless it
//!   answers meanwhile;
//! - **stalled** (attempts overdue, no answer): deferred at once, and the
//!   whole line with it, the moment the stall is seen.
//!
//! Every waiter is a delivery holding one of the process's slots
//! (`WEBHOOK_CONCURRENCY`, also the prefetch), so the lines of all
//! receivers together never hold more than that many entries (a number and
//! a one-shot channel each); a line's storage shrinks when it empties.

use std::{sync::Arc, time::Duration};

use tokio::{sync::oneshot, time::Instant};

use crate::{
    domain::limit::{AttemptTicket, Change, LimitConfig, ReceiverState, WaitVerdict},
    telemetry::{
        metrics::Metrics,
        receivers::{MAX_ROWS, ReceiverBoard, ReceiverRow, ReceiversPage},
    },
};

mod receiver;
mod slot;

use receiver::{Asked, Handed, LineView, Receiver};
pub(crate) use slot::ReceiverSlot;

/// Longest a delivery waits for a slot of a troubled receiver, and the
/// longest line of waiters it joins (in expected time to clear, at the
/// receiver's limit per round trip). Two seconds: a deferral costs the
/// event the shortest tier's delay (60 s by default), so a short wait is
/// worth it, while a line that would take longer means the receiver
/// cannot keep up and its waiters would only hold the process's slots
/// from everyone else. Also how often a waiter of a healthy receiver
/// looks again at its receiver's health.
pub(crate) const WAIT_BUDGET: Duration = Duration::from_secs(2);

/// The longest line a delivery to a healthy receiver joins (in expected
/// time to clear at the receiver's pace), once the receiver's limit has
/// stopped doubling: a receiver whose line would take longer cannot keep
/// up with its share of the traffic, and its waiters would hold the
/// process's slots from the others. A twelfth of the shortest tier's
/// default delay, so waiting is the cheaper choice wherever it is allowed.
pub(crate) const HEALTHY_LINE_BUDGET: Duration = Duration::from_secs(5);

/// How long a delivery waits on a receiver that has not answered yet (too
/// new to judge) before it is deferred, unless the receiver answers
/// meanwhile: long enough for a healthy receiver's first connections on a
/// busy machine, short against the timeout a hanging one would hold.
pub(crate) const NEW_RECEIVER_WAIT: Duration = Duration::from_millis(500);

/// Receivers kept in the table before idle ones are pruned.
const PRUNE_ABOVE: usize = 4096;

/// An idle receiver is forgotten after this long unused.
const FORGET_AFTER: Duration = Duration::from_secs(300);

/// The per-receiver limits of the process.
#[derive(Debug)]
pub(crate) struct ReceiverLimits {
    epoch: Instant,
    config: LimitConfig,
    table: std::sync::Mutex<std::collections::HashMap<String, Arc<Receiver>>>,
    metrics: Arc<Metrics>,
}

/// The answer to a delivery asking for a slot of its receiver.
#[derive(Debug)]
pub(crate) enum Admission<'a> {
    /// A slot, held for one attempt.
    Granted(ReceiverSlot<'a>),
    /// No slot: defer the delivery.
    Defer,
}

/// Until when a waiter of a receiver in this state waits, counted from its
/// arrival (`None`: for its turn, however long, while the state holds).
fn give_up_at(verdict: WaitVerdict, arrived: Instant, rtt: Option<Duration>) -> Option<Instant> {
    match verdict {
        WaitVerdict::Queue => None,
        WaitVerdict::Wait { at_most } => Some(
            arrived
                + match rtt {
                    Some(_) => WAIT_BUDGET,
                    None => at_most.max(NEW_RECEIVER_WAIT),
                },
        ),
        WaitVerdict::Defer => Some(arrived),
    }
}

/// Whether an arrival finding no slot joins the line (else it is deferred).
fn joins(verdict: WaitVerdict, line: LineView) -> bool {
    let budget = match verdict {
        WaitVerdict::Defer => return false,
        WaitVerdict::Queue => HEALTHY_LINE_BUDGET,
        WaitVerdict::Wait { .. } => WAIT_BUDGET,
    };
    // A line judged by a limit still doubling every round trip would be
    // judged too long.
    line.growing || line.clears_in().is_none_or(|t| t <= budget)
}

/// A place in a receiver's line. Dropped while still in line (the delivery
/// gave up, or its task was dropped), it leaves, passing on any slot
/// handed to it meanwhile, so a slot never leaks.
struct Place<'a> {
    limits: &'a ReceiverLimits,
    receiver: &'a Arc<Receiver>,
    id: u64,
    rx: oneshot::Receiver<Handed>,
    in_line: bool,
}

impl Place<'_> {
    /// Leaves the line; whatever was handed meanwhile is the answer.
    fn leave(&mut self) -> Option<Handed> {
        self.in_line = false;
        self.receiver.books().leave(self.id, &mut self.rx)
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if !self.in_line {
            return;
        }
        if let Some(Handed::Slot(ticket)) = self.leave() {
            let now = self.limits.now();
            self.receiver.books().pass_on(ticket, now);
        }
    }
}

impl ReceiverLimits {
    /// Limits starting at `config.initial` per receiver, below the ceiling
    /// `config.max` (the caller passes the process concurrency for "none").
    pub(crate) fn new(config: LimitConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            epoch: Instant::now(),
            config,
            table: Default::default(),
            metrics,
        }
    }

    /// The key of a URL's receiver: scheme, host and port.
    pub(crate) fn key(url: &url::Url) -> String {
        format!(
            "{}://{}:{}",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        )
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn record(&self, change: Change) {
        if let Change::Decreased(cause) = change {
            self.metrics.receivers.decreased(cause).inc();
        }
    }

    /// The receiver of `key`, created at the initial limit when new.
    fn receiver(&self, key: &str) -> Arc<Receiver> {
        let now = self.now();
        let mut table = self.table.lock().expect("receiver table lock");
        if table.len() > PRUNE_ABOVE {
            table.retain(|_, r| Arc::strong_count(r) > 1 || r.busy());
        }
        // Look up before inserting: no key allocation on the hot path.
        let receiver = match table.get(key) {
            Some(r) => r.clone(),
            None => {
                let r = Arc::new(Receiver::new(key, self.config.clone(), now));
                table.insert(key.to_string(), r.clone());
                r
            }
        };
        receiver.touch(now);
        receiver
    }

    fn granted(&self, receiver: Arc<Receiver>, ticket: AttemptTicket) -> Admission<'_> {
        Admission::Granted(ReceiverSlot::new(self, receiver, ticket))
    }

    /// A slot of the receiver `key`: at once when one is free and nobody
    /// waits, else in the receiver's line, first come first served, for as
    /// long as the receiver's health allows; else [`Admission::Defer`].
    pub(crate) async fn acquire(&self, key: &str) -> Admission<'_> {
        let receiver = self.receiver(key);
        let arrived = Instant::now();
        let (id, rx, mut verdict, mut rtt) = {
            let now = self.now();
            let mut books = receiver.books();
            self.record(books.tick(now));
            let (verdict, line) = match books.ask(now, self.config.max) {
                Asked::Slot(ticket) => {
                    drop(books);
                    return self.granted(receiver, ticket);
                }
                Asked::Full(verdict, line) => (verdict, line),
            };
            if !joins(verdict, line) {
                return Admission::Defer;
            }
            let (id, rx) = books.join();
            (id, rx, verdict, line.rtt)
        };
        let mut place = Place {
            limits: self,
            receiver: &receiver,
            id,
            rx,
            in_line: true,
        };
        loop {
            let give_up = give_up_at(verdict, arrived, rtt);
            let look_again = give_up.unwrap_or_else(|| Instant::now() + WAIT_BUDGET);
            let handed = match tokio::time::timeout_at(look_again, &mut place.rx).await {
                Ok(Ok(Handed::Slot(ticket))) => {
                    place.in_line = false;
                    // The attempt starts now, not when the slot was handed.
                    let now = self.now();
                    let ticket = receiver.books().controller.restart(ticket, now);
                    Some(Handed::Slot(ticket))
                }
                Ok(handed) => {
                    place.in_line = false;
                    handed.ok()
                }
                Err(_) => {
                    // Time to look again at the receiver's health.
                    let now = self.now();
                    {
                        let mut books = receiver.books();
                        self.record(books.tick(now));
                        verdict = books.controller.should_wait();
                        rtt = books.controller.rtt_estimate();
                    }
                    let give_up = give_up_at(verdict, arrived, rtt);
                    if give_up.is_none_or(|t| Instant::now() < t) {
                        continue;
                    }
                    place.leave()
                }
            };
            return match handed {
                Some(Handed::Slot(ticket)) => self.granted(receiver.clone(), ticket),
                Some(Handed::Defer) | None => Admission::Defer,
            };
        }
    }

    /// Brings every receiver's controller up to date (stall detection for
    /// receivers nobody asks for, which defers their lines), refreshes the
    /// receivers' gauges, and forgets receivers idle for long. Called about
    /// once a second.
    pub(crate) fn maintain(&self) {
        let now = self.now();
        let mut table = self.table.lock().expect("receiver table lock");
        table.retain(|_, r| {
            r.busy() || Arc::strong_count(r) > 1 || now.saturating_sub(r.last_used()) < FORGET_AFTER
        });
        let mut by_state = [0i64; 4];
        let mut saturated = 0;
        for r in table.values() {
            let mut books = r.books();
            self.record(books.tick(now));
            let controller = &books.controller;
            let state = controller.state();
            by_state[state.index()] += 1;
            if controller.in_flight() >= controller.limit() {
                saturated += 1;
            }
        }
        for (state, n) in ReceiverState::ALL.iter().zip(by_state) {
            self.metrics.receivers.in_state(*state).set(n);
        }
        self.metrics.receivers.saturated.set(saturated);
        self.metrics.receivers.tracked.set(table.len() as i64);
    }
}

impl ReceiverBoard for ReceiverLimits {
    fn page(&self) -> ReceiversPage {
        let table = self.table.lock().expect("receiver table lock");
        let mut receivers: Vec<ReceiverRow> = table
            .values()
            .map(|r| {
                let s = r.books().controller.snapshot();
                ReceiverRow {
                    key: r.key.clone(),
                    limit: s.limit,
                    in_flight: s.in_flight,
                    overdue: s.overdue,
                    latency_ms: s.rtt_estimate.map(|d| d.as_secs_f64() * 1000.0),
                    state: s.state.as_str(),
                    health: None,
                }
            })
            .collect();
        receivers.sort_by(|a, b| {
            (b.in_flight, b.limit)
                .cmp(&(a.in_flight, a.limit))
                .then_with(|| a.key.cmp(&b.key))
        });
        receivers.truncate(MAX_ROWS);
        ReceiversPage {
            tracked: table.len(),
            receivers,
        }
    }
}

#[cfg(test)]
mod tests;
