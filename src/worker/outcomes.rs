//! Outcome events (contract section 8): what each delivery reports to
//! `P.outcomes`, built from the envelope's id and numbers, the receiver's
//! `scheme://host:port` and the attempt's outcome — never a body, a header
//! value, a secret or a full URL.
//!
//! An event about a message is published *with* its disposal: the retry
//! or dead copy and the event are confirmed concurrently, and the message
//! is acked only when both are ([`settle_reported`]). A crash in
//! between redelivers the message, which reports again: the log may hold
//! duplicates, never miss a settled attempt.

use std::{future::Future, sync::Arc, time::Duration};

use bytes::Bytes;

use super::{limits::ReceiverLimits, receiver_health::ReceiverHealth};
use crate::{
    broker::{
        outcomes::OutcomeSink,
        publisher::{PublishError, Publisher},
        topology::Topology,
    },
    clock::now_ms,
    domain::{
        envelope::{self, Envelope},
        outcome::AttemptOutcome,
        outcome_event::{Next, OutcomeEvent, OutcomeKind, OutcomesMode},
        policy::DropReason,
        receiver_health::HealthChange,
        trace::TraceContext,
    },
    telemetry::metrics::Metrics,
};

/// The outcome settings of the process.
#[derive(Debug)]
pub(crate) struct Outcomes {
    mode: OutcomesMode,
    exchange: String,
    /// This host's name, in every event.
    worker: Option<String>,
    metrics: Arc<Metrics>,
}

/// Who an event is about: what is known of the message.
#[derive(Debug, Clone, Default)]
pub(crate) struct Subject {
    id: Option<String>,
    webhook: Option<i64>,
    event: Option<String>,
    site_id: Option<i64>,
    receiver: Option<String>,
    trace_id: Option<String>,
}

impl Subject {
    /// The subject of a valid envelope.
    pub(crate) fn of(env: &Envelope<'_>, trace: Option<&TraceContext>) -> Self {
        Self {
            id: Some(env.id.to_string()),
            webhook: Some(env.webhook.into()),
            event: Some(env.event.to_string()),
            site_id: env.site_id,
            receiver: Some(ReceiverLimits::key(&env.url)),
            trace_id: trace.map(|t| t.trace_id().to_string()),
        }
    }

    /// What can be read of a body that did not parse (id, webhook).
    pub(crate) fn of_body(body: &Bytes, trace: Option<&TraceContext>) -> Self {
        let (id, webhook) = envelope::identify(body);
        Self {
            id,
            webhook,
            trace_id: trace.map(|t| t.trace_id().to_string()),
            ..Self::default()
        }
    }
}

