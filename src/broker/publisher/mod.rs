//! [`Publisher::publish`] is the one place that publishes: every retry
//! copy, dead copy and replayed message goes through it, `mandatory`, on a
//! channel in confirm mode that carries no other publish until it is
//! confirmed ([`pool`]), and only an `ack` without a returned message
//! counts as success. Callers ack the original only after that. Outcome
//! events go through it too ([`Publisher::publish_event`]), to the topic
//! exchange `P.outcomes`, not `mandatory` (an exchange nobody has bound
//! yet drops them, which is not the worker's failure).

mod pool;

use std::sync::Arc;

use lapin::{BasicProperties, Confirmation, Connection, options::BasicPublishOptions};

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

/// Whether an unroutable publish is a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Routing {
    /// `mandatory`: returned when no queue takes it (a failure).
    Mandatory,
    /// Dropped by the broker when no queue is bound (not a failure).
    Optional,
}

/// Channels in confirm mode, one per publish in flight: the one way this
/// program publishes. Clones share the channels.
#[derive(Debug, Clone)]
pub struct Publisher {
    pool: Arc<Pool>,
}

impl Publisher {
    /// Opens a channel on `conn` in confirm mode (more when publishes
    /// overlap).
    pub async fn open(conn: &Arc<Connection>) -> Result<Self, lapin::Error> {
        let pool = Pool::open(conn).await?;
        Ok(Self {
            pool: Arc::new(pool),
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

    /// Publishes an outcome event message to `exchange` with `routing_key`,
    /// persistent, not `mandatory`, and waits for the broker's confirm.
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
        let lease = self.pool.lease().await?;
        let confirm = lease
            .channel()
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: routing == Routing::Mandatory,
                    immediate: false,
                },
                body,
                properties.with_delivery_mode(2),
            )
            .await?
            .await?;
        let to = || {
            if exchange.is_empty() {
                routing_key.to_string()
            } else {
                exchange.to_string()
            }
        };
        match confirm {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => Err(
                PublishError::Returned(to(), returned.reply_text.to_string()),
            ),
            Confirmation::Nack(None) => Err(PublishError::Nacked(to())),
            Confirmation::NotRequested => unreachable!("the channel is in confirm mode"),
        }
    }

    /// Closes the channels (those still publishing close when dropped
    /// with the connection).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
