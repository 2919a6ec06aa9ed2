//! (5) An overloaded receiver: every event to one receiver that answers
//! 429 at once whenever more than 20 of its requests are in flight, else
//! 200 after 50 ms (so it can take 400/s). The figure: the share of first
//! attempts (`X-Comm100-Attempt: 1`; the naive worker never retries) that
//! succeed, over the whole run and over its second half ("converged").
//! Target: ≥ 90 % once converged: no 429 storm into the retry tiers.

use super::vrun::{Plan, backlog};
use crate::vhosts::Behave;

pub(super) const LIMIT: u64 = 20;
const LATENCY_MS: u64 = 50;
const WINDOW_S: f64 = 15.0;

pub(super) fn plan() -> Plan {
    let capacity = LIMIT as f64 / (LATENCY_MS as f64 / 1000.0);
    Plan {
        name: "overloaded",
        hosts: vec![Behave::Overload {
            ms: LATENCY_MS,
            limit: LIMIT,
        }],
        groups: vec![("overloaded".into(), vec![0])],
        route: |_| 0,
        events: backlog(capacity, WINDOW_S),
        window_s: WINDOW_S,
        skip_s: 1.0,
        turns_bad: None,
    }
}
