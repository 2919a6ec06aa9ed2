//! Publishing outcome events to `P.outcomes`, batched, through the one
//! [`Publisher`].
//!
//! Every delivery that settles publishes at least one event, and its
//! message may be acked only once that event is confirmed. One AMQP
//! message per event would cost the broker a publish, a stream write and a
//! confirm per delivery; instead the [`OutcomeSink`] groups the events
//! that arrive while the previous group waits for its confirms (group
//! commit): one *gather* is unconfirmed at a time, published as one
//! message per kind, and every event that arrives meanwhile leaves in the
//! next one. Under load the messages grow with the rate times the broker's
//! confirm latency; when idle an event leaves at once, alone. A message
//! holds events of one kind only, so the routing key is still the kind
//! (see [`crate::domain::outcome_event`] for the body).
//!
//! One gather, because the broker's cost is per message and its confirm
//! latency grows with the messages it is working on: at a 100 ms receiver
//! on RabbitMQ 3.10.8, 8 messages in flight took 3.2–5.7 ms a confirm, one
//! gather 0.9–2.3 ms and 6–11 µs less broker CPU per event. The task that
//! gathers publishes on its own leased channel and waits for the confirms
//! itself ([`Publisher::publish_events_together`]), with no task in
//! between: that took about 1 ms off an event's wait on a classic queue
//! (bench/README.md, "Outcome events").
//!
//! Each waiter learns its message's result: `Ok` only after the broker's
//! confirm. A failed message fails every event in it, and the deliveries
//! waiting on them go back to the broker unacked.

use std::sync::Arc;

use lapin::BasicProperties;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use super::publisher::{EventMessage, PublishError, Publisher};
use crate::domain::outcome_event::{OutcomeEvent, OutcomeKind, encode_batch};

/// Most events in one message.
pub const MAX_BATCH: usize = 256;

/// Called with each confirmed batch: its kind and how many events.
pub type OnConfirmed = Arc<dyn Fn(OutcomeKind, u64) + Send + Sync>;

/// One event waiting for its batch, and who waits for the confirm.
struct Queued {
    event: OutcomeEvent,
    done: Option<oneshot::Sender<Result<(), PublishError>>>,
}

/// Where a session's delivery tasks hand their outcome events. Cheap to
/// clone; the batching task ends when every clone is gone.
#[derive(Clone)]
pub struct OutcomeSink {
    tx: mpsc::UnboundedSender<Queued>,
}

impl std::fmt::Debug for OutcomeSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutcomeSink")
    }
}

impl OutcomeSink {
    /// Starts the batching task publishing to `exchange` on `publisher`.
    pub fn spawn(
        publisher: Publisher,
        exchange: String,
        on_confirmed: OnConfirmed,
    ) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(publisher, exchange, rx, on_confirmed));
        (Self { tx }, task)
    }

    /// Publishes `event` and waits until the broker confirmed it.
    pub async fn publish(&self, event: OutcomeEvent) -> Result<(), PublishError> {
        let (done, confirmed) = oneshot::channel();
        let queued = Queued {
            event,
            done: Some(done),
        };
        if self.tx.send(queued).is_err() {
            return Err(PublishError::gone("outcome events"));
        }
        confirmed
            .await
            .unwrap_or_else(|_| Err(PublishError::gone("outcome events")))
    }

    /// Publishes `event` without waiting (events that settle no message:
    /// receiver health).
    pub fn publish_unwaited(&self, event: OutcomeEvent) {
        let _ = self.tx.send(Queued { event, done: None });
    }
}

async fn run(
    publisher: Publisher,
    exchange: String,
    mut rx: mpsc::UnboundedReceiver<Queued>,
    on_confirmed: OnConfirmed,
) {
    let props = BasicProperties::default().with_content_type("application/x-ndjson".into());
    let mut buf = Vec::with_capacity(MAX_BATCH);
    // Waiting for a gather's confirms before taking the next is what lets
    // events gather under load: one gather in flight.
    while rx.recv_many(&mut buf, MAX_BATCH * 4).await > 0 {
        let batches = by_kind(buf.drain(..));
        let messages = batches
            .iter()
            .map(|batch| EventMessage {
                routing_key: batch[0].event.kind.as_str().to_string(),
                body: encode_batch(batch.iter().map(|q| &q.event)),
                properties: props.clone(),
            })
            .collect();
        let results = publisher.publish_events_together(&exchange, messages).await;
        for (batch, result) in batches.into_iter().zip(results) {
            if result.is_ok() {
                on_confirmed(batch[0].event.kind, batch.len() as u64);
            }
            for q in batch {
                if let Some(done) = q.done {
                    let _ = done.send(result.clone());
                }
            }
        }
    }
}

/// Groups events by kind, in arrival order within a kind, at most
/// [`MAX_BATCH`] to a group.
fn by_kind(events: impl Iterator<Item = Queued>) -> Vec<Vec<Queued>> {
    let mut groups: Vec<Vec<Queued>> = Vec::new();
    for q in events {
        let open = groups
            .iter_mut()
            .find(|g| g[0].event.kind == q.event.kind && g.len() < MAX_BATCH);
        match open {
            Some(g) => g.push(q),
            None => groups.push(vec![q]),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(kind: OutcomeKind, n: i64) -> Queued {
        Queued {
            event: OutcomeEvent::new(kind, n),
            done: None,
        }
    }

    #[test]
    fn batches_hold_one_kind_in_order_and_are_bounded() {
        let mut events = vec![
            q(OutcomeKind::AttemptSucceeded, 1),
            q(OutcomeKind::AttemptFailed, 2),
            q(OutcomeKind::AttemptSucceeded, 3),
        ];
        events.extend((0..MAX_BATCH as i64).map(|n| q(OutcomeKind::MessageParked, n)));
        events.push(q(OutcomeKind::MessageParked, 9));
        let groups = by_kind(events.into_iter());
        let shape: Vec<_> = groups.iter().map(|g| (g[0].event.kind, g.len())).collect();
        assert_eq!(
            shape,
            vec![
                (OutcomeKind::AttemptSucceeded, 2),
                (OutcomeKind::AttemptFailed, 1),
                (OutcomeKind::MessageParked, MAX_BATCH),
                (OutcomeKind::MessageParked, 1),
            ]
        );
        assert_eq!(groups[0][1].event.at_ms(), Some(3));
    }
}
