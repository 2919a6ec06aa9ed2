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
    Channel, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    protocol::{AMQPErrorKind, AMQPSoftError},
    types::{AMQPValue, FieldTable},
};

use crate::domain::schedule::{Tier, Tiers};

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

/// Why declaring the topology failed.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// A queue or exchange exists with other arguments or type. Never
    /// deleted or redeclared: an operator decides.
    #[error("{kind} '{name}' already exists with a different '{argument}': {detail}")]
    Conflict {
        /// `queue` or `exchange`.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The differing argument, as the broker names it.
        argument: String,
        /// The broker's own words.
        detail: String,
    },
    /// The broker could not be asked (connection trouble): try again.
    #[error("declaring the topology failed: {0}")]
    Broker(#[from] lapin::Error),
}

impl TopologyError {
    /// Whether retrying cannot help (a conflict needs an operator).
    pub fn is_fatal(&self) -> bool {
        matches!(self, TopologyError::Conflict { .. })
    }
}

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
    deliveries: String,
    dead: String,
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
            deliveries: format!("{prefix}.deliveries"),
            dead: format!("{prefix}.dead"),
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

    /// The queue type of every queue.
    pub fn queue_type(&self) -> QueueType {
        self.queue_type
    }

    /// Every queue with its arguments, in declaration order.
    pub fn queues(&self) -> Vec<QueueSpec> {
        let quorum = self.queue_type == QueueType::Quorum;
        let base = || {
            let mut t = FieldTable::default();
            if quorum {
                t.insert(
                    "x-queue-type".into(),
                    AMQPValue::LongString("quorum".into()),
                );
            }
            t
        };
        let dead_letter_to = |t: &mut FieldTable, key: &str| {
            t.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString("".into()),
            );
            t.insert(
                "x-dead-letter-routing-key".into(),
                AMQPValue::LongString(key.into()),
            );
            if quorum {
                t.insert(
                    "x-dead-letter-strategy".into(),
                    AMQPValue::LongString("at-least-once".into()),
                );
                t.insert(
                    "x-overflow".into(),
                    AMQPValue::LongString("reject-publish".into()),
                );
            }
        };

        let mut queues = Vec::with_capacity(self.tiers.len() + 2);

        let mut deliveries = base();
        if quorum {
            dead_letter_to(&mut deliveries, &self.dead);
            deliveries.insert(
                "x-delivery-limit".into(),
                AMQPValue::LongLongInt(self.delivery_limit.into()),
            );
        }
        queues.push(QueueSpec {
            name: self.deliveries.clone(),
            arguments: deliveries,
        });

        for (tier, delay) in self.tiers.iter() {
            let mut retry = base();
            retry.insert(
                "x-message-ttl".into(),
                AMQPValue::LongLongInt(delay.as_millis() as i64),
            );
            dead_letter_to(&mut retry, &self.deliveries);
            queues.push(QueueSpec {
                name: self.retry_queue(tier),
                arguments: retry,
            });
        }

        let mut dead = base();
        dead.insert(
            "x-message-ttl".into(),
            AMQPValue::LongLongInt(self.dead_ttl.as_millis() as i64),
        );
        queues.push(QueueSpec {
            name: self.dead.clone(),
            arguments: dead,
        });
        queues
    }

    /// Declares the exchange, every queue and the binding. Idempotent: an
    /// identical declaration is a no-op at the broker. A conflicting one
    /// closes the channel with `PRECONDITION_FAILED`, reported here by name
    /// and argument; nothing is deleted.
    pub async fn declare(&self, channel: &Channel) -> Result<(), TopologyError> {
        channel
            .exchange_declare(
                self.exchange().into(),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| conflict_or_broker("exchange", self.exchange(), e))?;
        for q in self.queues() {
            channel
                .queue_declare(
                    q.name.as_str().into(),
                    QueueDeclareOptions::durable(),
                    q.arguments,
                )
                .await
                .map_err(|e| conflict_or_broker("queue", &q.name, e))?;
        }
        channel
            .queue_bind(
                self.deliveries().into(),
                self.exchange().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(())
    }
}

