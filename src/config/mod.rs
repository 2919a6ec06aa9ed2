//! Configuration: typed settings, filled from CLI flags and environment
//! variables (the flag wins), validated before anything else runs.
//!
//! The settings come in groups — broker, names, topology, retry, delivery,
//! telemetry — and each command flattens only the groups it uses, so
//! `dead replay --help` shows the broker and the prefix, not the delivery
//! settings. The flag is the variable's name without `WEBHOOK_`, in lower
//! case with dashes: `AMQP_URL` is `--amqp-url`, `WEBHOOK_RETRY_SCHEDULE`
//! is `--retry-schedule`. Values are parsed by clap value parsers, so a bad
//! duration or schedule is one clear error line and exit code 2 before any
//! connection is attempted.

mod groups;

use clap::Args;

pub use self::groups::{
    BrokerArgs, DeliveryArgs, NameArgs, OutcomesArgs, RetryArgs, SecretSetting, TelemetryArgs,
    TopologyArgs,
};
use crate::broker::topology::Topology;

/// Default of `WEBHOOK_CONCURRENCY`, chosen by the benchmark: by Little's
/// law a receiver answering in 100 ms drains 8 960 events/s with 896 in
/// flight (896 ÷ 0.1 s), and each in-flight delivery holds a connection of its own, so
/// the count is bounded by memory. The measured rates and peaks are in
/// bench/README.md ("Receivers that take time").
pub const DEFAULT_CONCURRENCY: u16 = 896;

/// Default of `WEBHOOK_HOST_CONCURRENCY`: no hard ceiling beyond the
/// process concurrency. The adaptive limit holds a hanging receiver to a
/// few slots within about a second, so a ceiling would only slow down one
/// slow-but-healthy receiver with a backlog; operators who want one set it.
pub const DEFAULT_HOST_CONCURRENCY: u16 = 0;

/// Default of `WEBHOOK_LOG_MAX_BYTES`: 5 GB. `P.log` took 276–296 MB of
/// the broker's disk per million events written by the worker
/// (bench/README.md, "Outcome events"), so 5 GB holds about 17 million
/// events: the default 7 days of retention at up to ~28 events per second;
/// above that the cap, not the age, bounds the broker's disk.
pub const DEFAULT_LOG_MAX_BYTES: &str = "5GB";

/// Every setting of `webhook-worker run`.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Where the broker is.
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// The prefix of every name.
    #[command(flatten)]
    pub names: NameArgs,
    /// How the queues are declared.
    #[command(flatten)]
    pub topology: TopologyArgs,
    /// How long failed deliveries keep being retried.
    #[command(flatten)]
    pub retry: RetryArgs,
    /// How deliveries are made.
    #[command(flatten)]
    pub delivery: DeliveryArgs,
    /// Which outcome events are published.
    #[command(flatten)]
    pub outcomes: OutcomesArgs,
    /// Where metrics and health are served.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

impl Config {
    /// The configuration with every default, as `webhook-worker run` with an
    /// empty environment would see it. Tests start from here.
    pub fn defaults() -> Self {
        use clap::{Command, FromArgMatches};
        // Parse an empty command line without looking at the environment.
        let cmd = Config::augment_args(Command::new("webhook-worker").no_binary_name(true));
        let cmd = cmd.mut_args(|a| a.env(None::<&str>));
        let matches = cmd.get_matches_from(Vec::<String>::new());
        Config::from_arg_matches(&matches).expect("defaults parse")
    }

    /// The names and arguments of every exchange and queue.
    pub fn topology(&self) -> Topology {
        topology(&self.names, &self.topology)
    }
}

/// The topology of a prefix and queue settings.
pub fn topology(names: &NameArgs, topology: &TopologyArgs) -> Topology {
    Topology::new(
        &names.prefix,
        topology.queue_type,
        &topology.retry_schedule.tiers(),
        topology.dead_ttl,
        topology.delivery_limit,
    )
    .with_log(topology.log_retention, topology.log_max_bytes)
    .with_shards(topology.shards)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        broker::topology::{LogRetention, QueueType},
        domain::outcome_event::OutcomesMode,
    };

    const HOUR: Duration = Duration::from_secs(3600);
    const DAY: Duration = Duration::from_secs(86400);

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::defaults();
        assert_eq!(c.broker.amqp_url, "amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(c.names.prefix, "webhooks");
        assert_eq!(c.topology.queue_type, QueueType::Quorum);
        assert_eq!(c.delivery.timeout, Duration::from_secs(10));
        assert_eq!(c.topology.retry_schedule.to_string(), "60s*3,1h*3,24h*3");
        assert_eq!(c.retry.max_age, 48 * HOUR);
        assert!(!c.delivery.allow_private_targets);
        assert_eq!(c.delivery.signing_secret, None);
        assert_eq!(c.delivery.max_message_bytes, 1_048_576);
        assert_eq!(c.delivery.shutdown_grace, Duration::from_secs(30));
        assert_eq!(c.topology.dead_ttl, 7 * DAY);
        assert_eq!(c.topology.delivery_limit, 10);
        assert_eq!(c.topology.log_retention, LogRetention::Keep(7 * DAY));
        assert_eq!(c.topology.log_max_bytes, 5_000_000_000);
        assert_eq!(c.outcomes.outcomes, OutcomesMode::All);
        assert_eq!(c.telemetry.metrics_addr, "0.0.0.0:9102".parse().unwrap());
    }
}
