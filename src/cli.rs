//! The command line: `run` (the default), `declare`, `dead list`,
//! `dead replay`. Settings come after the subcommand, each also an
//! environment variable (see [`crate::config`]).

use std::{ffi::OsString, sync::Arc};

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::{
    Error, broker,
    config::{Config, LogFormat},
    dead,
    delivery::{Deliverer, DeliveryConfig},
    signing::SigningKey,
    telemetry::{self, Health, Metrics},
    topology::Topology,
    worker::Worker,
};

/// Delivers webhook events from RabbitMQ to their receivers.
#[derive(Debug, Parser)]
#[command(name = "webhook-worker", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Consume and deliver until SIGTERM/SIGINT (the default).
    Run(Config),
    /// Declare the exchange and queues, then exit.
    Declare(Config),
    /// Inspect or re-drive parked messages.
    #[command(subcommand)]
    Dead(DeadCommand),
    /// Publish events: from a file of JSON lines, stdin (`--file -`), or
    /// generated samples of every catalog event.
    Publish {
        /// JSON lines to publish as they are (`-` for stdin).
        #[arg(long, conflicts_with = "url")]
        file: Option<std::path::PathBuf>,
        /// Receiver URL of the generated samples.
        #[arg(long, default_value = "http://127.0.0.1:8080/hook")]
        url: String,
        /// How many events (samples: default one per catalog event; file:
        /// default all lines).
        #[arg(long)]
        count: Option<u64>,
        /// Events per second (0 = as fast as confirms allow).
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
        #[command(flatten)]
        config: Config,
    },
    /// Run a demo receiver that prints what it gets.
    DemoReceiver {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Share of requests to fail (0.0-1.0).
        #[arg(long, default_value_t = 0.0)]
        fail_rate: f64,
        /// Status of a failed request.
        #[arg(long, default_value_t = 500)]
        fail_status: u16,
        /// Latency added to every request.
        #[arg(long, default_value = "0ms", value_parser = crate::config::parse_duration)]
        latency: std::time::Duration,
        /// Verify signatures with this secret.
        #[arg(long, env = "WEBHOOK_SIGNING_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// Do not print a line per request.
        #[arg(long)]
        quiet: bool,
    },
}

/// `webhook-worker dead ...`.
#[derive(Debug, Subcommand)]
pub enum DeadCommand {
    /// Print the parked messages (id, webhook, reason, attempts, last
    /// error) without consuming them.
    List {
        /// Show at most this many.
        #[arg(long)]
        limit: Option<u64>,
        #[command(flatten)]
        config: Config,
    },
    /// Move parked messages back to the work queue with retry state cleared.
    Replay {
        /// Move at most this many.
        #[arg(long)]
        limit: Option<u64>,
        /// Only messages parked for this reason (expired, gone, malformed,
        /// too_large, forbidden_target, or the broker's delivery_limit).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        config: Config,
    },
}

impl Command {
    /// The log format the command asks for.
    pub fn log_format(&self) -> LogFormat {
        match self {
            Command::Run(c) | Command::Declare(c) => c.log_format,
            Command::Dead(
                DeadCommand::List { config, .. } | DeadCommand::Replay { config, .. },
            ) => config.log_format,
            Command::Publish { config, .. } => config.log_format,
            Command::DemoReceiver { .. } => LogFormat::Text,
        }
    }
}

const SUBCOMMANDS: [&str; 7] = [
    "run",
    "declare",
    "dead",
    "publish",
    "demo-receiver",
    "help",
    "-h",
];

/// Inserts `run` when no subcommand is given, so `webhook-worker` and
/// `webhook-worker --prefix x` both run the worker.
pub fn with_default_command(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let first = args.get(1).and_then(|a| a.to_str()).unwrap_or("");
    let is_known = SUBCOMMANDS.contains(&first) || matches!(first, "--help" | "-V" | "--version");
    if !is_known {
        args.insert(1.min(args.len()), "run".into());
    }
    args
}

