//! The broker edge: connecting (with backoff, forever) and publishing with
//! confirms.
//!
//! [`Publisher::publish`] is the one place that publishes: every retry copy,
//! dead copy and replayed message goes through it, `mandatory`, on a channel
//! in confirm mode, and only an `ack` without a returned message counts as
//! success. Callers ack the original only after that.

use std::{str::FromStr, time::Duration};

use backon::{BackoffBuilder, ExponentialBuilder};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties,
    options::{BasicPublishOptions, ConfirmSelectOptions},
    uri::AMQPUri,
};
use tokio_util::sync::CancellationToken;

/// Heartbeat asked of the broker unless the URL sets one: a dead peer is
/// noticed within about two intervals instead of the broker's 60 s default.
pub const DEFAULT_HEARTBEAT_SECS: u16 = 10;

/// Longest wait between two connection attempts.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(30);

/// Why a publish did not settle.
#[derive(Debug, thiserror::Error)]
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

/// Largest AMQP frame the worker asks for, unless the URL sets
/// `frame_max`. lapin keeps 32 frames of read and of write buffer per
/// connection, zero-filled: at RabbitMQ's default 128 KiB that is 8 MiB of
/// resident memory; at 16 KiB, 1 MiB. Bodies larger than a frame are simply
/// sent in more frames.
pub const DEFAULT_FRAME_MAX: u32 = 16 * 1024;

/// Parses the broker URL, adding the default heartbeat and frame size when
/// it has none.
pub fn parse_url(url: &str) -> Result<AMQPUri, String> {
    let mut uri = AMQPUri::from_str(url).map_err(|e| format!("invalid AMQP_URL: {e}"))?;
    if uri.query.heartbeat.is_none() {
        uri.query.heartbeat = Some(DEFAULT_HEARTBEAT_SECS);
    }
    if uri.query.frame_max.is_none() {
        uri.query.frame_max = Some(DEFAULT_FRAME_MAX);
    }
    if uri.query.connection_timeout.is_none() {
        uri.query.connection_timeout = Some(10_000);
    }
    Ok(uri)
}

/// The URL as it may appear in a log: no password.
pub fn redacted(uri: &AMQPUri) -> String {
    let scheme = format!("{:?}", uri.scheme).to_lowercase();
    format!(
        "{scheme}://{}@{}:{}/{}",
        uri.authority.userinfo.username, uri.authority.host, uri.authority.port, uri.vhost
    )
}

/// The reconnect backoff: exponential from 100 ms, with jitter so a fleet
/// restarted together does not reconnect in lockstep. backon's jitter adds up
/// to 100 % of the delay, so the base is capped at half of 30 s.
pub fn reconnect_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(MAX_RECONNECT_DELAY / 2)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

/// Connects, retrying with backoff until it succeeds or `cancel` fires
/// (then `None`). Each failure is logged; none is fatal.
pub async fn connect(uri: &AMQPUri, name: &str, cancel: &CancellationToken) -> Option<Connection> {
    let mut backoff = reconnect_backoff();
    let mut failures = 0u32;
    loop {
        let props = ConnectionProperties::default().with_connection_name(name.into());
        let attempt = tokio::select! {
            r = Connection::connect_uri(uri.clone(), props) => r,
            () = cancel.cancelled() => return None,
        };
        match attempt {
            Ok(conn) => {
                if failures > 0 {
                    tracing::info!(failures, broker = %redacted(uri), "connected to the broker");
                }
                return Some(conn);
            }
            Err(e) => {
                failures += 1;
                let wait = backoff.next().unwrap_or(MAX_RECONNECT_DELAY);
                tracing::warn!(
                    error = %e, failures, retry_in_ms = wait.as_millis() as u64, broker = %redacted(uri),
                    "cannot reach the broker; retrying"
                );
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = cancel.cancelled() => return None,
                }
            }
        }
    }
}

/// A channel in confirm mode: the one way this program publishes.
#[derive(Debug, Clone)]
pub struct Publisher {
    channel: Channel,
}

impl Publisher {
    /// Opens a channel on `conn` and puts it in confirm mode.
    pub async fn open(conn: &Connection) -> Result<Self, lapin::Error> {
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self { channel })
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
        let confirm = self
            .channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions {
                    mandatory: true,
                    immediate: false,
                },
                body,
                properties.with_delivery_mode(2),
            )
            .await?
            .await?;
        match confirm {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => Err(
                PublishError::Returned(queue.to_string(), returned.reply_text.to_string()),
            ),
            Confirmation::Nack(None) => Err(PublishError::Nacked(queue.to_string())),
            Confirmation::NotRequested => unreachable!("the channel is in confirm mode"),
        }
    }

    /// Closes the channel.
    pub async fn close(&self) {
        let _ = self.channel.close(200, "bye".into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_gets_a_heartbeat_and_is_redacted() {
        let uri = parse_url("amqp://user:pw@broker:5673/vh").unwrap();
        assert_eq!(uri.query.heartbeat, Some(DEFAULT_HEARTBEAT_SECS));
        assert_eq!(uri.query.frame_max, Some(DEFAULT_FRAME_MAX));
        let shown = redacted(&uri);
        assert!(!shown.contains("pw"), "{shown}");
        assert!(shown.contains("broker:5673"), "{shown}");
        assert_eq!(
            parse_url("amqp://h/%2f?heartbeat=3")
                .unwrap()
                .query
                .heartbeat,
            Some(3)
        );
        assert!(parse_url("http://nope").is_err());
    }

    #[test]
    fn backoff_grows_to_the_cap() {
        let delays: Vec<_> = reconnect_backoff().take(20).collect();
        assert!(
            delays.iter().all(|d| *d <= MAX_RECONNECT_DELAY),
            "{delays:?}"
        );
        assert!(delays[15] >= MAX_RECONNECT_DELAY / 2, "{delays:?}");
        assert!(delays[0] < Duration::from_secs(1), "{delays:?}");
    }
}
