//! Sharded work queues (contract section 9, `WEBHOOK_SHARDS=N` above 1).
//!
//! ```text
//!  producers ──▶ P (fanout) ──▶ P.shards (x-consistent-hash, by routing key)
//!                                  ├─▶ P.deliveries.0 ─┐
//!                                  ├─▶ …               ├─▶ every worker
//!                                  └─▶ P.deliveries.<N-1>
//!          ▲  TTL expires: DLX "" with the message's own routing key
//!          │  (= the shard it came from)
//!   P.retry.<delay> (queue) ◀── P.retry.<delay> (fanout exchange) ◀── worker:
//!                                  publish with routing key P.deliveries.K
//! ```
//!
//! A retry returns to its own shard through the shared tiers: a sharded
//! tier dead-letters to the default exchange *without*
//! `x-dead-letter-routing-key`, so the broker uses the message's own
//! routing key, and the worker publishes a shard's retry copy into the
//! tier through the tier's fanout exchange (same name as the queue) with
//! the shard's queue name as the routing key. One set of tiers serves
//! every shard; `N = 1` keeps section 2's topology byte for byte (no
//! `P.shards`, no tier exchanges, tiers with their fixed key).
//!
//! The shard count is part of the topology. AMQP cannot list queues, so
//! [`compare_count`] probes the shard queues passively (each probe on a
//! channel of its own: a miss closes it) and refuses a broker that has
//! another count than the configuration.

use lapin::{
    Channel, Connection, ExchangeKind,
    options::{ExchangeDeclareOptions, ExchangeDeleteOptions, QueueDeclareOptions},
    protocol::{AMQPErrorKind, AMQPSoftError},
    types::FieldTable,
};

use super::topology::{Topology, TopologyError, bind_queue, conflict_or_broker, declare_exchange};

/// The plugin that provides the consistent-hash exchange.
pub const HASH_PLUGIN: &str = "rabbitmq_consistent_hash_exchange";

/// The exchange type of `P.shards`.
pub const HASH_EXCHANGE_TYPE: &str = "x-consistent-hash";

/// Most shards probed when counting the broker's (a bound, not a limit
/// anyone should reach: the configuration allows at most 1024).
const PROBE_LIMIT: u16 = 1025;

/// The name of shard `k` of prefix `prefix`: `P.deliveries.<k>`.
pub fn shard_queue(prefix: &str, k: u16) -> String {
    format!("{prefix}.deliveries.{k}")
}

/// The consistent-hash exchange between `P` and the shards (`P.shards`).
pub fn hash_exchange(topology: &Topology) -> String {
    format!("{}.shards", topology.prefix())
}

