//! A lane: one consumer channel and its settler.
//!
//! A session consumes on one lane at a time. When a delivery stays
//! unfinished long enough that everything behind it must be acked one by
//! one (see [`super::settle::STUCK`]), the session *rotates*: it opens a
//! fresh lane and *retires* the old one, which cancels its consumer, runs
//! what the broker had already sent it, and closes once the slow
//! deliveries settle. A hanging receiver then costs one rotation instead
//! of a single ack (a queue command each) for every message behind it.

use std::{sync::Arc, time::Duration};

use futures_lite::StreamExt;
use lapin::{
    Channel, Consumer,
    options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions},
    types::FieldTable,
};
use tokio::{sync::OwnedSemaphorePermit, task::JoinHandle};

use super::{
    settle::{self, SettlerHandle, Stuck},
    shared::Shared,
    task::{DeliveryTask, SessionCtx, Started},
};
use crate::Error;

/// How long a lane stays open after its last ack before it closes, when
/// retired and at shutdown. A quorum queue may drop acks that reach it
/// just before their channel closes and requeue those messages
/// (rabbitmq/rabbitmq-server#10327: the queue client holds settlements
/// back while the Raft log is busy and forgets them with the channel).
/// `examples/ack_close_race.rs` reproduces it on RabbitMQ 3.10.8: closing
/// right after 200–300 single acks requeued acked messages in 45 of 150
/// closes on a busy broker (10 023 messages) and in 4 of 320 on a quiet
/// one; one second of linger, 0 of 310
/// (`bench/results/2026-12-02-ack-close-race.md`). A second is short
/// against the turnover of the few retired lanes a session keeps and
/// against the shutdown grace.
const ACK_LINGER: Duration = Duration::from_secs(1);

/// One consumer channel: its consumer and its settler.
pub(crate) struct Lane {
    channel: Channel,
    consumer: Consumer,
    settler: SettlerHandle,
    settler_task: JoinHandle<()>,
    stuck: Stuck,
}

impl Lane {
    /// Sets the prefetch on `channel` and starts consuming `queue` (a work
    /// queue: `P.deliveries` or one shard) there, with a settler of its
    /// own.
    pub(crate) async fn open(
        shared: &Shared,
        channel: Channel,
        queue: &str,
    ) -> Result<Self, Error> {
        channel
            .basic_qos(shared.concurrency, BasicQosOptions { global: false })
            .await?;
        let consumer = channel
            .basic_consume(
                queue.into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let (settler, settler_task, stuck) = settle::spawn(channel.clone(), shared.metrics.clone());
        Ok(Self {
            channel,
            consumer,
            settler,
            settler_task,
            stuck,
        })
    }

    /// The next delivery, or why there is none (`Err`: the channel or
    /// connection failed; `Ok(None)`: the broker cancelled the consumer).
    pub(crate) async fn next(&mut self) -> Result<Option<lapin::message::Delivery>, lapin::Error> {
        self.consumer.next().await.transpose()
    }

    /// Raised when the settler had to ack singly behind a delivery
    /// unfinished for [`settle::STUCK`]: time to rotate.
    pub(crate) fn stuck_signal(&self) -> Stuck {
        self.stuck.clone()
    }

    /// Where this lane's deliveries report their settlement.
    pub(crate) fn settler(&self) -> &SettlerHandle {
        &self.settler
    }

    /// Stops the consumer: the broker sends nothing more on this lane.
    pub(crate) async fn cancel(&self) {
        let _ = self
            .channel
            .basic_cancel(self.consumer.tag(), BasicCancelOptions::default())
            .await;
    }

    /// Flushes the settler (every handle is gone once the deliveries are),
    /// waits [`ACK_LINGER`] after the last ack, and closes the channel.
    pub(crate) async fn close(self, why: &str) {
        drop(self.settler);
        let _ = self.settler_task.await;
        tokio::time::sleep(ACK_LINGER).await;
        let _ = self.channel.close(200, why.into()).await;
    }

    /// Winds down a lane replaced by a fresh one: cancels its consumer,
    /// runs the deliveries the broker had already sent, waits until every
    /// one of them is settled, then closes the channel. `retired` is this
    /// lane's place among the retired ones, given back when it closes,
    /// [`ACK_LINGER`] after the last ack.
    pub(crate) async fn retire(
        mut self,
        shared: Arc<Shared>,
        ctx: SessionCtx,
        retired: OwnedSemaphorePermit,
    ) {
        self.cancel().await;
        while let Ok(Some(delivery)) = self.next().await {
            if let Started::ShuttingDown =
                DeliveryTask::start(&shared, delivery, &self.settler, &ctx).await
            {
                break;
            }
        }
        self.close("retired").await;
        drop(retired);
    }
}
