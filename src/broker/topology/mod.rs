//! The broker topology (contract section 2): names, arguments, and the
//! idempotent declaration.
//!
//! ```text
//!  producers ──▶ P (fanout) ──▶ P.deliveries ──▶ workers ──▶ receivers
//!                                  ▲      │ x-delivery-limit
//!          TTL expires, DLX ""     │      ▼
//!   P.retry.60s / .1h / .24h ──────┘    P.dead (TTL = WEBHOOK_DEAD_TTL)
//!          ▲                              ▲
//!          └──── worker: failed attempt   └──── worker: drop (reason)
//! ```
//!
//! A retry tier is a queue nobody consumes: a message published there waits
//! out the queue's `x-message-ttl`, then the broker dead-letters it back to
//! `P.deliveries` through the default exchange. The wait lives in the
//! broker, durable and replicated, so the worker keeps no timers and no
//! state. With quorum queues the hop uses `at-least-once` dead-lettering, so
//! not even a broker failover between the two queues loses a message.

use std::time::Duration;

use clap::ValueEnum;
use lapin::{
    Connection,
    types::{AMQPValue, FieldTable},
};

pub(in crate::broker) use self::declare::{bind_queue, declare_exchange};
pub use self::error::TopologyError;
pub(in crate::broker) use self::error::{conflict_or_broker, inequivalence};
use super::{
    dead_reads::{DEAD_DELIVERY_LIMIT, DELIVERY_LIMIT_ARG, DeadReads},
    shards,
};
use crate::domain::schedule::{Tier, Tiers};

mod declare;
mod error;

/// Queue type of every queue declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueueType {
    /// Replicated Raft queues: at-least-once dead-lettering, delivery limits.
    Quorum,
    /// Single-node classic queues: none of the quorum safety arguments.
    Classic,
}

impl QueueType {
    /// The name operators write (`quorum`, `classic`).
    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Quorum => "quorum",
            QueueType::Classic => "classic",
        }
    }
}

/// How long `P.log` keeps outcome events (`WEBHOOK_LOG_RETENTION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogRetention {
    /// `0`: no `P.log` is declared.
    Off,
    /// The stream's `x-max-age`, whole seconds.
    Keep(Duration),
}

/// Largest segment of `P.log`. A stream drops whole segments (never the
/// one being written), so retention acts in steps of one segment: a tenth
/// of the size cap, at most this (RabbitMQ's own default is 500 MB).
pub const MAX_LOG_SEGMENT_BYTES: u64 = 100_000_000;

/// One queue and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    /// Full name.
    pub name: String,
    /// `x-` arguments.
    pub arguments: FieldTable,
}

/// The names and arguments derived from the configuration.
#[derive(Debug, Clone)]
pub struct Topology {
    prefix: String,
    queue_type: QueueType,
    tiers: Tiers,
    dead_ttl: Duration,
    delivery_limit: u32,
    /// `WEBHOOK_SHARDS`: 1 is the unsharded topology of section 2.
    shards: u16,
    deliveries: String,
    dead: String,
    outcomes: String,
    log: String,
    log_retention: LogRetention,
    log_max_bytes: u64,
}

impl Topology {
    /// The topology for a prefix, queue type, retry tiers, dead TTL and
    /// delivery limit.
    pub fn new(
        prefix: &str,
        queue_type: QueueType,
        tiers: &Tiers,
        dead_ttl: Duration,
        delivery_limit: u32,
    ) -> Self {
        Self {
            prefix: prefix.to_string(),
            queue_type,
            tiers: tiers.clone(),
            dead_ttl,
            delivery_limit,
            shards: 1,
            deliveries: format!("{prefix}.deliveries"),
            dead: format!("{prefix}.dead"),
            outcomes: format!("{prefix}.outcomes"),
            log: format!("{prefix}.log"),
            log_retention: LogRetention::Off,
            log_max_bytes: 0,
        }
    }

    /// The same topology with the delivery log `P.log` (none with
    /// [`LogRetention::Off`]).
    pub fn with_log(mut self, retention: LogRetention, max_bytes: u64) -> Self {
        self.log_retention = retention;
        self.log_max_bytes = max_bytes;
        self
    }

    /// The topic exchange of outcome events (`P.outcomes`).
    pub fn outcomes(&self) -> &str {
        &self.outcomes
    }

    /// The delivery log stream (`P.log`), whether or not it is declared.
    pub fn log(&self) -> &str {
        &self.log
    }

    /// Whether `P.log` is part of the topology.
    pub fn has_log(&self) -> bool {
        matches!(self.log_retention, LogRetention::Keep(_))
    }

