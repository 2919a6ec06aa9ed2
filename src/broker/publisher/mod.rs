//! [`Publisher::publish`] is the one place that publishes: every retry
//! copy, dead copy and replayed message goes through it, `mandatory`, in a
//! batch on a channel in confirm mode that carries nothing else until the
//! batch is confirmed ([`batch`]), and only an `ack` without a returned
//! message counts as success. Callers ack the original only after that. Outcome
//! events go through it too ([`Publisher::publish_event`]), to the topic
//! exchange `P.outcomes`, not `mandatory` (an exchange nobody has bound
//! yet drops them, which is not the worker's failure).

mod batch;
mod pool;

use std::sync::Arc;

use lapin::{BasicProperties, Connection};
use tokio::sync::{mpsc, oneshot};

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

    async fn confirmed(
        &self,
        exchange: &str,
        routing_key: &str,
        routing: Routing,
        body: &[u8],
        properties: BasicProperties,
    ) -> Result<(), PublishError> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            exchange: exchange.to_string(),
            routing_key: routing_key.to_string(),
            routing,
            body: body.to_vec(),
            properties,
            reply,
        };
        if self.requests.send(request).is_err() {
            return Err(PublishError::gone("publisher"));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(PublishError::gone("publisher")))
    }

    /// Closes the channels (those still publishing close when dropped
    /// with the connection).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
