//! Walking `P.dead` without disturbing it.
//!
//! A [`Scan`] consumes `P.dead` (`basic.consume`, manual acks) and holds
//! what it receives unacked: a message it does not [`take`](Scan::take)
//! goes back to `P.dead` when the scan ends, in its order and with the
//! time it had left; a quorum queue only adds its `x-delivery-count`
//! annotation.
//!
//! Why a consumer and not `basic.get`: the broker puts back what a closed
//! channel held, which is also what a scan killed midway leaves. A quorum
//! queue returns the messages of one consumer in the order it delivered
//! them, ahead of what it still holds; but each `basic.get` is a consumer
//! of its own, and those come back in the order of their consumer tags
//! (measured on RabbitMQ 3.10, 4.0 and 4.3: ten messages got, the channel
//! closed, came back 0, 9, 1, 2, …, 8). A classic queue puts every
//! message back at its old place either way. So a scan holds everything
//! under one consumer, and a kill at any point leaves `P.dead` whole and
//! in order (`tests/it/dead_kill.rs`).
//!
//! The consumer's prefetch is the number of messages the scan will look
//! at (the queue's depth when it started, or the caller's bound), so the
//! broker sends those and no more. A prefetch is at most 65 535: a longer
//! scan asks for everything (prefetch 0), and holds in memory what it has
//! received but not yet looked at — for a `dead replay --rate` of a deep
//! queue, up to the selection's bodies.
//!
//! A scan walks the whole queue as it was when it started, even when the
//! command needs fewer (a `--limit`, a pass out of time), so everything
//! it held goes back together, in order. It looks at no more messages than
//! the queue held when it started, so messages parked while it runs (a
//! replayed message failing again) are not looked at; they land behind
//! the returned ones.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use futures_lite::StreamExt;
use lapin::{
    Channel, Connection, Consumer,
    message::Delivery,
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
        BasicQosOptions, QueueDeclareOptions,
    },
    types::FieldTable,
};

use super::parked::Parked;

/// One walk over `P.dead` on a channel of its own.
pub(super) struct Scan {
    channel: Channel,
    /// A second channel, to see the queue's depth while `channel` holds
    /// messages and after it closed.
    probe: Channel,
    /// `None` when there is nothing to look at.
    consumer: Option<Consumer>,
    queue: String,
    left: u64,
    /// Delivery tags held (looked at, not taken).
    held: BTreeSet<u64>,
    /// Ready messages when the scan started.
    depth: u64,
    taken: u64,
}

/// Longest wait, after a scan, for the broker to put its messages back.
const SETTLE: Duration = Duration::from_secs(3);

/// How long the consumer may be silent before the scan asks whether
/// anything is left to come: twice silent with nothing ready in the queue
/// (expired, or held by another command) ends the walk.
const QUIET: Duration = Duration::from_millis(500);

/// The consumer tag of a scan (one per channel).
const TAG: &str = "webhook-worker dead";

/// The prefetch that lets the broker send `left` messages: `0` (no limit)
/// past what a prefetch can say.
fn prefetch(left: u64) -> u16 {
    u16::try_from(left).unwrap_or(0)
}

impl Scan {
    /// Opens a scan of at most `bound` messages (and at most what the
    /// queue holds now).
    pub(super) async fn open(
        conn: &Connection,
        queue: &str,
        bound: Option<u64>,
    ) -> Result<Self, lapin::Error> {
        let channel = crate::broker::channel::open(conn).await?;
        let probe = crate::broker::channel::open(conn).await?;
        let depth = u64::from(depth(&channel, queue).await?);
        let left = bound.map_or(depth, |b| b.min(depth));
        let consumer = match left {
            0 => None,
            _ => {
                let qos = BasicQosOptions { global: false };
                channel.basic_qos(prefetch(left), qos).await?;
                let manual_acks = BasicConsumeOptions::default();
                let args = FieldTable::default();
                let c = channel.basic_consume(queue.into(), TAG.into(), manual_acks, args);
                Some(c.await?)
            }
        };
        Ok(Self {
            channel,
            probe,
            consumer,
            queue: queue.to_string(),
            left,
            held: BTreeSet::new(),
            depth,
            taken: 0,
        })
    }

