//! The worker's stages, above the broker and HTTP edges.
//!
//! | module | stage |
//! |---|---|
//! | this file | the reconnect loop: connect, run a session, back off |
//! | [`session`] | one connection: declare, consume, rotate, drain |
//! | [`lane`] | one consumer channel and its settler |
//! | [`settle`] | batched acks for out-of-order completions |
//! | [`burst`] | one WARN line per burst of failures |
//! | [`delivery`] | one message: admit → attempt → decide → dispose |
//! | [`republish`] | retry, park and defer copies, confirmed |
//! | [`limits`] | per-receiver adaptive limits, waiting and deferring |
//! | [`drain`] | shutdown as a type |
//!
//! What happens on each failure:
//! - receiver fails: the retry copy is published and confirmed, then the
//!   original is acked; or it is parked in `P.dead` the same way;
//! - that publish fails: the original is nacked back to the queue (quorum
//!   `x-delivery-limit` bounds the loop) and the session restarts;
//! - the connection drops: the session ends, unacked messages go back to
//!   the queue by the broker's own rule, and the worker reconnects;
//! - the process dies: the same, from the broker's side.

mod burst;
mod delivery;
pub(crate) mod drain;
mod lane;
pub(crate) mod limits;
mod republish;
mod session;
mod settle;

use std::{sync::Arc, time::Instant};

use tokio::sync::Semaphore;

use self::{
    drain::Drain,
    limits::ReceiverLimits,
    republish::{Destinations, Republisher},
    session::{STABLE_SESSION, SessionEnd},
};
use crate::{
    Error,
    broker::{
        connect::{Connected, Connector},
        topology::Topology,
    },
    config::Config,
    domain::policy::RetryPolicy,
    http::client::Deliverer,
    telemetry::{health::Health, metrics::Metrics},
};

/// What every stage shares: built once at start, read by every delivery.
#[derive(Debug)]
pub(crate) struct Worker {
    topology: Topology,
    policy: RetryPolicy,
    deliverer: Deliverer,
    republish: Republisher,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    limits: Arc<ReceiverLimits>,
    /// The process's delivery slots (`WEBHOOK_CONCURRENCY`), across every
    /// lane of every session.
    slots: Arc<Semaphore>,
    concurrency: u16,
    max_message_bytes: usize,
}

impl Worker {
    /// Builds the worker from its configuration.
    pub(crate) fn new(
        config: &Config,
        deliverer: Deliverer,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        limits: Arc<ReceiverLimits>,
    ) -> Arc<Self> {
        let topology = config.topology();
        let republish = Republisher::new(Destinations::new(&topology, &metrics), metrics.clone());
        Arc::new(Self {
            policy: RetryPolicy::new(&config.topology.retry_schedule, config.retry.max_age),
            topology,
            deliverer,
            republish,
            metrics,
            health,
            limits,
            slots: Arc::new(Semaphore::new(config.delivery.concurrency.into())),
            concurrency: config.delivery.concurrency,
            max_message_bytes: config.delivery.max_message_bytes as usize,
        })
    }

    /// Runs until `drain` is requested (then drains and returns `Ok`) or
    /// the topology conflicts with what the broker has (then `Err`). Losing
    /// the broker is never an error: the worker moves to the next node at
    /// once, and backs off only when a whole pass over the nodes failed.
    pub(crate) async fn run(
        self: Arc<Self>,
        mut connector: Connector,
        drain: Drain,
    ) -> Result<(), Error> {
        self.metrics.broker_nodes(connector.urls().len());
        let mut sessions = 0u64;
        loop {
            let connected = connector
                .connect(drain.token(), |node| {
                    self.metrics.broker_connect_failed(node)
                })
                .await;
            let Some(Connected { conn, node }) = connected else {
                // Shutdown while disconnected: whatever still runs holds
                // messages of a dead channel; give it the grace, then go.
                drain.finish().await;
                return Ok(());
            };
            if sessions > 0 {
                self.metrics.broker_reconnects.inc();
            }
            sessions += 1;
            self.metrics.broker_connected.set(1);
            self.metrics.broker_node_connected(node, true);
            let started = Instant::now();
            let end = self.session(&conn, &drain).await;
            self.health.set_ready(false);
            self.metrics.broker_connected.set(0);
            self.metrics.broker_node_connected(node, false);
            let _ = conn.close(200, "session over".into()).await;
            let (node_no, nodes) = (node + 1, connector.urls().len());
            match end {
                Ok(SessionEnd::Shutdown) => return Ok(()),
                Ok(SessionEnd::Lost(why)) => {
                    tracing::warn!(reason = %why, node = node_no, nodes, "lost the broker session; reconnecting")
                }
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => {
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
