//! What a window measures: RTT samples, the long-run estimate they feed, and
//! the record of the last increase that the next window must justify.

use std::time::Duration;

/// Long-run RTT in seconds: EWMA of window means, with its variance.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rtt {
    pub(super) mean: f64,
    pub(super) var: f64,
}

/// RTT samples of a window.
#[derive(Debug, Default)]
pub(super) struct Samples {
    pub(super) sum: Duration,
    pub(super) count: u32,
    /// Sum of squares (s²), for the standard error of the mean.
    pub(super) squares: f64,
}

impl Rtt {
    /// Folds one window's mean in (incremental EWMA of mean and variance).
    pub(super) fn update(previous: Option<Rtt>, rtt: f64, alpha: f64) -> Rtt {
        match previous {
            None => Rtt {
                mean: rtt,
                var: 0.0,
            },
            Some(p) => {
                let diff = rtt - p.mean;
                Rtt {
                    mean: p.mean + alpha * diff,
                    var: (1.0 - alpha) * (p.var + alpha * diff * diff),
                }
            }
        }
    }
}

impl Samples {
    pub(super) fn add(&mut self, rtt: Duration) {
        self.sum += rtt;
        self.count += 1;
        self.squares += rtt.as_secs_f64().powi(2);
    }

    pub(super) fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| (self.sum / self.count).as_secs_f64())
    }

    /// Standard error of the mean: how far the window's mean may stray by
    /// chance. A receiver whose latency spreads widely has noisy windows, and
    /// noise must not read as a rise.
    pub(super) fn std_error(&self) -> f64 {
        let (n, mean) = (f64::from(self.count), self.mean().unwrap_or(0.0));
        if self.count < 2 {
            return 0.0;
        }
        ((self.squares / n - mean * mean).max(0.0) / (n - 1.0)).sqrt()
    }
}

/// One round trip's observations; decisions are taken when it closes.
#[derive(Debug)]
pub(super) struct Window {
    pub(super) start: Duration,
    /// Every answer: the long-run estimate learns from all of them, so a
    /// receiver that turned slow is soon judged by its new latency.
    pub(super) all: Samples,
    /// Answers to attempts started since the last change of the limit: the
    /// only ones that say anything about the current limit.
    pub(super) fresh: Samples,
    /// Most young attempts in flight during the window.
    pub(super) peak: u32,
    pub(super) reached_limit: bool,
    pub(super) back_pressure: bool,
}

impl Window {
    pub(super) fn new(start: Duration, young: u32, reached_limit: bool) -> Self {
        let (all, fresh) = (Samples::default(), Samples::default());
        Self {
            start,
            all,
            fresh,
            peak: young,
            reached_limit,
            back_pressure: false,
        }
    }
}

/// The last increase, kept until a window judges it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Anchor {
    pub(super) rtt: f64,
    pub(super) std_error: f64,
    pub(super) peak: u32,
    pub(super) limit_before: u32,
}

/// How far a window's RTT may rise before it counts, and the judgement.
#[derive(Debug, Clone, Copy)]
pub(super) struct Band {
    /// The smallest rise that counts against the last increase, as a
    /// fraction of the mean.
    pub(super) noise: f64,
    /// The smallest rise above the long-run mean that counts as a drift
    /// (and the most that still counts as held), as a fraction of the mean:
    /// the noise floor, wider in slow start.
    pub(super) drift: f64,
    /// Deviations (and standard errors) a mean may stray by chance.
    pub(super) scale: f64,
}

/// What a closed window says about the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The last increase did not buy throughput (Little's law): undo it.
    Unpaid,
    /// The RTT rose past the long-run mean + max(2.5 σ, drift floor).
    Drifted,
    /// The RTT held within the drift floor of the long-run mean.
    Held,
    /// Neither held nor risen: no change.
    Within,
}

impl Band {
    /// Judges the window's fresh mean RTT `c` (seconds) against the long-run
    /// estimate and the last increase.
    pub(super) fn judge(
        self,
        c: f64,
        window: &Window,
        rtt: Option<Rtt>,
        anchor: Option<Anchor>,
    ) -> Verdict {
        let chance = self.scale * window.fresh.std_error();
        let unpaid = anchor.is_some_and(|a| {
            // Throughput is in-flight / RTT. An increase of the in-flight
            // by a factor g must buy at least half of it.
            let g = f64::from(window.peak.max(1)) / f64::from(a.peak.max(1));
            c > a.rtt * g / (1.0 + 0.5 * (g - 1.0)) * (1.0 + self.noise)
                + chance
                + self.scale * a.std_error
        });
        let drifted = rtt.is_some_and(|p| {
            c > p.mean
                + (p.var.sqrt() * self.scale)
                    .max(p.mean * self.drift)
                    .max(chance)
        });
        let held = rtt.is_none_or(|p| c <= p.mean * (1.0 + self.drift));
        match (unpaid, drifted, held) {
            (true, _, _) => Verdict::Unpaid,
            (false, true, _) => Verdict::Drifted,
            (false, false, true) => Verdict::Held,
            (false, false, false) => Verdict::Within,
        }
    }
}
