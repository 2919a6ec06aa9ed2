//! One receiver: its adaptive limit and the line of deliveries waiting for
//! its slots, under one lock, so a freed slot goes to the oldest waiter
//! before any new arrival can see it (the fair semaphores of tokio and
//! tower work the same way: a permit released while others wait is
//! assigned to the head of the queue, never left for whoever comes next).

use std::{
    collections::VecDeque,
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::oneshot;

use crate::domain::limit::{self, AttemptTicket, Change, Controller, LimitConfig, WaitVerdict};

/// What the line hands a waiter.
#[derive(Debug)]
pub(super) enum Handed {
    /// A slot, taken for it from the limit: the attempt may start.
    Slot(AttemptTicket),
    /// The receiver turned stalled (or all its slots hold overdue
    /// attempts): defer.
    Defer,
}

/// One waiting delivery: its number in the line and where its hand-off goes.
#[derive(Debug)]
struct Waiter {
    id: u64,
    tx: oneshot::Sender<Handed>,
}

/// A line keeps its largest allocation until it empties; then it shrinks
/// back to this, so memory follows the waiters, not the largest burst.
const IDLE_LINE_CAPACITY: usize = 16;

/// The receiver's limit and its line.
#[derive(Debug)]
pub(super) struct Books {
    pub(super) controller: Controller,
    line: VecDeque<Waiter>,
    next_id: u64,
}

/// One receiver of the table.
#[derive(Debug)]
pub(super) struct Receiver {
    pub(super) key: String,
    books: Mutex<Books>,
    /// Milliseconds since the table's epoch of the last use.
    pub(super) last_used_ms: AtomicU64,
}

/// What a delivery gets when it asks for a slot.
#[derive(Debug)]
pub(super) enum Asked {
    Slot(AttemptTicket),
    /// No slot now (or others are waiting): the verdict, and what the line
    /// looks like.
    Full(WaitVerdict, LineView),
}

/// What a delivery that found no slot knows about the line it would join.
#[derive(Debug, Clone, Copy)]
pub(super) struct LineView {
    pub(super) waiting: u32,
    pub(super) limit: u32,
    pub(super) rtt: Option<Duration>,
    /// Still doubling per round trip, below the ceiling: a line judged by
    /// today's limit would be judged too long.
    pub(super) growing: bool,
}

impl LineView {
    /// How long the line, with one more, takes to clear at the receiver's
    /// limit per round trip (unknown before its first answer).
    pub(super) fn clears_in(&self) -> Option<Duration> {
        self.rtt
            .map(|rtt| rtt.mul_f64(f64::from(self.waiting + 1) / f64::from(self.limit.max(1))))
    }
}

impl Receiver {
    pub(super) fn new(key: &str, config: LimitConfig, now: Duration) -> Self {
        Self {
            key: key.to_string(),
            books: Mutex::new(Books {
                controller: Controller::new(config, now),
                line: VecDeque::new(),
                next_id: 0,
            }),
            last_used_ms: AtomicU64::new(0),
        }
    }

    pub(super) fn books(&self) -> MutexGuard<'_, Books> {
        self.books.lock().expect("receiver lock")
    }

    /// Deliveries waiting or attempts in flight.
    pub(super) fn busy(&self) -> bool {
        let books = self.books();
        !books.line.is_empty() || books.controller.in_flight() > 0
    }

    pub(super) fn touch(&self, now: Duration) {
        self.last_used_ms
            .store(now.as_millis() as u64, Ordering::Relaxed);
    }

    pub(super) fn last_used(&self) -> Duration {
        Duration::from_millis(self.last_used_ms.load(Ordering::Relaxed))
    }
}

impl Books {
    /// A slot for a new arrival, only when nobody is waiting: an arrival
    /// never overtakes a waiter.
    pub(super) fn ask(&mut self, now: Duration, config_max: u32) -> Asked {
        let verdict = if self.line.is_empty() {
            match self.controller.try_acquire(now) {
                limit::Admission::Granted(ticket) => return Asked::Slot(ticket),
                limit::Admission::Full(verdict) => verdict,
            }
        } else {
            self.controller.should_wait()
        };
        Asked::Full(verdict, self.view(config_max))
    }

    /// The line as a delivery about to join it sees it.
    pub(super) fn view(&self, config_max: u32) -> LineView {
        let c = &self.controller;
        LineView {
            waiting: self.line.len() as u32,
            limit: c.limit(),
            rtt: c.rtt_estimate(),
            growing: c.state() == limit::ReceiverState::SlowStart && c.limit() < config_max,
        }
    }

    /// Joins the line at its end; the number is the place to leave it by.
    pub(super) fn join(&mut self) -> (u64, oneshot::Receiver<Handed>) {
        let (tx, rx) = oneshot::channel();
        let id = self.next_id;
        self.next_id += 1;
        self.line.push_back(Waiter { id, tx });
        (id, rx)
    }

    /// Leaves the line (a waiter that gives up or is dropped). Whatever was
    /// handed to it meanwhile comes back through `rx`: a slot is given on.
    pub(super) fn leave(&mut self, id: u64, rx: &mut oneshot::Receiver<Handed>) -> Option<Handed> {
        if let Some(at) = self.line.iter().position(|w| w.id == id) {
            self.line.remove(at);
            self.shrink_when_empty();
        }
        rx.close();
        rx.try_recv().ok()
    }

    /// Gives a slot that was handed to a waiter who no longer wants it to
    /// the next in line.
    pub(super) fn pass_on(&mut self, ticket: AttemptTicket, now: Duration) {
        self.controller.release(ticket);
        self.serve(now);
    }

    /// Hands free slots to the waiters, oldest first, while the limit has
    /// room; when the receiver has turned stalled, defers them all.
    pub(super) fn serve(&mut self, now: Duration) {
        while !self.line.is_empty() {
            match self.controller.try_acquire(now) {
                limit::Admission::Granted(ticket) => {
                    let waiter = self.line.pop_front().expect("line not empty");
                    if let Err(Handed::Slot(ticket)) = waiter.tx.send(Handed::Slot(ticket)) {
                        self.controller.release(ticket);
                    }
                }
                limit::Admission::Full(WaitVerdict::Defer) => {
                    for waiter in self.line.drain(..) {
                        let _ = waiter.tx.send(Handed::Defer);
                    }
                }
                limit::Admission::Full(_) => break,
            }
        }
        self.shrink_when_empty();
    }

    /// Brings the limit up to date and serves the line.
    pub(super) fn tick(&mut self, now: Duration) -> Change {
        let change = self.controller.tick(now);
        self.serve(now);
        change
    }

    fn shrink_when_empty(&mut self) {
        if self.line.is_empty() && self.line.capacity() > IDLE_LINE_CAPACITY {
            self.line.shrink_to(IDLE_LINE_CAPACITY);
        }
    }
}
