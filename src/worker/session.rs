//! A session: two connections to one broker node (consuming and
//! publishing, [`SessionConnections`]), from declaring the topology to the
//! first failure of either.
//!
//! It consumes every work queue (`P.deliveries`, or each shard of a
//! sharded topology), each on one [`Lane`] at a time (rotating to a fresh
//! one when a slow delivery blocks batched acks), and publishes every
//! retry and dead copy, and the outcome events, on the publishing
//! connection's confirm-mode channels.
//!
//! Fairness over shards: each shard has its own channel with a prefetch
//! of `WEBHOOK_CONCURRENCY`, and its own loop that waits for one of the
//! process's slots before it starts each delivery. The slots' semaphore
//! is first-come first-served and each loop waits for one slot at a time,
//! so while slots are scarce they go to the shards with deliveries
//! waiting in turn: a shard with a burst gets one slot per round like any
//! other, and takes them all only when the others have nothing. Each delivery runs in its own task,
//! so a slow receiver holds one slot, not the pipeline. On shutdown it
//! stops consuming, lets in-flight deliveries finish within the grace,
//! flushes the acks and closes its channels.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::Poll,
    time::{Duration, Instant},
};

use lapin::Connection;
use tokio::sync::Semaphore;
use tokio_util::task::AbortOnDropHandle;

use super::{
    drain::{Drain, DrainEnd},
    lane::Lane,
    settle,
    shared::Shared,
    task::{DeliveryTask, SessionCtx, Started},
};
use crate::{
    Error,
    broker::{
        connect::{SessionConnections, timed_out},
        publisher::Publisher,
    },
};

/// Longest the session's declaration of the topology may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(15);

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

/// Runs one session on `conns` until shutdown (drained) or until a
/// connection or a channel fails.
pub(super) async fn run(
    shared: &Arc<Shared>,
    conns: &SessionConnections,
    drain: &Drain,
) -> Result<SessionEnd, Error> {
    let conn = &conns.consuming;
    // A node that accepted us but does not answer (stopping, or its
    // metadata store without a majority) ends the session like a lost
    // connection instead of holding it forever.
    tokio::time::timeout(SETUP_TIMEOUT, shared.topology.declare(conn))
        .await
        .map_err(|_| timed_out("declaring the topology", SETUP_TIMEOUT))??;
    let publisher = Publisher::open(&conns.publishing).await?;
    let sink = shared.outcomes.sink(&publisher);
    let ctx = SessionCtx::new(publisher, sink, drain.clone());
    // A publishing connection that fails while nothing publishes ends the
    // session as a failed publish does.
    let publishing_failed = conns.publishing_failed();
    let broken = ctx.broken.clone();
    let _watch = AbortOnDropHandle::new(tokio::spawn(async move {
        let e = publishing_failed.await;
        tracing::debug!(error = %e, "the publishing connection failed");
        broken.cancel();
    }));
    let retired = Arc::new(Semaphore::new(MAX_RETIRED));
    let mut shards = Vec::new();
    for queue in shared.topology.work_queues() {
        let lane = Lane::open(shared, crate::broker::channel::open(conn).await?, &queue).await?;
        shards.push(ShardConsumer {
            shared,
            conn,
            drain,
            ctx: ctx.for_shard(&queue),
            queue,
            lane,
            retired: retired.clone(),
            last_rotation: Instant::now(),
        });
    }
    shared.health.set_ready(true);
    tracing::info!(
        queue = shards[0].queue,
        queues = shards.len(),
        prefetch = shared.concurrency,
        "consuming"
    );
    let end = first_end(&mut shards).await;
    shared.health.set_ready(false);
    if let SessionEnd::Shutdown = end {
        shut_down(drain, shards, &ctx).await;
    }
    Ok(end)
}

/// Runs every shard's loop until the first one ends (shutdown or a
/// failure); the others stop there too.
async fn first_end(shards: &mut [ShardConsumer<'_>]) -> SessionEnd {
    let mut loops: Vec<Pin<Box<dyn Future<Output = SessionEnd> + Send + '_>>> = shards
        .iter_mut()
        .map(|s| Box::pin(s.consume()) as Pin<Box<dyn Future<Output = SessionEnd> + Send>>)
        .collect();
    std::future::poll_fn(|cx| {
        for l in &mut loops {
            if let Poll::Ready(end) = l.as_mut().poll(cx) {
                return Poll::Ready(end);
            }
        }
        Poll::Pending
    })
    .await
}

/// Stops consuming, lets in-flight deliveries finish within the grace,
/// flushes the acks and closes the channels (each lingering at once).
async fn shut_down(drain: &Drain, shards: Vec<ShardConsumer<'_>>, ctx: &SessionCtx) {
    tracing::info!(grace = ?drain.grace(), in_flight = shards[0].shared.metrics.in_flight.get(), "shutting down: draining");
    for s in &shards {
        s.lane.cancel().await;
    }
    if let DrainEnd::Abandoned(left) = drain.finish().await {
        tracing::warn!(left, "grace ran out; leaving the rest to the broker");
    }
    // Lingers like a retired lane: acks sent just before the close may be
    // dropped by a quorum queue, and every message they settled would be
    // delivered again after the restart.
    let closing: Vec<_> = shards
        .into_iter()
        .map(|s| tokio::spawn(s.lane.close("shutdown")))
        .collect();
    for c in closing {
        let _ = c.await;
    }
    ctx.publisher.close().await;
    tracing::info!("drained");
}

/// One work queue's consumption within a session.
struct ShardConsumer<'a> {
    shared: &'a Arc<Shared>,
    conn: &'a Connection,
    drain: &'a Drain,
    /// This shard's context: its deliveries' retries return here.
    ctx: SessionCtx,
    queue: String,
    /// The lane consumed on; older ones are retired.
    lane: Lane,
    /// Places for retired lanes, shared by the session's shards; a permit
    /// travels with each retired lane and comes back when it closes.
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

impl ShardConsumer<'_> {
    /// Starts a task for every delivery until shutdown or a failure.
    async fn consume(&mut self) -> SessionEnd {
        loop {
            let stuck = self.lane.stuck_signal();
            let next = tokio::select! {
                biased;
                () = self.drain.requested() => return SessionEnd::Shutdown,
                () = self.ctx.broken.cancelled() => return SessionEnd::Lost("the publishing connection or a channel of it failed".into()),
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
        let fresh = match crate::broker::channel::open(self.conn).await {
            Ok(channel) => Lane::open(self.shared, channel, &self.queue).await,
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
}
