//! Whether a receiver is failing, as one process sees it (contract
//! section 8: `receiver.failing`, `receiver.recovered`): a state machine
//! per receiver, fed each attempt's outcome with the time passed in.
//!
//! - *healthy → failing* after [`FAILING_AFTER`] failed attempts in a row
//!   (a timeout, a connection error, a non-2xx status; a refused private
//!   target is the sender's mistake, not the receiver's, and counts for
//!   neither side);
//! - *failing → healthy* on a success, once the receiver has been failing
//!   for at least [`MIN_STATE_TIME`].
//!
//! So each receiver changes state at most once per [`MIN_STATE_TIME`] in
//! each direction: a receiver that flaps is reported failing once, and
//! recovered once it has stayed up long enough to be believed. With the
//! default retry schedule, 10 failures in a row is a receiver down for
//! one busy minute or several quiet ones; a receiver answering half its
//! requests with 5xx rarely reaches it (0.5¹⁰ ≈ 0.1 %).

use std::time::Duration;

use super::outcome::AttemptOutcome;

/// Failed attempts in a row that make a healthy receiver failing.
pub const FAILING_AFTER: u32 = 10;

/// Least time between a receiver's state changes.
pub const MIN_STATE_TIME: Duration = Duration::from_secs(60);

/// A receiver's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Answering, or not yet failing long enough.
    Healthy,
    /// [`FAILING_AFTER`] failures in a row, no success believed since.
    Failing,
}

impl Health {
    /// As `/receivers` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Failing => "failing",
        }
    }
}

/// What one attempt says about its receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A 2xx.
    Succeeded,
    /// The receiver failed it.
    Failed,
    /// Says nothing about the receiver.
    Neutral,
}

impl Verdict {
    /// What an attempt's outcome says about its receiver.
    pub fn of(outcome: &AttemptOutcome) -> Self {
        match outcome {
            AttemptOutcome::Success { .. } => Verdict::Succeeded,
            AttemptOutcome::ForbiddenTarget(_) => Verdict::Neutral,
            _ => Verdict::Failed,
        }
    }
}

/// A state change to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthChange {
    /// Now failing, after this many failures in a row.
    Failing(u32),
    /// Failing no more.
    Recovered,
}

/// One receiver's health, as attempts come in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthState {
    health: Health,
    failures_in_a_row: u32,
    /// When the state last changed, ms on the caller's clock.
    changed_at_ms: Option<i64>,
}

impl Default for HealthState {
    fn default() -> Self {
        Self {
            health: Health::Healthy,
            failures_in_a_row: 0,
            changed_at_ms: None,
        }
    }
}

impl HealthState {
    /// The current health.
    pub fn health(&self) -> Health {
        self.health
    }

    /// Whether the state holds nothing worth keeping (healthy, no
    /// failure pending): such entries can be forgotten.
    pub fn is_idle(&self) -> bool {
        self.health == Health::Healthy && self.failures_in_a_row == 0
    }

    /// Takes one attempt's verdict at `now_ms`; returns the state change
    /// it causes, if any.
    pub fn observe(&mut self, verdict: Verdict, now_ms: i64) -> Option<HealthChange> {
        let settled = self
            .changed_at_ms
            .is_none_or(|t| now_ms.saturating_sub(t) >= MIN_STATE_TIME.as_millis() as i64);
        match verdict {
            Verdict::Neutral => None,
            Verdict::Failed => {
                self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
                if self.health == Health::Healthy
                    && self.failures_in_a_row >= FAILING_AFTER
                    && settled
                {
                    self.health = Health::Failing;
                    self.changed_at_ms = Some(now_ms);
                    return Some(HealthChange::Failing(self.failures_in_a_row));
                }
                None
            }
            Verdict::Succeeded => {
                self.failures_in_a_row = 0;
                if self.health == Health::Failing && settled {
                    self.health = Health::Healthy;
                    self.changed_at_ms = Some(now_ms);
                    return Some(HealthChange::Recovered);
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = MIN_STATE_TIME.as_millis() as i64;

    #[test]
    fn failing_after_failures_in_a_row_recovered_on_a_believed_success() {
        let mut s = HealthState::default();
        for i in 1..FAILING_AFTER {
            assert_eq!(s.observe(Verdict::Failed, i64::from(i)), None);
        }
        assert_eq!(
            s.observe(Verdict::Neutral, 10),
            None,
            "neutral keeps the run"
        );
        assert_eq!(
            s.observe(Verdict::Failed, 10),
            Some(HealthChange::Failing(FAILING_AFTER))
        );
        assert_eq!(s.health(), Health::Failing);
        assert_eq!(
            s.observe(Verdict::Failed, 11),
            None,
            "a change, not each failure"
        );
        // A success too soon is not believed yet...
        assert_eq!(s.observe(Verdict::Succeeded, 10 + MIN - 1), None);
        assert_eq!(s.health(), Health::Failing);
        // ...a later one is.
        assert_eq!(
            s.observe(Verdict::Succeeded, 10 + MIN),
            Some(HealthChange::Recovered)
        );
        assert!(s.is_idle());
    }

    #[test]
    fn a_broken_run_starts_over_and_flapping_is_reported_once_per_window() {
        let mut s = HealthState::default();
        for t in 0..FAILING_AFTER - 1 {
            s.observe(Verdict::Failed, i64::from(t));
        }
        s.observe(Verdict::Succeeded, 20);
        assert_eq!(s.observe(Verdict::Failed, 21), None, "the run starts over");
        let mut s = HealthState::default();
        for t in 0..FAILING_AFTER {
            s.observe(Verdict::Failed, 0);
            let _ = t;
        }
        assert_eq!(s.health(), Health::Failing);
        assert_eq!(
            s.observe(Verdict::Succeeded, MIN),
            Some(HealthChange::Recovered)
        );
        // Failing again at once: held back until the window has passed.
        for _ in 0..FAILING_AFTER {
            assert_eq!(s.observe(Verdict::Failed, MIN + 1), None);
        }
        assert_eq!(
            s.observe(Verdict::Failed, 2 * MIN),
            Some(HealthChange::Failing(FAILING_AFTER + 1))
        );
    }
}
