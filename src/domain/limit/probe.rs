//! The single attempts sent to a stalled receiver, paced.

use std::time::Duration;

/// Pacing of a stalled receiver's probes: one attempt, then the interval
/// doubles (up to a ceiling) until the receiver answers.
#[derive(Debug)]
pub(super) struct Probe {
    next_at: Duration,
    interval: Duration,
}

impl Probe {
    /// The first probe may go at `now`, the next `interval` later.
    pub(super) fn new(now: Duration, interval: Duration) -> Self {
        Self {
            next_at: now,
            interval,
        }
    }

    /// Whether a probe may go at `now`; if so, the next one waits twice
    /// as long (at most `ceiling`).
    pub(super) fn take_turn(&mut self, now: Duration, ceiling: Duration) -> bool {
        if now < self.next_at {
            return false;
        }
        self.next_at = now + self.interval;
        self.interval = (self.interval * 2).min(ceiling);
        true
    }
}
