//! How many attempts may run at once against one receiver (scheme://host:port),
//! adapted to that receiver (contract section 4) and shown by `GET /receivers`
//! (section 7).
//!
//! A fixed cap is wrong both ways: 64 slots drain a 100 ms receiver at only
//! 640/s, while no cap lets one hanging receiver hold every slot for the whole
//! timeout. So the limit is a congestion window in the manner of TCP and of
//! vector's adaptive concurrency: it doubles per round trip while the
//! receiver's latency holds (slow start), then grows by √limit per round trip,
//! and shrinks on back-pressure (timeouts, connection errors, 429, 503), on a
//! latency rise past the long-run mean + 2.5 σ, and, before any timeout, when
//! attempts in flight grow old against the receiver's own latency.
//!
//! The type is pure: time is a `Duration` since an arbitrary epoch passed into
//! every call, never read from a clock, so simulations are exact. Calls must
//! come with non-decreasing times; an earlier time is treated as the latest.

use std::time::Duration;

mod growth;
mod in_flight;
mod probe;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
mod vocabulary;
mod window;

use growth::{Phase, Step};
use in_flight::InFlight;
use probe::Probe;
pub use vocabulary::{
    Admission, AttemptTicket, Change, DecreaseCause, Feedback, LimitConfig, ReceiverSnapshot,
    ReceiverState, WaitVerdict,
};
use window::{Anchor, Rtt, Window};

/// The adaptive limit of one receiver.
#[derive(Debug)]
pub struct Controller {
    cfg: LimitConfig,
    limit: u32,
    phase: Phase,
    stall: Option<Probe>,
    backing_off: bool,
    in_flight: InFlight,
    rtt: Option<Rtt>,
    window: Window,
    last_answer: Duration,
    /// Whether any attempt was ever answered (with any status).
    answered: bool,
    /// Back-pressure from attempts started before the last cut was caused by
    /// the load that cut already answered: it is not counted again.
    last_decrease: Option<Duration>,
    /// Most young attempts in flight since the last cut: cuts start from what
    /// was used, not from a limit that demand never reached.
    peak_since_decrease: u32,
    /// Attempts started before this would credit (or blame) the current limit
    /// with the latency of the previous one, and make slow start overshoot.
    limit_changed_at: Duration,
    /// When the receiver last pushed back (timeout, connection error, 429,
    /// 503): until `trouble_memory` after it, its waiters wait bounded.
    last_trouble: Option<Duration>,
    /// The window that justified the last increase. The first window after it
    /// must show the increase bought throughput: the long-run mean absorbs a
    /// rise that grows step by step with the limit, so vector's rule alone
    /// lets the limit creep far past a receiver's knee. An increase that did
    /// not pay is undone, and cut, so probing cannot ratchet upwards.
    anchor: Option<Anchor>,
    now: Duration,
}

impl Controller {
    /// A receiver not seen before, at `cfg.initial`. Bounds are normalised:
    /// `min` at least 1, `max` 0 read as none, `max` at least `min`.
    pub fn new(mut cfg: LimitConfig, now: Duration) -> Self {
        cfg.min = cfg.min.max(1);
        cfg.max = if cfg.max == 0 {
            u32::MAX
        } else {
            cfg.max.max(cfg.min)
        };
        let limit = cfg.initial.clamp(cfg.min, cfg.max);
        Self {
            cfg,
            limit,
            phase: Phase::SlowStart,
            stall: None,
            backing_off: false,
            in_flight: InFlight::default(),
            rtt: None,
            window: Window::new(now, 0, false),
            last_answer: now,
            answered: false,
            last_decrease: None,
            peak_since_decrease: 0,
            last_trouble: None,
            limit_changed_at: now,
            anchor: None,
            now,
        }
    }