    /// How many more messages this scan will look at, at most.
    pub(super) fn left(&self) -> u64 {
        self.left
    }

    /// The next message, held unacked, with its summary; `None` at the end.
    pub(super) async fn next(&mut self) -> Result<Option<(Delivery, Parked)>, lapin::Error> {
        Ok(self.get().await?.map(|d| {
            let parked = Parked::read(&d.data, &d.properties);
            (d, parked)
        }))
    }

    /// The next message, held unacked.
    async fn get(&mut self) -> Result<Option<Delivery>, lapin::Error> {
        let Some(consumer) = self.consumer.as_mut().filter(|_| self.left > 0) else {
            return Ok(None);
        };
        let mut silent_and_empty = 0;
        let got = loop {
            match tokio::time::timeout(QUIET, consumer.next()).await {
                Ok(next) => break next.transpose()?,
                Err(_) if depth(&self.probe, &self.queue).await? > 0 => silent_and_empty = 0,
                Err(_) if silent_and_empty == 1 => break None,
                Err(_) => silent_and_empty += 1,
            }
        };
        self.left = match &got {
            Some(d) => {
                self.held.insert(d.delivery_tag);
                self.left - 1
            }
            // Fewer than the queue held at the start: the rest expired or
            // another command holds them (or the broker cancelled us).
            None => 0,
        };
        Ok(got)
    }

    /// Removes a held message from `P.dead` for good (after its copy, if
    /// any, is confirmed).
    pub(super) async fn take(&mut self, delivery: &Delivery) -> Result<(), lapin::Error> {
        self.channel
            .basic_ack(delivery.delivery_tag, BasicAckOptions::default())
            .await?;
        self.held.remove(&delivery.delivery_tag);
        self.taken += 1;
        Ok(())
    }

    /// Ends the scan: walks (and holds) the rest of the queue as it was at
    /// the start, cancels the consumer, returns everything it held with
    /// one `basic.nack(multiple, requeue)` (one step for the broker, so
    /// nothing is half returned when the command is killed; and RabbitMQ
    /// 4.3 counts no nack toward a delivery limit, where a closed channel's
    /// return still counts), then closes the channel. A quorum queue puts
    /// them back a moment later; the scan waits (at most [`SETTLE`]) until
    /// they are ready again, so the next scan or command sees the whole
    /// queue.
    pub(super) async fn close(mut self) {
        while let Ok(Some(_)) = self.get().await {}
        if let Some(consumer) = self.consumer.take() {
            let cancel = BasicCancelOptions::default();
            let _ = self.channel.basic_cancel(consumer.tag(), cancel).await;
        }
        // Tags taken were acked already: every unacked tag up to the last
        // held is one held.
        if let Some(last) = self.held.last() {
            let requeue = BasicNackOptions {
                multiple: true,
                requeue: true,
            };
            let _ = self.channel.basic_nack(*last, requeue).await;
        }
        let _ = self.channel.close(200, "scan over".into()).await;
        let back = self.depth.saturating_sub(self.taken);
        let deadline = Instant::now() + SETTLE;
        while Instant::now() < deadline {
            match depth(&self.probe, &self.queue).await {
                Ok(now) if u64::from(now) < back => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                _ => break,
            }
        }
        let _ = self.probe.close(200, "scan over".into()).await;
    }
}

/// Messages ready in `queue` right now.
pub(super) async fn depth(channel: &Channel, queue: &str) -> Result<u32, lapin::Error> {
    let q = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(q.message_count())
}

#[cfg(test)]
mod tests {
    use super::prefetch;

    #[test]
    fn the_prefetch_is_the_scan_s_length_or_no_limit_past_what_it_can_say() {
        assert_eq!(prefetch(1), 1);
        assert_eq!(prefetch(65_535), 65_535);
        assert_eq!(prefetch(65_536), 0);
        assert_eq!(prefetch(10_000_000), 0);
    }
}
