//! Walking `P.dead` without disturbing it.
//!
//! A [`Scan`] takes messages with `basic.get` and holds them unacked: a
//! message it does not [`take`](Scan::take) goes back to `P.dead` when
//! the scan's channel closes, with its original expiry. Where it goes
//! back differs (`tests/it/dead_ops.rs` measures both): a classic queue puts
//! it at its old place; a quorum queue (RabbitMQ 3.10) puts the returned
//! messages, in their order, *behind* every message still in the queue.
//! So a scan always walks the whole queue as it was when it started, even
//! when the command needs fewer (a `--limit`, a pass out of time): with
//! every one of those messages held when the channel closes, they all go
//! back in their order, whatever the queue type. What a command does not
//! select thus stays parked, in its order, with the time it had left; a
//! quorum queue only adds its `x-delivery-count` annotation. (A message
//! parked while a scan runs lands ahead of the returned ones.)
//!
//! A scan looks at no more messages than the queue held when it started,
//! so messages parked while it runs (a replayed message failing again)
//! are not looked at.

use std::time::{Duration, Instant};

use lapin::{
    Channel, Connection,
    message::Delivery,
    options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, QueueDeclareOptions},
    types::FieldTable,
};

use super::parked::Parked;

/// One walk over `P.dead` on a channel of its own.
pub(super) struct Scan {
    channel: Channel,
    /// A second channel, to see the queue's depth after `channel` closed.
    probe: Channel,
    queue: String,
    left: u64,
    /// Delivery tags held (looked at, not taken), in queue order.
    held: Vec<u64>,
    /// Ready messages when the scan started.
    depth: u64,
    taken: u64,
}

/// Longest wait, after a scan, for the broker to put its messages back.
const SETTLE: Duration = Duration::from_secs(3);

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
        Ok(Self {
            channel,
            probe,
            queue: queue.to_string(),
            left: bound.map_or(depth, |b| b.min(depth)),
            held: Vec::new(),
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
        if self.left == 0 {
            return Ok(None);
        }
        let got = self
            .channel
            .basic_get(
                self.queue.as_str().into(),
                BasicGetOptions { no_ack: false },
            )
            .await?;
        self.left = match &got {
            Some(m) => {
                self.held.push(m.delivery.delivery_tag);
                self.left - 1
            }
            None => 0,
        };
        Ok(got.map(|m| m.delivery))
    }

    /// Removes a held message from `P.dead` for good (after its copy, if
    /// any, is confirmed).
    pub(super) async fn take(&mut self, delivery: &Delivery) -> Result<(), lapin::Error> {
        self.channel
            .basic_ack(delivery.delivery_tag, BasicAckOptions::default())
            .await?;
        self.held.retain(|t| *t != delivery.delivery_tag);
        self.taken += 1;
        Ok(())
    }

    /// Ends the scan: walks (and holds) the rest of the queue as it was at
    /// the start, then closes the channel, so every message not taken goes
    /// back to `P.dead` in its order (see the module doc). A quorum queue
    /// puts them back a moment after the channel closed; the scan waits
    /// (at most [`SETTLE`]) until they are ready again, so the next scan or
    /// command sees the whole queue.
    pub(super) async fn close(mut self) {
        while let Ok(Some(_)) = self.get().await {}
        // Returned one by one, in queue order: closing the channel with
        // them unacked returns them too, but a quorum queue then puts them
        // back in an order of its own (measured on 3.10, 4.0 and 4.3 with
        // ten held; tests/it/dead_kill.rs). That is also what a scan killed
        // midway leaves: every message back, none twice, but those it held
        // possibly reordered in a quorum `P.dead` (a classic one keeps its
        // order). No walk with `basic.get` avoids it: a returned message
        // goes back to the front, so a walk holds all it passed.
        for tag in std::mem::take(&mut self.held) {
            let requeue = BasicNackOptions {
                multiple: false,
                requeue: true,
            };
            if self.channel.basic_nack(tag, requeue).await.is_err() {
                break;
            }
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
