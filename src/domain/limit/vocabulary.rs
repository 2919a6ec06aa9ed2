//! The vocabulary of the adaptive limit: its configuration and what goes in
//! and out of the [`Controller`](super::Controller).

use std::time::Duration;

use crate::domain::outcome::AttemptOutcome;

/// Bounds and tunables. The defaults come from the simulations in `tests.rs`.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitConfig {
    /// The limit of a receiver not yet seen: small, yet enough for a fast one
    /// to start doubling at once.
    pub initial: u32,
    /// The floor: at least this many slots always, so recovery is noticed.
    pub min: u32,
    /// The hard ceiling (`WEBHOOK_HOST_CONCURRENCY`). The caller passes the
    /// effective one: for the setting's `0` ("none"), the process concurrency.
    /// A `0` here is read as "no ceiling at all".
    pub max: u32,
    /// EWMA weight of the newest window's RTT (vector's 0.4).
    pub rtt_alpha: f64,
    /// How many deviations above the mean a window's RTT may rise before it
    /// counts as back-pressure (vector's 2.5); also how many standard errors
    /// a window's mean may stray by chance.
    pub rtt_deviation_scale: f64,
    /// The smallest band, as a fraction of the mean, that counts as a rise: a
    /// receiver with near-constant latency has σ ≈ 0, and jitter alone must
    /// not cut its limit.
    pub rtt_noise_floor: f64,
    /// Factor applied on explicit back-pressure: the receiver told us, so cut
    /// harder than vector's 0.9 (CUBIC uses 0.7).
    pub backoff_ratio: f64,
    /// Factor applied on a latency rise: an inference, so cut gently.
    pub latency_backoff_ratio: f64,
    /// An attempt older than this many mean RTTs is overdue.
    pub overdue_factor: f64,
    /// ... but never before this age, so fast receivers' jitter is not overdue.
    pub overdue_floor: Duration,
    /// The overdue age before the first answer gives an RTT: generous, since a
    /// new receiver may be healthy and slow.
    pub first_answer_grace: Duration,
    /// A receiver that has never answered and whose oldest attempt is this
    /// old is not waited for: its deliveries are deferred at once, so a
    /// receiver that hangs from its first request holds no process slots
    /// with waiters until `first_answer_grace` judges it stalled.
    pub first_answer_wait: Duration,
    /// Window length before any RTT is known.
    pub rtt_guess: Duration,
    /// Windows last one mean RTT, but at least this (timer granularity)...
    pub window_floor: Duration,
    /// ... and at most this, so a slow receiver is still judged now and then.
    pub window_ceiling: Duration,
    /// Probes to a stalled receiver start one overdue age apart and double up
    /// to this interval: at most a handful of attempts hang per timeout.
    pub probe_interval_max: Duration,
    /// A delivery that finds no slot waits up to this many mean RTTs...
    pub wait_factor: f64,
    /// ... and never longer than this, then it is deferred.
    pub wait_ceiling: Duration,
    /// Back-pressure (timeout, connection error, 429, 503) this recent
    /// makes a receiver troubled rather than healthy ([`WaitVerdict`]).
    pub trouble_memory: Duration,
}

impl LimitConfig {
    /// The defaults with the given bounds.
    pub fn new(initial: u32, min: u32, max: u32) -> Self {
        Self {
            initial,
            min,
            max,
            ..Self::default()
        }
    }
}

impl Default for LimitConfig {
    fn default() -> Self {
        Self {
            initial: 16,
            min: 1,
            max: 1024,
            rtt_alpha: 0.4,
            rtt_deviation_scale: 2.5,
            rtt_noise_floor: 0.05,
            backoff_ratio: 0.7,
            latency_backoff_ratio: 0.9,
            overdue_factor: 6.0,
            overdue_floor: Duration::from_millis(250),
            first_answer_grace: Duration::from_secs(2),
            first_answer_wait: Duration::from_millis(500),
            rtt_guess: Duration::from_millis(100),
            window_floor: Duration::from_millis(10),
            window_ceiling: Duration::from_secs(2),
            probe_interval_max: Duration::from_secs(2),
            wait_factor: 2.0,
            wait_ceiling: Duration::from_secs(1),
            trouble_memory: Duration::from_secs(10),
        }
    }
}

/// A granted slot. Give it back with [`Controller::finish`](super::Controller::finish) exactly once,
/// from the caller's drop guard, so an abandoned attempt cannot leak a slot.
#[must_use = "a slot not given back to `finish` stays taken"]
#[derive(Debug, PartialEq, Eq)]
pub struct AttemptTicket {
    pub(super) started: Duration,
}

impl AttemptTicket {
    /// When the attempt was admitted.
    pub fn started(&self) -> Duration {
        self.started
    }
}

/// The answer to [`Controller::try_acquire`](super::Controller::try_acquire).
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// A slot: make the attempt, then give the ticket to `finish`.
    Granted(AttemptTicket),
    /// No slot now, and what to do about it.
    Full(WaitVerdict),
}

/// What a delivery that found no slot should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitVerdict {
    /// The receiver is healthy: it answers, its latency is known, and it
    /// showed no back-pressure (timeout, connection error, 429, 503) for
    /// `trouble_memory`. Wait for a turn: deferring costs the event a whole
    /// retry tier, and the line moves at the receiver's own pace.
    Queue,
    /// The receiver answers but is troubled, or is too new to judge: a slot
    /// should free within about this long; wait no longer.
    Wait {
        /// About two of the receiver's round trips, at most `wait_ceiling`.
        at_most: Duration,
    },
    /// The receiver is stalled (or all its slots hold overdue attempts):
    /// defer to the shortest retry tier without an attempt.
    Defer,
}