    /// How many young attempts may be in flight now.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Attempts granted and not yet finished, overdue ones included.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.count()
    }

    /// Attempts in flight older than the overdue age (as of the last `tick`).
    pub fn overdue(&self) -> u32 {
        self.in_flight.overdue()
    }

    /// The long-run mean RTT, once the receiver has answered.
    pub fn rtt_estimate(&self) -> Option<Duration> {
        self.rtt.map(|r| Duration::from_secs_f64(r.mean))
    }

    /// The state shown by `GET /receivers`.
    pub fn state(&self) -> ReceiverState {
        match (&self.stall, self.phase, self.backing_off) {
            (Some(_), _, _) => ReceiverState::Stalled,
            (None, Phase::SlowStart, _) => ReceiverState::SlowStart,
            (None, Phase::Avoidance, true) => ReceiverState::BackingOff,
            (None, Phase::Avoidance, false) => ReceiverState::Steady,
        }
    }

    /// The `GET /receivers` row (without the key).
    pub fn snapshot(&self) -> ReceiverSnapshot {
        ReceiverSnapshot {
            limit: self.limit,
            in_flight: self.in_flight(),
            overdue: self.overdue(),
            rtt_estimate: self.rtt_estimate(),
            state: self.state(),
        }
    }

    /// Takes a slot if one is free. Call [`Controller::tick`] first (the caller
    /// does both under one lock) so overdue attempts and stalls are current.
    pub fn try_acquire(&mut self, now: Duration) -> Admission {
        let now = self.advance(now);
        if self.in_flight.count() >= self.cfg.max {
            return Admission::Full(self.should_wait());
        }
        if let Some(probe) = &mut self.stall {
            if !probe.take_turn(now, self.cfg.probe_interval_max) {
                return Admission::Full(WaitVerdict::Defer);
            }
        } else if self.young() >= self.limit {
            return Admission::Full(self.should_wait());
        }
        self.in_flight.add(now);
        self.peak_since_decrease = self.peak_since_decrease.max(self.young());
        self.window.peak = self.window.peak.max(self.young());
        if self.young() >= self.limit {
            self.window.reached_limit = true;
        }
        Admission::Granted(AttemptTicket { started: now })
    }

    /// Gives a slot back and learns from how the attempt ended. A ticket this
    /// controller did not grant is ignored.
    pub fn finish(&mut self, ticket: AttemptTicket, now: Duration, feedback: Feedback) -> Change {
        let now = self.advance(now);
        let started = ticket.started;
        if !self.in_flight.forget(started) {
            return Change::Unchanged;
        }
        if feedback.answered() {
            self.last_answer = now;
            self.answered = true;
            if self.stall.take().is_some() {
                // Recovered: regrow from the floor by doubling, fresh window.
                self.phase = Phase::SlowStart;
                self.window = Window::new(now, 0, false);
                self.limit_changed_at = now;
            }
        }
        if feedback.measures_rtt() {
            let rtt = now.saturating_sub(started);
            self.window.all.add(rtt);
            if started >= self.limit_changed_at {
                self.window.fresh.add(rtt);
            }
        }
        let change = match feedback.back_pressure() {
            Some(cause) => {
                self.last_trouble = Some(now);
                self.back_pressure(started, cause, now)
            }
            None => Change::Unchanged,
        };
        change.or(self.tick(now))
    }

    /// Marks attempts that became overdue, detects a stall and closes the
    /// window. Call it before each `try_acquire` and periodically (every few
    /// tens of ms), so a receiver that answers nothing is still watched.
    pub fn tick(&mut self, now: Duration) -> Change {
        let now = self.advance(now);
        let threshold = self.overdue_age();
        let mut change = Change::Unchanged;
        if let Some(started) = self.in_flight.mark_overdue(now.saturating_sub(threshold)) {
            change = self.back_pressure(started, DecreaseCause::Overdue, now);
        }
        // Overdue attempts while nothing answered for half that age: the
        // receiver hangs. Hold it to the floor, probe it, wait for an answer.
        if self.stall.is_none()
            && self.in_flight.overdue() > 0
            && now.saturating_sub(self.last_answer) >= threshold / 2
        {
            self.stall = Some(Probe::new(now, threshold));
            self.set_limit(self.cfg.min, now);
            self.phase = Phase::Avoidance;
            self.backing_off = false;
            self.last_decrease = Some(now);
            change = Change::Decreased(DecreaseCause::Stalled);
        }
        if now >= self.window.start + self.window_len() {
            change = change.or(self.close_window(now));
        }
        change
    }

    /// Gives back a slot whose attempt was never made (its delivery stopped
    /// waiting as the slot was handed to it): nothing is learnt. A ticket
    /// this controller did not grant is ignored.
    pub fn release(&mut self, ticket: AttemptTicket) {
        self.in_flight.forget(ticket.started);
    }

    /// Restarts the clock of a slot handed to a waiter when the waiter
    /// takes it up: the time its task took to run is the worker's, not the
    /// receiver's, and must not count as latency. A ticket this controller
    /// did not grant comes back unchanged.
    pub fn restart(&mut self, ticket: AttemptTicket, now: Duration) -> AttemptTicket {
        let now = self.advance(now);
        if !self.in_flight.forget(ticket.started) {
            return ticket;
        }
        self.in_flight.add(now);
        AttemptTicket { started: now }
    }

    /// What a delivery finding no slot should do (as of the last call's
    /// time): defer when the receiver is stalled, all its slots hold
    /// overdue attempts, or it never answered an attempt made
    /// `first_answer_wait` ago; wait its turn when it is healthy; else
    /// wait about two of its round trips (bounded).
    pub fn should_wait(&self) -> WaitVerdict {
        let unanswered = !self.answered
            && self.in_flight.oldest().is_some_and(|oldest| {
                self.now.saturating_sub(oldest) >= self.cfg.first_answer_wait
            });
        if self.stall.is_some() || self.young() == 0 || unanswered {
            return WaitVerdict::Defer;
        }
        let calm = self
            .last_trouble
            .is_none_or(|t| self.now.saturating_sub(t) >= self.cfg.trouble_memory);
        if calm && self.rtt.is_some() {
            return WaitVerdict::Queue;
        }
        let rtt = self.rtt_estimate().unwrap_or(self.cfg.rtt_guess);
        WaitVerdict::Wait {
            at_most: rtt.mul_f64(self.cfg.wait_factor).min(self.cfg.wait_ceiling),
        }
    }

    fn set_limit(&mut self, limit: u32, now: Duration) {
        self.limit = limit;
        self.limit_changed_at = now;
    }

    fn advance(&mut self, now: Duration) -> Duration {
        self.now = self.now.max(now);
        self.now
    }

    fn young(&self) -> u32 {
        self.in_flight.young()
    }

    fn overdue_age(&self) -> Duration {
        match self.rtt {
            Some(r) => Duration::from_secs_f64(r.mean * self.cfg.overdue_factor)
                .max(self.cfg.overdue_floor),
            None => self.cfg.first_answer_grace,
        }
    }

    fn window_len(&self) -> Duration {
        self.rtt_estimate()
            .unwrap_or(self.cfg.rtt_guess)
            .clamp(self.cfg.window_floor, self.cfg.window_ceiling)
    }

    /// Explicit back-pressure (or an overdue attempt): cut at once rather than
    /// at the window's end, since instant 429s would otherwise churn through
    /// the excess slots for a whole round trip.
    fn back_pressure(&mut self, started: Duration, cause: DecreaseCause, now: Duration) -> Change {
        self.window.back_pressure = true;
        if self.stall.is_some() || self.last_decrease.is_some_and(|t| started < t) {
            return Change::Unchanged;
        }
        self.decrease(self.cfg.backoff_ratio, cause, now)
    }

    /// Cuts from what was in use; after an increase that did not pay, from
    /// the limit before it. Always by at least one, never below `min`.
    fn decrease(&mut self, ratio: f64, cause: DecreaseCause, now: Duration) -> Change {
        let mut base = self.limit.min(self.peak_since_decrease.max(1));
        if let (DecreaseCause::LatencyRise, Some(a)) = (cause, self.anchor) {
            base = base.min(a.limit_before);
        }
        let cut = (f64::from(base) * ratio) as u32;
        let new = cut.min(self.limit.saturating_sub(1)).max(self.cfg.min);
        self.phase = Phase::Avoidance;
        self.backing_off = true;
        self.window.back_pressure = true;
        self.last_decrease = Some(now);
        self.peak_since_decrease = self.young();
        self.anchor = None;
        if new == self.limit {
            return Change::Unchanged;
        }
        self.set_limit(new, now);
        Change::Decreased(cause)
    }

    /// Ends a round trip: grow if the limit was reached and latency held; cut
    /// if the last increase bought no throughput, or if latency rose past the
    /// long-run mean + max(2.5 σ, noise floor) once out of slow start (in
    /// slow start such a rise only ends the doubling); then fold the window's
    /// RTT into the long-run estimate. A window with fewer samples than three
    /// quarters of its attempts in flight is extended (up to 4 lengths,
    /// without limit for the first): the first answers after a change are the
    /// fastest ones, and judging on them alone made slow start overshoot.
    fn close_window(&mut self, now: Duration) -> Change {
        let w = &self.window;
        let enough = w.fresh.count >= (w.peak * 3 / 4).max(1);
        let horizon = w.start + self.window_len() * 4;
        if !enough && !w.back_pressure && (self.rtt.is_none() || now < horizon) {
            return Change::Unchanged;
        }
        let young = self.young();
        let window = std::mem::replace(
            &mut self.window,
            Window::new(now, young, young >= self.limit),
        );
        let mut change = Change::Unchanged;
        let fresh = window.fresh.mean();
        if let (None, false, true, Some(c)) = (&self.stall, window.back_pressure, enough, fresh) {
            self.backing_off = false;
            let verdict = self
                .phase
                .band(&self.cfg)
                .judge(c, &window, self.rtt, self.anchor);
            let room = window.reached_limit && self.limit < self.cfg.max;
            match self.phase.step(verdict, room, self.limit) {
                Step::Cut => {
                    change = self.decrease(
                        self.cfg.latency_backoff_ratio,
                        DecreaseCause::LatencyRise,
                        now,
                    );
                }
                Step::EndSlowStart => {
                    self.phase = Phase::Avoidance;
                    self.anchor = None;
                }
                Step::Grow(step) => {
                    self.anchor = Some(Anchor {
                        rtt: c,
                        std_error: window.fresh.std_error(),
                        peak: window.peak,
                        limit_before: self.limit,
                    });
                    self.set_limit(self.limit.saturating_add(step).min(self.cfg.max), now);
                    change = Change::Increased;
                }
                Step::Keep => self.anchor = None,
            }
        }
        if let Some(c) = window.all.mean() {
            self.rtt = Some(Rtt::update(self.rtt, c, self.cfg.rtt_alpha));
        }
        change
    }
}
