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
//! A delivery that finds its receiver full either waits or is *deferred*
//! (moved to the shortest retry tier without an attempt, so it holds no
//! slot while the receiver is slow). It waits only while the receiver is
//! answering and the line ahead of it is short: once the receiver's limit
//! has stopped doubling, the deliveries waiting, at the receiver's limit
//! per round trip, must clear within [`WAIT_BUDGET`]; and it never waits
//! longer than that in all. A receiver that has not
//! answered yet is too new to judge: it is waited for only briefly
//! ([`NEW_RECEIVER_WAIT`]) unless it answers meanwhile. A stalled receiver is
//! deferred at once. So a healthy receiver's start-up backlog is waited
//! for, while one slow receiver cannot fill the process with waiters that
//! starve the others.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};

use crate::{
    domain::limit::{
        self, AttemptTicket, Change, Controller, Feedback, LimitConfig, ReceiverState, WaitVerdict,
    },
    telemetry::{
        metrics::Metrics,
        receivers::{MAX_ROWS, ReceiverBoard, ReceiverRow, ReceiversPage},
    },
};

/// Longest a delivery waits for a slot of an answering receiver, and the
/// longest line of waiters it joins (in expected time to clear, at the
/// receiver's limit per round trip). Two seconds: a deferral costs the
/// event the shortest tier's delay (60 s by default), so a healthy
/// receiver's start-up backlog is worth a short wait, while a line that
/// would take longer means the receiver cannot keep up and its waiters
/// would only hold the process's slots from everyone else.
pub(crate) const WAIT_BUDGET: Duration = Duration::from_secs(2);

/// How long a delivery waits on a receiver that has not answered yet (too
/// new to judge) before it is deferred, unless the receiver answers
/// meanwhile: long enough for a healthy receiver's first connections on a
/// busy machine, short against the timeout a hanging one would hold.
pub(crate) const NEW_RECEIVER_WAIT: Duration = Duration::from_millis(500);

/// Receivers kept in the table before idle ones are pruned.
const PRUNE_ABOVE: usize = 4096;

/// An idle receiver is forgotten after this long unused.
const FORGET_AFTER: Duration = Duration::from_secs(300);

/// One receiver: its controller, and the waiters for its slots.
#[derive(Debug)]
struct Receiver {
    key: String,
    controller: Mutex<Controller>,
    /// Woken when a slot frees (one waiter) or the limit grows (all).
    freed: Notify,
    waiting: AtomicUsize,
    /// Milliseconds since the table's epoch of the last use.
    last_used_ms: AtomicU64,
}

/// The per-receiver limits of the process.
#[derive(Debug)]
pub(crate) struct ReceiverLimits {
    epoch: Instant,
    config: LimitConfig,
    table: Mutex<HashMap<String, Arc<Receiver>>>,
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

/// A slot of one receiver, held for one attempt. Given back with
/// [`ReceiverSlot::finish`]; dropped unfinished (an attempt abandoned at
/// the end of the grace), it is given back as answered, so it never leaks.
#[derive(Debug)]
pub(crate) struct ReceiverSlot<'a> {
    limits: &'a ReceiverLimits,
    receiver: Arc<Receiver>,
    ticket: Option<AttemptTicket>,
}

impl ReceiverSlot<'_> {
    /// Gives the slot back, telling the receiver's limit how it went.
    pub(crate) fn finish(mut self, feedback: Feedback) {
        self.give_back(feedback);
    }

    fn give_back(&mut self, feedback: Feedback) {
        let Some(ticket) = self.ticket.take() else {
            return;
        };
        let now = self.limits.now();
        let change = self
            .receiver
            .controller
            .lock()
            .expect("controller lock")
            .finish(ticket, now, feedback);
        self.limits.record(change);
        match change {
            Change::Increased => self.receiver.freed.notify_waiters(),
            _ => self.receiver.freed.notify_one(),
        }
    }
}

impl Drop for ReceiverSlot<'_> {
    fn drop(&mut self) {
        self.give_back(Feedback::OtherStatus);
    }
}

