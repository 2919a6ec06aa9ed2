//! Prometheus metrics (contract section 7).
//!
//! Metric handles are resolved once (per webhook number on first use, per
//! outcome, tier and reason at start), so the hot path increments an atomic
//! instead of hashing label values. Every label is bounded: webhook numbers
//! are validated to 101–399 before they reach a metric, tiers come from the
//! schedule, outcomes and reasons are enums. Never a URL or an id.

use std::sync::{Arc, OnceLock};

use prometheus::{
    Encoder, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, TextEncoder,
};

use super::{receivers::ReceiverMetrics, registrar::Registrar};
use crate::domain::{
    catalog::{CATALOG, is_valid_webhook_number},
    outcome::AttemptOutcome,
    outcome_event::OutcomeKind,
    policy::DropReason,
    schedule::{Tier, Tiers},
};

/// Buckets of one attempt's duration: milliseconds up to the 10 s timeout.
pub const ATTEMPT_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Buckets of delivery latency: sub-second first attempts to the 48 h max age.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.01,
    0.05,
    0.1,
    0.5,
    1.0,
    5.0,
    30.0,
    60.0,
    180.0,
    600.0,
    3600.0,
    3.0 * 3600.0,
    6.0 * 3600.0,
    12.0 * 3600.0,
    24.0 * 3600.0,
    48.0 * 3600.0,
];

/// The handles of one webhook number.
#[derive(Debug)]
pub struct WebhookMetrics {
    attempts: [IntCounter; 6],
    /// `webhook_delivered_total{webhook}`.
    pub delivered: IntCounter,
    /// `webhook_attempt_duration_seconds{webhook}`.
    pub attempt_duration: Histogram,
}

impl WebhookMetrics {
    /// The attempts counter of one outcome.
    pub fn attempts(&self, outcome: &AttemptOutcome) -> &IntCounter {
        &self.attempts[outcome.index()]
    }
}

/// Every metric of the worker, registered in its own registry.
#[derive(Debug)]
pub struct Metrics {
    registry: prometheus::Registry,
    attempts_total: IntCounterVec,
    delivered_total: IntCounterVec,
    attempt_duration: HistogramVec,
    per_webhook: Box<[OnceLock<WebhookMetrics>]>,
    retried_total: IntCounterVec,
    dropped: [IntCounter; DropReason::ALL.len()],
    /// `webhook_delivery_latency_seconds`.
    pub delivery_latency: Histogram,
    /// `webhook_in_flight`.
    pub in_flight: IntGauge,
    /// `webhook_broker_connected`.
    pub broker_connected: IntGauge,
    /// `webhook_broker_reconnects_total`.
    pub broker_reconnects: IntCounter,
    /// `webhook_broker_node_connected{node}`: 1 for the node of `AMQP_URL`
    /// (its position, from 1) the worker is connected to. Bounded by the
    /// configured list; never a host name.
    broker_node: IntGaugeVec,
    /// `webhook_broker_connect_failures_total{node}`.
    broker_connect_failures: IntCounterVec,
    /// `webhook_settle_failures_total`: acks and nacks that could not reach
    /// the broker (the broker redelivers those messages).
    pub settle_failures: IntCounter,
    /// `webhook_publish_failures_total`: retry or dead copies that were not
    /// confirmed (the original goes back to the broker).
    pub publish_failures: IntCounter,
    /// `webhook_deferred_total`: deliveries moved to the shortest retry tier
    /// without an attempt because their host had no free slot.
    pub deferred: IntCounter,
    /// `webhook_proxy_errors_total`: deliveries deferred without an attempt
    /// because the forward proxy itself failed.
    pub proxy_errors: IntCounter,
    /// `webhook_consumer_rotations_total`: consumption moved to a fresh
    /// channel because a slow delivery blocked `multiple` acks.
    pub consumer_rotations: IntCounter,
    /// The per-receiver limits' metrics.
    pub receivers: ReceiverMetrics,
    /// `webhook_outcomes_published_total{kind}`, by [`OutcomeKind::index`].
    outcomes_published: [IntCounter; 6],
}

impl Metrics {
    /// Registers every metric; `tiers` pre-creates the retry tier labels.
    pub fn new(tiers: &Tiers) -> Arc<Self> {
        let r = Registrar::new();
        let metrics = Arc::new(Self::register(&r));
        #[cfg(target_os = "linux")]
        r.collector(
            "process",
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        );
        // Every tier and catalog number appears at zero from the start, so
        // dashboards and rate() have series before the first event.
        for (tier, _) in tiers.iter() {
            metrics.retried(tiers, tier);
        }
        for (n, _) in CATALOG {
            metrics.webhook(n);
        }
        metrics
    }