/// Turns a `PRECONDITION_FAILED` into a [`TopologyError::Conflict`] naming
/// the argument ("inequivalent arg 'x-message-ttl' for queue ...").
pub(super) fn conflict_or_broker(kind: &'static str, name: &str, e: lapin::Error) -> TopologyError {
    if let lapin::ErrorKind::ProtocolError(amqp) = e.kind()
        && *amqp.kind() == AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)
    {
        let detail = amqp.get_message().to_string();
        let argument = detail
            .split_once("inequivalent arg '")
            .and_then(|(_, rest)| rest.split_once('\''))
            .map_or_else(|| "type".to_string(), |(arg, _)| arg.to_string());
        return TopologyError::Conflict {
            kind,
            name: name.to_string(),
            argument,
            detail,
        };
    }
    TopologyError::Broker(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schedule::RetrySchedule;

    fn args(spec: &QueueSpec) -> Vec<(String, AMQPValue)> {
        spec.arguments
            .inner()
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn s(v: &str) -> AMQPValue {
        AMQPValue::LongString(v.into())
    }

    #[test]
    fn quorum_topology() {
        let tiers = "60s*3,1h*3,24h*3".parse::<RetrySchedule>().unwrap().tiers();
        let t = Topology::new(
            "webhooks",
            QueueType::Quorum,
            &tiers,
            Duration::from_secs(7 * 86400),
            10,
        );
        let q = t.queues();
        let names: Vec<_> = q.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "webhooks.deliveries",
                "webhooks.retry.60s",
                "webhooks.retry.1h",
                "webhooks.retry.24h",
                "webhooks.dead"
            ]
        );
        assert_eq!(
            args(&q[0]),
            vec![
                ("x-dead-letter-exchange".into(), s("")),
                ("x-dead-letter-routing-key".into(), s("webhooks.dead")),
                ("x-dead-letter-strategy".into(), s("at-least-once")),
                ("x-delivery-limit".into(), AMQPValue::LongLongInt(10)),
                ("x-overflow".into(), s("reject-publish")),
                ("x-queue-type".into(), s("quorum")),
            ]
        );
        assert_eq!(
            args(&q[2]),
            vec![
                ("x-dead-letter-exchange".into(), s("")),
                ("x-dead-letter-routing-key".into(), s("webhooks.deliveries")),
                ("x-dead-letter-strategy".into(), s("at-least-once")),
                ("x-message-ttl".into(), AMQPValue::LongLongInt(3_600_000)),
                ("x-overflow".into(), s("reject-publish")),
                ("x-queue-type".into(), s("quorum")),
            ]
        );
        assert_eq!(
            args(&q[4]),
            vec![
                ("x-message-ttl".into(), AMQPValue::LongLongInt(604_800_000)),
                ("x-queue-type".into(), s("quorum"))
            ]
        );
    }

    #[test]
    fn classic_topology_has_only_ttl_and_dead_lettering() {
        let t = Topology::new(
            "p",
            QueueType::Classic,
            &"500ms".parse::<RetrySchedule>().unwrap().tiers(),
            Duration::from_secs(60),
            10,
        );
        let q = t.queues();
        assert!(q[0].arguments.inner().is_empty());
        assert_eq!(q[1].name, "p.retry.500ms");
        assert_eq!(
            args(&q[1]),
            vec![
                ("x-dead-letter-exchange".into(), s("")),
                ("x-dead-letter-routing-key".into(), s("p.deliveries")),
                ("x-message-ttl".into(), AMQPValue::LongLongInt(500)),
            ]
        );
        assert_eq!(
            args(&q[2]),
            vec![("x-message-ttl".into(), AMQPValue::LongLongInt(60_000))]
        );
    }
}
