//! Configuration: one typed struct, filled from CLI flags and environment
//! variables (the flag wins), validated before anything else runs.
//!
//! Every setting of the contract's section 1 lives here. The flag is the
//! variable's name without `WEBHOOK_`, lower-cased, with dashes: `AMQP_URL` is
//! `--amqp-url`, `WEBHOOK_RETRY_SCHEDULE` is `--retry-schedule`. Values are
//! parsed by clap value parsers, so a bad duration or schedule is one clear
//! error line and exit code 2 before any connection is attempted.

use std::{fmt, net::SocketAddr, str::FromStr, time::Duration};

use clap::{Args, ValueEnum};

/// Every setting of the worker. `Default` is what runs with no configuration.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Broker URL (`amqps://` for TLS).
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    pub amqp_url: String,

    /// Prefix of every exchange and queue name.
    #[arg(long, env = "WEBHOOK_PREFIX", default_value = "webhooks", value_parser = parse_prefix)]
    pub prefix: String,

    /// Queue type of every queue the worker declares.
    #[arg(long, env = "WEBHOOK_QUEUE_TYPE", value_enum, default_value_t = QueueType::Quorum)]
    pub queue_type: QueueType,

    /// Whole-request timeout of one delivery attempt.
    #[arg(long, env = "WEBHOOK_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    pub timeout: Duration,

    /// Delays before each retry: `DURATION[*COUNT]`, comma separated.
    #[arg(
        long,
        env = "WEBHOOK_RETRY_SCHEDULE",
        default_value = "60s*3,1h*3,24h*3"
    )]
    pub retry_schedule: RetrySchedule,

    /// No retry is scheduled later than this after the first attempt.
    #[arg(long, env = "WEBHOOK_MAX_AGE", default_value = "48h", value_parser = parse_positive_duration)]
    pub max_age: Duration,

    /// Most deliveries in flight in one process; also the AMQP prefetch.
    #[arg(long, env = "WEBHOOK_CONCURRENCY", default_value_t = DEFAULT_CONCURRENCY,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,

    /// Most deliveries in flight to one receiver host (`0` = no cap beyond
    /// `--concurrency`), so one hanging host cannot take every slot.
    #[arg(long, env = "WEBHOOK_HOST_CONCURRENCY", default_value_t = DEFAULT_HOST_CONCURRENCY)]
    pub host_concurrency: u16,

    /// Allow loopback, private and link-local targets (tests, local demos).
    #[arg(long, env = "WEBHOOK_ALLOW_PRIVATE_TARGETS")]
    pub allow_private_targets: bool,

    /// Default signing secret, used when a message carries none.
    #[arg(long, env = "WEBHOOK_SIGNING_SECRET", hide_env_values = true)]
    pub signing_secret: Option<String>,

    /// Larger messages are dropped as `too_large`.
    #[arg(long, env = "WEBHOOK_MAX_MESSAGE_BYTES", default_value_t = 1_048_576,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_message_bytes: u32,

    /// How long in-flight deliveries may finish after SIGTERM.
    #[arg(long, env = "WEBHOOK_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// Retention of parked messages in `P.dead`.
    #[arg(long, env = "WEBHOOK_DEAD_TTL", default_value = "7d", value_parser = parse_ttl)]
    pub dead_ttl: Duration,

    /// Redeliveries of one message (crashes, lost connections) before the
    /// broker parks it (quorum queues only).
    #[arg(long, env = "WEBHOOK_DELIVERY_LIMIT", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub delivery_limit: u32,

    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:9102")]
    pub metrics_addr: SocketAddr,

    /// Log format; the level comes from `RUST_LOG`.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Default of `WEBHOOK_CONCURRENCY`, chosen by the benchmark (see README).
pub const DEFAULT_CONCURRENCY: u16 = 256;

