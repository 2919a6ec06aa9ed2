//! `webhook-worker declare`: declares the topology, idempotently, and
//! exits (a deploy step that needs no running worker).

use clap::Args;

use super::connect_once;
use crate::{
    Error,
    broker::dead_reads::{DeadReads, exposed_advice},
    config::{self, BrokerArgs, NameArgs, TopologyArgs},
};

/// Declare the exchange and queues, then exit.
#[derive(Debug, Args)]
pub(super) struct Declare {
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(flatten)]
    names: NameArgs,
    #[command(flatten)]
    topology: TopologyArgs,
}

impl Declare {
    pub(super) async fn execute(self) -> Result<(), Error> {
        let conn = connect_once(&self.broker, "declare").await?;
        let topology = config::topology(&self.names, &self.topology);
        let reads = topology.declare(&conn).await?;
        let _ = conn.close(200, "declared".into()).await;
        println!("declared the topology of prefix '{}'", self.names.prefix);
        if reads == DeadReads::Exposed {
            eprintln!("warning: {}", exposed_advice(topology.dead()));
        }
        Ok(())
    }
}