    /// `P.log` with its arguments, unless retention is off.
    fn log_spec(&self) -> Option<QueueSpec> {
        let LogRetention::Keep(age) = self.log_retention else {
            return None;
        };
        let mut t = FieldTable::default();
        t.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("stream".into()),
        );
        t.insert(
            "x-max-age".into(),
            AMQPValue::LongString(max_age_argument(age).into()),
        );
        let bytes = self.log_max_bytes.min(i64::MAX as u64);
        t.insert(
            "x-max-length-bytes".into(),
            AMQPValue::LongLongInt(bytes as i64),
        );
        let segment = (bytes / 10).clamp(1_000_000, MAX_LOG_SEGMENT_BYTES);
        t.insert(
            "x-stream-max-segment-size-bytes".into(),
            AMQPValue::LongLongInt(segment as i64),
        );
        Some(QueueSpec {
            name: self.log.clone(),
            arguments: t,
        })
    }

    /// The same topology split into `shards` work queues (contract section
    /// 9); 0 counts as 1.
    pub fn with_shards(mut self, shards: u16) -> Self {
        self.shards = shards.max(1);
        self
    }

    /// The number of work queues (`WEBHOOK_SHARDS`).
    pub fn shards(&self) -> u16 {
        self.shards
    }

    /// Whether the work queue is split (more than one shard).
    pub fn is_sharded(&self) -> bool {
        self.shards > 1
    }

    /// The work queues every worker consumes: `P.deliveries`, or
    /// `P.deliveries.0` … `P.deliveries.<N-1>` when sharded.
    pub fn work_queues(&self) -> Vec<String> {
        if self.is_sharded() {
            (0..self.shards)
                .map(|k| shards::shard_queue(&self.prefix, k))
                .collect()
        } else {
            vec![self.deliveries.clone()]
        }
    }

    /// The fanout exchange producers publish to (`P`).
    pub fn exchange(&self) -> &str {
        &self.prefix
    }

    /// The work queue (`P.deliveries`).
    pub fn deliveries(&self) -> &str {
        &self.deliveries
    }

    /// The parking queue (`P.dead`).
    pub fn dead(&self) -> &str {
        &self.dead
    }

    /// The retry queue of one tier (`P.retry.<delay>`).
    pub fn retry_queue(&self, tier: Tier) -> String {
        format!("{}.retry.{}", self.prefix, self.tiers.suffix(tier))
    }

    /// The retry tiers, shortest first.
    pub fn tiers(&self) -> &Tiers {
        &self.tiers
    }

    /// The prefix of every name.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `x-delivery-limit` of `P.deliveries` (`WEBHOOK_DELIVERY_LIMIT`).
    pub fn delivery_limit(&self) -> u32 {
        self.delivery_limit
    }

    /// The queue type of every queue.
    pub fn queue_type(&self) -> QueueType {
        self.queue_type
    }

    /// Every queue with its arguments, in declaration order.
    pub fn queues(&self) -> Vec<QueueSpec> {
        let quorum = self.queue_type == QueueType::Quorum;

        let mut queues = Vec::with_capacity(self.tiers.len() + 2 + usize::from(self.shards));

        let mut deliveries = self.base_arguments();
        if quorum {
            self.dead_letter_to(&mut deliveries, Some(&self.dead));
            deliveries.insert(
                "x-delivery-limit".into(),
                AMQPValue::LongLongInt(self.delivery_limit.into()),
            );
        }
        for name in self.work_queues() {
            queues.push(QueueSpec {
                name,
                arguments: deliveries.clone(),
            });
        }
        let tier_return = (!self.is_sharded()).then_some(self.deliveries.as_str());

        for (tier, delay) in self.tiers.iter() {
            let mut retry = self.base_arguments();
            retry.insert(
                "x-message-ttl".into(),
                AMQPValue::LongLongInt(delay.as_millis() as i64),
            );
            self.dead_letter_to(&mut retry, tier_return);
            queues.push(QueueSpec {
                name: self.retry_queue(tier),
                arguments: retry,
            });
        }

        let mut dead = self.base_arguments();
        dead.insert(
            "x-message-ttl".into(),
            AMQPValue::LongLongInt(self.dead_ttl.as_millis() as i64),
        );
        if quorum {
            // reads never drop a parked message (see dead_reads)
            dead.insert(
                DELIVERY_LIMIT_ARG.into(),
                AMQPValue::LongLongInt(DEAD_DELIVERY_LIMIT),
            );
        }
        queues.push(QueueSpec {
            name: self.dead.clone(),
            arguments: dead,
        });
        queues.extend(self.log_spec());
        queues
    }

    /// The arguments every queue has: its type.
    fn base_arguments(&self) -> FieldTable {
        let mut t = FieldTable::default();
        if self.queue_type == QueueType::Quorum {
            t.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
        }
        t
    }

    /// Dead-letters expired or rejected messages to `key` through the
    /// default exchange; `None`: the message's own routing key (a sharded
    /// tier returns each retry to the shard named by its routing key).
    fn dead_letter_to(&self, t: &mut FieldTable, key: Option<&str>) {
        t.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("".into()),
        );
        if let Some(key) = key {
            t.insert(
                "x-dead-letter-routing-key".into(),
                AMQPValue::LongString(key.into()),
            );
        }
        if self.queue_type == QueueType::Quorum {
            t.insert(
                "x-dead-letter-strategy".into(),
                AMQPValue::LongString("at-least-once".into()),
            );
            t.insert(
                "x-overflow".into(),
                AMQPValue::LongString("reject-publish".into()),
            );
        }
    }

    /// Declares the exchange, every queue and the binding, on a channel of
    /// its own. Idempotent: an identical declaration is a no-op at the
    /// broker. A conflicting one closes the channel with
    /// `PRECONDITION_FAILED`, reported here by name and argument; nothing is
    /// deleted. The one difference accepted is a `P.dead` declared by an
    /// earlier release ([`DeadReads::Exposed`], logged; see
    /// [`super::dead_reads`]).
    ///
    /// A broker with another shard count than configured is a conflict
    /// too, found before anything is declared (see
    /// [`shards::compare_count`]).
    pub async fn declare(&self, conn: &Connection) -> Result<DeadReads, TopologyError> {
        shards::compare_count(conn, self).await?;
        self.declare_beside(conn).await
    }

    /// Declares without comparing the shard count first: how `reshard`
    /// declares a new count beside the old one.
    pub(in crate::broker) async fn declare_beside(
        &self,
        conn: &Connection,
    ) -> Result<DeadReads, TopologyError> {
        declare::Declaration::of(self).run(conn).await
    }
}

/// A stream's `x-max-age`: a whole number of days (`7D`), hours, minutes
/// or seconds, the largest unit that divides it.
fn max_age_argument(age: Duration) -> String {
    let secs = age.as_secs().max(1);
    match secs {
        s if s % 86_400 == 0 => format!("{}D", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests;