impl ReceiverLimits {
    /// Limits starting at `config.initial` per receiver, below the ceiling
    /// `config.max` (the caller passes the process concurrency for "none").
    pub(crate) fn new(config: LimitConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            epoch: Instant::now(),
            config,
            table: Mutex::new(HashMap::new()),
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
                let r = Arc::new(Receiver {
                    key: key.to_string(),
                    controller: Mutex::new(Controller::new(self.config.clone(), now)),
                    freed: Notify::new(),
                    waiting: AtomicUsize::new(0),
                    last_used_ms: AtomicU64::new(0),
                });
                table.insert(key.to_string(), r.clone());
                r
            }
        };
        receiver
            .last_used_ms
            .store(now.as_millis() as u64, Ordering::Relaxed);
        receiver
    }

    /// A slot of the receiver `key`, waiting for one while the receiver
    /// answers and the line is short, else [`Admission::Defer`].
    pub(crate) async fn acquire(&self, key: &str) -> Admission<'_> {
        let receiver = self.receiver(key);
        let mut first_full = None;
        loop {
            let notified = receiver.freed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = self.now();
            let (verdict, rtt, line_clears_in, growing) = {
                let mut controller = receiver.controller.lock().expect("controller lock");
                let change = controller.tick(now);
                self.record(change);
                match controller.try_acquire(now) {
                    limit::Admission::Granted(ticket) => {
                        return Admission::Granted(ReceiverSlot {
                            limits: self,
                            receiver: receiver.clone(),
                            ticket: Some(ticket),
                        });
                    }
                    limit::Admission::Full(verdict) => {
                        let waiting = receiver.waiting.load(Ordering::Relaxed) as u32;
                        let rtt = controller.rtt_estimate();
                        let clears = rtt.map(|rtt| {
                            rtt.mul_f64(f64::from(waiting + 1) / f64::from(controller.limit()))
                        });
                        let growing = controller.state() == ReceiverState::SlowStart
                            && controller.limit() < self.config.max;
                        (verdict, rtt, clears, growing)
                    }
                }
            };
            // Stalled, or a line too long for the budget: defer now.
            let WaitVerdict::Wait { at_most } = verdict else {
                return Admission::Defer;
            };
            // A line judged by a limit still doubling every round trip
            // would be judged too long; once the limit has settled, a line
            // that cannot clear within the budget is deferred now.
            if !growing && line_clears_in.is_some_and(|t| t > WAIT_BUDGET) {
                return Admission::Defer;
            }
            // A receiver that has not answered yet is too new to judge: a
            // brief wait. Once it answers, the whole budget from the first
            // try.
            let first = *first_full.get_or_insert_with(Instant::now);
            let until = first
                + match rtt {
                    Some(_) => WAIT_BUDGET,
                    None => at_most.max(NEW_RECEIVER_WAIT),
                };
            if Instant::now() >= until {
                return Admission::Defer;
            }
            receiver.waiting.fetch_add(1, Ordering::Relaxed);
            let _ = tokio::time::timeout_at(until, notified).await;
            receiver.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Brings every receiver's controller up to date (stall detection for
    /// receivers nobody asks for), refreshes the receivers' gauges, and
    /// forgets receivers idle for long. Called about once a second.
    pub(crate) fn maintain(&self) {
        let now = self.now();
        let mut table = self.table.lock().expect("receiver table lock");
        table.retain(|_, r| {
            r.busy()
                || Arc::strong_count(r) > 1
                || (now.as_millis() as u64).saturating_sub(r.last_used_ms.load(Ordering::Relaxed))
                    < FORGET_AFTER.as_millis() as u64
        });
        let mut by_state = [0i64; 4];
        let mut saturated = 0;
        for r in table.values() {
            let mut controller = r.controller.lock().expect("controller lock");
            self.record(controller.tick(now));
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

impl Receiver {
    fn busy(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 0
            || self.controller.lock().expect("controller lock").in_flight() > 0
    }
}

impl ReceiverBoard for ReceiverLimits {
    fn page(&self) -> ReceiversPage {
        let table = self.table.lock().expect("receiver table lock");
        let mut receivers: Vec<ReceiverRow> = table
            .values()
            .map(|r| {
                let s = r.controller.lock().expect("controller lock").snapshot();
                ReceiverRow {
                    key: r.key.clone(),
                    limit: s.limit,
                    in_flight: s.in_flight,
                    overdue: s.overdue,
                    latency_ms: s.rtt_estimate.map(|d| d.as_secs_f64() * 1000.0),
                    state: s.state.as_str(),
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
