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
