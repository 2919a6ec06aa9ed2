//! `GET /receivers`: the receivers this process has seen lately, busiest
//! first, with each one's adaptive limit (contract section 7).
//!
//! The worker owns the per-receiver limits; this edge only knows how to
//! show them, through [`ReceiverBoard`], so telemetry never imports the
//! worker's stages.

use prometheus::{IntCounter, IntGauge};
use serde::Serialize;

use super::registrar::Registrar;
use crate::domain::limit::{DecreaseCause, ReceiverState};

/// Most rows `GET /receivers` shows.
pub const MAX_ROWS: usize = 100;

/// One receiver as `GET /receivers` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReceiverRow {
    /// `scheme://host:port`.
    pub key: String,
    /// Its current adaptive limit.
    pub limit: u32,
    /// Attempts in flight, overdue ones included.
    pub in_flight: u32,
    /// Attempts in flight older than the receiver's overdue age.
    pub overdue: u32,
    /// The long-run mean latency, once the receiver has answered.
    pub latency_ms: Option<f64>,
    /// `slow_start`, `steady`, `backing_off` or `stalled`.
    pub state: &'static str,
    /// `healthy` or `failing` (`receiver.failing` / `receiver.recovered`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<&'static str>,
}

/// Whatever can list the receivers (the worker's limits).
pub trait ReceiverBoard: Send + Sync {
    /// The page `GET /receivers` answers with.
    fn page(&self) -> ReceiversPage;
}

/// The body of `GET /receivers`.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiversPage {
    /// Receivers tracked in all (the rows are the busiest of them).
    pub tracked: usize,
    /// At most [`MAX_ROWS`] receivers, busiest (most in flight) first.
    pub receivers: Vec<ReceiverRow>,
}

/// The receivers' metrics: bounded, never a host label.
#[derive(Debug)]
pub struct ReceiverMetrics {
    decreases: [IntCounter; 7],
    by_state: [IntGauge; 4],
    /// `webhook_receivers_saturated`: receivers whose attempts in flight
    /// have reached their limit.
    pub saturated: IntGauge,
    /// `webhook_receivers_tracked`: receivers in the limiter's table.
    pub tracked: IntGauge,
}

impl ReceiverMetrics {
    /// Registers the receivers' metrics, every label at zero.
    #[rustfmt::skip]
    pub(crate) fn register(r: &Registrar) -> Self {
        Self {
            decreases: r.counter_per("webhook_receiver_limit_decreases_total", "Times a receiver's adaptive limit fell, by cause.", "cause", DecreaseCause::ALL.map(DecreaseCause::as_str)),
            by_state: r.gauge_per("webhook_receivers", "Receivers seen lately, by the state of their adaptive limit.", "state", ReceiverState::ALL.map(ReceiverState::as_str)),
            saturated: r.gauge("webhook_receivers_saturated", "Receivers whose attempts in flight have reached their adaptive limit."),
            tracked: r.gauge("webhook_receivers_tracked", "Receivers in the per-receiver limit table."),
        }
    }

    /// `webhook_receiver_limit_decreases_total{cause}`.
    pub fn decreased(&self, cause: DecreaseCause) -> &IntCounter {
        &self.decreases[cause.index()]
    }

    /// `webhook_receivers{state}`.
    pub fn in_state(&self, state: ReceiverState) -> &IntGauge {
        &self.by_state[state.index()]
    }
}
