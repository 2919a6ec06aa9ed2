//! The setting groups. Each is a clap `Args` struct with its own help
//! heading; commands flatten the groups they use.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Args;

use super::{DEFAULT_CONCURRENCY, DEFAULT_HOST_CONCURRENCY, DEFAULT_LOG_MAX_BYTES};
use crate::{
    broker::topology::{LogRetention, QueueType},
    domain::{
        duration::{DurationError, parse_duration, parse_positive_duration, parse_ttl},
        outcome_event::OutcomesMode,
        schedule::RetrySchedule,
        size::{SizeError, parse_size},
    },
};

/// Where the broker is, and how to reach it over TLS.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Broker")]
pub struct BrokerArgs {
    /// Broker URL (`amqps://` for TLS), or a comma-separated list of the
    /// nodes of one cluster (same vhost, scheme and credentials): a process
    /// starts at a random one and moves to the next when it is lost.
    /// [default: amqp://guest:guest@127.0.0.1:5672/%2f]
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub amqp_url: String,

    /// PEM root certificates trusted for an `amqps://` broker (a private
    /// CA), besides the system's roots.
    #[arg(long, env = "AMQP_CA_FILE")]
    pub amqp_ca_file: Option<PathBuf>,

    /// PEM client certificate chain for mutual TLS with the broker (with
    /// `--amqp-client-key`).
    #[arg(long, env = "AMQP_CLIENT_CERT")]
    pub amqp_client_cert: Option<PathBuf>,

    /// PEM private key of `--amqp-client-cert`.
    #[arg(long, env = "AMQP_CLIENT_KEY")]
    pub amqp_client_key: Option<PathBuf>,
}

/// The prefix of every exchange and queue name.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Names")]
pub struct NameArgs {
    /// Prefix of every exchange and queue name.
    #[arg(long, env = "WEBHOOK_PREFIX", default_value = "webhooks", value_parser = parse_prefix)]
    pub prefix: String,
}

/// How the queues are declared.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Topology")]
pub struct TopologyArgs {
    /// Queue type of every queue the worker declares.
    #[arg(long, env = "WEBHOOK_QUEUE_TYPE", value_enum, default_value_t = QueueType::Quorum)]
    pub queue_type: QueueType,

    /// Delays before each retry: `DURATION[*COUNT]`, comma separated
    /// (one retry queue per distinct delay).
    #[arg(
        long,
        env = "WEBHOOK_RETRY_SCHEDULE",
        default_value = "60s*3,1h*3,24h*3"
    )]
    pub retry_schedule: RetrySchedule,

    /// Retention of parked messages in `P.dead`.
    #[arg(long, env = "WEBHOOK_DEAD_TTL", default_value = "7d", value_parser = ttl)]
    pub dead_ttl: Duration,

    /// Redeliveries of one message (crashes, lost connections) before the
    /// broker parks it (quorum queues only).
    #[arg(long, env = "WEBHOOK_DELIVERY_LIMIT", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub delivery_limit: u32,

    /// How long the delivery log `P.log` keeps outcome events (the
    /// stream's `x-max-age`, whole seconds); `0` = no `P.log`.
    #[arg(long, env = "WEBHOOK_LOG_RETENTION", default_value = "7d", value_parser = log_retention)]
    pub log_retention: LogRetention,

    /// Size cap of `P.log` (`x-max-length-bytes`): bytes, or with a unit
    /// (`500MB`, `5GB`, `2GiB`). The oldest segments go first.
    #[arg(long, env = "WEBHOOK_LOG_MAX_BYTES", default_value = DEFAULT_LOG_MAX_BYTES, value_parser = size)]
    pub log_max_bytes: u64,

    /// Number of work queues: `P.deliveries.0` … `P.deliveries.<N-1>`
    /// behind a consistent-hash exchange when above 1 (needs the
    /// `rabbitmq_consistent_hash_exchange` plugin); 1 is the single
    /// `P.deliveries`. Part of the topology: every worker of a prefix
    /// must agree with the broker.
    #[arg(long, env = "WEBHOOK_SHARDS", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub shards: u16,
}

/// Which outcome events are published to `P.outcomes`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Outcomes")]
pub struct OutcomesArgs {
    /// Outcome events published to `P.outcomes`: `all`, `failures` (all
    /// but `attempt.succeeded`) or `off`.
    #[arg(long, env = "WEBHOOK_OUTCOMES", default_value = "all", value_parser = outcomes_mode)]
    pub outcomes: OutcomesMode,
}

/// How long failed deliveries keep being retried.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Retry")]
pub struct RetryArgs {
    /// No retry is scheduled later than this after the first attempt.
    #[arg(long, env = "WEBHOOK_MAX_AGE", default_value = "48h", value_parser = positive)]
    pub max_age: Duration,
}

/// How deliveries are made.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Delivery")]
pub struct DeliveryArgs {
    /// Whole-request timeout of one delivery attempt.
    #[arg(long, env = "WEBHOOK_TIMEOUT", default_value = "10s", value_parser = positive)]
    pub timeout: Duration,