    /// The table of metrics: one line each (name, help, labels).
    #[rustfmt::skip]
    fn register(r: &Registrar) -> Self {
        let node = &["node"];
        Self {
            attempts_total: r.counters("webhook_attempts_total", "Delivery attempts by webhook number and outcome.", &["webhook", "outcome"]),
            delivered_total: r.counters("webhook_delivered_total", "Events delivered (2xx).", &["webhook"]),
            attempt_duration: r.histograms("webhook_attempt_duration_seconds", "Duration of one delivery attempt.", &ATTEMPT_BUCKETS, &["webhook"]),
            retried_total: r.counters("webhook_retried_total", "Events published to a retry tier, by tier.", &["tier"]),
            dropped: r.counter_per("webhook_dropped_total", "Events parked in the dead queue, by reason.", "reason", DropReason::ALL.map(DropReason::as_str)),
            delivery_latency: r.histogram("webhook_delivery_latency_seconds", "From created_at (else first sight) to successful delivery.", &LATENCY_BUCKETS),
            in_flight: r.gauge("webhook_in_flight", "Deliveries in flight."),
            broker_connected: r.gauge("webhook_broker_connected", "1 while connected to the broker, else 0."),
            broker_reconnects: r.counter("webhook_broker_reconnects_total", "Connections re-established after a loss."),
            broker_node: r.gauges("webhook_broker_node_connected", "1 for the broker node (position in AMQP_URL, from 1) this process is connected to.", node),
            broker_connect_failures: r.counters("webhook_broker_connect_failures_total", "Failed connection attempts, by broker node (position in AMQP_URL, from 1).", node),
            settle_failures: r.counter("webhook_settle_failures_total", "Acks or nacks that could not reach the broker; it redelivers those messages."),
            publish_failures: r.counter("webhook_publish_failures_total", "Retry or dead copies not confirmed by the broker; the original was returned to the queue."),
            deferred: r.counter("webhook_deferred_total", "Deliveries deferred to the shortest retry tier, without an attempt, because their receiver had no free slot or the forward proxy failed."),
            proxy_errors: r.counter("webhook_proxy_errors_total", "Deliveries deferred without an attempt because the forward proxy itself failed (unreachable, 407, an error before the receiver answered, a SOCKS refusal)."),
            consumer_rotations: r.counter("webhook_consumer_rotations_total", "Times consumption moved to a fresh channel because a slow delivery blocked batched acks."),
            outcomes_published: r.counter_per("webhook_outcomes_published_total", "Outcome events confirmed by the broker on P.outcomes, by kind.", "kind", OutcomeKind::ALL.map(OutcomeKind::as_str)),
            receivers: ReceiverMetrics::register(r),
            per_webhook: (0..300).map(|_| OnceLock::new()).collect(),
            registry: r.registry(),
        }
    }

    /// The handles of a webhook number (validated to 101–399).
    pub fn webhook(&self, n: u16) -> &WebhookMetrics {
        debug_assert!(is_valid_webhook_number(n.into()));
        let slot = &self.per_webhook[usize::from(n.clamp(100, 399) - 100)];
        slot.get_or_init(|| {
            let label = n.to_string();
            WebhookMetrics {
                attempts: AttemptOutcome::LABELS
                    .map(|o| self.attempts_total.with_label_values(&[label.as_str(), o])),
                delivered: self.delivered_total.with_label_values(&[&label]),
                attempt_duration: self.attempt_duration.with_label_values(&[&label]),
            }
        })
    }

    /// Creates the per-node series of a list of `count` broker nodes, at 0.
    pub fn broker_nodes(&self, count: usize) {
        for node in 0..count {
            self.broker_node_connected(node, false);
            self.broker_connect_failures
                .with_label_values(&[&(node + 1).to_string()]);
        }
    }

    /// Marks the node at `index` (from 0) connected or not.
    pub fn broker_node_connected(&self, index: usize, connected: bool) {
        self.broker_node
            .with_label_values(&[&(index + 1).to_string()])
            .set(i64::from(connected));
    }

    /// Counts a failed connect to the node at `index` (from 0).
    pub fn broker_connect_failed(&self, index: usize) {
        self.broker_connect_failures
            .with_label_values(&[&(index + 1).to_string()])
            .inc();
    }

