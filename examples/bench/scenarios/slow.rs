//! (1) One slow receiver: every event to one receiver answering after
//! 100 ms. Little's law bounds any consumer at (in flight) / 0.1 s, so this
//! shows how many deliveries the worker keeps in flight to one healthy but
//! slow receiver. Target: worker ≥ 3 × naive.

use super::vrun::{Plan, SIZED_FOR_IN_FLIGHT, backlog};
use crate::vhosts::Behave;

pub(super) const LATENCY_MS: u64 = 100;
const WINDOW_S: f64 = 10.0;

pub(super) fn plan() -> Plan {
    let ideal = SIZED_FOR_IN_FLIGHT / (LATENCY_MS as f64 / 1000.0);
    Plan {
        name: "slow",
        hosts: vec![Behave::Ok(LATENCY_MS)],
        groups: vec![("100 ms".into(), vec![0])],
        route: |_| 0,
        events: backlog(ideal, WINDOW_S),
        window_s: WINDOW_S,
        skip_s: 1.0,
        turns_bad: None,
    }
}
