//! What every stage shares: built once at start, read by every session,
//! lane and delivery.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::{
    limits::ReceiverLimits,
    outcomes::Outcomes,
    receiver_health::ReceiverHealth,
    republish::{Destinations, Republisher},
};
use crate::{
    broker::topology::Topology,
    config::Config,
    domain::policy::RetryPolicy,
    http::client::Deliverer,
    telemetry::{health::Health, metrics::Metrics},
};

/// The worker's state, shared by its stages.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) topology: Topology,
    pub(super) policy: RetryPolicy,
    pub(super) deliverer: Deliverer,
    pub(super) republish: Republisher,
    pub(super) outcomes: Outcomes,
    pub(super) metrics: Arc<Metrics>,
    pub(super) health: Arc<Health>,
    pub(super) limits: Arc<ReceiverLimits>,
    pub(super) receiver_health: Arc<ReceiverHealth>,
    /// The process's delivery slots (`WEBHOOK_CONCURRENCY`), across every
    /// lane of every session.
    pub(super) slots: Arc<Semaphore>,
    pub(super) concurrency: u16,
    pub(super) max_message_bytes: usize,
}

impl Shared {
    /// Builds the shared state from the configuration.
    pub(super) fn new(
        config: &Config,
        deliverer: Deliverer,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        limits: Arc<ReceiverLimits>,
        receiver_health: Arc<ReceiverHealth>,
    ) -> Self {
        let topology = config.topology();
        let republish = Republisher::new(Destinations::new(&topology, &metrics), metrics.clone());
        Self {
            outcomes: Outcomes::new(config.outcomes.outcomes, &topology, metrics.clone()),
            policy: RetryPolicy::new(&config.topology.retry_schedule, config.retry.max_age),
            topology,
            deliverer,
            republish,
            metrics,
            health,
            limits,
            receiver_health,
            slots: Arc::new(Semaphore::new(config.delivery.concurrency.into())),
            concurrency: config.delivery.concurrency,
            max_message_bytes: config.delivery.max_message_bytes as usize,
        }
    }
}
