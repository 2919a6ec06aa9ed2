//! The delivery task: one message from the broker to its settlement, in
//! phases, each a type of its own: [`Received`] (retry state read) →
//! [`Parsed`] (envelope valid) → admitted by the receiver's limit →
//! [`Attempted`] (the HTTP outcome) → a [`Disposal`] (what becomes of the
//! message) → carried out, then settled with the broker.
//!
//! Every publishing path is boxed: a task's future is as large as its
//! largest await, and every in-flight delivery pays for that size while it
//! waits on the receiver.

use std::{sync::Arc, time::Instant};

use bytes::Bytes;
use lapin::{BasicProperties, message::Delivery};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{
    Worker,
    burst::LostPublishes,
    limits::{Admission, ReceiverLimits},
    republish::MessageCopy,
    settle::{Settlement, SettlerHandle},
};
use crate::{
    broker::{
        publisher::{PublishError, Publisher},
        retry_headers::read_retry_state,
    },
    domain::{
        envelope::{self, Envelope},
        limit::Feedback,
        outcome::AttemptOutcome,
        policy::{Decision, DropReason, RetryState},
        schedule::Tier,
    },
};

/// A delivery handed to its task: the message, where to settle it, and
/// the process slot it holds for as long as it runs.
pub(crate) struct DeliveryTask {
    pub(crate) delivery: Delivery,
    pub(crate) publisher: Publisher,
    pub(crate) settler: SettlerHandle,
    pub(crate) slot: OwnedSemaphorePermit,
    /// Cancelled when a publish fails on the broker's side: the session
    /// restarts.
    pub(crate) broken: CancellationToken,
    /// Where such failures are counted, for one line per session.
    pub(crate) lost: Arc<LostPublishes>,
}

impl DeliveryTask {
    /// Runs the delivery to its settlement.
    pub(crate) async fn run(self, worker: Arc<Worker>) {
        // A guard, so an abandoned task (dropped at the end of the grace)
        // still leaves the gauge right.
        let _in_flight = InFlight::new(&worker.metrics.in_flight);
        let _slot = self.slot;
        let tag = self.delivery.delivery_tag;
        let body: Bytes = self.delivery.data.into();
        let props = self.delivery.properties;
        match worker.deliver(&body, &props, &self.publisher).await {
            Ok(()) => self.settler.settle(tag, Settlement::Ack),
            Err(e) => {
                worker.metrics.publish_failures.inc();
                self.settler.settle(tag, Settlement::Requeue);
                if matches!(e, PublishError::Broker(_)) {
                    // The publisher channel is gone: every task of the
                    // session fails the same way; one line says how many.
                    self.lost.record(&e);
                    self.broken.cancel();
                } else {
                    tracing::warn!(error = %e, "could not park or retry a message; returning it to the queue");
                }
            }
        }
    }
}

/// Phase 1: what the broker handed over, with its retry state read.
struct Received<'a> {
    body: &'a Bytes,
    props: &'a BasicProperties,
    state: RetryState,
    first_attempt_ms: i64,
}

/// Phase 2: a valid envelope, about to be attempted.
struct Parsed<'a> {
    received: Received<'a>,
    env: Envelope<'a>,
    attempt: u32,
}

/// Phase 3: the attempt, made.
struct Attempted {
    outcome: AttemptOutcome,
    finished_ms: i64,
}

/// Phase 4: what becomes of the message.
enum Disposal {
    /// A 2xx: ack.
    Delivered,
    /// Publish to this tier, then ack.
    Retry { tier: Tier, error: String },
    /// Park in `P.dead`, then ack.
    Park { reason: DropReason, error: String },
    /// The receiver had no slot: shortest tier, attempt count unchanged.
    Defer,
}

impl Worker {
    /// Delivers one message; `Ok` means it may be acked (delivered, or its
    /// copy is confirmed).
    async fn deliver(
        &self,
        body: &Bytes,
        props: &BasicProperties,
        publisher: &Publisher,
    ) -> Result<(), PublishError> {
        let now = now_ms();
        let state = match read_retry_state(props.headers().as_ref()) {
            Ok(s) => s,
            Err(why) => {
                let copy = MessageCopy {
                    body,
                    props,
                    attempts: 0,
                    first_attempt_ms: now,
                };
                let why = why.to_string();
                return Box::pin(
                    self.republish
                        .park(publisher, copy, DropReason::Malformed, &why),
                )
                .await;
            }
        };
        let received = Received {
            body,
            props,
            state,
            first_attempt_ms: state.first_attempt_ms.unwrap_or(now),
        };
        let parsed = match envelope::parse(body, self.max_message_bytes) {
            Ok(env) => Parsed {
                attempt: received.state.this_attempt(),
                received,
                env,
            },
            Err(rejection) => {
                let copy = received.copy(received.state.attempts);
                let why = rejection.to_string();
                return Box::pin(
                    self.republish
                        .park(publisher, copy, rejection.reason(), &why),
                )
                .await;
            }
        };
        // The span is DEBUG: at the default level it costs nothing per
        // delivery, and the WARN lines carry id, webhook and attempt
        // themselves.
        let span = tracing::debug_span!("delivery", id = %parsed.env.id, webhook = parsed.env.webhook, attempt = parsed.attempt);
        async {
            let disposal = match self.attempt(&parsed).await {
                Some(attempted) => self.decide(&parsed, &attempted),
                None => Disposal::Defer,
            };
            self.dispose(publisher, &parsed, disposal).await
        }
        .instrument(span)
        .await
    }

