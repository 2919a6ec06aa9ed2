//! Walking `P.dead` without disturbing it.
//!
//! A [`Scan`] takes messages with `basic.get` and holds them unacked: a
//! message it does not [`take`](Scan::take) goes back to `P.dead` when
//! the scan's channel closes. RabbitMQ puts a returned message back at its
//! original place (classic queues) or ahead of everything not yet looked
//! at, in the order returned (quorum queues), and keeps its original
//! expiry either way (`tests/dead_ops.rs` measures both). So what a
//! command does not select stays parked, in its order, with the time it
//! had left; a quorum queue only adds its `x-delivery-count` annotation.
//!
//! A scan looks at no more messages than the queue held when it started,
//! so messages parked while it runs (a replayed message failing again)
//! are not looked at twice.

use lapin::{
    Channel, Connection,
    message::Delivery,
    options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions},
    types::FieldTable,
};

use super::parked::Parked;

/// One walk over `P.dead` on a channel of its own.
pub(super) struct Scan {
    channel: Channel,
    queue: String,
    left: u64,
}

impl Scan {
    /// Opens a scan of at most `bound` messages (and at most what the
    /// queue holds now).
    pub(super) async fn open(
        conn: &Connection,
        queue: &str,
        bound: Option<u64>,
    ) -> Result<Self, lapin::Error> {
        let channel = conn.create_channel().await?;
        let depth = u64::from(depth(&channel, queue).await?);
        Ok(Self {
            channel,
            queue: queue.to_string(),
            left: bound.map_or(depth, |b| b.min(depth)),
        })
    }

    /// How many more messages this scan will look at, at most.
    pub(super) fn left(&self) -> u64 {
        self.left
    }

    /// The next message, held unacked, with its summary; `None` at the end.
    pub(super) async fn next(&mut self) -> Result<Option<(Delivery, Parked)>, lapin::Error> {
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
        let Some(msg) = got else {
            self.left = 0;
            return Ok(None);
        };
        self.left -= 1;
        let parked = Parked::read(&msg.delivery.data, &msg.delivery.properties);
        Ok(Some((msg.delivery, parked)))
    }

    /// Removes a held message from `P.dead` for good (after its copy, if
    /// any, is confirmed).
    pub(super) async fn take(&self, delivery: &Delivery) -> Result<(), lapin::Error> {
        self.channel
            .basic_ack(delivery.delivery_tag, BasicAckOptions::default())
            .await
    }

    /// Ends the scan: every held message not taken goes back to `P.dead`.
    pub(super) async fn close(self) {
        let _ = self.channel.close(200, "scan over".into()).await;
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
