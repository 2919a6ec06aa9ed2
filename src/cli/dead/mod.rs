//! `webhook-worker dead ...`: what an on-call engineer runs when a
//! receiver was down. `stats` first (what is parked, for whom, why), then
//! `list` / `show` to look closer, then a paced `replay` (or a `purge`).
//! All five share one selection ([`SelectionArgs`]); each takes only the
//! broker, the prefix, the selection and its own options.

mod list;
mod outcome;
mod purge;
mod replay;
mod stats;

use clap::{Args, Subcommand};

use super::connect_once;
use crate::{
    Error,
    broker::topology::Topology,
    clock::now_ms,
    config::{BrokerArgs, NameArgs},
    domain::selection::{Selection, TimeSpec, parse_host, parse_reason, parse_time_spec},
    error::is_missing_queue,
};

/// Inspect, re-drive or delete parked messages.
#[derive(Debug, Subcommand)]
pub(super) enum Dead {
    /// Print the selected parked messages without consuming them (a table,
    /// or JSON lines with `--json`).
    List(list::List),
    /// Count the selected parked messages by reason, webhook and receiver
    /// host; the oldest and newest.
    Stats(stats::Stats),
    /// Print one parked message in full: headers and body, secrets
    /// redacted.
    Show(list::Show),
    /// Move the selected messages back to the work queue with retry state
    /// cleared, optionally paced.
    Replay(replay::Replay),
    /// Delete the selected messages (asks first unless `--yes`).
    Purge(purge::Purge),
}

impl Dead {
    pub(super) async fn execute(self) -> Result<(), Error> {
        match self {
            Dead::List(c) => c.execute().await,
            Dead::Stats(c) => c.execute().await,
            Dead::Show(c) => c.execute().await,
            Dead::Replay(c) => c.execute().await,
            Dead::Purge(c) => c.execute().await,
        }
    }
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

    async fn connect(&self, command: &str) -> Result<std::sync::Arc<lapin::Connection>, Error> {
        connect_once(&self.broker, command).await
    }
}

/// Which parked messages a command acts on; every option given must hold.
#[derive(Debug, Args)]
#[command(next_help_heading = "Selection")]
pub(super) struct SelectionArgs {
    /// Only messages parked for this reason: expired, gone, malformed,
    /// too_large, forbidden_target, delivery_limit.
    #[arg(long, value_name = "REASON", value_parser = parse_reason)]
    reason: Option<String>,
    /// Only messages of this webhook number.
    #[arg(long, value_name = "N")]
    webhook: Option<i64>,
    /// Only messages whose receiver URL has this host (no port: a.example,
    /// 10.0.0.7, [::1]).
    #[arg(long, value_name = "HOST", value_parser = parse_host)]
    host: Option<String>,
    /// Only the message(s) with this event id; repeatable.
    #[arg(long = "id", value_name = "ID")]
    ids: Vec<String>,
    /// Only messages parked at or after this time: RFC 3339
    /// (2024-05-01T12:00:00Z) or an age (30m, 2h, 1d).
    #[arg(long, value_name = "TIME", value_parser = parse_time_spec)]
    since: Option<TimeSpec>,
    /// Only messages parked at or before this time: RFC 3339 or an age.
    #[arg(long, value_name = "TIME", value_parser = parse_time_spec)]
    until: Option<TimeSpec>,
    /// At most this many messages (the first ones, in queue order).
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
}

impl SelectionArgs {
    /// The selection, with ages resolved against `now_ms`; a window that
    /// ends before it starts is refused (it could select nothing).
    fn selection(&self, now_ms: i64) -> Result<Selection, Error> {
        let selection = Selection {
            reason: self.reason.clone(),
            webhook: self.webhook,
            host: self.host.clone(),
            ids: self.ids.clone(),
            since_ms: self.since.map(|t| t.resolve(now_ms)),
            until_ms: self.until.map(|t| t.resolve(now_ms)),
            limit: self.limit,
        };
        match (selection.since_ms, selection.until_ms) {
            (Some(since), Some(until)) if selection.is_empty_window() => {
                Err(Error::Usage(format!(
                    "--since ({}) is later than --until ({}): the window selects nothing",
                    rfc3339(since),
                    rfc3339(until)
                )))
            }
            _ => Ok(selection),
        }
    }
}

impl DeadQueue {
    /// A broker error of a `dead` command, in one line: a missing `P.dead`
    /// (or `P.deliveries`, for `replay`) most likely means a wrong prefix.
    fn explain(&self, e: Error) -> Error {
        let topology = self.topology();
        let lapin_error = match &e {
            Error::Broker(l)
            | Error::Publish(crate::broker::publisher::PublishError::Broker(l)) => l,
            _ => return e,
        };
        for queue in [topology.dead(), topology.deliveries()] {
            if is_missing_queue(lapin_error, queue) {
                return Error::NotFound(format!(
                    "no queue '{queue}' — is --prefix right? (prefix '{}', WEBHOOK_PREFIX)",
                    topology.prefix()
                ));
            }
        }
        e
    }
}

/// A unix-ms instant as RFC 3339 (UTC, seconds).
fn rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// "gone 3, expired 2", largest first.
fn by_reason_line(by_reason: &std::collections::BTreeMap<String, u64>) -> String {
    let mut v: Vec<_> = by_reason.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .map(|(r, n)| format!("{r} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
