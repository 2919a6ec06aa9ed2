//! Declaring the topology on the broker: the exchanges, the queues (`P.dead`
//! last, see [`declare_dead`]) and the bindings, on a channel of its own,
//! and the two calls other parts of the broker edge share, a durable
//! exchange and a queue's binding.

use lapin::{
    Channel, Connection, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::FieldTable,
};

use super::{Topology, TopologyError, conflict_or_broker};
use crate::broker::{
    channel,
    dead_reads::{DeadReads, declare_dead},
    shards,
};

/// One declaration of a topology.
pub(super) struct Declaration<'a> {
    topology: &'a Topology,
}

impl<'a> Declaration<'a> {
    /// The declaration of `topology`.
    pub(super) fn of(topology: &'a Topology) -> Self {
        Self { topology }
    }

    /// Declares everything on a channel of its own, closed afterwards
    /// unless the broker closed it.
    pub(super) async fn run(&self, conn: &Connection) -> Result<DeadReads, TopologyError> {
        let channel = channel::open(conn).await?;
        let reads = self.on(conn, &channel).await;
        if channel.status().connected() {
            let _ = channel.close(200, "declared".into()).await;
        }
        reads
    }

    async fn on(&self, conn: &Connection, channel: &Channel) -> Result<DeadReads, TopologyError> {
        let t = self.topology;
        declare_exchange(channel, t.exchange(), ExchangeKind::Fanout).await?;
        if t.is_sharded() {
            shards::declare_exchanges(channel, t).await?;
        }
        // P.dead goes last: the one declaration that may be refused and
        // still go on (on a spare channel)
        let (dead, queues): (Vec<_>, Vec<_>) =
            t.queues().into_iter().partition(|q| q.name == t.dead());
        for q in queues {
            channel
                .queue_declare(
                    q.name.as_str().into(),
                    QueueDeclareOptions::durable(),
                    q.arguments,
                )
                .await
                .map_err(|e| conflict_or_broker("queue", &q.name, e))?;
        }
        if t.is_sharded() {
            shards::bind(channel, t).await?;
        } else {
            bind_queue(channel, t.deliveries(), t.exchange(), "").await?;
        }
        self.outcomes(channel).await?;
        let dead = dead.first().expect("P.dead is a queue of the topology");
        declare_dead(channel, async || channel::open(conn).await, dead).await
    }

    /// Declares `P.outcomes` (topic) and binds `P.log` to it with `#`.
    /// The stream itself is declared with the other queues.
    async fn outcomes(&self, channel: &Channel) -> Result<(), TopologyError> {
        let t = self.topology;
        declare_exchange(channel, t.outcomes(), ExchangeKind::Topic).await?;
        if t.has_log() {
            bind_queue(channel, t.log(), t.outcomes(), "#").await?;
        }
        Ok(())
    }
}

/// Declares the durable exchange `name` of `kind`; one that exists with
/// another type or arguments is a [`TopologyError::Conflict`].
pub(in crate::broker) async fn declare_exchange(
    channel: &Channel,
    name: &str,
    kind: ExchangeKind,
) -> Result<(), TopologyError> {
    channel
        .exchange_declare(
            name.into(),
            kind,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|e| conflict_or_broker("exchange", name, e))
}

/// Binds `queue` to `exchange` with the binding key `key`, no arguments.
pub(in crate::broker) async fn bind_queue(
    channel: &Channel,
    queue: &str,
    exchange: &str,
    key: &str,
) -> Result<(), lapin::Error> {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            key.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}
