//! `webhook-worker reshard`: changing the shard count with nothing lost,
//! while no worker runs (queue arguments cannot change in place, and a
//! worker of the old count would publish retries the old way).
//!
//! 1. When the tiers' form changes (unsharded ↔ sharded) or shards go away,
//!    every retry tier's messages move to a holding queue
//!    `P.retry.<delay>.hold`, and a tier whose form changes is deleted.
//! 2. The new topology is declared beside the old (new shards, `P.shards`,
//!    tiers, bindings), so `P` routes every new event to both.
//! 3. The old work queues are unbound (from then on `P` routes only to the
//!    new ones), their messages moved into the new work queues — through
//!    `P.shards` by the producer's routing key (the `site_id` for a
//!    message that came back from a tier), or to `P.deliveries` — and
//!    they are deleted once empty.
//! 4. The held retries go back into the new tiers, to a shard of the new
//!    count; the holding queues and, for `N = 1`, `P.shards` and the tier
//!    exchanges are deleted.
//!
//! Every move publishes a copy (confirmed, `mandatory`) before it acks the
//! original, so an interruption leaves at most one message twice and
//! nothing lost; running the command again finishes the job (it finds the
//! leftovers by name). An event published between steps 2 and 3 reaches
//! an old and a new queue, so it is delivered twice. A held retry waits
//! its tier's whole delay again.

use std::sync::Arc;

use lapin::{
    Channel, Connection,
    message::BasicGetMessage,
    options::{BasicAckOptions, BasicGetOptions, QueueDeleteOptions},
    types::FieldTable,
};

use super::{
    publisher::{PublishError, Publisher},
    shards::{self, queue_exists, site_key},
    topology::{Topology, TopologyError},
};

/// What a reshard did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReshardReport {
    /// Work queue messages moved into the new work queues.
    pub moved: u64,
    /// Retries moved through the holding queues into the new tiers.
    pub retries: u64,
    /// Old work queues deleted.
    pub deleted: Vec<String>,
}

/// Why a reshard stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReshardError {
    /// Declaring the new topology failed.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// A move could not be confirmed.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The broker could not be asked.
    #[error("resharding failed: {0}")]
    Broker(#[from] lapin::Error),
}

/// Changes the broker's topology of `new`'s prefix to `new`'s shard count.
pub async fn reshard(
    conn: &Arc<Connection>,
    new: &Topology,
) -> Result<ReshardReport, ReshardError> {
    let mut report = ReshardReport::default();
    let old = old_work_queues(conn, new).await?;
    let ch = crate::broker::channel::open(conn).await?;
    let publisher = Publisher::open(conn).await?;
    let tiers: Vec<String> = new
        .tiers()
        .iter()
        .map(|(t, _)| new.retry_queue(t))
        .collect();
    let changed = tiers_changed(conn, new).await?;
    if changed || !old.is_empty() {
        for tier in &tiers {
            if !queue_exists(conn, tier).await? {
                continue;
            }
            let hold = format!("{tier}.hold");
            declare_plain(&ch, &hold).await?;
            let to_hold = |_: &BasicGetMessage| (String::new(), hold.clone());
            drain_into(&ch, tier, to_hold, &publisher).await?;
            if changed {
                delete_empty(&ch, tier).await?;
            }
        }
    }
    new.declare_beside(conn).await?;
    for queue in &old {
        unbind_old(&ch, new, queue).await?;
    }
    if !new.is_sharded() {
        let _ = ch
            .exchange_unbind(
                shards::hash_exchange(new).as_str().into(),
                new.exchange().into(),
                "".into(),
                Default::default(),
                FieldTable::default(),
            )
            .await;
    }
    let hash = shards::hash_exchange(new);
    for queue in &old {
        report.moved += drain_into(&ch, queue, |m| work_route(new, &hash, m), &publisher).await?;
        if delete_empty(&ch, queue).await? {
            report.deleted.push(queue.clone());
        }
    }
    for tier in &tiers {
        let hold = format!("{tier}.hold");
        if queue_exists(conn, &hold).await? {
            let route = |m: &BasicGetMessage| tier_route(new, tier, m);
            report.retries += drain_into(&ch, &hold, route, &publisher).await?;
            delete_empty(&ch, &hold).await?;
        }
    }
    if !new.is_sharded() {
        for e in tiers.iter().chain([&hash]) {
            let _ = ch
                .exchange_delete(e.as_str().into(), Default::default())
                .await;
        }
    }
    publisher.close().await;
    let _ = ch.close(200, "resharded".into()).await;
    Ok(report)
}

