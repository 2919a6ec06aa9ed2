//! Publishing in batches, each on a channel of its own until every
//! publish in it is confirmed (group commit, as the outcome events do).
//!
//! A `basic.return` carries no delivery tag: lapin hands it to the next
//! confirm it completes, and when the broker confirms several publishes
//! in one `basic.ack(multiple)`, that is whichever of them comes first in
//! a hash map. With any publishes in flight on one channel, a returned
//! retry copy could be reported confirmed (its original acked: the event
//! lost) and a routed copy reported returned (its original given back:
//! the event twice); CI saw the second on 3.10. So a channel carries one
//! batch at a time: a return arrives before the confirm of its publish,
//! so by the time the whole batch is confirmed every return of the batch
//! has been handed to one of its publishes, and none of another batch's.
//! Each then goes to the publish it matches (exchange, routing key and
//! body; publishes that match alike are routed alike).
//!
//! Under load requests queue while [`super::pool::CHANNELS`] batches are
//! in flight and leave together; when idle a request leaves at once,
//! alone.

use std::sync::Arc;

use lapin::{
    BasicProperties, Confirmation, message::BasicReturnMessage, options::BasicPublishOptions,
};
use tokio::sync::{mpsc, oneshot};

use super::{
    PublishError, Routing,
    pool::{Lease, Pool, Turn},
};

/// Most publishes in one batch.
const MAX_BATCH: usize = 256;

/// One publish, and who waits for its result.
pub(super) struct Request {
    exchange: String,
    routing_key: String,
    routing: Routing,
    body: Vec<u8>,
    properties: BasicProperties,
    reply: oneshot::Sender<Result<(), PublishError>>,
}

/// Where a request's result arrives.
pub(super) struct Receipt(oneshot::Receiver<Result<(), PublishError>>);

impl Receipt {
    /// The result, or "gone" when the publisher went away first.
    pub(super) async fn result(self) -> Result<(), PublishError> {
        self.0
            .await
            .unwrap_or_else(|_| Err(PublishError::gone("publisher")))
    }
}

impl Request {
    /// A request, and where its result will arrive.
    pub(super) fn new(
        exchange: &str,
        routing_key: String,
        routing: Routing,
        body: Vec<u8>,
        properties: BasicProperties,
    ) -> (Self, Receipt) {
        let (reply, answer) = oneshot::channel();
        let request = Self {
            exchange: exchange.to_string(),
            routing_key,
            routing,
            body,
            properties,
            reply,
        };
        (request, Receipt(answer))
    }

    /// Where it went, for errors: the exchange, or the queue when the
    /// default exchange.
    fn destination(&self) -> String {
        if self.exchange.is_empty() {
            self.routing_key.clone()
        } else {
            self.exchange.clone()
        }
    }

    fn is_returned_as(&self, m: &BasicReturnMessage) -> bool {
        self.routing == Routing::Mandatory
            && m.delivery.exchange.as_str() == self.exchange
            && m.delivery.routing_key.as_str() == self.routing_key
            && m.delivery.data == self.body
    }
}

/// Starts the task that gathers requests into batches; it ends when every
/// sender is gone.
pub(super) fn spawn(pool: Arc<Pool>) -> mpsc::UnboundedSender<Request> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(pool, rx));
    tx
}

async fn run(pool: Arc<Pool>, mut rx: mpsc::UnboundedReceiver<Request>) {
    let mut buf = Vec::with_capacity(MAX_BATCH);
    loop {
        // A free channel first: requests gather meanwhile.
        let turn = pool.clone().turn().await;
        if rx.recv_many(&mut buf, MAX_BATCH).await == 0 {
            return;
        }
        let batch = std::mem::replace(&mut buf, Vec::with_capacity(MAX_BATCH));
        tokio::spawn(publish_on(turn, batch));
    }
}

/// Publishes the batch on the channel of `turn` and answers each request
/// (every one with the error when no channel opens).
pub(super) async fn publish_on(turn: Turn, batch: Vec<Request>) {
    match turn.channel().await {
        Ok(lease) => publish(&lease, batch).await,
        Err(e) => {
            for r in batch {
                let _ = r.reply.send(Err(PublishError::Broker(e.clone())));
            }
        }
    }
}

/// How the broker answered one publish of a batch, its return set aside.
enum Answer {
    Ack,
    Nack,
    Failed(lapin::Error),
}

/// Publishes the batch on `lease`'s channel, waits for every confirm, and
/// answers each request.
async fn publish(lease: &Lease, batch: Vec<Request>) {
    let mut confirms = Vec::with_capacity(batch.len());
    for r in &batch {
        let options = BasicPublishOptions {
            mandatory: r.routing == Routing::Mandatory,
            immediate: false,
        };
        let sent = lease
            .channel()
            .basic_publish(
                r.exchange.as_str().into(),
                r.routing_key.as_str().into(),
                options,
                &r.body,
                r.properties.clone().with_delivery_mode(2),
            )
            .await;
        confirms.push(sent);
    }
    let mut answers = Vec::with_capacity(batch.len());
    let mut returned = Vec::new();
    for sent in confirms {
        let confirmation = match sent {
            Ok(confirm) => confirm.await,
            Err(e) => Err(e),
        };
        answers.push(match confirmation {
            Ok(Confirmation::Ack(m)) => {
                returned.extend(m);
                Answer::Ack
            }
            Ok(Confirmation::Nack(m)) => {
                returned.extend(m);
                Answer::Nack
            }
            Ok(Confirmation::NotRequested) => unreachable!("the channel is in confirm mode"),
            Err(e) => Answer::Failed(e),
        });
    }
    for (r, answer) in batch.into_iter().zip(answers) {
        let result = match answer {
            Answer::Failed(e) => Err(PublishError::Broker(e)),
            _ if let Some(at) = returned.iter().position(|m| r.is_returned_as(m)) => {
                let m = returned.swap_remove(at);
                Err(PublishError::Returned(
                    r.destination(),
                    m.reply_text.to_string(),
                ))
            }
            Answer::Nack => Err(PublishError::Nacked(r.destination())),
            Answer::Ack => Ok(()),
        };
        let _ = r.reply.send(result);
    }
    if !returned.is_empty() {
        tracing::warn!(
            returns = returned.len(),
            "the broker returned messages that match no publish of their batch"
        );
    }
}
