//! A session: one connection to the broker, from declaring the topology to
//! the connection's end.
//!
//! It consumes on one [`Lane`] at a time (rotating to a fresh one when a
//! slow delivery blocks batched acks) and publishes every retry and dead
//! copy on one confirm-mode channel. Each delivery runs in its own task,
//! so a slow receiver holds one slot, not the pipeline. On shutdown it
//! stops consuming, lets in-flight deliveries finish within the grace,
//! flushes the acks and closes its channels.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use lapin::{Connection, message::Delivery};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{
    Worker,
    burst::LostPublishes,
    delivery::DeliveryTask,
    drain::{Drain, DrainEnd},
    lane::Lane,
    settle::{self, SettlerHandle},
};
use crate::{Error, broker::publisher::Publisher};

/// Most retired lanes still holding slow deliveries; past it, acks behind
/// a slow delivery stay single (correct, only dearer).
const MAX_RETIRED: usize = 4;

/// What every delivery task of one session shares.
#[derive(Clone)]
pub(crate) struct SessionCtx {
    publisher: Publisher,
    /// Cancelled when the publisher channel fails: the session restarts.
    broken: CancellationToken,
    /// Copies lost with the publisher channel, logged once.
    lost: Arc<LostPublishes>,
    drain: Drain,
}

/// How a session ended.
pub(crate) enum SessionEnd {
    /// Shutdown requested and drained.
    Shutdown,
    /// The connection or a channel was lost: reconnect.
    Lost(String),
}

/// Whether a delivery got its task.
pub(crate) enum Started {
    /// Its task runs.
    Running,
    /// Shutdown came first: the delivery stays unsettled, and the broker
    /// redelivers it once the channel closes.
    ShuttingDown,
}

impl Worker {
    /// Runs one session on `conn` until shutdown (drained) or until the
    /// connection or a channel fails.
    pub(crate) async fn session(
        self: &Arc<Self>,
        conn: &Connection,
        drain: &Drain,
    ) -> Result<SessionEnd, Error> {
        let channel = conn.create_channel().await?;
        self.topology.declare(&channel).await?;
        let mut lane = Lane::open(self, channel).await?;
        let ctx = SessionCtx {
            publisher: Publisher::open(conn).await?,
            broken: CancellationToken::new(),
            lost: Arc::default(),
            drain: drain.clone(),
        };
        let retired = Arc::new(Semaphore::new(MAX_RETIRED));
        let mut last_rotation = Instant::now();
        self.health.set_ready(true);
        tracing::info!(
            queue = self.topology.deliveries(),
            prefetch = self.concurrency,
            "consuming"
        );

        let end = loop {
            let stuck = lane.stuck_signal();
            let next = tokio::select! {
                biased;
                () = drain.requested() => break SessionEnd::Shutdown,
                () = ctx.broken.cancelled() => break SessionEnd::Lost("publisher channel failed".into()),
                () = stuck.notified() => {
                    if last_rotation.elapsed() < settle::STUCK {
                        continue;
                    }
                    // The permit travels with the retired lane and comes
                    // back when it closes.
                    let Ok(place) = retired.clone().try_acquire_owned() else {
                        continue;
                    };
                    match self.fresh_lane(conn).await {
                        Ok(fresh) => {
                            let old = std::mem::replace(&mut lane, fresh);
                            last_rotation = Instant::now();
                            self.metrics.consumer_rotations.inc();
                            tracing::debug!("a slow delivery blocks batched acks; consuming on a fresh channel");
                            drain.spawn(old.retire(self.clone(), ctx.clone(), place));
                        }
                        Err(e) => break SessionEnd::Lost(e.to_string()),
                    }
                    continue;
                }
                next = lane.next() => next,
            };
            let delivery = match next {
                Ok(Some(d)) => d,
                Err(e) => break SessionEnd::Lost(e.to_string()),
                Ok(None) => break SessionEnd::Lost("the broker cancelled the consumer".into()),
            };
            if let Started::ShuttingDown = self.start(delivery, lane.settler(), &ctx).await {
                break SessionEnd::Shutdown;
            }
        };
        self.health.set_ready(false);

        if let SessionEnd::Shutdown = end {
            tracing::info!(grace = ?drain.grace(), in_flight = self.metrics.in_flight.get(), "shutting down: draining");
            lane.cancel().await;
            if let DrainEnd::Abandoned(left) = drain.finish().await {
                tracing::warn!(left, "grace ran out; leaving the rest to the broker");
            }
            // Lingers like a retired lane: acks sent just before the close
            // may be dropped by a quorum queue, and every message they
            // settled would be delivered again after the restart.
            lane.close("shutdown").await;
            ctx.publisher.close().await;
            tracing::info!("drained");
        }
        Ok(end)
    }

    async fn fresh_lane(&self, conn: &Connection) -> Result<Lane, Error> {
        let channel = conn.create_channel().await?;
        Lane::open(self, channel).await
    }

    /// Takes one of the process's slots and starts the delivery's task.
    pub(crate) async fn start(
        self: &Arc<Self>,
        delivery: Delivery,
        settler: &SettlerHandle,
        ctx: &SessionCtx,
    ) -> Started {
        // Prefetch already bounds one channel; the semaphore bounds the
        // process: retired lanes, and tasks a lost session left running.
        let slot = tokio::select! {
            p = self.slots.clone().acquire_owned() => p.expect("never closed"),
            () = ctx.drain.requested() => return Started::ShuttingDown,
        };
        settler.received(delivery.delivery_tag);
        let task = DeliveryTask {
            delivery,
            publisher: ctx.publisher.clone(),
            settler: settler.clone(),
            slot,
            broken: ctx.broken.clone(),
            lost: ctx.lost.clone(),
        };
        ctx.drain.spawn(task.run(self.clone()));
        Started::Running
    }
}

/// A session that lasted this long resets the reconnect backoff.
pub(crate) const STABLE_SESSION: Duration = Duration::from_secs(30);