/// The work queues of the prefix that the new count does not have.
async fn old_work_queues(conn: &Connection, new: &Topology) -> Result<Vec<String>, lapin::Error> {
    let keep = new.work_queues();
    let mut old = Vec::new();
    let unsharded = new.deliveries().to_string();
    if !keep.contains(&unsharded) && queue_exists(conn, &unsharded).await? {
        old.push(unsharded);
    }
    let mut k = 0;
    loop {
        let q = shards::shard_queue(new.prefix(), k);
        if !queue_exists(conn, &q).await? {
            break;
        }
        if !keep.contains(&q) {
            old.push(q);
        }
        k += 1;
    }
    Ok(old)
}

/// Whether the tiers on the broker have the other form (fixed return key
/// or not) than `new` needs: a declare of the first tier is refused.
async fn tiers_changed(conn: &Connection, new: &Topology) -> Result<bool, lapin::Error> {
    let Some(spec) = new
        .queues()
        .into_iter()
        .find(|q| q.name.contains(".retry."))
    else {
        return Ok(false);
    };
    if !queue_exists(conn, &spec.name).await? {
        return Ok(false);
    }
    let ch = crate::broker::channel::open(conn).await?;
    let same = ch
        .queue_declare(
            spec.name.as_str().into(),
            lapin::options::QueueDeclareOptions::durable(),
            spec.arguments,
        )
        .await;
    if ch.status().connected() {
        let _ = ch.close(200, "compared".into()).await;
    }
    Ok(same.is_err())
}

async fn declare_plain(ch: &Channel, queue: &str) -> Result<(), lapin::Error> {
    ch.queue_declare(
        queue.into(),
        lapin::options::QueueDeclareOptions::durable(),
        FieldTable::default(),
    )
    .await
    .map(|_| ())
}

/// Deletes a queue the reshard has drained, if it is still empty (quorum
/// queues refuse the `if-empty` flag, so it is asked first). A queue that
/// got a message meanwhile is kept, and a run of the command again moves
/// it.
async fn delete_empty(ch: &Channel, queue: &str) -> Result<bool, lapin::Error> {
    let passive = lapin::options::QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let q = ch
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await?;
    if q.message_count() == 0 {
        ch.queue_delete(queue.into(), QueueDeleteOptions::default())
            .await?;
        return Ok(true);
    }
    tracing::warn!(
        queue,
        left = q.message_count(),
        "not deleted: messages arrived while it was drained; run reshard again"
    );
    Ok(false)
}

async fn unbind_old(ch: &Channel, new: &Topology, queue: &str) -> Result<(), lapin::Error> {
    let (exchange, key) = if queue == new.deliveries() {
        (new.exchange().to_string(), "")
    } else {
        (shards::hash_exchange(new), "1")
    };
    // An unbind of a binding that is not there is a no-op.
    ch.queue_unbind(
        queue.into(),
        exchange.as_str().into(),
        key.into(),
        FieldTable::default(),
    )
    .await
}

/// Where a work queue message goes in the new topology.
fn work_route(new: &Topology, hash: &str, m: &BasicGetMessage) -> (String, String) {
    if !new.is_sharded() {
        return (String::new(), new.deliveries().to_string());
    }
    let key = if m.delivery.exchange.as_str() == new.exchange() {
        m.delivery.routing_key.to_string()
    } else {
        site_key(&m.delivery.data)
    };
    (hash.to_string(), key)
}

/// Where a held retry goes: its tier, returning to a shard of the new
/// count (its old one when that remains, else one chosen by its site).
fn tier_route(new: &Topology, tier: &str, m: &BasicGetMessage) -> (String, String) {
    if !new.is_sharded() {
        return (String::new(), tier.to_string());
    }
    let keep = new.work_queues();
    let old_key = m.delivery.routing_key.to_string();
    let key = if keep.contains(&old_key) {
        old_key
    } else {
        let site = site_key(&m.delivery.data);
        let k = site
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
        shards::shard_queue(new.prefix(), (k % u32::from(new.shards())) as u16)
    };
    (tier.to_string(), key)
}

/// Moves every message of `queue` to where `route` says, each confirmed
/// before its original is acked. Returns how many moved.
async fn drain_into(
    ch: &Channel,
    queue: &str,
    route: impl Fn(&BasicGetMessage) -> (String, String),
    publisher: &Publisher,
) -> Result<u64, ReshardError> {
    let mut n = 0;
    while let Some(m) = ch
        .basic_get(queue.into(), BasicGetOptions { no_ack: false })
        .await?
    {
        let (exchange, key) = route(&m);
        let props = m.delivery.properties.clone();
        publisher
            .publish_to(&exchange, &key, &m.delivery.data, props)
            .await?;
        ch.basic_ack(m.delivery.delivery_tag, BasicAckOptions::default())
            .await?;
        n += 1;
    }
    Ok(n)
}