/// What follows an attempt, for its event.
pub(crate) enum After<'a> {
    /// Delivered.
    Done,
    /// Failed (the error), retried in the tier with this suffix.
    Retry(&'a str, String),
    /// Failed (the error), parked.
    Park(&'a str, DropReason),
    /// A `forbidden_target` outcome: parked without reaching the receiver.
    Refused(DropReason, &'a str),
}

impl Outcomes {
    pub(crate) fn new(mode: OutcomesMode, topology: &Topology, metrics: Arc<Metrics>) -> Self {
        Self {
            mode,
            exchange: topology.outcomes().to_string(),
            worker: host_name(),
            metrics,
        }
    }

    /// The sink of a session's publisher; none when outcomes are off.
    pub(crate) fn sink(&self, publisher: &Publisher) -> Option<OutcomeSink> {
        if self.mode == OutcomesMode::Off {
            return None;
        }
        let metrics = self.metrics.clone();
        let (sink, _task) = OutcomeSink::spawn(
            publisher.clone(),
            self.exchange.clone(),
            Arc::new(move |kind, n| metrics.outcomes_published(kind).inc_by(n)),
        );
        Some(sink)
    }

    fn event(&self, kind: OutcomeKind, subject: &Subject) -> Option<OutcomeEvent> {
        if !self.mode.emits(kind) {
            return None;
        }
        let mut e = OutcomeEvent::new(kind, now_ms());
        e.id = subject.id.clone();
        e.webhook = subject.webhook;
        e.event = subject.event.clone();
        e.site_id = subject.site_id;
        e.receiver = subject.receiver.clone();
        e.trace_id = subject.trace_id.clone();
        e.worker = self.worker.clone();
        Some(e)
    }

    /// The event of an attempt and what follows it.
    pub(crate) fn attempted(
        &self,
        subject: &Subject,
        attempt: u32,
        outcome: &AttemptOutcome,
        duration: Duration,
        after: After<'_>,
    ) -> Option<OutcomeEvent> {
        let kind = match after {
            After::Done => OutcomeKind::AttemptSucceeded,
            After::Refused(..) => OutcomeKind::MessageParked,
            After::Retry(..) | After::Park(..) => OutcomeKind::AttemptFailed,
        };
        let mut e = self.event(kind, subject)?;
        e.outcome = Some(outcome.label().to_string());
        match after {
            After::Refused(reason, error) => {
                e.next = Some(Next::Park);
                e.reason = Some(reason.as_str().to_string());
                e.error = Some(error.to_string());
                return Some(e);
            }
            After::Done => e.next = Some(Next::Done),
            After::Retry(error, tier) => {
                e.next = Some(Next::Retry);
                e.tier = Some(tier);
                e.error = Some(error.to_string());
            }
            After::Park(error, reason) => {
                e.next = Some(Next::Park);
                e.reason = Some(reason.as_str().to_string());
                e.error = Some(error.to_string());
            }
        }
        e.attempt = Some(attempt);
        e.status = status(outcome);
        e.duration_ms = Some(duration.as_millis() as u64);
        Some(e)
    }

    /// `message.parked`: parked without an attempt.
    pub(crate) fn parked(
        &self,
        subject: &Subject,
        reason: DropReason,
        error: &str,
    ) -> Option<OutcomeEvent> {
        let mut e = self.event(OutcomeKind::MessageParked, subject)?;
        e.next = Some(Next::Park);
        e.reason = Some(reason.as_str().to_string());
        e.error = Some(error.to_string());
        Some(e)
    }

    /// `message.deferred`: sent to `tier` without an attempt.
    pub(crate) fn deferred(&self, subject: &Subject, tier: String) -> Option<OutcomeEvent> {
        let mut e = self.event(OutcomeKind::MessageDeferred, subject)?;
        e.next = Some(Next::Retry);
        e.tier = Some(tier);
        Some(e)
    }
}

/// Feeds an attempt's outcome to its receiver's health; a state change is
/// logged and published (not waited for: it settles no message).
pub(super) fn observe_health(
    outcomes: &Outcomes,
    health: &ReceiverHealth,
    sink: Option<&OutcomeSink>,
    subject: &Subject,
    outcome: &AttemptOutcome,
    error: Option<String>,
) {
    let Some(receiver) = subject.receiver.as_deref() else {
        return;
    };
    let Some(change) = health.observe(receiver, outcome, now_ms()) else {
        return;
    };
    let kind = match change {
        HealthChange::Failing(n) => {
            tracing::warn!(
                receiver,
                failures_in_a_row = n,
                outcome = outcome.label(),
                "receiver failing"
            );
            OutcomeKind::ReceiverFailing
        }
        HealthChange::Recovered => {
            tracing::info!(receiver, "receiver recovered");
            OutcomeKind::ReceiverRecovered
        }
    };
    let receiver_only = Subject {
        receiver: subject.receiver.clone(),
        ..Subject::default()
    };
    let (Some(sink), Some(mut e)) = (sink, outcomes.event(kind, &receiver_only)) else {
        return;
    };
    e.outcome = Some(outcome.label().to_string());
    e.status = status(outcome);
    if let HealthChange::Failing(n) = change {
        e.error = Some(format!(
            "{n} failed attempts in a row; last: {}",
            error.unwrap_or_default()
        ));
    }
    sink.publish_unwaited(e);
}

/// Carries out `copy` (a retry or dead copy, or nothing for a delivered
/// message) and publishes `event`, concurrently; `Ok` — the message may be
/// acked — only when the broker confirmed both.
pub(super) async fn settle_reported(
    sink: Option<&OutcomeSink>,
    event: Option<OutcomeEvent>,
    copy: impl Future<Output = Result<(), PublishError>>,
) -> Result<(), PublishError> {
    let (Some(sink), Some(event)) = (sink, event) else {
        return copy.await;
    };
    let (reported, copied) = tokio::join!(sink.publish(event), copy);
    reported.and(copied)
}

/// The HTTP status an outcome carries.
fn status(outcome: &AttemptOutcome) -> Option<u16> {
    match outcome {
        AttemptOutcome::Success { status } | AttemptOutcome::HttpError { status, .. } => {
            Some(*status)
        }
        AttemptOutcome::Gone => Some(410),
        _ => None,
    }
}

/// This host's name (the kernel's, as containers set it).
fn host_name() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}