    /// Admits the delivery at its receiver and makes the attempt; `None`
    /// when the receiver has no slot for it.
    async fn attempt(&self, parsed: &Parsed<'_>) -> Option<Attempted> {
        let slot = match self
            .limits
            .acquire(&ReceiverLimits::key(&parsed.env.url))
            .await
        {
            Admission::Granted(slot) => slot,
            Admission::Defer => return None,
        };
        let started = Instant::now();
        let outcome = Box::pin(self.deliverer.attempt(
            &parsed.env,
            parsed.received.body,
            parsed.attempt,
        ))
        .await;
        // The receiver's slot is free again before any publishing.
        slot.finish(Feedback::from(&outcome));
        let handles = self.metrics.webhook(parsed.env.webhook);
        handles.attempts(&outcome).inc();
        handles
            .attempt_duration
            .observe(started.elapsed().as_secs_f64());
        Some(Attempted {
            outcome,
            finished_ms: now_ms(),
        })
    }

    /// What the attempt's outcome means for the message.
    fn decide(&self, parsed: &Parsed<'_>, attempted: &Attempted) -> Disposal {
        let Parsed { env, attempt, .. } = parsed;
        let outcome = &attempted.outcome;
        let first_attempt_ms = parsed.received.first_attempt_ms;
        if outcome.is_success() {
            self.metrics.webhook(env.webhook).delivered.inc();
            let since = env.created_at_ms.unwrap_or(first_attempt_ms);
            self.metrics
                .delivery_latency
                .observe((attempted.finished_ms - since).max(0) as f64 / 1000.0);
            tracing::debug!("delivered");
            return Disposal::Delivered;
        }
        let error = outcome.describe(self.deliverer.timeout());
        match self
            .policy
            .decide(*attempt, first_attempt_ms, attempted.finished_ms, outcome)
        {
            Decision::Retry(tier) => {
                tracing::warn!(
                    id = %env.id, webhook = env.webhook, attempt, outcome = outcome.label(), error = %error,
                    retry_in = %humantime::format_duration(self.policy.tiers().delay(tier)),
                    "attempt failed; retry scheduled"
                );
                Disposal::Retry { tier, error }
            }
            Decision::Drop(reason) => {
                let why = match outcome {
                    AttemptOutcome::Gone | AttemptOutcome::ForbiddenTarget(_) => {
                        "attempt failed; not retried"
                    }
                    _ => "attempt failed; no retry left",
                };
                tracing::warn!(
                    id = %env.id, webhook = env.webhook, attempt, outcome = outcome.label(), error = %error, "{why}"
                );
                Disposal::Park { reason, error }
            }
        }
    }

    /// Carries out the disposal.
    async fn dispose(
        &self,
        publisher: &Publisher,
        parsed: &Parsed<'_>,
        disposal: Disposal,
    ) -> Result<(), PublishError> {
        let attempted = parsed.received.copy(parsed.attempt);
        match disposal {
            Disposal::Delivered => Ok(()),
            Disposal::Retry { tier, error } => {
                Box::pin(self.republish.retry(publisher, attempted, tier, &error)).await
            }
            Disposal::Park { reason, error } => {
                Box::pin(self.republish.park(publisher, attempted, reason, &error)).await
            }
            Disposal::Defer => {
                let unattempted = parsed.received.copy(parsed.received.state.attempts);
                Box::pin(
                    self.republish
                        .defer(publisher, &self.policy, unattempted, now_ms()),
                )
                .await
            }
        }
    }
}

impl Received<'_> {
    /// A copy of this message recording `attempts` attempts.
    fn copy(&self, attempts: u32) -> MessageCopy<'_> {
        MessageCopy {
            body: self.body,
            props: self.props,
            attempts,
            first_attempt_ms: self.first_attempt_ms,
        }
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

/// Unix milliseconds now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
