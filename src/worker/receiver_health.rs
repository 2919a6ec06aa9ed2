//! Receiver health, per process: each attempt's outcome feeds the state
//! machine of [`crate::domain::receiver_health`] for its receiver
//! (`scheme://host:port`); state changes become `receiver.failing` /
//! `receiver.recovered` events, and `GET /receivers` shows each row's
//! health ([`HealthBoard`]).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use super::limits::ReceiverLimits;
use crate::{
    domain::{
        outcome::AttemptOutcome,
        receiver_health::{Health, HealthChange, HealthState, Verdict},
    },
    telemetry::receivers::{ReceiverBoard, ReceiversPage},
};

/// Receivers tracked at most; past it, healthy ones with no failure
/// pending are forgotten (they start over as healthy, which they are).
const MAX_TRACKED: usize = 10_000;

/// The health of every receiver this process has seen fail.
#[derive(Debug, Default)]
pub(crate) struct ReceiverHealth {
    table: Mutex<HashMap<String, HealthState>>,
}

impl ReceiverHealth {
    /// Takes an attempt's outcome for the receiver `key` at `now_ms`; the
    /// state change it causes, if any.
    pub(crate) fn observe(
        &self,
        key: &str,
        outcome: &AttemptOutcome,
        now_ms: i64,
    ) -> Option<HealthChange> {
        let verdict = Verdict::of(outcome);
        let mut table = self.table.lock().expect("health table lock");
        match table.get_mut(key) {
            Some(state) => state.observe(verdict, now_ms),
            // A receiver never seen failing stays out of the table.
            None if verdict != Verdict::Failed => None,
            None => {
                if table.len() >= MAX_TRACKED {
                    table.retain(|_, s| !s.is_idle());
                }
                let mut state = HealthState::default();
                let change = state.observe(verdict, now_ms);
                table.insert(key.to_string(), state);
                change
            }
        }
    }

    /// The health of the receiver `key`.
    pub(crate) fn health(&self, key: &str) -> Health {
        let table = self.table.lock().expect("health table lock");
        table.get(key).map_or(Health::Healthy, HealthState::health)
    }
}

/// `GET /receivers`: the limits' page, each row with its health.
pub(crate) struct HealthBoard {
    pub(crate) limits: Arc<ReceiverLimits>,
    pub(crate) health: Arc<ReceiverHealth>,
}

impl ReceiverBoard for HealthBoard {
    fn page(&self) -> ReceiversPage {
        let mut page = self.limits.page();
        for row in &mut page.receivers {
            row.health = Some(self.health.health(&row.key).as_str());
        }
        page
    }
}
