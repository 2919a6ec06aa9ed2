//! The worker's stages, above the broker and HTTP edges.
//!
//! | module | stage |
//! |---|---|
//! | this file | the reconnect loop: connect, run a session, back off |
//! | [`session`] | one node's two connections (consuming, publishing): declare, consume, rotate, drain |
//! | [`lane`] | one consumer channel and its settler |
//! | [`task`] | one delivery's task: its slot, then its settlement |
//! | [`delivery`] | one message: admit → attempt → decide → dispose |
//! | [`unsettled`] | the bound on unsettleable messages of classic queues |
//! | [`shared`] | what every stage shares, built once |
//! | [`outcomes`] | outcome events, confirmed with the copies |
//! | [`republish`] | retry, park and defer copies, confirmed |
//! | [`settle`] | batched acks for out-of-order completions |
//! | [`receiver_health`] | failing / recovered receivers, per process |
//! | [`limits`] | per-receiver adaptive limits, waiting and deferring |
//! | [`burst`] | one WARN line per burst of failures |
//! | [`drain`] | shutdown as a type |
//!
//! Each stage imports only the stages below it in this table
//! (`tests/it/layers.rs` checks it).
//!
//! What happens on each failure:
//! - receiver fails: the retry copy is published and confirmed, then the
//!   original is acked; or it is parked in `P.dead` the same way;
//! - that publish fails: the original is rejected back to the queue (quorum
//!   `x-delivery-limit` and the worker's own check bound the loop), or
//!   with classic queues returned by a copy counting it, parked past
//!   `WEBHOOK_DELIVERY_LIMIT` ([`unsettled`]); when the channel is gone
//!   the session restarts;
//! - the connection drops: the session ends, unacked messages go back to
//!   the queue by the broker's own rule, and the worker reconnects;
//! - the process dies: the same, from the broker's side.

mod burst;
mod delivery;
pub(crate) mod drain;
mod lane;
pub(crate) mod limits;
mod outcomes;
pub(crate) mod receiver_health;
mod republish;
mod session;
mod settle;
mod shared;
mod task;
mod unsettled;

use std::{sync::Arc, time::Instant};

use self::{
    drain::Drain,
    limits::ReceiverLimits,
    receiver_health::ReceiverHealth,
    session::{STABLE_SESSION, SessionEnd},
    shared::Shared,
};
use crate::{
    Error,
    broker::connect::Connector,
    config::Config,
    http::client::Deliverer,
    telemetry::{health::Health, metrics::Metrics},
};

/// The worker: the reconnect loop over the stages below it.
#[derive(Debug)]
pub(crate) struct Worker {
    shared: Arc<Shared>,
}

impl Worker {
    /// Builds the worker from its configuration.
    pub(crate) fn new(
        config: &Config,
        deliverer: Deliverer,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        limits: Arc<ReceiverLimits>,
        receiver_health: Arc<ReceiverHealth>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared::new(
                config,
                deliverer,
                metrics,
                health,
                limits,
                receiver_health,
            )),
        }
    }

    /// Runs until `drain` is requested (then drains and returns `Ok`) or
    /// the topology conflicts with what the broker has (then `Err`). Losing
    /// the broker is never an error: the worker moves to the next node at
    /// once, and backs off only when a whole pass over the nodes failed.
    pub(crate) async fn run(self, mut connector: Connector, drain: Drain) -> Result<(), Error> {
        let shared = &self.shared;
        shared.metrics.broker_nodes(connector.urls().len());
        let mut sessions = 0u64;
        loop {
            let connected = connector
                .connect(drain.token(), |node| {
                    shared.metrics.broker_connect_failed(node)
                })
                .await;
            let Some(conns) = connected else {
                // Shutdown while disconnected: whatever still runs holds
                // messages of a dead channel; give it the grace, then go.
                drain.finish().await;
                return Ok(());
            };
            let node = conns.node;
            if sessions > 0 {
                shared.metrics.broker_reconnects.inc();
            }
            sessions += 1;
            shared.metrics.broker_connected.set(1);
            shared.metrics.broker_node_connected(node, true);
            let started = Instant::now();
            let end = session::run(shared, &conns, &drain).await;
            shared.health.set_ready(false);
            shared.metrics.broker_connected.set(0);
            shared.metrics.broker_node_connected(node, false);
            // Reconnecting: the old connections close meanwhile. Exiting:
            // they close first.
            let (node_no, nodes) = (node + 1, connector.urls().len());
            match end {
                Ok(SessionEnd::Shutdown) => {
                    conns.close("session over").await;
                    return Ok(());
                }
                Ok(SessionEnd::Lost(why)) => {
                    conns.close_in_background("session over");
                    tracing::warn!(reason = %why, node = node_no, nodes, "lost the broker session; reconnecting")
                }
                Err(e) if e.is_fatal() => {
                    conns.close("session over").await;
                    return Err(e);
                }
                Err(e) => {
                    conns.close_in_background("session over");
                    tracing::warn!(error = %e, node = node_no, nodes, "broker session failed; reconnecting")
                }
            }
            // A session that ends quickly counts as a failed node, so a
            // broker that accepts and then drops us (or a channel that
            // breaks at once) is never hammered in a tight loop.
            connector.session_ended(node, started.elapsed() > STABLE_SESSION);
        }
    }
}
