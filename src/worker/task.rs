//! The delivery task: one message from the broker, in a task of its own,
//! holding one of the process's slots, to its settlement with the broker.
//! What happens in between is [`super::delivery`].

use std::sync::Arc;

use bytes::Bytes;
use lapin::message::Delivery;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use super::{
    burst::LostPublishes,
    delivery::{Publishing, deliver},
    drain::Drain,
    settle::{Settlement, SettlerHandle},
    shared::Shared,
    unsettled,
};
use crate::broker::{
    outcomes::OutcomeSink,
    publisher::{PublishError, Publisher},
    retry_headers::broker_redeliveries,
    topology::QueueType,
};

/// What every delivery task of one session shares.
#[derive(Clone)]
pub(super) struct SessionCtx {
    pub(super) publisher: Publisher,
    /// Outcome events, batched on `publisher` (none when off).
    sink: Option<OutcomeSink>,
    /// Cancelled when the publisher channel fails: the session restarts.
    pub(super) broken: CancellationToken,
    /// Copies lost with the publisher channel, logged once.
    lost: Arc<LostPublishes>,
    drain: Drain,
    /// The work queue consumed (`P.deliveries` or one shard): a retry
    /// returns there.
    pub(super) shard: Arc<str>,
}

impl SessionCtx {
    /// The context of a session publishing its copies with `publisher`,
    /// and its outcome events to `sink`.
    pub(super) fn new(publisher: Publisher, sink: Option<OutcomeSink>, drain: Drain) -> Self {
        Self {
            publisher,
            sink,
            broken: CancellationToken::new(),
            lost: Arc::default(),
            drain,
            shard: Arc::from(""),
        }
    }

    /// The same context for the deliveries of work queue `shard`.
    pub(super) fn for_shard(&self, shard: &str) -> Self {
        Self {
            shard: Arc::from(shard),
            ..self.clone()
        }
    }
}

/// Whether a delivery got its task.
pub(super) enum Started {
    /// Its task runs.
    Running,
    /// Shutdown came first: the delivery stays unsettled, and the broker
    /// redelivers it once the channel closes.
    ShuttingDown,
}

/// A delivery handed to its task: the message, where to settle it, and
/// the process slot it holds for as long as it runs.
pub(super) struct DeliveryTask {
    delivery: Delivery,
    publisher: Publisher,
    sink: Option<OutcomeSink>,
    settler: SettlerHandle,
    slot: OwnedSemaphorePermit,
    /// Cancelled when a publish fails on the broker's side: the session
    /// restarts.
    broken: CancellationToken,
    /// Where such failures are counted, for one line per session.
    lost: Arc<LostPublishes>,
    /// The work queue it came from.
    shard: Arc<str>,
}

impl DeliveryTask {
    /// Takes one of the process's slots and starts the delivery's task.
    pub(super) async fn start(
        shared: &Arc<Shared>,
        delivery: Delivery,
        settler: &SettlerHandle,
        ctx: &SessionCtx,
    ) -> Started {
        // Prefetch already bounds one channel; the semaphore bounds the
        // process: retired lanes, and tasks a lost session left running.
        let slot = tokio::select! {
            p = shared.slots.clone().acquire_owned() => p.expect("never closed"),
            () = ctx.drain.requested() => return Started::ShuttingDown,
        };
        settler.received(delivery.delivery_tag);
        let task = Self {
            delivery,
            publisher: ctx.publisher.clone(),
            sink: ctx.sink.clone(),
            settler: settler.clone(),
            slot,
            broken: ctx.broken.clone(),
            shard: ctx.shard.clone(),
            lost: ctx.lost.clone(),
        };
        ctx.drain.spawn(task.run(shared.clone()));
        Started::Running
    }

    /// Runs the delivery to its settlement.
    async fn run(self, shared: Arc<Shared>) {
        // A guard, so an abandoned task (dropped at the end of the grace)
        // still leaves the gauge right.
        let _in_flight = InFlight::new(&shared.metrics.in_flight);
        let _slot = self.slot;
        let tag = self.delivery.delivery_tag;
        let body: Bytes = self.delivery.data.into();
        let props = self.delivery.properties;
        if past_delivery_limit(&shared, &props) {
            self.settler.settle(tag, Settlement::DeadLetter);
            return;
        }
        let to = Publishing {
            publisher: &self.publisher,
            sink: self.sink.as_ref(),
            shard: &self.shard,
        };
        match deliver(&shared, &body, &props, to).await {
            Ok(()) => self.settler.settle(tag, Settlement::Ack),
            Err(e) => {
                shared.metrics.publish_failures.inc();
                if matches!(e, PublishError::Broker(_)) {
                    self.settler.settle(tag, Settlement::Requeue);
                    // The publisher channel is gone: every task of the
                    // session fails the same way; one line says how many.
                    self.lost.record(&e);
                    self.broken.cancel();
                } else {
                    tracing::warn!(error = %e, "could not park, retry or report a message; returning it to the queue");
                    let to = &self.shard;
                    let back = unsettled::give_back(&shared, &self.publisher, to, &body, &props);
                    self.settler.settle(tag, Box::pin(back).await);
                }
            }
        }
    }
}

/// Whether the broker handed this message out more than
/// `WEBHOOK_DELIVERY_LIMIT` times before: then it is not attempted again
/// but dead-lettered to `P.dead` by the broker. The broker's own limit
/// does that on RabbitMQ 3.10 and 4.0, where every return counts; from
/// 4.3 some returns do not count toward it (a `basic.nack`, a consumer
/// timeout), so the worker keeps the bound of contract section 6 itself,
/// with the broker's `x-acquired-count`. Quorum queues only: a classic
/// `P.deliveries` has no dead-letter target (a reject would drop it) and
/// counts nothing; there the worker counts itself ([`super::unsettled`]).
fn past_delivery_limit(shared: &Shared, props: &lapin::BasicProperties) -> bool {
    let topology = &shared.topology;
    let before = broker_redeliveries(props.headers().as_ref());
    let past =
        topology.queue_type() == QueueType::Quorum && before > u64::from(topology.delivery_limit());
    if past {
        tracing::warn!(
            deliveries = before + 1,
            limit = topology.delivery_limit(),
            "a message was delivered more often than WEBHOOK_DELIVERY_LIMIT allows; the broker parks it in {} without an attempt",
            topology.dead()
        );
    }
    past
}

/// Counts one delivery in `webhook_in_flight` for as long as it lives.
struct InFlight<'a>(&'a prometheus::IntGauge);

impl<'a> InFlight<'a> {
    fn new(gauge: &'a prometheus::IntGauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
