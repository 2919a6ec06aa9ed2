//! A tiny discrete-event simulator for the scenario tests: one receiver model
//! and a caller with an infinite backlog that keeps as many attempts in flight
//! as the controller admits, up to a process cap. It asserts the controller's
//! bounds after every call.

use super::*;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

pub(super) const TIMEOUT: Duration = Duration::from_secs(10);
pub(super) const TICK: Duration = Duration::from_millis(5);

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(super) fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// What the receiver does with one attempt arriving at `now` when `in_flight`
/// attempts (this one included) are at it: answer after a delay, or hang
/// (`None`), which the worker's timeout turns into `Timeout` after 10 s.
pub(super) type Receiver = Box<dyn FnMut(Duration, u32) -> Option<(Duration, Feedback)>>;

pub(super) fn ok_after(latency: Duration) -> Option<(Duration, Feedback)> {
    Some((latency, Feedback::Success))
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    pub(super) at: Duration,
    pub(super) limit: u32,
    pub(super) in_flight: u32,
    pub(super) state: ReceiverState,
    pub(super) verdict: WaitVerdict,
}

/// The controller, a receiver and a caller that keeps as many attempts in
/// flight as the controller admits, up to the process cap.
pub(super) struct Sim {
    pub(super) ctl: Controller,
    pub(super) receiver: Receiver,
    pub(super) process_cap: u32,
    pub(super) bounds: (u32, u32),
    pub(super) now: Duration,
    pub(super) next_tick: Duration,
    pub(super) pending: BinaryHeap<Reverse<(Duration, usize)>>,
    pub(super) tickets: Vec<Option<(AttemptTicket, Feedback)>>,
    pub(super) samples: Vec<Sample>,
    /// (start, end, feedback) of every finished attempt.
    pub(super) finished: Vec<(Duration, Duration, Feedback)>,
    pub(super) started: Vec<Duration>,
}

impl Sim {
    pub(super) fn new(cfg: LimitConfig, process_cap: u32, receiver: Receiver) -> Self {
        let ctl = Controller::new(cfg, Duration::ZERO);
        let bounds = (ctl.cfg.min, ctl.cfg.max);
        Self {
            ctl,
            receiver,
            process_cap,
            bounds,
            now: Duration::ZERO,
            next_tick: Duration::ZERO,
            pending: BinaryHeap::new(),
            tickets: Vec::new(),
            samples: Vec::new(),
            finished: Vec::new(),
            started: Vec::new(),
        }
    }

    pub(super) fn check(&self) {
        let (min, max) = self.bounds;
        let (limit, in_flight) = (self.ctl.limit(), self.ctl.in_flight());
        assert!(
            (min..=max).contains(&limit),
            "limit {limit} outside [{min}, {max}] at {:?}",
            self.now
        );
        assert!(
            in_flight <= max,
            "in flight {in_flight} above max {max} at {:?}",
            self.now
        );
        assert!(self.ctl.overdue() <= in_flight);
    }

    pub(super) fn run_until(&mut self, end: Duration) -> &mut Self {
        loop {
            let next_done = self.pending.peek().map_or(Duration::MAX, |r| r.0.0);
            let t = next_done.min(self.next_tick);
            if t > end {
                break;
            }
            self.now = t;
            while let Some(&Reverse((at, id))) = self.pending.peek() {
                if at > t {
                    break;
                }
                self.pending.pop();
                let (ticket, feedback) = self.tickets[id].take().expect("finished twice");
                self.finished.push((ticket.started(), at, feedback));
                self.ctl.finish(ticket, at, feedback);
                self.check();
            }
            self.ctl.tick(t);
            self.check();
            while self.ctl.in_flight() < self.process_cap {
                let Admission::Granted(ticket) = self.ctl.try_acquire(t) else {
                    break;
                };
                self.check();
                self.started.push(t);
                let (after, feedback) = match (self.receiver)(t, self.ctl.in_flight()) {
                    Some((after, fb)) if after < TIMEOUT => (after, fb),
                    _ => (TIMEOUT, Feedback::Timeout),
                };
                self.pending.push(Reverse((t + after, self.tickets.len())));
                self.tickets.push(Some((ticket, feedback)));
            }
            if t >= self.next_tick {
                self.samples.push(Sample {
                    at: t,
                    limit: self.ctl.limit(),
                    in_flight: self.ctl.in_flight(),
                    state: self.ctl.state(),
                    verdict: self.ctl.should_wait(),
                });
                self.next_tick += TICK;
            }
        }
        self
    }

    pub(super) fn during(&self, from: f64, to: f64) -> impl Iterator<Item = &Sample> {
        let (from, to) = (secs(from), secs(to));
        self.samples
            .iter()
            .filter(move |s| s.at >= from && s.at < to)
    }

    pub(super) fn mean_limit(&self, from: f64, to: f64) -> f64 {
        let (sum, n) = self
            .during(from, to)
            .fold((0u64, 0u64), |(s, n), x| (s + u64::from(x.limit), n + 1));
        sum as f64 / n as f64
    }

    pub(super) fn max_limit(&self, from: f64, to: f64) -> u32 {
        self.during(from, to).map(|s| s.limit).max().unwrap_or(0)
    }

    pub(super) fn first_time(&self, pred: impl Fn(&Sample) -> bool) -> Option<Duration> {
        self.samples.iter().find(|s| pred(s)).map(|s| s.at)
    }

    pub(super) fn finished_in(&self, from: f64, to: f64, fb: Option<Feedback>) -> usize {
        let (from, to) = (secs(from), secs(to));
        self.finished
            .iter()
            .filter(|(_, end, f)| *end >= from && *end < to && fb.is_none_or(|fb| fb == *f))
            .count()
    }
}

impl Sim {
    /// For debugging a scenario: prints every `every`-th sample.
    #[allow(dead_code)]
    pub(super) fn dump(&self, from: f64, to: f64, every: usize) {
        for s in self.during(from, to).step_by(every) {
            eprintln!(
                "{:>8.3} limit {:>5} in_flight {:>5} {:?} {:?}",
                s.at.as_secs_f64(),
                s.limit,
                s.in_flight,
                s.state,
                s.verdict
            );
        }
    }
}

/// xorshift64*: enough randomness for scenarios, no crates.
pub(super) struct Prng(pub(super) u64);

impl Prng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
