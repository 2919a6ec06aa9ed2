//! The `dead` commands' access to `P.dead`: inspecting ([`inspect`]),
//! re-driving ([`replay`]) and deleting ([`purge`]) a [`Selection`] of the
//! parked messages, leaving the rest as they were.
//!
//! Every walk is a [`scan::Scan`]: one consumer holding each message
//! unacked, so a message is never at risk while it is looked at, and what
//! is not taken returns to `P.dead` when the scan ends, in its order and
//! with the time it had left. A replayed message is acked only after the broker
//! confirmed its copy in `P.deliveries`; a replay killed at any point loses
//! nothing and duplicates at most the one message whose copy was confirmed
//! but whose ack had not yet reached the broker.

mod act;
mod parked;
mod scan;

use lapin::{Connection, message::Delivery};

use self::scan::Scan;
pub use self::{
    act::{Pacing, PurgeReport, ReplayProgress, ReplayReport, Tally, purge, replay},
    parked::{Parked, parked_at_ms, parked_reason, shown_headers},
};
use super::topology::Topology;
use crate::domain::selection::Selection;

/// What an inspection looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Inspection {
    /// Messages looked at.
    pub looked: u64,
    /// Messages selected (each handed to the visitor).
    pub selected: u64,
}

/// Hands every selected message to `visit`, consuming nothing: everything
/// looked at returns to `P.dead` when the scan ends. Stops at the
/// selection's limit.
pub async fn inspect(
    conn: &Connection,
    topology: &Topology,
    selection: &Selection,
    mut visit: impl FnMut(Parked, &Delivery),
) -> Result<Inspection, lapin::Error> {
    let mut scan = Scan::open(conn, topology.dead(), None).await?;
    let mut seen = Inspection::default();
    let result = async {
        while !selection.is_full(seen.selected) {
            let Some((delivery, parked)) = scan.next().await? else {
                break;
            };
            seen.looked += 1;
            if selection.matches(&parked.facts()) {
                seen.selected += 1;
                visit(parked, &delivery);
            }
        }
        Ok(seen)
    }
    .await;
    scan.close().await;
    result
}
