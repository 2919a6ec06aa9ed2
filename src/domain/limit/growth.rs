//! How a closed window moves the limit: doubling in slow start, steps of
//! [`avoidance_step`] after it, and what each [`Verdict`] does in each
//! [`Phase`].

use super::{
    LimitConfig,
    window::{Band, Verdict},
};

/// The growth per round trip once slow start is over: √limit, but at least
/// an eighth of it. √limit alone (TCP-like) takes seconds to climb from a
/// few hundred to the thousand in flight a 100 ms receiver can use, and
/// every increase must still pay for itself in the next window.
fn avoidance_step(limit: u32) -> u32 {
    let root = f64::from(limit).sqrt().round() as u32;
    root.max(limit / 8).max(1)
}

/// The rise of the round trip that ends slow start, as a fraction of the
/// long-run mean: twice TCP HyStart's RTT/8. Each doubling adds as many
/// attempts as were in flight, and on a shared machine that alone lifts a
/// 100 ms receiver's latency (the worker's own CPU load, not the
/// receiver): at the 5 % noise floor slow start ended far below what a
/// 100 ms receiver could use, and at RTT/8 it still ended at 256 in 3 of 5
/// cold bursts on a slower machine, whose last event then came 2.6 s after
/// the first instead of 1.9 s (bench/README.md, "Slow start ends at a rise
/// of RTT/4").
/// A receiver near its knee is still caught by the increase that does not
/// pay for itself (judged at the noise floor), which cuts: a doubling
/// past the knee raises the round trip by far more than a quarter.
const SLOW_START_DRIFT: f64 = 0.25;

/// Doubling until the first cut (or after a stall), then steps of
/// [`avoidance_step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    SlowStart,
    Avoidance,
}

/// What a judged window does to the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Cut for a latency rise.
    Cut,
    /// Stop doubling and keep the limit.
    EndSlowStart,
    /// Raise the limit by this much.
    Grow(u32),
    /// Keep the limit; the last increase is judged and forgotten.
    Keep,
}

impl Phase {
    /// How far latency may rise in this phase before it counts.
    pub(super) fn band(self, cfg: &LimitConfig) -> Band {
        let noise = cfg.rtt_noise_floor;
        Band {
            noise,
            drift: match self {
                Phase::SlowStart => noise.max(SLOW_START_DRIFT),
                Phase::Avoidance => noise,
            },
            scale: cfg.rtt_deviation_scale,
        }
    }

    /// What `verdict` does in this phase to `limit`; `room`: the window
    /// reached the limit and the limit is below its ceiling.
    pub(super) fn step(self, verdict: Verdict, room: bool, limit: u32) -> Step {
        match (verdict, self) {
            (Verdict::Unpaid, _) | (Verdict::Drifted, Phase::Avoidance) => Step::Cut,
            // Doubling, latency rose past the band, yet the last increase
            // paid for itself: the knee is near (or this machine is
            // getting busy). Stop doubling and keep the limit, as TCP's
            // HyStart does; a cut here would throw away a limit that
            // still buys throughput, and regrow it slowly.
            (Verdict::Drifted, Phase::SlowStart) => Step::EndSlowStart,
            (Verdict::Held, Phase::SlowStart) if room => Step::Grow(limit),
            (Verdict::Held, Phase::Avoidance) if room => Step::Grow(avoidance_step(limit)),
            (Verdict::Held | Verdict::Within, _) => Step::Keep,
        }
    }
}