    /// `webhook_retried_total{tier}`.
    pub fn retried(&self, tiers: &Tiers, tier: Tier) -> IntCounter {
        self.retried_total.with_label_values(&[tiers.suffix(tier)])
    }

    /// `webhook_dropped_total{reason}`.
    pub fn dropped(&self, reason: DropReason) -> &IntCounter {
        &self.dropped[reason.index()]
    }

    /// `webhook_outcomes_published_total{kind}`.
    pub fn outcomes_published(&self, kind: OutcomeKind) -> &IntCounter {
        &self.outcomes_published[kind.index()]
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::with_capacity(16 * 1024);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("text format is UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_metric_is_exported_at_start() {
        let tiers = "60s,1h"
            .parse::<crate::domain::schedule::RetrySchedule>()
            .unwrap()
            .tiers();
        let m = Metrics::new(&tiers);
        let text = m.render();
        for name in [
            "webhook_attempts_total{outcome=\"success\",webhook=\"101\"} 0",
            "webhook_attempts_total{outcome=\"forbidden_target\",webhook=\"301\"} 0",
            "webhook_delivered_total{webhook=\"201\"} 0",
            "webhook_retried_total{tier=\"60s\"} 0",
            "webhook_retried_total{tier=\"1h\"} 0",
            "webhook_dropped_total{reason=\"too_large\"} 0",
            "webhook_attempt_duration_seconds_bucket{webhook=\"110\",le=\"10\"} 0",
            "webhook_delivery_latency_seconds_bucket{le=\"172800\"} 0",
            "webhook_in_flight 0",
            "webhook_broker_connected 0",
            "webhook_broker_reconnects_total 0",
            "webhook_outcomes_published_total{kind=\"attempt.failed\"} 0",
            "webhook_outcomes_published_total{kind=\"receiver.recovered\"} 0",
        ] {
            assert!(text.contains(name), "missing {name}");
        }
        assert!(text.contains("process_resident_memory_bytes"));
        assert!(text.contains("# TYPE webhook_delivery_latency_seconds histogram"));
    }

    #[test]
    fn handles_count() {
        let m = Metrics::new(
            &"60s"
                .parse::<crate::domain::schedule::RetrySchedule>()
                .unwrap()
                .tiers(),
        );
        let w = m.webhook(150);
        w.attempts(&AttemptOutcome::Timeout).inc();
        w.delivered.inc();
        m.dropped(DropReason::Gone).inc();
        let text = m.render();
        assert!(text.contains("webhook_attempts_total{outcome=\"timeout\",webhook=\"150\"} 1"));
        assert!(text.contains("webhook_delivered_total{webhook=\"150\"} 1"));
        assert!(text.contains("webhook_dropped_total{reason=\"gone\"} 1"));
    }

    #[test]
    fn each_enum_value_finds_its_own_handle() {
        use crate::domain::limit::{DecreaseCause, ReceiverState};
        assert!(
            DropReason::ALL
                .iter()
                .enumerate()
                .all(|(i, r)| r.index() == i)
        );
        assert!(
            DecreaseCause::ALL
                .iter()
                .enumerate()
                .all(|(i, c)| c.index() == i)
        );
        assert!(
            ReceiverState::ALL
                .iter()
                .enumerate()
                .all(|(i, s)| s.index() == i)
        );
        let m = Metrics::new(
            &"60s"
                .parse::<crate::domain::schedule::RetrySchedule>()
                .unwrap()
                .tiers(),
        );
        for (i, reason) in DropReason::ALL.into_iter().enumerate() {
            for _ in 0..=i {
                m.dropped(reason).inc();
            }
        }
        m.receivers.decreased(DecreaseCause::LatencyRise).inc();
        m.receivers.in_state(ReceiverState::BackingOff).set(3);
        let text = m.render();
        for (i, reason) in DropReason::ALL.into_iter().enumerate() {
            let line = format!(
                "webhook_dropped_total{{reason=\"{}\"}} {}",
                reason.as_str(),
                i + 1
            );
            assert!(text.contains(&line), "missing {line}");
        }
        assert!(text.contains("webhook_receiver_limit_decreases_total{cause=\"latency_rise\"} 1"));
        assert!(text.contains("webhook_receiver_limit_decreases_total{cause=\"overdue\"} 0"));
        assert!(text.contains("webhook_receivers{state=\"backing_off\"} 3"));
        assert!(text.contains("webhook_receivers{state=\"stalled\"} 0"));
    }
}
