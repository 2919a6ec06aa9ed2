//! `webhook-worker declare`: declares the topology, idempotently, and
//! exits (a deploy step that needs no running worker).

use clap::Args;

use super::PrefixTopology;
use crate::{
    Error,
    broker::dead_reads::{DeadReads, exposed_advice},
};

/// Declare the exchange and queues, then exit.
#[derive(Debug, Args)]
pub(super) struct Declare {
    #[command(flatten)]
    target: PrefixTopology,
}

impl Declare {
    pub(super) async fn execute(self) -> Result<(), Error> {
        let (conn, topology) = self.target.connect("declare").await?;
        let reads = topology.declare(&conn).await?;
        let _ = conn.close(200, "declared".into()).await;
        println!("declared the topology of prefix '{}'", self.target.prefix());
        if reads == DeadReads::Exposed {
            eprintln!("warning: {}", exposed_advice(topology.dead()));
        }
        Ok(())
    }
}
