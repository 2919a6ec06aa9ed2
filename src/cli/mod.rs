//! The command line, one file per command: `run` (the default),
//! `declare`, `check`, `dead ...`, `log`, `publish`, `demo-receiver`. Settings come after
//! the subcommand, each also an environment variable (see
//! [`crate::config`]); each command takes only the groups it uses.

mod check;
mod dead;
mod declare;
mod demo_receiver;
mod log;
mod publish;
mod reshard;
mod run;
mod signals;

use std::{ffi::OsString, process::ExitCode, sync::Arc};

use clap::{Args, Parser, Subcommand};

use crate::{
    Error,
    broker::topology::Topology,
    config::{self, BrokerArgs, NameArgs, TopologyArgs},
    telemetry::logging::{LogFormat, init_logging},
};

/// Delivers webhook events from RabbitMQ to their receivers.
#[derive(Debug, Parser)]
#[command(
    name = "webhook-worker",
    version,
    about,
    propagate_version = true,
    override_usage = "webhook-worker [COMMAND] [OPTIONS]   (no COMMAND: run)"
)]
pub struct Cli {
    /// What to do (default: run).
    #[command(subcommand)]
    command: Command,

    /// Log format; the level comes from `RUST_LOG`.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Consume and deliver until SIGTERM/SIGINT (the default).
    Run(run::Run),
    /// Declare the exchange and queues, then exit.
    Declare(declare::Declare),
    /// Compare the broker's topology with the configuration, changing
    /// nothing; print the effective configuration, secrets redacted.
    Check(check::Check),
    /// Inspect, re-drive or delete parked messages.
    #[command(subcommand)]
    Dead(dead::Dead),
    /// Print outcome events from the delivery log (what happened to an
    /// event): a table, or JSON lines with `--json`.
    Log(log::Log),
    /// Publish events: from a file of JSON lines, stdin (`--file -`), or
    /// generated samples of every catalog event.
    Publish(publish::Publish),
    /// Change the number of work queues (WEBHOOK_SHARDS) with nothing
    /// lost; stop the workers first.
    Reshard(reshard::Reshard),
    /// Run a demo receiver that prints what it gets.
    DemoReceiver(demo_receiver::DemoReceiver),
}

/// Names that are not `run`'s flags: a first argument among them is a
/// subcommand (or a top-level flag), anything else means `run`.
const SUBCOMMANDS: [&str; 10] = [
    "run",
    "declare",
    "check",
    "dead",
    "log",
    "publish",
    "reshard",
    "demo-receiver",
    "help",
    "-h",
];

/// Inserts `run` when no subcommand is given, so `webhook-worker` and
/// `webhook-worker --prefix x` both run the worker.
fn with_default_command(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let first = args.get(1).and_then(|a| a.to_str()).unwrap_or("");
    let is_known = SUBCOMMANDS.contains(&first) || matches!(first, "--help" | "-V" | "--version");
    if !is_known {
        args.insert(1.min(args.len()), "run".into());
    }
    args
}

/// The binary: parse the command line, start the runtime, run the
/// command, turn its result into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse_from(with_default_command(std::env::args_os()));
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.command.execute()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

impl Command {
    async fn execute(self) -> Result<(), Error> {
        match self {
            Command::Run(c) => c.execute().await,
            Command::Declare(c) => c.execute().await,
            Command::Check(c) => c.execute().await,
            Command::Dead(c) => c.execute().await,
            Command::Log(c) => c.execute().await,
            Command::Publish(c) => c.execute().await,
            Command::Reshard(c) => c.execute().await,
            Command::DemoReceiver(c) => c.execute().await,
        }
    }
}

/// One pass over the broker's nodes (from a random one), for the one-shot
/// commands: the first connection that comes up.
async fn connect_once(broker: &BrokerArgs, name: &str) -> Result<Arc<lapin::Connection>, Error> {
    let mut connector = crate::app::broker_connector(broker, format!("webhook-worker {name}"))?;
    let nodes = connector.urls().redacted().to_string();
    match connector.connect_once().await {
        Ok(connected) => Ok(connected.conn),
        Err(e) => Err(Error::connect(nodes, &e)),
    }
}

/// What a command that declares or changes a prefix's topology takes
/// (`declare`, `reshard`, `publish`): the broker, the prefix, the queue
/// settings (declared when the exchange does not exist yet).
#[derive(Debug, Args)]
struct PrefixTopology {
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(flatten)]
    names: NameArgs,
    #[command(flatten)]
    topology: TopologyArgs,
}

impl PrefixTopology {
    /// One connection ([`connect_once`]) and the configured topology.
    async fn connect(&self, command: &str) -> Result<(Arc<lapin::Connection>, Topology), Error> {
        let conn = connect_once(&self.broker, command).await?;
        Ok((conn, config::topology(&self.names, &self.topology)))
    }

    fn prefix(&self) -> &str {
        &self.names.prefix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_subcommand_means_run() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            with_default_command(args(&["ww", "--prefix", "x"])),
            args(&["ww", "run", "--prefix", "x"])
        );
        assert_eq!(
            with_default_command(args(&["ww", "dead", "list"])),
            args(&["ww", "dead", "list"])
        );
        assert_eq!(with_default_command(args(&["ww"])), args(&["ww", "run"]));
    }

    #[test]
    fn log_format_defaults_to_text() {
        let cli = Cli::try_parse_from(["ww", "run"]).unwrap();
        assert_eq!(cli.log_format, LogFormat::Text);
    }
}