/// Default of `WEBHOOK_HOST_CONCURRENCY`, chosen by the isolation benchmark.
pub const DEFAULT_HOST_CONCURRENCY: u16 = 64;

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
}

/// Queue type of every queue declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueueType {
    /// Replicated Raft queues: at-least-once dead-lettering, delivery limits.
    Quorum,
    /// Single-node classic queues: none of the quorum safety arguments.
    Classic,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The retry schedule, expanded: `delays[n-1]` is the wait after the n-th
/// failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl RetrySchedule {
    /// Builds a schedule from its expanded delays.
    pub fn new(delays: Vec<Duration>) -> Self {
        Self { delays }
    }

    /// The expanded list of delays, one per retry.
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// The distinct delays in ascending order: one retry queue each.
    pub fn tiers(&self) -> Vec<Duration> {
        let mut tiers = self.delays.clone();
        tiers.sort();
        tiers.dedup();
        tiers
    }
}

/// Why a schedule, duration or prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A duration that humantime cannot read.
    #[error("invalid duration '{0}' (use forms like 500ms, 60s, 1h, 7d)")]
    Duration(String),
    /// A duration of zero where a positive one is needed.
    #[error("duration must be greater than zero")]
    ZeroDuration,
    /// A duration below one millisecond or not a whole number of them.
    #[error("duration '{0}' is not a whole number of milliseconds")]
    SubMillisecond(String),
    /// An entry of the schedule that is not `DURATION[*COUNT]`.
    #[error("invalid retry schedule entry '{0}': expected DURATION[*COUNT], e.g. 60s*3")]
    ScheduleEntry(String),
    /// A schedule with no delay at all.
    #[error("retry schedule is empty")]
    EmptySchedule,
    /// A schedule too long to be meaningful.
    #[error("retry schedule expands to {0} retries; at most {MAX_RETRIES} are allowed")]
    TooManyRetries(u64),
    /// A queue TTL longer than the broker accepts.
    #[error("duration '{0}' is longer than the broker's limit for queue TTLs (10 years)")]
    TooLong(String),
    /// A prefix the broker would refuse as part of a queue name.
    #[error("prefix must be 1-200 characters of letters, digits, '.', '-', '_' or ':'")]
    Prefix,
}

/// Upper bound of the expanded schedule, so a typo like `60s*100000000`
/// cannot allocate gigabytes.
pub const MAX_RETRIES: u64 = 1000;

/// Parses a humantime duration, refusing sub-millisecond precision (the
/// broker's TTLs are whole milliseconds).
pub fn parse_duration(s: &str) -> Result<Duration, ConfigError> {
    let d = humantime::parse_duration(s.trim()).map_err(|_| ConfigError::Duration(s.into()))?;
    if d.subsec_nanos() % 1_000_000 != 0 {
        return Err(ConfigError::SubMillisecond(s.into()));
    }
    if d.as_millis() > i64::MAX as u128 {
        return Err(ConfigError::Duration(s.into()));
    }
    Ok(d)
}

/// A duration that must be greater than zero.
pub fn parse_positive_duration(s: &str) -> Result<Duration, ConfigError> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(ConfigError::ZeroDuration);
    }
    Ok(d)
}

/// Longest queue TTL RabbitMQ accepts (`x-message-ttl`): 10 years.
pub const MAX_TTL: Duration = Duration::from_millis(315_360_000_000);

/// A duration used as a queue TTL: positive and at most [`MAX_TTL`].
pub fn parse_ttl(s: &str) -> Result<Duration, ConfigError> {
    let d = parse_positive_duration(s)?;
    if d > MAX_TTL {
        return Err(ConfigError::TooLong(s.into()));
    }
    Ok(d)
}

fn parse_prefix(s: &str) -> Result<String, ConfigError> {
    let ok = !s.is_empty()
        && s.len() <= 200
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(ConfigError::Prefix)
    }
}

