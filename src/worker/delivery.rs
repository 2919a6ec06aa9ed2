//! One delivery, from the broker's message to what becomes of it, in
//! phases, each a type of its own: [`Received`] (retry state read) →
//! [`Parsed`] (envelope valid) → admitted by the receiver's limit →
//! [`Attempt`] (the HTTP outcome, or no slot) → a [`Disposal`] (what
//! becomes of the message) → carried out; [`super::task`] then settles it
//! with the broker.
//!
//! Every publishing path is boxed: a task's future is as large as its
//! largest await, and every in-flight delivery pays for that size while it
//! waits on the receiver.

use std::time::Instant;

use bytes::Bytes;
use lapin::BasicProperties;
use tracing::Instrument;

use super::{
    limits::{Admission, ReceiverLimits},
    republish::MessageCopy,
    shared::Shared,
};
use crate::{
    broker::{
        publisher::{PublishError, Publisher},
        retry_headers::read_retry_state,
    },
    clock,
    domain::{
        envelope::{self, Envelope},
        limit::Feedback,
        outcome::AttemptOutcome,
        policy::{Decision, DropReason, RetryState},
        schedule::Tier,
    },
};

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

/// What came of admitting the delivery at its receiver.
enum Attempt {
    /// Admitted and attempted.
    Made(Attempted),
    /// The receiver had no slot for it: not attempted.
    NoSlot,
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

/// Delivers one message; `Ok` means it may be acked (delivered, or its
/// copy is confirmed).
pub(super) async fn deliver(
    shared: &Shared,
    body: &Bytes,
    props: &BasicProperties,
    publisher: &Publisher,
) -> Result<(), PublishError> {
    let now = clock::now_ms();
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
            return Box::pin(shared.republish.park(
                publisher,
                copy,
                DropReason::Malformed,
                &why,
                now,
            ))
            .await;
        }
    };
    let received = Received {
        body,
        props,
        state,
        first_attempt_ms: state.first_attempt_ms.unwrap_or(now),
    };
    let parsed = match envelope::parse(body, shared.max_message_bytes) {
        Ok(env) => Parsed {
            attempt: received.state.this_attempt(),
            received,
            env,
        },
        Err(rejection) => {
            let copy = received.copy(received.state.attempts);
            let why = rejection.to_string();
            return Box::pin(
                shared
                    .republish
                    .park(publisher, copy, rejection.reason(), &why, now),
            )
            .await;
        }
    };
    // The span is DEBUG: at the default level it costs nothing per
    // delivery, and the WARN lines carry id, webhook and attempt
    // themselves.
    let span = tracing::debug_span!("delivery", id = %parsed.env.id, webhook = parsed.env.webhook, attempt = parsed.attempt);
    async {
        let disposal = match attempt(shared, &parsed).await {
            Attempt::Made(attempted) => {
                let disposal = decide(shared, &parsed, &attempted);
                report(shared, &parsed, &attempted, &disposal);
                disposal
            }
            Attempt::NoSlot => Disposal::Defer,
        };
        dispose(shared, publisher, &parsed, disposal).await
    }
    .instrument(span)
    .await
}

/// Admits the delivery at its receiver and makes the attempt, unless the
/// receiver has no slot for it.
async fn attempt(shared: &Shared, parsed: &Parsed<'_>) -> Attempt {
    let slot = match shared
        .limits
        .acquire(&ReceiverLimits::key(&parsed.env.url))
        .await
    {
        Admission::Granted(slot) => slot,
        Admission::Defer => return Attempt::NoSlot,
    };
    let started = Instant::now();
    let outcome = Box::pin(shared.deliverer.attempt(
        &parsed.env,
        parsed.received.body,
        parsed.attempt,
    ))
    .await;
    // The receiver's slot is free again before any publishing.
    slot.finish(Feedback::from(&outcome));
    let handles = shared.metrics.webhook(parsed.env.webhook);
    handles.attempts(&outcome).inc();
    handles
        .attempt_duration
        .observe(started.elapsed().as_secs_f64());
    Attempt::Made(Attempted {
        outcome,
        finished_ms: clock::now_ms(),
    })
}

/// What the attempt's outcome means for the message.
fn decide(shared: &Shared, parsed: &Parsed<'_>, attempted: &Attempted) -> Disposal {
    let outcome = &attempted.outcome;
    if outcome.is_success() {
        return Disposal::Delivered;
    }
    let error = outcome.describe(shared.deliverer.timeout());
    match shared.policy.decide(
        parsed.attempt,
        parsed.received.first_attempt_ms,
        attempted.finished_ms,
        outcome,
    ) {
        Decision::Retry(tier) => Disposal::Retry { tier, error },
        Decision::Drop(reason) => Disposal::Park { reason, error },
    }
}

/// Counts and logs what the attempt came to.
fn report(shared: &Shared, parsed: &Parsed<'_>, attempted: &Attempted, disposal: &Disposal) {
    let Parsed { env, attempt, .. } = parsed;
    let outcome = &attempted.outcome;
    match disposal {
        Disposal::Delivered => {
            shared.metrics.webhook(env.webhook).delivered.inc();
            let since = env
                .created_at_ms
                .unwrap_or(parsed.received.first_attempt_ms);
            shared
                .metrics
                .delivery_latency
                .observe((attempted.finished_ms - since).max(0) as f64 / 1000.0);
            tracing::debug!("delivered");
        }
        Disposal::Retry { tier, error } => {
            tracing::warn!(
                id = %env.id, webhook = env.webhook, attempt, outcome = outcome.label(), error = %error,
                retry_in = %humantime::format_duration(shared.policy.tiers().delay(*tier)),
                "attempt failed; retry scheduled"
            );
        }
        Disposal::Park { error, .. } => {
            let why = match outcome {
                AttemptOutcome::Gone | AttemptOutcome::ForbiddenTarget(_) => {
                    "attempt failed; not retried"
                }
                _ => "attempt failed; no retry left",
            };
            tracing::warn!(
                id = %env.id, webhook = env.webhook, attempt, outcome = outcome.label(), error = %error, "{why}"
            );
        }
        Disposal::Defer => {}
    }
}

/// Carries out the disposal.
async fn dispose(
    shared: &Shared,
    publisher: &Publisher,
    parsed: &Parsed<'_>,
    disposal: Disposal,
) -> Result<(), PublishError> {
    let attempted = parsed.received.copy(parsed.attempt);
    let republish = &shared.republish;
    match disposal {
        Disposal::Delivered => Ok(()),
        Disposal::Retry { tier, error } => {
            Box::pin(republish.retry(publisher, attempted, tier, &error)).await
        }
        Disposal::Park { reason, error } => {
            Box::pin(republish.park(publisher, attempted, reason, &error, clock::now_ms())).await
        }
        Disposal::Defer => {
            let unattempted = parsed.received.copy(parsed.received.state.attempts);
            Box::pin(republish.defer(publisher, &shared.policy, unattempted, clock::now_ms())).await
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