/// The shard key of an event body: its `site_id` (a number or a string)
/// as text, as producers set the routing key; empty when it has none (one
/// shard takes those). `dead replay` and `publish` route by it.
pub fn site_key(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct SiteOnly {
        site_id: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<SiteOnly>(body)
        .ok()
        .and_then(|b| b.site_id)
    {
        Some(serde_json::Value::String(s)) => s,
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// What the broker has of the work queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerShards {
    /// Nothing yet: a fresh prefix.
    None,
    /// The unsharded `P.deliveries`.
    Unsharded,
    /// `P.deliveries.0` … `P.deliveries.<n-1>` (`P.deliveries.<n>` absent).
    Sharded(u16),
}

impl BrokerShards {
    /// Whether a worker configured with `shards` may declare against it.
    pub fn agrees_with(self, shards: u16) -> bool {
        match self {
            BrokerShards::None => true,
            BrokerShards::Unsharded => shards == 1,
            BrokerShards::Sharded(n) => n == shards,
        }
    }

    /// How operators read it: `1 (P.deliveries)`, `4 (P.deliveries.0 …
    /// P.deliveries.3)`.
    pub fn describe(self, prefix: &str) -> String {
        match self {
            BrokerShards::None => "no work queue yet".into(),
            BrokerShards::Unsharded => format!("1 shard ({prefix}.deliveries)"),
            BrokerShards::Sharded(n) => format!(
                "{n} shards ({} … {})",
                shard_queue(prefix, 0),
                shard_queue(prefix, n.saturating_sub(1))
            ),
        }
    }
}

/// Counts the broker's work queues of `topology`'s prefix, changing
/// nothing (passive declares).
pub async fn broker_shards(
    conn: &Connection,
    topology: &Topology,
) -> Result<BrokerShards, lapin::Error> {
    let prefix = topology.prefix();
    let mut n = 0;
    while n < PROBE_LIMIT && queue_exists(conn, &shard_queue(prefix, n)).await? {
        n += 1;
    }
    if n > 0 {
        return Ok(BrokerShards::Sharded(n));
    }
    if queue_exists(conn, topology.deliveries()).await? {
        return Ok(BrokerShards::Unsharded);
    }
    Ok(BrokerShards::None)
}

/// Refuses, as a conflict, a broker whose shard count differs from the
/// configured one.
pub(super) async fn compare_count(
    conn: &Connection,
    topology: &Topology,
) -> Result<(), TopologyError> {
    let found = broker_shards(conn, topology).await?;
    if found.agrees_with(topology.shards()) {
        return Ok(());
    }
    let name = match found {
        BrokerShards::Unsharded => topology.deliveries().to_string(),
        _ => shard_queue(topology.prefix(), 0),
    };
    Err(TopologyError::Conflict {
        kind: "queue",
        name,
        argument: "shard count".into(),
        detail: format!(
            "the broker has {}, configured WEBHOOK_SHARDS={}",
            found.describe(topology.prefix()),
            topology.shards()
        ),
    })
}

/// Whether `queue` exists (a passive declare on a channel of its own).
pub(super) async fn queue_exists(conn: &Connection, queue: &str) -> Result<bool, lapin::Error> {
    let channel = crate::broker::channel::open(conn).await?;
    let options = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    match channel
        .queue_declare(queue.into(), options, FieldTable::default())
        .await
    {
        Ok(_) => {
            let _ = channel.close(200, "probed".into()).await;
            Ok(true)
        }
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether `e` is the broker's `NOT_FOUND` (a passive declare's miss).
pub(super) fn is_not_found(e: &lapin::Error) -> bool {
    matches!(e.kind(), lapin::ErrorKind::ProtocolError(amqp)
        if *amqp.kind() == AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND))
}

/// Whether `e` says the broker does not know the consistent-hash exchange
/// type (`COMMAND_INVALID - unknown exchange type 'x-consistent-hash'`,
/// which closes the connection).
pub fn is_missing_plugin(e: &lapin::Error) -> bool {
    matches!(e.kind(), lapin::ErrorKind::ProtocolError(amqp)
        if amqp.get_message().as_str().contains("unknown exchange type"))
}

fn missing_plugin_or(kind: &'static str, name: &str, e: lapin::Error) -> TopologyError {
    if is_missing_plugin(&e) {
        return TopologyError::MissingPlugin {
            plugin: HASH_PLUGIN,
            detail: e.to_string(),
        };
    }
    conflict_or_broker(kind, name, e)
}

/// The consistent-hash exchange, declared (`passive`: only looked up).
pub(super) async fn declare_hash_exchange(
    channel: &Channel,
    name: &str,
    passive: bool,
) -> Result<(), lapin::Error> {
    channel
        .exchange_declare(
            name.into(),
            ExchangeKind::Custom(HASH_EXCHANGE_TYPE.into()),
            ExchangeDeclareOptions {
                passive,
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
}

/// Declares `P.shards` and one fanout exchange per retry tier.
pub(super) async fn declare_exchanges(
    channel: &Channel,
    topology: &Topology,
) -> Result<(), TopologyError> {
    let hash = hash_exchange(topology);
    declare_hash_exchange(channel, &hash, false)
        .await
        .map_err(|e| missing_plugin_or("exchange", &hash, e))?;
    for (tier, _) in topology.tiers().iter() {
        let name = topology.retry_queue(tier);
        declare_exchange(channel, &name, ExchangeKind::Fanout).await?;
    }
    Ok(())
}

/// Binds `P` to `P.shards`, every shard to `P.shards` (equal weights) and
/// every tier queue to its exchange.
pub(super) async fn bind(channel: &Channel, topology: &Topology) -> Result<(), lapin::Error> {
    let hash = hash_exchange(topology);
    channel
        .exchange_bind(
            hash.as_str().into(),
            topology.exchange().into(),
            "".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await?;
    for queue in topology.work_queues() {
        // The binding key of a consistent-hash exchange is the shard's
        // weight: equal shares.
        bind_queue(channel, &queue, &hash, "1").await?;
    }
    for (tier, _) in topology.tiers().iter() {
        let name = topology.retry_queue(tier);
        bind_queue(channel, &name, &name, "").await?;
    }
    Ok(())
}

/// Whether the broker knows the consistent-hash exchange type, asked by
/// declaring and deleting a throwaway exchange `P.shards.plugin-check`
/// (the only way AMQP offers). Needs a connection of its own: a missing
/// type closes the connection.
pub async fn hash_plugin_enabled(
    conn: &Connection,
    topology: &Topology,
) -> Result<bool, lapin::Error> {
    let channel = crate::broker::channel::open(conn).await?;
    let probe = format!("{}.plugin-check", hash_exchange(topology));
    match declare_hash_exchange(&channel, &probe, false).await {
        Ok(()) => {
            let _ = channel
                .exchange_delete(probe.as_str().into(), ExchangeDeleteOptions::default())
                .await;
            let _ = channel.close(200, "probed".into()).await;
            Ok(true)
        }
        Err(e) if is_missing_plugin(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lapin::types::AMQPValue;

    use super::*;
    use crate::{broker::topology::QueueType, domain::schedule::RetrySchedule};

    fn topology(shards: u16) -> Topology {
        let tiers = "60s*3,1h".parse::<RetrySchedule>().unwrap().tiers();
        Topology::new("p", QueueType::Quorum, &tiers, Duration::from_secs(60), 10)
            .with_shards(shards)
    }

    #[test]
    fn shards_replace_the_work_queue_with_the_same_arguments() {
        let one = topology(1).queues();
        let four = topology(4).queues();
        let names: Vec<_> = four.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "p.deliveries.0",
                "p.deliveries.1",
                "p.deliveries.2",
                "p.deliveries.3",
                "p.retry.60s",
                "p.retry.1h",
                "p.dead"
            ]
        );
        for shard in &four[..4] {
            assert_eq!(shard.arguments, one[0].arguments);
        }
        assert_eq!(four.last(), one.last(), "P.dead unchanged");
    }

    #[test]
    fn sharded_tiers_return_by_the_message_routing_key() {
        let one = topology(1).queues();
        let four = topology(4).queues();
        let key = |q: &crate::broker::topology::QueueSpec| {
            q.arguments
                .inner()
                .get("x-dead-letter-routing-key")
                .cloned()
        };
        assert_eq!(
            key(&one[1]),
            Some(AMQPValue::LongString("p.deliveries".into()))
        );
        assert_eq!(key(&four[4]), None);
        let mut without_key = one[1].arguments.inner().clone();
        without_key.remove("x-dead-letter-routing-key");
        assert_eq!(four[4].arguments, without_key.into(), "otherwise the same");
    }

    #[test]
    fn the_broker_agrees_only_with_its_own_count() {
        assert!(BrokerShards::None.agrees_with(1));
        assert!(BrokerShards::None.agrees_with(8));
        assert!(BrokerShards::Unsharded.agrees_with(1));
        assert!(!BrokerShards::Unsharded.agrees_with(4));
        assert!(BrokerShards::Sharded(4).agrees_with(4));
        assert!(!BrokerShards::Sharded(4).agrees_with(1));
        assert!(!BrokerShards::Sharded(4).agrees_with(16));
        assert_eq!(
            BrokerShards::Sharded(4).describe("p"),
            "4 shards (p.deliveries.0 … p.deliveries.3)"
        );
    }
}
