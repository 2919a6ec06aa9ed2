//! The consumer loop: connect, declare, consume, deliver, settle; reconnect
//! when the broker goes away; drain on shutdown.
//!
//! One *session* is one connection with two channels: a consumer channel
//! (prefetch = `WEBHOOK_CONCURRENCY`) whose acks go through the
//! [settler](crate::settle), and a publisher channel in confirm mode for
//! retry and dead copies. Each delivery runs in its own task, so a slow
//! receiver holds one slot, not the pipeline.
//!
//! When a delivery stays unfinished long enough that everything behind it
//! must be acked one by one (see [`settle::STUCK`]), the session *rotates*:
//! it starts consuming on a fresh channel and retires the old one, which
//! cancels its consumer, runs what the broker had already sent it, and
//! closes once the slow deliveries settle. A hanging receiver then costs
//! one rotation instead of a single ack (a queue command each) for every
//! message behind it. A process-wide semaphore keeps the deliveries in
//! flight at `WEBHOOK_CONCURRENCY` across all of a session's channels.
//!
//! What happens on each failure:
//! - receiver fails: the retry copy is published and confirmed, then the
//!   original is acked; or it is parked in `P.dead` the same way;
//! - that publish fails: the original is nacked back to the queue (quorum
//!   `x-delivery-limit` bounds the loop) and the session restarts;
//! - the connection drops: the session ends, unacked messages go back to
//!   the queue by the broker's own rule, and the worker reconnects;
//! - the process dies: the same, from the broker's side.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use bytes::Bytes;
use futures_lite::StreamExt;
use lapin::{
    BasicProperties, Channel, Connection, Consumer,
    message::Delivery,
    options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions},
    types::FieldTable,
};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    task::JoinHandle,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::Instrument;

use crate::{
    Error,
    broker::{self, PublishError, Publisher},
    config::Config,
    delivery::{AttemptOutcome, Deliverer},
    hosts::HostLimiter,
    message,
    retry::{Decision, DropReason, RetryPolicy, RetryState, with_retry_headers},
    settle::{self, Settlement, SettlerHandle},
    telemetry::{Health, Metrics},
    topology::Topology,
};

/// A session that lasted this long resets the reconnect backoff.
const STABLE_SESSION: Duration = Duration::from_secs(30);

/// Everything a delivery task needs, shared by all of them.
#[derive(Debug)]
pub struct Worker {
    topology: Topology,
    policy: RetryPolicy,
    deliverer: Deliverer,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    hosts: HostLimiter,
    slots: Arc<Semaphore>,
    tiers: Vec<Tier>,
    concurrency: u16,
    max_message_bytes: usize,
    shutdown_grace: Duration,
    amqp_url: String,
}

/// One retry tier, resolved at start: its queue name and counter handle,
/// so the retry path formats and hashes nothing per message.
#[derive(Debug)]
struct Tier {
    delay: Duration,
    queue: String,
    retried: prometheus::IntCounter,
}

/// Most retired consumer channels still holding slow deliveries; past it,
/// acks behind a slow delivery stay single (correct, only dearer).
const MAX_RETIRED: usize = 4;

/// One consumer channel: its consumer and its settler.
struct Lane {
    channel: Channel,
    consumer: Consumer,
    settler: SettlerHandle,
    settler_task: JoinHandle<()>,
    stuck: settle::Stuck,
}

/// What every delivery task of one session shares.
#[derive(Clone)]
struct SessionCtx {
    publisher: Publisher,
    /// Cancelled when the publisher channel fails: the session restarts.
    broken: CancellationToken,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    abandon: CancellationToken,
}

/// How a session ended.
enum SessionEnd {
    /// Shutdown requested and drained.
    Shutdown,
    /// The connection or a channel was lost: reconnect.
    Lost(String),
}

