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

use std::time::{Duration, Instant};

use bytes::Bytes;
use lapin::BasicProperties;
use tracing::Instrument;

use super::{
    limits::{Admission, ReceiverLimits},
    outcomes::{After, Subject, observe_health, settle_reported},
    republish::MessageCopy,
    shared::Shared,
    unsettled,
};
use crate::{
    broker::{
        outcomes::OutcomeSink,
        publisher::{PublishError, Publisher},
        retry_headers::read_retry_state,
        trace_headers::trace_context,
    },
    clock,
    domain::{
        envelope::{self, Envelope},
        limit::Feedback,
        outcome::AttemptOutcome,
        policy::{Decision, DropReason, RetryState},
        schedule::Tier,
        trace::TraceContext,
    },
};

/// Where a delivery's copies and outcome events go.
#[derive(Clone, Copy)]
pub(super) struct Publishing<'a> {
    pub(super) publisher: &'a Publisher,
    pub(super) sink: Option<&'a OutcomeSink>,
    /// The work queue the delivery came from (`P.deliveries` or one
    /// shard): a retry returns there.
    pub(super) shard: &'a str,
}

/// Phase 1: what the broker handed over, with its retry state and trace
/// context read.
struct Received<'a> {
    body: &'a Bytes,
    props: &'a BasicProperties,
    /// The work queue it came from (a retry returns there).
    shard: &'a str,
    state: RetryState,
    first_attempt_ms: i64,
    trace: Option<TraceContext>,
}

/// Phase 2: a valid envelope, about to be attempted.
struct Parsed<'a> {
    received: Received<'a>,
    env: Envelope<'a>,
    attempt: u32,
    /// Who its outcome events are about.
    subject: Subject,
}

/// Phase 3: the attempt, made.
struct Attempted {
    outcome: AttemptOutcome,
    finished_ms: i64,
    duration: Duration,
}

/// What came of admitting the delivery at its receiver.
enum Attempt {
    /// Admitted and attempted.
    Made(Attempted),
    /// The receiver had no slot for it: not attempted.
    NoSlot,
    /// The forward proxy failed before the receiver answered: not attempted.
    ProxyFailed,
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
    to: Publishing<'_>,
) -> Result<(), PublishError> {
    let now = clock::now_ms();
    let trace = trace_context(props.headers().as_ref());
    let state = match read_retry_state(props.headers().as_ref()) {
        Ok(s) => s,
        Err(why) => {
            let copy = MessageCopy {
                body,
                props,
                shard: to.shard,
                attempts: 0,
                first_attempt_ms: now,
            };
            let subject = Subject::of_body(body, trace.as_ref());
            return Box::pin(park_unattempted(
                shared,
                to,
                copy,
                &subject,
                DropReason::Malformed,
                &why.to_string(),
            ))
            .await;
        }
    };
    let received = Received {
        body,
        props,
        shard: to.shard,
        state,
        first_attempt_ms: state.first_attempt_ms.unwrap_or(now),
        trace,
    };
    if let Some(returned) = unsettled::past_limit(shared, props) {
        let why = format!("returned {returned} times: its copies could not be settled");
        let copy = received.copy(received.state.attempts);
        let subject = Subject::of_body(body, received.trace.as_ref());
        let reason = DropReason::DeliveryLimit;
        return Box::pin(park_unattempted(shared, to, copy, &subject, reason, &why)).await;
    }
    let parsed = match envelope::parse(body, shared.max_message_bytes) {
        Ok(env) => Parsed {
            attempt: received.state.this_attempt(),
            subject: Subject::of(&env, received.trace.as_ref()),
            received,
            env,
        },
        Err(rejection) => {
            let copy = received.copy(received.state.attempts);
            let subject = Subject::of_body(body, received.trace.as_ref());
            let why = rejection.to_string();
            let reason = rejection.reason();
            return Box::pin(park_unattempted(shared, to, copy, &subject, reason, &why)).await;
        }
    };
    // The span is DEBUG: at the default level it costs nothing per
    // delivery, and the WARN lines carry id, webhook and attempt
    // themselves.
    let span = tracing::debug_span!("delivery", id = %parsed.env.id, webhook = parsed.env.webhook, attempt = parsed.attempt);
    attempt_and_dispose(shared, to, &parsed)
        .instrument(span)
        .await
}