impl FromStr for RetrySchedule {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut delays = Vec::new();
        for entry in s.split(',') {
            let entry = entry.trim();
            let (duration, count) = match entry.split_once('*') {
                Some((d, c)) => {
                    let count: u64 = c
                        .trim()
                        .parse()
                        .map_err(|_| ConfigError::ScheduleEntry(entry.into()))?;
                    (d, count)
                }
                None => (entry, 1),
            };
            if entry.is_empty() || count == 0 {
                return Err(ConfigError::ScheduleEntry(entry.into()));
            }
            let delay = parse_ttl(duration)?;
            let total = (delays.len() as u64).saturating_add(count);
            if total > MAX_RETRIES {
                return Err(ConfigError::TooManyRetries(total));
            }
            delays.extend(std::iter::repeat_n(delay, count as usize));
        }
        if delays.is_empty() {
            return Err(ConfigError::EmptySchedule);
        }
        Ok(Self { delays })
    }
}

impl fmt::Display for RetrySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut i = 0;
        while i < self.delays.len() {
            let d = self.delays[i];
            let run = self.delays[i..].iter().take_while(|&&x| x == d).count();
            if !first {
                f.write_str(",")?;
            }
            first = false;
            f.write_str(&crate::retry::tier_suffix(d))?;
            if run > 1 {
                write!(f, "*{run}")?;
            }
            i += run;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);
    const DAY: Duration = Duration::from_secs(86400);

    #[test]
    fn default_schedule_expands_to_nine_delays() {
        let s: RetrySchedule = "60s*3,1h*3,24h*3".parse().unwrap();
        assert_eq!(
            s.delays(),
            &[MIN, MIN, MIN, HOUR, HOUR, HOUR, DAY, DAY, DAY]
        );
        assert_eq!(s.tiers(), vec![MIN, HOUR, DAY]);
    }

    #[test]
    fn schedule_accepts_single_entries_and_spaces() {
        let s: RetrySchedule = " 200ms*2 , 500ms".parse().unwrap();
        let ms = Duration::from_millis;
        assert_eq!(s.delays(), &[ms(200), ms(200), ms(500)]);
        assert_eq!(s.to_string(), "200ms*2,500ms");
    }

    #[test]
    fn schedule_rejects_bad_entries() {
        for bad in [
            "",
            ",",
            "60s,",
            "60s*0",
            "60s*-1",
            "60s*x",
            "abc",
            "0s",
            "60s**2",
            "60s*3*2",
            "1us",
            "1ms,1ms*18446744073709551615",
            "11years",
            "60s*1001",
        ] {
            assert!(
                bad.parse::<RetrySchedule>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn durations_must_be_whole_milliseconds() {
        assert_eq!(
            parse_duration("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert!(parse_duration("1ns").is_err());
        assert!(parse_positive_duration("0s").is_err());
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::defaults();
        assert_eq!(c.amqp_url, "amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(c.prefix, "webhooks");
        assert_eq!(c.queue_type, QueueType::Quorum);
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.retry_schedule.to_string(), "60s*3,1h*3,24h*3");
        assert_eq!(c.max_age, 48 * HOUR);
        assert!(!c.allow_private_targets);
        assert_eq!(c.signing_secret, None);
        assert_eq!(c.max_message_bytes, 1_048_576);
        assert_eq!(c.shutdown_grace, Duration::from_secs(30));
        assert_eq!(c.dead_ttl, 7 * DAY);
        assert_eq!(c.delivery_limit, 10);
        assert_eq!(c.metrics_addr, "0.0.0.0:9102".parse().unwrap());
        assert_eq!(c.log_format, LogFormat::Text);
    }

    #[test]
    fn prefix_is_restricted_to_safe_characters() {
        assert!(parse_prefix("webhooks-test_1.a:b").is_ok());
        assert!(parse_prefix("").is_err());
        assert!(parse_prefix("a b").is_err());
        assert!(parse_prefix("a/b").is_err());
    }
}
