//! `webhook-worker declare`: declares the topology, idempotently, and
//! exits (a deploy step that needs no running worker).

use clap::Args;

use super::connect_once;
use crate::{
    Error,
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
        let channel = conn.create_channel().await?;
        config::topology(&self.names, &self.topology)
            .declare(&channel)
            .await?;
        let _ = channel.close(200, "declared".into()).await;
        let _ = conn.close(200, "declared".into()).await;
        println!("declared the topology of prefix '{}'", self.names.prefix);
        Ok(())
    }
}