/// Runs a parsed command to completion.
pub async fn execute(command: Command) -> Result<(), Error> {
    match command {
        Command::Run(config) => run(config).await,
        Command::Declare(config) => {
            let conn = connect_once(&config).await?;
            let channel = conn.create_channel().await?;
            Topology::from_config(&config).declare(&channel).await?;
            let _ = channel.close(200, "declared".into()).await;
            let _ = conn.close(200, "declared".into()).await;
            println!("declared the topology of prefix '{}'", config.prefix);
            Ok(())
        }
        Command::Dead(DeadCommand::List { limit, config }) => {
            let conn = connect_once(&config).await?;
            let parked = dead::list(&conn, &Topology::from_config(&config), limit).await?;
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
        Command::Dead(DeadCommand::Replay {
            limit,
            reason,
            config,
        }) => {
            let conn = connect_once(&config).await?;
            let report = dead::replay(
                &conn,
                &Topology::from_config(&config),
                limit,
                reason.as_deref(),
            )
            .await?;
            let _ = conn.close(200, "replayed".into()).await;
            println!(
                "replayed {} message(s); {} left parked",
                report.moved, report.kept
            );
            Ok(())
        }
        Command::Publish {
            file,
            url,
            count,
            rate,
            config,
        } => {
            let conn = connect_once(&config).await?;
            let source = match file {
                Some(path) => crate::publish::Source::Lines(path),
                None => crate::publish::Source::Samples { url },
            };
            let n = crate::publish::publish(
                &conn,
                &Topology::from_config(&config),
                source,
                count,
                rate,
            )
            .await?;
            let _ = conn.close(200, "published".into()).await;
            println!("published {n} event(s) to exchange '{}'", config.prefix);
            Ok(())
        }
        Command::DemoReceiver {
            listen,
            fail_rate,
            fail_status,
            latency,
            secret,
            quiet,
        } => {
            let secret = match secret {
                None => None,
                Some(s) => Some(
                    SigningKey::from_secret(&s)
                        .map_err(|e| Error::Config(format!("--secret: {e}")))?,
                ),
            };
            let options = crate::demo_receiver::ReceiverOptions {
                fail_rate,
                fail_status,
                latency,
                secret,
                quiet,
            };
            let cancel = CancellationToken::new();
            crate::shutdown::listen(cancel.clone())?;
            let (addr, server) = crate::demo_receiver::serve(listen, options, cancel).await?;
            eprintln!(
                "demo receiver listening on http://{addr}/ (fail rate {fail_rate}, latency {latency:?})"
            );
            Ok(server.await?)
        }
    }
}

/// One connection attempt, for the one-shot commands.
async fn connect_once(config: &Config) -> Result<lapin::Connection, Error> {
    let uri = broker::parse_url(&config.amqp_url).map_err(Error::Config)?;
    let props =
        lapin::ConnectionProperties::default().with_connection_name("webhook-worker cli".into());
    Ok(lapin::Connection::connect_uri(uri, props).await?)
}

/// Builds the shared HTTP client from the configuration.
pub fn deliverer(config: &Config) -> Result<Deliverer, Error> {
    let default_key = match &config.signing_secret {
        None => None,
        Some(s) => Some(
            SigningKey::from_secret(s)
                .map_err(|e| Error::Config(format!("WEBHOOK_SIGNING_SECRET: {e}")))?,
        ),
    };
    Ok(Deliverer::new(DeliveryConfig {
        timeout: config.timeout,
        allow_private_targets: config.allow_private_targets,
        default_key,
        pool_per_host: usize::from(config.concurrency),
    })?)
}

/// `webhook-worker run`: the metrics server, the signal listener and the
/// worker, until a signal and the drain that follows it.
async fn run(config: Config) -> Result<(), Error> {
    broker::parse_url(&config.amqp_url).map_err(Error::Config)?;
    let deliverer = deliverer(&config)?;
    let metrics = Metrics::new(&config.retry_schedule.tiers());
    let health = Arc::new(Health::default());
    let shutdown = CancellationToken::new();
    let stop_server = CancellationToken::new();
    crate::shutdown::listen(shutdown.clone())?;

    let (addr, server) = telemetry::serve(
        config.metrics_addr,
        metrics.clone(),
        health.clone(),
        stop_server.clone(),
    )
    .await?;
    let server = tokio::spawn(server);
    tracing::info!(
        metrics = %addr, prefix = %config.prefix, queue_type = ?config.queue_type,
        schedule = %config.retry_schedule, concurrency = config.concurrency, "webhook-worker starting"
    );

    let worker = Worker::new(&config, deliverer, metrics, health);
    let result = worker.run(shutdown).await;
    stop_server.cancel();
    let _ = server.await;
    match &result {
        Ok(()) => tracing::info!("stopped"),
        Err(e) => tracing::error!(error = %e, "stopped on a fatal error"),
    }
    result
}
