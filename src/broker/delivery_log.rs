//! Reading the delivery log `P.log` over AMQP 0.9.1, without changing it.
//!
//! A stream is read by a consumer that says where to start
//! (`x-stream-offset`: here a timestamp, so `--since` skips what is older
//! without reading it), with a prefetch (streams need `basic.qos`) and
//! manual acks, which only give the consumer more credit: a stream keeps
//! every message until its retention drops it, whoever has read it.
//!
//! A stream consumer never ends by itself; [`LogReader::next`] reports
//! [`Read::Idle`] when nothing came for a while, which is how a one-shot
//! read knows it reached the end.

use std::time::Duration;

use futures_lite::StreamExt;
use lapin::{
    Channel, Connection, Consumer,
    options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions},
    types::{AMQPValue, FieldTable},
};

/// Credit of the consumer: messages the broker may send ahead of the acks.
pub const PREFETCH: u16 = 2000;

/// Acks are sent for this many messages at once (`multiple`).
const ACK_EVERY: u64 = 500;

/// One step of reading.
#[derive(Debug)]
pub enum Read {
    /// One message's body (one or more events, one per line).
    Message(Vec<u8>),
    /// Nothing arrived within the idle time.
    Idle,
}

/// A consumer on `P.log`.
pub struct LogReader {
    channel: Channel,
    consumer: Consumer,
    unacked: u64,
    last_tag: u64,
}

impl LogReader {
    /// Starts reading `stream` at the first chunk published at or after
    /// `start_ms` (unix ms; the broker's granularity is one second and one
    /// chunk, so a little earlier may come too).
    pub async fn open(
        conn: &Connection,
        stream: &str,
        start_ms: i64,
    ) -> Result<Self, lapin::Error> {
        let channel = crate::broker::channel::open(conn).await?;
        channel
            .basic_qos(PREFETCH, BasicQosOptions { global: false })
            .await?;
        let mut args = FieldTable::default();
        let secs = u64::try_from(start_ms.max(0) / 1000).unwrap_or(0);
        args.insert("x-stream-offset".into(), AMQPValue::Timestamp(secs));
        let consumer = channel
            .basic_consume(
                stream.into(),
                "webhook-worker log".into(),
                BasicConsumeOptions::default(),
                args,
            )
            .await?;
        Ok(Self {
            channel,
            consumer,
            unacked: 0,
            last_tag: 0,
        })
    }

    /// The next message, or [`Read::Idle`] when none came within `idle`
    /// (`None`: wait as long as it takes).
    pub async fn next(&mut self, idle: Option<Duration>) -> Result<Read, lapin::Error> {
        let next = match idle {
            Some(idle) => match tokio::time::timeout(idle, self.consumer.next()).await {
                Ok(next) => next,
                Err(_) => return Ok(Read::Idle),
            },
            None => self.consumer.next().await,
        };
        let delivery = match next {
            Some(d) => d?,
            None => return Ok(Read::Idle),
        };
        self.last_tag = delivery.delivery_tag;
        self.unacked += 1;
        if self.unacked >= ACK_EVERY {
            self.ack().await?;
        }
        Ok(Read::Message(delivery.data))
    }

    async fn ack(&mut self) -> Result<(), lapin::Error> {
        if self.unacked > 0 {
            self.channel
                .basic_ack(self.last_tag, BasicAckOptions { multiple: true })
                .await?;
            self.unacked = 0;
        }
        Ok(())
    }

    /// Closes the consumer's channel.
    pub async fn close(mut self) {
        let _ = self.ack().await;
        let _ = self.channel.close(200, "read".into()).await;
    }
}
