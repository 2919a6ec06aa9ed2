//! The bound of contract section 6 on a classic work queue: a message
//! whose retry or dead copy cannot be settled (returned unroutable, or
//! nacked) is tried at most `WEBHOOK_DELIVERY_LIMIT` + 1 times.
//!
//! A quorum work queue counts its returns (`x-delivery-count`,
//! `x-acquired-count`) and dead-letters to `P.dead` past its limit; the
//! worker gives such a message back with `basic.reject` (see
//! [`super::task`]). A classic queue counts nothing on any version and has
//! no dead-letter target: given back by a reject, the message came
//! straight back to the worker and its receiver, without end, for as long
//! as the copy could not be settled. So with classic queues the worker
//! gives it back by a *copy* to its work queue carrying how often that
//! happened (`webhook-unsettled`), acking the original once the copy is
//! confirmed, and parks it itself, without an attempt, once that count is
//! past the limit ([`past_limit`], reason `delivery_limit`). Should that
//! copy fail too, the original is rejected back to the queue as before.
//! When even that parking fails (`P.dead` gone too), the message keeps
//! going round without an attempt, once per [`PARK_RETRY`].

use std::time::Duration;

use bytes::Bytes;
use lapin::BasicProperties;

use super::{settle::Settlement, shared::Shared};
use crate::broker::{
    publisher::Publisher,
    retry_headers::{unsettled, with_unsettled},
    topology::QueueType,
};

/// How long a message whose parking failed waits before it goes round
/// again, so that it does not spin against the broker.
pub(super) const PARK_RETRY: Duration = Duration::from_secs(1);

/// The count past `WEBHOOK_DELIVERY_LIMIT` of a message of a classic work
/// queue whose copies could not be settled, when it is past; then it is
/// parked without an attempt.
pub(super) fn past_limit(shared: &Shared, props: &BasicProperties) -> Option<u64> {
    let topology = &shared.topology;
    let returned = unsettled(props.headers().as_ref());
    (topology.queue_type() == QueueType::Classic && returned > u64::from(topology.delivery_limit()))
        .then_some(returned)
}

/// Gives back a message whose copy could not be settled: with classic
/// queues by a counted copy to `work_queue` (then the original is acked),
/// else (or when that copy fails) by a reject with requeue.
pub(super) async fn give_back(
    shared: &Shared,
    publisher: &Publisher,
    work_queue: &str,
    body: &Bytes,
    props: &BasicProperties,
) -> Settlement {
    if shared.topology.queue_type() != QueueType::Classic {
        return Settlement::Requeue;
    }
    let count = unsettled(props.headers().as_ref()) + 1;
    if past_limit(shared, props).is_some() {
        // Not attempted: its parking failed.
        tokio::time::sleep(PARK_RETRY).await;
    }
    let copy = props
        .clone()
        .with_headers(with_unsettled(props.headers().as_ref(), count));
    match publisher.publish(work_queue, body, copy).await {
        Ok(()) => Settlement::Ack,
        Err(e) => {
            tracing::warn!(error = %e, "could not return a message to {work_queue} with its count; rejecting it back");
            Settlement::Requeue
        }
    }
}