/// The attempt, what it means for the message, and carrying that out.
async fn attempt_and_dispose(
    shared: &Shared,
    to: Publishing<'_>,
    parsed: &Parsed<'_>,
) -> Result<(), PublishError> {
    let attempt = attempt(shared, parsed).await;
    let (disposal, attempted) = match &attempt {
        Attempt::Made(attempted) => {
            let disposal = decide(shared, parsed, attempted);
            report(shared, parsed, attempted, &disposal);
            let error = (!attempted.outcome.is_success())
                .then(|| attempted.outcome.describe(shared.deliverer.timeout()));
            observe_health(
                &shared.outcomes,
                &shared.receiver_health,
                to.sink,
                &parsed.subject,
                &attempted.outcome,
                error,
            );
            (disposal, Some(attempted))
        }
        Attempt::NoSlot | Attempt::ProxyFailed => (Disposal::Defer, None),
    };
    dispose(shared, to, parsed, attempted, disposal).await
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
    let outcome = match Box::pin(shared.deliverer.attempt(
        &parsed.env,
        parsed.received.body,
        parsed.attempt,
        parsed.received.trace.as_ref(),
    ))
    .await
    {
        Ok(outcome) => outcome,
        Err(proxy) => {
            // Not the receiver's: neutral for its limit, no attempt counted
            // (the proxy logs one line per burst, not per message).
            slot.finish(Feedback::OtherStatus);
            shared.metrics.proxy_errors.inc();
            tracing::debug!(error = %proxy, "deferred: the forward proxy failed");
            return Attempt::ProxyFailed;
        }
    };
    // The receiver's slot is free again before any publishing.
    slot.finish(Feedback::from(&outcome));
    let handles = shared.metrics.webhook(parsed.env.webhook);
    handles.attempts(&outcome).inc();
    let duration = started.elapsed();
    handles.attempt_duration.observe(duration.as_secs_f64());
    Attempt::Made(Attempted {
        outcome,
        finished_ms: clock::now_ms(),
        duration,
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
    // `-` when the message carried no (valid) `traceparent`.
    let trace_id = parsed
        .received
        .trace
        .as_ref()
        .map_or("-", TraceContext::trace_id);
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
                id = %env.id, webhook = env.webhook, attempt, outcome = outcome.label(), error = %error, trace_id,
                retry_in = %crate::domain::duration::format_delay(shared.policy.tiers().delay(*tier)),
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
                id = %env.id, webhook = env.webhook, attempt, outcome = outcome.label(), error = %error, trace_id, "{why}"
            );
        }
        Disposal::Defer => {}
    }
}

/// Carries out the disposal, reporting it (see [`super::outcomes`]).
async fn dispose(
    shared: &Shared,
    to: Publishing<'_>,
    parsed: &Parsed<'_>,
    attempted: Option<&Attempted>,
    disposal: Disposal,
) -> Result<(), PublishError> {
    let copy = parsed.received.copy(parsed.attempt);
    let (republish, subject, publisher) = (&shared.republish, &parsed.subject, to.publisher);
    let report = |after: After<'_>| {
        let a = attempted?;
        shared
            .outcomes
            .attempted(subject, parsed.attempt, &a.outcome, a.duration, after)
    };
    match disposal {
        Disposal::Delivered => {
            settle_reported(to.sink, report(After::Done), async { Ok(()) }).await
        }
        Disposal::Retry { tier, error } => {
            let event = report(After::Retry(&error, shared.policy.tiers().suffix(tier)));
            let retry = republish.retry(publisher, copy, tier, &error);
            Box::pin(settle_reported(to.sink, event, retry)).await
        }
        Disposal::Park { reason, error } => {
            let event = match attempted.map(|a| &a.outcome) {
                Some(AttemptOutcome::ForbiddenTarget(_)) => report(After::Refused(reason, &error)),
                _ => report(After::Park(&error, reason)),
            };
            let park = republish.park(publisher, copy, reason, &error, clock::now_ms());
            Box::pin(settle_reported(to.sink, event, park)).await
        }
        Disposal::Defer => {
            let unattempted = parsed.received.copy(parsed.received.state.attempts);
            match shared
                .policy
                .defer(unattempted.first_attempt_ms, clock::now_ms())
            {
                Decision::Retry(tier) => {
                    let event = shared
                        .outcomes
                        .deferred(subject, shared.policy.tiers().suffix(tier));
                    let defer = republish.defer(publisher, unattempted, tier);
                    Box::pin(settle_reported(to.sink, event, defer)).await
                }
                Decision::Drop(reason) => {
                    let why = "receiver saturated until the max age";
                    Box::pin(park_unattempted(
                        shared,
                        to,
                        unattempted,
                        subject,
                        reason,
                        why,
                    ))
                    .await
                }
            }
        }
    }
}

/// Parks a message that had no attempt, reporting `message.parked`.
async fn park_unattempted(
    shared: &Shared,
    to: Publishing<'_>,
    copy: MessageCopy<'_>,
    subject: &Subject,
    reason: DropReason,
    why: &str,
) -> Result<(), PublishError> {
    let event = shared.outcomes.parked(subject, reason, why);
    let park = shared
        .republish
        .park(to.publisher, copy, reason, why, clock::now_ms());
    settle_reported(to.sink, event, park).await
}

impl Received<'_> {
    /// A copy of this message recording `attempts` attempts.
    fn copy(&self, attempts: u32) -> MessageCopy<'_> {
        MessageCopy {
            body: self.body,
            props: self.props,
            shard: self.shard,
            attempts,
            first_attempt_ms: self.first_attempt_ms,
        }
    }
}