impl Worker {
    /// Builds the worker from its configuration.
    pub fn new(
        config: &Config,
        deliverer: Deliverer,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Arc<Self> {
        let topology = Topology::from_config(config);
        let tiers = config
            .retry_schedule
            .tiers()
            .into_iter()
            .map(|delay| Tier {
                delay,
                queue: topology.retry_queue(delay),
                retried: metrics.retried(delay),
            })
            .collect();
        Arc::new(Self {
            tiers,
            topology,
            policy: RetryPolicy::new(config.retry_schedule.clone(), config.max_age),
            deliverer,
            metrics,
            health,
            hosts: HostLimiter::new(config.host_concurrency),
            slots: Arc::new(Semaphore::new(config.concurrency.into())),
            concurrency: config.concurrency,
            max_message_bytes: config.max_message_bytes as usize,
            shutdown_grace: config.shutdown_grace,
            amqp_url: config.amqp_url.clone(),
        })
    }

    /// Runs until `shutdown` fires (then drains and returns `Ok`) or the
    /// topology conflicts with what the broker has (then `Err`). Losing the
    /// broker is never an error: the worker reconnects with backoff.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> Result<(), Error> {
        let uri = broker::parse_url(&self.amqp_url).map_err(Error::Config)?;
        let name = format!(
            "webhook-worker {} prefix {} pid {}",
            env!("CARGO_PKG_VERSION"),
            self.topology.exchange(),
            std::process::id()
        );
        let tracker = TaskTracker::new();
        let abandon = CancellationToken::new();
        let mut sessions = 0u64;
        let mut session_backoff = broker::reconnect_backoff();
        loop {
            let Some(conn) = broker::connect(&uri, &name, &shutdown).await else {
                // Shutdown while disconnected: whatever still runs holds
                // messages of a dead channel; give it the grace, then go.
                tracker.close();
                if tokio::time::timeout(self.shutdown_grace, tracker.wait())
                    .await
                    .is_err()
                {
                    abandon.cancel();
                }
                return Ok(());
            };
            if sessions > 0 {
                self.metrics.broker_reconnects.inc();
            }
            sessions += 1;
            self.metrics.broker_connected.set(1);
            let started = Instant::now();
            let end = self.session(&conn, &shutdown, &tracker, &abandon).await;
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
                session_backoff = broker::reconnect_backoff();
            }
            let pause = session_backoff
                .next()
                .unwrap_or(broker::MAX_RECONNECT_DELAY);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = shutdown.cancelled() => {}
            }
        }
    }

    async fn session(
        self: &Arc<Self>,
        conn: &Connection,
        shutdown: &CancellationToken,
        tracker: &TaskTracker,
        abandon: &CancellationToken,
    ) -> Result<SessionEnd, Error> {
        let channel = conn.create_channel().await?;
        self.topology.declare(&channel).await?;
        let mut lane = self.consume_on(channel).await?;
        let ctx = SessionCtx {
            publisher: Publisher::open(conn).await?,
            broken: CancellationToken::new(),
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
            abandon: abandon.clone(),
        };
        let retired = Arc::new(AtomicUsize::new(0));
        let mut last_rotation = Instant::now();
        self.health.set_ready(true);
        tracing::info!(
            queue = self.topology.deliveries(),
            prefetch = self.concurrency,
            "consuming"
        );

        let end = loop {
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => break SessionEnd::Shutdown,
                () = ctx.broken.cancelled() => break SessionEnd::Lost("publisher channel failed".into()),
                () = lane.stuck.notified() => {
                    if retired.load(Ordering::Relaxed) >= MAX_RETIRED
                        || last_rotation.elapsed() < settle::STUCK
                    {
                        continue;
                    }
                    let fresh = match conn.create_channel().await {
                        Ok(channel) => self.consume_on(channel).await,
                        Err(e) => Err(e.into()),
                    };
                    match fresh {
                        Ok(fresh) => {
                            let old = std::mem::replace(&mut lane, fresh);
                            retired.fetch_add(1, Ordering::Relaxed);
                            last_rotation = Instant::now();
                            self.metrics.consumer_rotations.inc();
                            tracing::debug!("a slow delivery blocks batched acks; consuming on a fresh channel");
                            tracker.spawn(self.clone().retire(old, ctx.clone(), retired.clone()));
                        }
                        Err(e) => break SessionEnd::Lost(e.to_string()),
                    }
                    continue;
                }
                next = lane.consumer.next() => next,
            };
            let delivery = match next {
                Some(Ok(d)) => d,
                Some(Err(e)) => break SessionEnd::Lost(e.to_string()),
                None => break SessionEnd::Lost("the broker cancelled the consumer".into()),
            };
            if !self.start(delivery, &lane.settler, &ctx).await {
                break SessionEnd::Shutdown;
            }
        };
        self.health.set_ready(false);

        if let SessionEnd::Shutdown = end {
            tracing::info!(grace = ?self.shutdown_grace, in_flight = self.metrics.in_flight.get(), "shutting down: draining");
            let _ = lane
                .channel
                .basic_cancel(lane.consumer.tag(), BasicCancelOptions::default())
                .await;
            tracker.close();
            if tokio::time::timeout(self.shutdown_grace, tracker.wait())
                .await
                .is_err()
            {
                tracing::warn!(
                    left = tracker.len(),
                    "grace ran out; leaving the rest to the broker"
                );
                abandon.cancel();
                tracker.wait().await;
            }
            drop(lane.settler);
            let _ = lane.settler_task.await;
            ctx.publisher.close().await;
            let _ = lane.channel.close(200, "shutdown".into()).await;
            tracing::info!("drained");
        }
        Ok(end)
    }

    /// Sets the prefetch on `channel` and starts consuming there, with a
    /// settler of its own.
    async fn consume_on(&self, channel: Channel) -> Result<Lane, Error> {
        channel
            .basic_qos(self.concurrency, BasicQosOptions { global: false })
            .await?;
        let consumer = channel
            .basic_consume(
                self.topology.deliveries().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let (settler, settler_task, stuck) = settle::spawn(channel.clone(), self.metrics.clone());
        Ok(Lane {
            channel,
            consumer,
            settler,
            settler_task,
            stuck,
        })
    }

    /// Takes one of the process's slots and starts the delivery's task.
    /// `false` when shutdown came first (the delivery stays unsettled; the
    /// broker redelivers it once the channel closes).
    async fn start(
        self: &Arc<Self>,
        delivery: Delivery,
        settler: &SettlerHandle,
        ctx: &SessionCtx,
    ) -> bool {
        // Prefetch already bounds one channel; the semaphore bounds the
        // process: retired channels, and tasks a lost session left running.
        let permit = tokio::select! {
            p = self.slots.clone().acquire_owned() => p.expect("never closed"),
            () = ctx.shutdown.cancelled() => return false,
        };
        settler.received(delivery.delivery_tag);
        let task = self.clone().process(
            delivery,
            ctx.publisher.clone(),
            settler.clone(),
            permit,
            ctx.broken.clone(),
        );
        let abandon = ctx.abandon.clone();
        ctx.tracker.spawn(async move {
            tokio::select! {
                () = task => {}
                // Grace ran out: leave the message unsettled; the
                // broker redelivers it once the channel closes.
                () = abandon.cancelled() => {}
            }
        });
        true
    }

    /// Winds down a consumer channel replaced by a fresh one: cancels its
    /// consumer, runs the deliveries the broker had already sent, waits
    /// until every one of them is settled, then closes the channel.
    async fn retire(self: Arc<Self>, mut lane: Lane, ctx: SessionCtx, retired: Arc<AtomicUsize>) {
        let _ = lane
            .channel
            .basic_cancel(lane.consumer.tag(), BasicCancelOptions::default())
            .await;
        while let Some(Ok(delivery)) = lane.consumer.next().await {
            if !self.start(delivery, &lane.settler, &ctx).await {
                break;
            }
        }
        drop(lane.settler);
        let _ = lane.settler_task.await;
        let _ = lane.channel.close(200, "retired".into()).await;
        retired.fetch_sub(1, Ordering::Relaxed);
    }

    /// One delivery, from the message to its settlement.
    async fn process(
        self: Arc<Self>,
        delivery: Delivery,
        publisher: Publisher,
        settler: SettlerHandle,
        _permit: OwnedSemaphorePermit,
        broken: CancellationToken,
    ) {
        // A guard, so an abandoned task (dropped at the end of the grace)
        // still leaves the gauge right.
        let _in_flight = InFlight::new(&self.metrics.in_flight);
        let tag = delivery.delivery_tag;
        let settlement = self
            .handle(delivery.data.into(), delivery.properties, &publisher)
            .await;
        match settlement {
            Ok(s) => settler.settle(tag, s),
            Err(e) => {
                self.metrics.publish_failures.inc();
                tracing::warn!(error = %e, "could not park or retry a message; returning it to the queue");
                settler.settle(tag, Settlement::Requeue);
                if matches!(e, PublishError::Broker(_)) {
                    broken.cancel();
                }
            }
        }
    }

    async fn handle(
        &self,
        body: Bytes,
        props: BasicProperties,
        publisher: &Publisher,
    ) -> Result<Settlement, PublishError> {
        let now = now_ms();
        let headers = props.headers().as_ref();
        let state = match RetryState::from_headers(headers) {
            Ok(s) => s,
            Err(why) => {
                let copy = Copy {
                    body: &body,
                    props: &props,
                    attempts: 0,
                    first_attempt_ms: now,
                };
                return Box::pin(self.park(publisher, copy, DropReason::Malformed, &why)).await;
            }
        };
        let first_attempt_ms = state.first_attempt_ms.unwrap_or(now);
        let env = match message::parse(&body, self.max_message_bytes) {
            Ok(env) => env,
            Err(rejection) => {
                let copy = Copy {
                    body: &body,
                    props: &props,
                    attempts: state.attempts,
                    first_attempt_ms,
                };
                return Box::pin(self.park(
                    publisher,
                    copy,
                    rejection.reason(),
                    &rejection.to_string(),
                ))
                .await;
            }
        };
        let attempt = state.this_attempt();
        // The span is DEBUG: at the default level it costs nothing per
        // delivery, and the WARN lines below carry id, webhook and attempt
        // themselves.
        let span = tracing::debug_span!("delivery", id = %env.id, webhook = env.webhook, attempt);
        async {
            let Some(host_slot) = self.hosts.acquire(&HostLimiter::key(&env.url)).await else {
                let copy = Copy { body: &body, props: &props, attempts: state.attempts, first_attempt_ms };
                return Box::pin(self.defer(publisher, copy)).await;
            };
            let started = Instant::now();
            // Boxed, like every publishing path here: a task's future is as
            // large as its largest await, and every in-flight delivery pays
            // for that size while it waits on the receiver.
            let outcome = Box::pin(self.deliverer.attempt(&env, &body, attempt)).await;
            // The receiver's slot is free again before any publishing.
            host_slot.finish();
            let handles = self.metrics.webhook(env.webhook);
            handles.attempts(&outcome).inc();
            handles.attempt_duration.observe(started.elapsed().as_secs_f64());
            let done = now_ms();
            if outcome.is_success() {
                handles.delivered.inc();
                let since = env.created_at_ms.unwrap_or(first_attempt_ms);
                self.metrics.delivery_latency.observe((done - since).max(0) as f64 / 1000.0);
                tracing::debug!("delivered");
                return Ok(Settlement::Ack);
            }
            let error = outcome.describe(self.deliverer.timeout());
            let copy = Copy { body: &body, props: &props, attempts: attempt, first_attempt_ms };
            match self.policy.decide(attempt, first_attempt_ms, done, &outcome) {
                Decision::Retry(delay) => {
                    tracing::warn!(
                        id = %env.id, webhook = env.webhook, attempt, outcome = outcome.label(), error = %error,
                        retry_in = %humantime::format_duration(delay), "attempt failed; retry scheduled"
                    );
                    let tier = self.tier(delay);
                    Box::pin(publisher.publish(&tier.queue, &body, copy.properties(Some(&error), None))).await?;
                    tier.retried.inc();
                    Ok(Settlement::Ack)
                }
                Decision::Drop(reason) => {
                    let why = match outcome {
                        AttemptOutcome::Gone | AttemptOutcome::ForbiddenTarget(_) => "attempt failed; not retried",
                        _ => "attempt failed; no retry left",
                    };
                    tracing::warn!(
                        id = %env.id, webhook = env.webhook, attempt, outcome = outcome.label(), error = %error, "{why}"
                    );
                    Box::pin(self.park(publisher, copy, reason, &error)).await
                }
            }
        }
        .instrument(span)
        .await
    }

    /// The retry tier of a delay the policy chose (always one of the
    /// schedule's tiers).
    fn tier(&self, delay: Duration) -> &Tier {
        self.tiers
            .iter()
            .find(|t| t.delay == delay)
            .expect("the policy only picks the schedule's tiers")
    }

    /// Drops a message: publishes the dead copy and waits for the confirm.
    async fn park(
        &self,
        publisher: &Publisher,
        copy: Copy<'_>,
        reason: DropReason,
        why: &str,
    ) -> Result<Settlement, PublishError> {
        let (id, webhook) = message::identify(copy.body);
        tracing::warn!(
            id = id.as_deref().unwrap_or("?"), webhook = webhook.unwrap_or(0), attempt = copy.attempts,
            reason = reason.as_str(), error = %why, "dropped: parked in the dead queue"
        );
        publisher
            .publish(
                self.topology.dead(),
                copy.body,
                copy.properties(Some(why), Some(reason)),
            )
            .await?;
        self.metrics.dropped(reason).inc();
        Ok(Settlement::Ack)
    }

    /// Moves a delivery whose host is saturated to the shortest tier without
    /// an attempt; the max age still bounds how long that can go on.
    async fn defer(
        &self,
        publisher: &Publisher,
        copy: Copy<'_>,
    ) -> Result<Settlement, PublishError> {
        let tier = &self.tiers[0];
        let delay = tier.delay;
        if now_ms().saturating_add(delay.as_millis() as i64)
            > copy
                .first_attempt_ms
                .saturating_add(self.policy.max_age_ms())
        {
            return self
                .park(
                    publisher,
                    copy,
                    DropReason::Expired,
                    "receiver saturated until the max age",
                )
                .await;
        }
        tracing::debug!(retry_in = %humantime::format_duration(delay), "receiver saturated; deferred");
        let last_error = copy.last_error().map(str::to_owned);
        publisher
            .publish(
                &tier.queue,
                copy.body,
                copy.properties(last_error.as_deref(), None),
            )
            .await?;
        self.metrics.deferred.inc();
        Ok(Settlement::Ack)
    }
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

/// What a retry or dead copy is made of: the body unchanged, the original
/// properties, and the retry state to write into the headers.
struct Copy<'a> {
    body: &'a Bytes,
    props: &'a BasicProperties,
    attempts: u32,
    first_attempt_ms: i64,
}

impl Copy<'_> {
    fn properties(&self, last_error: Option<&str>, reason: Option<DropReason>) -> BasicProperties {
        let headers = with_retry_headers(
            self.props.headers().as_ref(),
            self.attempts,
            Some(self.first_attempt_ms),
            last_error,
            reason,
        );
        self.props.clone().with_headers(headers)
    }

    fn last_error(&self) -> Option<&str> {
        match self
            .props
            .headers()
            .as_ref()?
            .inner()
            .get(crate::retry::HEADER_LAST_ERROR)?
        {
            lapin::types::AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
            _ => None,
        }
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