/// How an attempt ended, as far as the limit cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    /// A 2xx.
    Success,
    /// Any other status but 429 and 503 (410 included): answered, so neither
    /// back-pressure nor silence.
    OtherStatus,
    /// 429.
    TooManyRequests,
    /// 503.
    Unavailable,
    /// No status within `WEBHOOK_TIMEOUT`.
    Timeout,
    /// A connection or TLS error.
    ConnectError,
}

impl From<&AttemptOutcome> for Feedback {
    /// What an attempt's outcome tells the limit. A forbidden target made
    /// no request worth judging the receiver by: neutral.
    fn from(outcome: &AttemptOutcome) -> Self {
        match outcome {
            AttemptOutcome::Success { .. } => Self::Success,
            AttemptOutcome::Timeout => Self::Timeout,
            AttemptOutcome::ConnectError(_) => Self::ConnectError,
            AttemptOutcome::HttpError { status: 429, .. } => Self::TooManyRequests,
            AttemptOutcome::HttpError { status: 503, .. } => Self::Unavailable,
            AttemptOutcome::HttpError { .. }
            | AttemptOutcome::Gone
            | AttemptOutcome::ForbiddenTarget(_) => Self::OtherStatus,
        }
    }
}

impl Feedback {
    pub(super) fn answered(self) -> bool {
        !matches!(self, Self::Timeout | Self::ConnectError)
    }

    /// Only processed requests measure latency (instant 429s would drag it down).
    pub(super) fn measures_rtt(self) -> bool {
        matches!(self, Self::Success | Self::OtherStatus)
    }

    pub(super) fn back_pressure(self) -> Option<DecreaseCause> {
        match self {
            Self::Success | Self::OtherStatus => None,
            Self::TooManyRequests => Some(DecreaseCause::TooManyRequests),
            Self::Unavailable => Some(DecreaseCause::Unavailable),
            Self::Timeout => Some(DecreaseCause::Timeout),
            Self::ConnectError => Some(DecreaseCause::ConnectError),
        }
    }
}

/// The receiver's state, for `GET /receivers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiverState {
    /// Doubling per round trip: no back-pressure seen yet (or since a stall).
    SlowStart,
    /// Growing by √limit per round trip when the limit is reached.
    Steady,
    /// Cut in the current or the previous window.
    BackingOff,
    /// Attempts overdue and nothing answered: held at `min`, probed.
    Stalled,
}

impl ReceiverState {
    /// Every state, for pre-registering metric labels.
    pub const ALL: [ReceiverState; 4] = [
        Self::SlowStart,
        Self::Steady,
        Self::BackingOff,
        Self::Stalled,
    ];

    /// Its place in [`Self::ALL`], for arrays indexed by state.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The lowercase name `GET /receivers` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SlowStart => "slow_start",
            Self::Steady => "steady",
            Self::BackingOff => "backing_off",
            Self::Stalled => "stalled",
        }
    }
}

/// Why the limit fell: a bounded metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecreaseCause {
    /// An attempt got no status within `WEBHOOK_TIMEOUT`.
    Timeout,
    /// An attempt failed to connect (or in TLS).
    ConnectError,
    /// A 429.
    TooManyRequests,
    /// A 503.
    Unavailable,
    /// An attempt in flight grew older than the overdue age.
    Overdue,
    /// A window's RTT rose past the band, or an increase bought no throughput.
    LatencyRise,
    /// Overdue attempts and no answer: held to `min` and probed.
    Stalled,
}

impl DecreaseCause {
    /// Every cause, for pre-registering metric labels.
    pub const ALL: [DecreaseCause; 7] = [
        Self::Timeout,
        Self::ConnectError,
        Self::TooManyRequests,
        Self::Unavailable,
        Self::Overdue,
        Self::LatencyRise,
        Self::Stalled,
    ];

    /// Its place in [`Self::ALL`], for arrays indexed by cause.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::ConnectError => "connect_error",
            Self::TooManyRequests => "too_many_requests",
            Self::Unavailable => "unavailable",
            Self::Overdue => "overdue",
            Self::LatencyRise => "latency_rise",
            Self::Stalled => "stalled",
        }
    }
}

/// What a call did to the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The limit is what it was.
    Unchanged,
    /// The limit grew (by doubling or by √limit).
    Increased,
    /// The limit fell, and why.
    Decreased(DecreaseCause),
}

impl Change {
    /// Both changes as one: a decrease outranks an increase.
    pub(super) fn or(self, other: Change) -> Change {
        match (self, other) {
            (Change::Decreased(_), _) | (Change::Increased, Change::Unchanged) => self,
            _ => other,
        }
    }
}

/// One row of `GET /receivers` (the caller adds the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverSnapshot {
    /// The current limit.
    pub limit: u32,
    /// Attempts in flight, overdue ones included.
    pub in_flight: u32,
    /// Attempts in flight older than the overdue age.
    pub overdue: u32,
    /// The long-run mean RTT, once known.
    pub rtt_estimate: Option<Duration>,
    /// The state.
    pub state: ReceiverState,
}
