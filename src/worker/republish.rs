//! Republishing: the three ways a message leaves `P.deliveries` other than
//! a successful delivery. A *retry* goes to the tier the policy chose, a
//! *park* to `P.dead` with its reason, a *deferral* (no slot at the
//! receiver) to the shortest tier without an attempt. Each copy carries the
//! body unchanged and the retry state in its headers, and is confirmed by
//! the broker before the original may be acked.

use bytes::Bytes;
use lapin::BasicProperties;

use crate::{
    broker::{
        publisher::{PublishError, Publisher},
        retry_headers::{Parking, last_error, with_retry_headers},
        topology::Topology,
        trace_headers::trace_context,
    },
    domain::{envelope, policy::DropReason, schedule::Tier, trace::TraceContext},
    telemetry::metrics::Metrics,
};

/// One retry tier, resolved at start: its queue name and counter handle,
/// so the retry path formats and hashes nothing per message.
#[derive(Debug)]
struct TierQueue {
    queue: String,
    route: TierRoute,
    retried: prometheus::IntCounter,
}

/// How a copy enters a tier so that it comes back to its work queue.
#[derive(Debug, Clone, Copy)]
enum TierRoute {
    /// Unsharded: the default exchange, the tier's name as the key; the
    /// tier returns it to `P.deliveries` by its fixed key.
    Queue,
    /// Sharded: the tier's fanout exchange, the shard's name as the key;
    /// the tier returns it by that key (see `broker::shards`).
    Exchange,
}

impl TierQueue {
    /// The exchange and routing key of a copy from work queue `shard`.
    fn route<'a>(&'a self, shard: &'a str) -> (&'a str, &'a str) {
        match self.route {
            TierRoute::Queue => ("", &self.queue),
            TierRoute::Exchange => (&self.queue, shard),
        }
    }
}

/// Where copies go, resolved once.
#[derive(Debug)]
pub(crate) struct Destinations {
    tiers: Vec<TierQueue>,
    dead: String,
}

impl Destinations {
    /// The queue and counter of every tier of `topology`.
    pub(crate) fn new(topology: &Topology, metrics: &Metrics) -> Self {
        let tiers = topology
            .tiers()
            .iter()
            .map(|(tier, _)| TierQueue {
                queue: topology.retry_queue(tier),
                route: if topology.is_sharded() {
                    TierRoute::Exchange
                } else {
                    TierRoute::Queue
                },
                retried: metrics.retried(topology.tiers(), tier),
            })
            .collect();
        Self {
            tiers,
            dead: topology.dead().to_string(),
        }
    }

    fn tier(&self, tier: Tier) -> &TierQueue {
        &self.tiers[tier.index()]
    }
}

/// What a retry or dead copy is made of: the body unchanged, the original
/// properties, and the retry state to write into the headers.
pub(crate) struct MessageCopy<'a> {
    pub(crate) body: &'a Bytes,
    pub(crate) props: &'a BasicProperties,
    /// The work queue the original came from: a retry returns there.
    pub(crate) shard: &'a str,
    pub(crate) attempts: u32,
    pub(crate) first_attempt_ms: i64,
}

impl MessageCopy<'_> {
    fn properties(&self, last_error: Option<&str>, parking: Option<Parking>) -> BasicProperties {
        let headers = with_retry_headers(
            self.props.headers().as_ref(),
            self.attempts,
            Some(self.first_attempt_ms),
            last_error,
            parking,
        );
        self.props.clone().with_headers(headers)
    }
}

/// Publishes copies; shared by every delivery task of the process.
#[derive(Debug)]
pub(crate) struct Republisher {
    destinations: Destinations,
    metrics: std::sync::Arc<Metrics>,
}

impl Republisher {
    pub(crate) fn new(destinations: Destinations, metrics: std::sync::Arc<Metrics>) -> Self {
        Self {
            destinations,
            metrics,
        }
    }

    /// Publishes the retry copy to `tier` and counts it.
    pub(crate) async fn retry(
        &self,
        publisher: &Publisher,
        copy: MessageCopy<'_>,
        tier: Tier,
        error: &str,
    ) -> Result<(), PublishError> {
        let dest = self.destinations.tier(tier);
        let (exchange, key) = dest.route(copy.shard);
        publisher
            .publish_to(exchange, key, copy.body, copy.properties(Some(error), None))
            .await?;
        dest.retried.inc();
        Ok(())
    }

    /// Drops a message: publishes the dead copy with its reason, parked at
    /// `now_ms`, waits for the confirm, counts and logs it.
    pub(crate) async fn park(
        &self,
        publisher: &Publisher,
        copy: MessageCopy<'_>,
        reason: DropReason,
        why: &str,
        now_ms: i64,
    ) -> Result<(), PublishError> {
        let (id, webhook) = envelope::identify(copy.body);
        // `-` when the message carried no (valid) `traceparent`, as on the
        // attempt lines.
        let trace = trace_context(copy.props.headers().as_ref());
        let trace_id = trace.as_ref().map_or("-", TraceContext::trace_id);
        tracing::warn!(
            id = id.as_deref().unwrap_or("?"), webhook = webhook.unwrap_or(0), attempt = copy.attempts,
            reason = reason.as_str(), error = %why, trace_id, "dropped: parked in the dead queue"
        );
        publisher
            .publish(
                &self.destinations.dead,
                copy.body,
                copy.properties(
                    Some(why),
                    Some(Parking {
                        reason,
                        at_ms: now_ms,
                    }),
                ),
            )
            .await?;
        self.metrics.dropped(reason).inc();
        Ok(())
    }

    /// Moves a delivery whose receiver has no free slot to `tier` (the
    /// shortest, as the policy's deferral decided) without an attempt, its
    /// attempt count unchanged.
    pub(crate) async fn defer(
        &self,
        publisher: &Publisher,
        copy: MessageCopy<'_>,
        tier: Tier,
    ) -> Result<(), PublishError> {
        let dest = self.destinations.tier(tier);
        let previous = last_error(copy.props.headers().as_ref());
        tracing::debug!(queue = %dest.queue, "receiver saturated; deferred");
        let (exchange, key) = dest.route(copy.shard);
        publisher
            .publish_to(
                exchange,
                key,
                copy.body,
                copy.properties(previous.as_deref(), None),
            )
            .await?;
        self.metrics.deferred.inc();
        Ok(())
    }
}