    /// Most deliveries in flight in one process; also the AMQP prefetch.
    #[arg(long, env = "WEBHOOK_CONCURRENCY", default_value_t = DEFAULT_CONCURRENCY,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Hard ceiling of deliveries in flight to one receiver (scheme, host,
    /// port; `0` = none beyond `--concurrency`); below it the limit adapts
    /// to the receiver.
    #[arg(long, env = "WEBHOOK_HOST_CONCURRENCY", default_value_t = DEFAULT_HOST_CONCURRENCY)]
    pub host_concurrency: u16,

    /// PEM root certificates trusted for receivers, besides the usual
    /// public roots (a private CA).
    #[arg(long, env = "WEBHOOK_CA_FILE")]
    pub ca_file: Option<PathBuf>,

    /// PEM client certificate chain presented to receivers that ask for
    /// one (mutual TLS; with `--client-key`).
    #[arg(long, env = "WEBHOOK_CLIENT_CERT")]
    pub client_cert: Option<PathBuf>,

    /// PEM private key of `--client-cert`.
    #[arg(long, env = "WEBHOOK_CLIENT_KEY")]
    pub client_key: Option<PathBuf>,

    /// Forward proxy for every delivery: `http://` (CONNECT) or `socks5://`,
    /// with an optional `user:password@`; it is asked for the checked
    /// address, never the name. Checked at start; never shown.
    #[arg(long, env = "WEBHOOK_PROXY_URL", hide_env_values = true)]
    pub proxy_url: Option<SecretSetting>,

    /// Receivers reached directly, not through the proxy: comma-separated
    /// hosts (with their subdomains), `.suffix`es, IP addresses and CIDRs.
    #[arg(long, env = "WEBHOOK_NO_PROXY")]
    pub no_proxy: Option<String>,

    /// Allow loopback, private and link-local targets (tests, local demos).
    #[arg(long, env = "WEBHOOK_ALLOW_PRIVATE_TARGETS")]
    pub allow_private_targets: bool,

    /// Default signing secret, used when a message carries none; several
    /// separated by spaces while rotating (one `v1,` signature each).
    #[arg(long, env = "WEBHOOK_SIGNING_SECRET", hide_env_values = true)]
    pub signing_secret: Option<String>,

    /// Larger messages are dropped as `too_large`.
    #[arg(long, env = "WEBHOOK_MAX_MESSAGE_BYTES", default_value_t = 1_048_576,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_message_bytes: u32,

    /// How long in-flight deliveries may finish after SIGTERM.
    #[arg(long, env = "WEBHOOK_SHUTDOWN_GRACE", default_value = "30s", value_parser = any_duration)]
    pub shutdown_grace: Duration,
}

/// Where metrics and health are served.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Telemetry")]
pub struct TelemetryArgs {
    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:9102")]
    pub metrics_addr: SocketAddr,
}

/// A setting that may hold a password: taken as given (so a bad value is
/// reported by its checker, which quotes nothing of it, instead of by the
/// argument parser, which would quote it all) and never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretSetting(String);

impl SecretSetting {
    /// The value, for the code that checks and uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for SecretSetting {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

impl std::fmt::Debug for SecretSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

fn any_duration(s: &str) -> Result<Duration, DurationError> {
    parse_duration(s)
}

fn positive(s: &str) -> Result<Duration, DurationError> {
    parse_positive_duration(s)
}

fn ttl(s: &str) -> Result<Duration, DurationError> {
    parse_ttl(s)
}

fn size(s: &str) -> Result<u64, SizeError> {
    parse_size(s)
}

/// Why `WEBHOOK_LOG_RETENTION` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum LogRetentionError {
    /// Not a duration, or too long.
    #[error(transparent)]
    Duration(#[from] DurationError),
    /// `x-max-age` counts whole seconds.
    #[error("retention '{0}' is not a whole number of seconds (or 0 for no P.log)")]
    NotWholeSeconds(String),
}

/// `0` (no `P.log`) or a whole number of seconds up to the TTL limit.
fn log_retention(s: &str) -> Result<LogRetention, LogRetentionError> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Ok(LogRetention::Off);
    }
    if d.subsec_nanos() != 0 {
        return Err(LogRetentionError::NotWholeSeconds(s.into()));
    }
    Ok(LogRetention::Keep(parse_ttl(s)?))
}

/// Why `WEBHOOK_OUTCOMES` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value '{0}' (use all, failures or off)")]
pub(super) struct OutcomesModeError(String);

fn outcomes_mode(s: &str) -> Result<OutcomesMode, OutcomesModeError> {
    match s.trim() {
        "all" => Ok(OutcomesMode::All),
        "failures" => Ok(OutcomesMode::Failures),
        "off" => Ok(OutcomesMode::Off),
        other => Err(OutcomesModeError(other.into())),
    }
}

/// Why a prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("prefix must be 1-200 characters of letters, digits, '.', '-', '_' or ':'")]
pub(super) struct PrefixError;

/// A prefix the broker accepts as part of every queue name.
fn parse_prefix(s: &str) -> Result<String, PrefixError> {
    let ok = !s.is_empty()
        && s.len() <= 200
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(PrefixError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_restricted_to_safe_characters() {
        assert!(parse_prefix("webhooks-test_1.a:b").is_ok());
        assert!(parse_prefix("").is_err());
        assert!(parse_prefix("a b").is_err());
        assert!(parse_prefix("a/b").is_err());
    }
}
