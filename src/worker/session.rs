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

use lapin::Connection;
use tokio::sync::Semaphore;

use super::{
    drain::{Drain, DrainEnd},
    lane::Lane,
    settle,
    shared::Shared,
    task::{DeliveryTask, SessionCtx, Started},
};
use crate::{Error, broker::publisher::Publisher};

/// Most retired lanes still holding slow deliveries; past it, acks behind
/// a slow delivery stay single (correct, only dearer).
const MAX_RETIRED: usize = 4;

/// A session that lasted this long resets the reconnect backoff.
pub(crate) const STABLE_SESSION: Duration = Duration::from_secs(30);

/// How a session ended.
pub(crate) enum SessionEnd {
    /// Shutdown requested and drained.
    Shutdown,
    /// The connection or a channel was lost: reconnect.
    Lost(String),
}

/// Runs one session on `conn` until shutdown (drained) or until the
/// connection or a channel fails.
pub(super) async fn run(
    shared: &Arc<Shared>,
    conn: &Connection,
    drain: &Drain,
) -> Result<SessionEnd, Error> {
    shared.topology.declare(conn).await?;
    let channel = conn.create_channel().await?;
    let lane = Lane::open(shared, channel).await?;
    let publisher = Publisher::open(conn).await?;
    let sink = shared.outcomes.sink(&publisher);
    let ctx = SessionCtx::new(publisher, sink, drain.clone());
    let mut session = Session {
        shared,
        conn,
        drain,
        ctx,
        lane,
        retired: Arc::new(Semaphore::new(MAX_RETIRED)),
        last_rotation: Instant::now(),
    };
    shared.health.set_ready(true);
    tracing::info!(
        queue = shared.topology.deliveries(),
        prefetch = shared.concurrency,
        "consuming"
    );
    let end = session.consume().await;
    shared.health.set_ready(false);
    if let SessionEnd::Shutdown = end {
        session.shut_down().await;
    }
    Ok(end)
}

/// One session's state while it consumes.
struct Session<'a> {
    shared: &'a Arc<Shared>,
    conn: &'a Connection,
    drain: &'a Drain,
    ctx: SessionCtx,
    /// The lane consumed on; older ones are retired.
    lane: Lane,
    /// Places for retired lanes; a permit travels with each retired lane
    /// and comes back when it closes.
    retired: Arc<Semaphore>,
    last_rotation: Instant,
}

/// Whether the session goes on after a rotation was asked for.
enum Rotation {
    /// Rotated, or not yet due: go on consuming.
    Continue,
    /// The fresh lane could not be opened.
    Failed(Error),
}

impl Session<'_> {
    /// Starts a task for every delivery until shutdown or a failure.
    async fn consume(&mut self) -> SessionEnd {
        loop {
            let stuck = self.lane.stuck_signal();
            let next = tokio::select! {
                biased;
                () = self.drain.requested() => return SessionEnd::Shutdown,
                () = self.ctx.broken.cancelled() => return SessionEnd::Lost("publisher channel failed".into()),
                () = stuck.notified() => {
                    if let Rotation::Failed(e) = self.rotate().await {
                        return SessionEnd::Lost(e.to_string());
                    }
                    continue;
                }
                next = self.lane.next() => next,
            };
            let delivery = match next {
                Ok(Some(d)) => d,
                Err(e) => return SessionEnd::Lost(e.to_string()),
                Ok(None) => return SessionEnd::Lost("the broker cancelled the consumer".into()),
            };
            let settler = self.lane.settler();
            if let Started::ShuttingDown =
                DeliveryTask::start(self.shared, delivery, settler, &self.ctx).await
            {
                return SessionEnd::Shutdown;
            }
        }
    }

    /// Opens a fresh lane and retires the current one, unless the last
    /// rotation is too recent or every place for retired lanes is taken.
    async fn rotate(&mut self) -> Rotation {
        if self.last_rotation.elapsed() < settle::STUCK {
            return Rotation::Continue;
        }
        let Ok(place) = self.retired.clone().try_acquire_owned() else {
            return Rotation::Continue;
        };
        let fresh = match self.conn.create_channel().await {
            Ok(channel) => Lane::open(self.shared, channel).await,
            Err(e) => Err(e.into()),
        };
        match fresh {
            Ok(fresh) => {
                let old = std::mem::replace(&mut self.lane, fresh);
                self.last_rotation = Instant::now();
                self.shared.metrics.consumer_rotations.inc();
                tracing::debug!(
                    "a slow delivery blocks batched acks; consuming on a fresh channel"
                );
                self.drain
                    .spawn(old.retire(self.shared.clone(), self.ctx.clone(), place));
                Rotation::Continue
            }
            Err(e) => Rotation::Failed(e),
        }
    }

    /// Stops consuming, lets in-flight deliveries finish within the grace,
    /// flushes the acks and closes the channels.
    async fn shut_down(self) {
        let drain = self.drain;
        tracing::info!(grace = ?drain.grace(), in_flight = self.shared.metrics.in_flight.get(), "shutting down: draining");
        self.lane.cancel().await;
        if let DrainEnd::Abandoned(left) = drain.finish().await {
            tracing::warn!(left, "grace ran out; leaving the rest to the broker");
        }
        // Lingers like a retired lane: acks sent just before the close
        // may be dropped by a quorum queue, and every message they
        // settled would be delivered again after the restart.
        self.lane.close("shutdown").await;
        self.ctx.publisher.close().await;
        tracing::info!("drained");
    }
}
