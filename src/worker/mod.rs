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

use lapin::uri::AMQPUri;
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
        connect::{MAX_RECONNECT_DELAY, connect, reconnect_backoff},
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
    /// the broker is never an error: the worker reconnects with backoff.
    pub(crate) async fn run(self: Arc<Self>, uri: AMQPUri, drain: Drain) -> Result<(), Error> {
        let name = format!(
            "webhook-worker {} prefix {} pid {}",
            env!("CARGO_PKG_VERSION"),
            self.topology.exchange(),
            std::process::id()
        );
        let mut sessions = 0u64;
        let mut session_backoff = reconnect_backoff();
        loop {
            let Some(conn) = connect(&uri, &name, drain.token()).await else {
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
            let started = Instant::now();
            let end = self.session(&conn, &drain).await;
            self.health.set_ready(false);
            self.metrics.broker_connected.set(0);
            let _ = conn.close(200, "session over".into()).await;
            match end {
                Ok(SessionEnd::Shutdown) => return Ok(()),
                Ok(SessionEnd::Lost(why)) => {
                    tracing::warn!(reason = %why, "lost the broker session; reconnecting")
                }
                Err(e) if e.is_fatal() => return Err(e),
                Err(e) => tracing::warn!(error = %e, "broker session failed; reconnecting"),
            }
            // Sessions that end quickly back off like failed connects, so a
            // broker that accepts and then drops us (or a channel that
            // breaks at once) is never hammered in a tight loop.
            if started.elapsed() > STABLE_SESSION {
                session_backoff = reconnect_backoff();
            }
            let pause = session_backoff.next().unwrap_or(MAX_RECONNECT_DELAY);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = drain.requested() => {}
            }
        }
    }
}
