//! `webhook-worker dead ...`: inspecting and re-driving parked messages.

use clap::{Args, Subcommand};

use super::connect_once;
use crate::{
    Error,
    broker::{dead_letters, topology::Topology},
    config::{BrokerArgs, NameArgs},
};

/// Inspect or re-drive parked messages.
#[derive(Debug, Subcommand)]
pub(super) enum Dead {
    /// Print the parked messages (id, webhook, reason, attempts, last
    /// error) without consuming them.
    List(List),
    /// Move parked messages back to the work queue with retry state cleared.
    Replay(Replay),
}

/// Where the parked messages are.
#[derive(Debug, Args)]
pub(super) struct DeadQueue {
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(flatten)]
    names: NameArgs,
}

impl DeadQueue {
    /// Only the names matter to these commands; the queue arguments are
    /// never declared here.
    fn topology(&self) -> Topology {
        crate::config::topology(&self.names, &crate::config::Config::defaults().topology)
    }
}

/// `dead list`.
#[derive(Debug, Args)]
pub(super) struct List {
    /// Show at most this many.
    #[arg(long)]
    limit: Option<u64>,
    #[command(flatten)]
    queue: DeadQueue,
}

/// `dead replay`.
#[derive(Debug, Args)]
pub(super) struct Replay {
    /// Move at most this many.
    #[arg(long)]
    limit: Option<u64>,
    /// Only messages parked for this reason (expired, gone, malformed,
    /// too_large, forbidden_target, or the broker's delivery_limit).
    #[arg(long)]
    reason: Option<String>,
    #[command(flatten)]
    queue: DeadQueue,
}

impl Dead {
    pub(super) async fn execute(self) -> Result<(), Error> {
        match self {
            Dead::List(list) => list.execute().await,
            Dead::Replay(replay) => replay.execute().await,
        }
    }
}

impl List {
    async fn execute(self) -> Result<(), Error> {
        let conn = connect_once(&self.queue.broker, "dead list").await?;
        let parked = dead_letters::list(&conn, &self.queue.topology(), self.limit).await?;
        let _ = conn.close(200, "listed".into()).await;
        println!("ID\tWEBHOOK\tREASON\tATTEMPTS\tLAST ERROR");
        for p in &parked {
            let webhook = p.webhook.map_or_else(|| "?".to_string(), |w| w.to_string());
            println!(
                "{}\t{webhook}\t{}\t{}\t{}",
                p.id.as_deref().unwrap_or("?"),
                p.reason,
                p.attempts,
                p.last_error
            );
        }
        eprintln!("{} parked message(s) listed", parked.len());
        Ok(())
    }
}

impl Replay {
    async fn execute(self) -> Result<(), Error> {
        let conn = connect_once(&self.queue.broker, "dead replay").await?;
        let report = dead_letters::replay(
            &conn,
            &self.queue.topology(),
            self.limit,
            self.reason.as_deref(),
        )
        .await?;
        let _ = conn.close(200, "replayed".into()).await;
        println!(
            "replayed {} message(s); {} left parked",
            report.moved, report.kept
        );
        Ok(())
    }
}
