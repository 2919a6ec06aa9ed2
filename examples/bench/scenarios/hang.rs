//! (3) One hangs: the fleet of (2) plus one receiver that never answers
//! within the worker's timeout (10 s by default; it holds each request
//! until the run ends), taking 5 % of the events (every 20th). The figure:
//! the fleet's rate in this run as a share of its rate in (2), same round,
//! same binary. Target: ≥ 90 %. The window (25 s) covers the first
//! attempts' timeouts at 10 s and the second wave's at 20 s.

use super::{
    fleet,
    vrun::{Plan, SIZED_FOR_IN_FLIGHT, backlog},
};
use crate::vhosts::Behave;

pub(super) const HANGING: &str = "hanging";
/// The hanging receiver's host index.
const HOST: usize = fleet::FLEET;
const WINDOW_S: f64 = 25.0;

/// Event i: every 20th to the hanging receiver, the rest round robin over
/// the fleet.
fn route(i: usize) -> usize {
    let k = i % 20;
    if k == 19 {
        HOST
    } else {
        (i / 20 * 19 + k) % fleet::FLEET
    }
}

pub(super) fn plan() -> Plan {
    let mut hosts = fleet::hosts();
    hosts.push(Behave::Hang);
    let mut groups = fleet::groups();
    groups.push((HANGING.into(), vec![HOST]));
    Plan {
        name: "hang",
        hosts,
        groups,
        route,
        events: backlog(fleet::ideal(SIZED_FOR_IN_FLIGHT) / 0.95, WINDOW_S),
        window_s: WINDOW_S,
        skip_s: 2.5,
        turns_bad: None,
    }
}
