//! `webhook-worker reshard --shards N`: changes the broker's shard count
//! to N with nothing lost (see [`crate::broker::reshard`]). Run it while
//! no worker of the prefix runs, then start the workers with the new
//! `WEBHOOK_SHARDS`.

use clap::Args;

use super::PrefixTopology;
use crate::{
    Error,
    broker::reshard::{ReshardError, reshard},
};

/// Change the number of work queues (stop the workers first).
#[derive(Debug, Args)]
pub(super) struct Reshard {
    /// The new topology (`--shards` is the new count).
    #[command(flatten)]
    target: PrefixTopology,
}

impl Reshard {
    pub(super) async fn execute(self) -> Result<(), Error> {
        let (conn, topology) = self.target.connect("reshard").await?;
        let report = reshard(&conn, &topology).await.map_err(|e| match e {
            ReshardError::Topology(e) => Error::from(e),
            ReshardError::Publish(e) => Error::from(e),
            ReshardError::Broker(e) => Error::from(e),
        });
        let _ = conn.close(200, "resharded".into()).await;
        let report = report?;
        println!(
            "prefix '{}' now has {} work queue(s): moved {} message(s) and {} waiting retr(ies); deleted {}",
            self.target.prefix(),
            topology.shards(),
            report.moved,
            report.retries,
            if report.deleted.is_empty() {
                "nothing".to_string()
            } else {
                report.deleted.join(", ")
            }
        );
        Ok(())
    }
}
