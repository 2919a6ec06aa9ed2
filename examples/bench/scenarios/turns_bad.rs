//! (4) One turns bad: half of all events (the even ones) go to one receiver
//! answering after 50 ms, the other half round robin over the fleet of (2);
//! 10 s after the first request that receiver starts to hang (it holds
//! every new request until the run ends). The figure: the fleet's ("the
//! others'") rate per half second before and after. Target: back to ≥ 80 %
//! of its rate before within 2 s of the hang (and staying there).

use super::{
    fleet,
    vrun::{Plan, SIZED_FOR_IN_FLIGHT, backlog},
};
use crate::vhosts::Behave;

pub(super) const BAD: &str = "turns bad";
pub(super) const TURNS_AT_S: f64 = 10.0;
const HOST: usize = fleet::FLEET;
const LATENCY_MS: u64 = 50;
const WINDOW_S: f64 = 25.0;

fn route(i: usize) -> usize {
    if i.is_multiple_of(2) {
        HOST
    } else {
        (i / 2) % fleet::FLEET
    }
}

pub(super) fn plan() -> Plan {
    let mut hosts = fleet::hosts();
    hosts.push(Behave::Ok(LATENCY_MS));
    let mut groups = fleet::groups();
    groups.push((BAD.into(), vec![HOST]));
    // Mean latency before the turn: half at 50 ms, half the fleet's mean.
    let mean = 0.5 * LATENCY_MS as f64 / 1000.0
        + 0.5 * SIZED_FOR_IN_FLIGHT / fleet::ideal(SIZED_FOR_IN_FLIGHT);
    Plan {
        name: "turns-bad",
        hosts,
        groups,
        route,
        events: backlog(SIZED_FOR_IN_FLIGHT / mean, WINDOW_S),
        window_s: WINDOW_S,
        skip_s: 2.5,
        turns_bad: Some((TURNS_AT_S, HOST)),
    }
}
