//! [`Publisher::publish`] is the one place that publishes: every retry
//! copy, dead copy and replayed message goes through it, `mandatory`, in a
//! batch on a channel in confirm mode that carries nothing else until the
//! batch is confirmed ([`batch`]), and only an `ack` without a returned
//! message counts as success. Callers ack the original only after that.
//! Outcome events go through it too, in batches their sink gathers itself
//! ([`Publisher::publish_events_together`]: the same channels and the same
//! confirm handling), to the topic exchange `P.outcomes`, not `mandatory`
//! (an exchange nobody has bound yet drops them, which is not the worker's
//! failure).

mod batch;
mod pool;

use std::sync::Arc;

use lapin::{BasicProperties, Connection};
use tokio::sync::mpsc;

use batch::Request;
use pool::Pool;

/// Why a publish did not settle.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PublishError {
    /// The broker could not be reached or the channel closed.
    #[error("publish failed: {0}")]
    Broker(#[from] lapin::Error),
    /// The broker refused the message (`basic.nack`), e.g. a full quorum
    /// queue with `reject-publish`.
    #[error("the broker nacked the publish to '{0}'")]
    Nacked(String),
    /// No queue is bound to the routing key: the message was returned.
    #[error("the publish to '{0}' was returned unroutable ({1})")]
    Returned(String, String),
}

impl PublishError {
    /// The error of a publish whose publisher (`what`) is gone: its
    /// session ended.
    pub fn gone(what: &'static str) -> Self {
        Self::Broker(
            lapin::ErrorKind::InvalidChannelState(lapin::ChannelState::Closed, what).into(),
        )
    }
}

/// Whether an unroutable publish is a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Routing {
    /// `mandatory`: returned when no queue takes it (a failure).
    Mandatory,
    /// Dropped by the broker when no queue is bound (not a failure).
    Optional,
}

/// One message of [`Publisher::publish_events_together`].
#[derive(Debug)]
pub struct EventMessage {
    /// Its routing key.
    pub routing_key: String,
    /// Its body.
    pub body: Vec<u8>,
    /// Its properties (the publisher makes it persistent).
    pub properties: BasicProperties,
}

/// Batches of publishes on channels in confirm mode: the one way this
/// program publishes. Clones share the batches and the channels.
#[derive(Debug, Clone)]
pub struct Publisher {
    pool: Arc<Pool>,
    requests: mpsc::UnboundedSender<Request>,
}

impl Publisher {
    /// Opens a channel on `conn` in confirm mode (more, up to
    /// [`pool::CHANNELS`], when batches overlap).
    pub async fn open(conn: &Arc<Connection>) -> Result<Self, lapin::Error> {
        let pool = Pool::open(conn).await?;
        Ok(Self {
            requests: batch::spawn(pool.clone()),
            pool,
        })
    }

    /// Publishes `body` to queue `queue` through the default exchange,
    /// persistent and `mandatory`, and waits for the broker's confirm.
    /// `Ok` means the broker has taken responsibility for the message.
    pub async fn publish(
        &self,
        queue: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        self.confirmed("", queue, Routing::Mandatory, body, properties)
            .await
    }

    /// Publishes `body` to `exchange` with `routing_key`, persistent and
    /// `mandatory`, and waits for the broker's confirm (a sharded retry
    /// goes through its tier's exchange with its shard as the key).
    pub async fn publish_to(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        self.confirmed(exchange, routing_key, Routing::Mandatory, body, properties)
            .await
    }

    /// Publishes an event to `exchange` with `routing_key`, persistent, not
    /// `mandatory` (an exchange no queue is bound to drops it, which is not
    /// the publisher's failure), and waits for the broker's confirm: a
    /// batch of outcome events to `P.outcomes`, or a webhook event from
    /// `webhook-worker publish` to `P`.
    pub async fn publish_event(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        self.confirmed(exchange, routing_key, Routing::Optional, body, properties)
            .await
    }

    /// Publishes `messages` to `exchange` together, on one channel of
    /// their own, persistent and not `mandatory`, and waits for every
    /// confirm: one result per message, in order. For a caller that
    /// gathers its own batches (the outcome sink): it skips the gathering
    /// task and the task that waits for the batch's confirms, which would
    /// each cost the batch a wake-up on its way to the broker and back.
    pub async fn publish_events_together(
        &self,
        exchange: &str,
        messages: Vec<EventMessage>,
    ) -> Vec<Result<(), PublishError>> {
        let (requests, answers): (Vec<_>, Vec<_>) = messages
            .into_iter()
            .map(|m| {
                let routing = Routing::Optional;
                Request::new(exchange, m.routing_key, routing, m.body, m.properties)
            })
            .unzip();
        batch::publish_on(self.pool.clone().turn().await, requests).await;
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            results.push(answer.result().await);
        }
        results
    }

    async fn confirmed(
        &self,
        exchange: &str,
        routing_key: &str,
        routing: Routing,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        let routing_key = routing_key.to_string();
        let (request, answer) =
            Request::new(exchange, routing_key, routing, body.to_vec(), properties);
        if self.requests.send(request).is_err() {
            return Err(PublishError::gone("publisher"));
        }
        answer.result().await
    }

    /// Closes the channels (those still publishing close when dropped
    /// with the connection).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
