//! (2) A fleet: 20 receivers answering after 10, 50, 200 and 1 000 ms (five
//! each), events spread evenly (event i to receiver i mod 20). Target:
//! worker ≥ 2 × naive. Also the reference of (3).

use super::vrun::{Plan, SIZED_FOR_IN_FLIGHT, backlog};
use crate::vhosts::Behave;

pub(super) const LATENCIES_MS: [u64; 4] = [10, 50, 200, 1000];
pub(super) const FLEET: usize = 20;
const WINDOW_S: f64 = 15.0;

/// The fleet's 20 receivers, hosts 0..20, five of each latency.
pub(super) fn hosts() -> Vec<Behave> {
    (0..FLEET)
        .map(|h| Behave::Ok(LATENCIES_MS[h / 5]))
        .collect()
}

/// The fleet's groups by latency.
pub(super) fn groups() -> Vec<(String, Vec<usize>)> {
    LATENCIES_MS
        .iter()
        .enumerate()
        .map(|(g, ms)| (format!("{ms} ms"), (g * 5..g * 5 + 5).collect()))
        .collect()
}

/// Deliveries per second of a worker with `in_flight` slots on the fleet,
/// events spread evenly: in flight / mean latency.
pub(super) fn ideal(in_flight: f64) -> f64 {
    let mean = LATENCIES_MS.iter().sum::<u64>() as f64 / 4.0 / 1000.0;
    in_flight / mean
}

pub(super) fn plan() -> Plan {
    Plan {
        name: "fleet",
        hosts: hosts(),
        groups: groups(),
        route: |i| i % FLEET,
        events: backlog(ideal(SIZED_FOR_IN_FLIGHT), WINDOW_S),
        window_s: WINDOW_S,
        // The 1 s receivers answer their first requests after 1 s.
        skip_s: 2.5,
        turns_bad: None,
    }
}
