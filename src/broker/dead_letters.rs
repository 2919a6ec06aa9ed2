//! `webhook-worker dead list` and `dead replay`: inspecting and re-driving
//! parked messages.
//!
//! Both read `P.dead` with `basic.get` without acking, so a message is never
//! at risk while it is looked at: what is not explicitly acked returns to
//! `P.dead` when the channel closes. Both stop after the number of messages
//! the queue held when they started, so a worker re-parking a replayed
//! message at the same moment cannot make them loop.

use lapin::{
    BasicProperties, Channel, Connection,
    options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};

use super::{
    publisher::{PublishError, Publisher},
    retry_headers::{
        HEADER_DROP_REASON, HEADER_LAST_ERROR, read_retry_state, text, without_retry_headers,
    },
    topology::Topology,
};
use crate::domain::envelope;

/// One parked message, as `dead list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    /// The event id, when the body has one.
    pub id: Option<String>,
    /// The webhook number, when the body has one.
    pub webhook: Option<i64>,
    /// `webhook-drop-reason`, or the broker's `x-death` reason (e.g.
    /// `delivery_limit`) for messages the broker parked itself.
    pub reason: String,
    /// `webhook-attempts`.
    pub attempts: u32,
    /// `webhook-last-error`.
    pub last_error: String,
}

impl Parked {
    fn read(body: &[u8], props: &BasicProperties) -> Self {
        let (id, webhook) = envelope::identify(body);
        let headers = props.headers().as_ref();
        Parked {
            id,
            webhook,
            reason: parked_reason(headers),
            attempts: read_retry_state(headers).map(|s| s.attempts).unwrap_or(0),
            last_error: headers
                .and_then(|h| text(h.inner().get(HEADER_LAST_ERROR)?))
                .unwrap_or_default(),
        }
    }
}

/// What `dead replay` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplayReport {
    /// Messages moved back to `P.deliveries`.
    pub moved: u64,
    /// Messages looked at and left in `P.dead` (other reason, or past the
    /// limit).
    pub kept: u64,
}

/// The reason a message was parked: ours, else the broker's first `x-death`.
pub fn parked_reason(headers: Option<&FieldTable>) -> String {
    let Some(h) = headers else {
        return "unknown".into();
    };
    if let Some(r) = h.inner().get(HEADER_DROP_REASON).and_then(text) {
        return r;
    }
    if let Some(AMQPValue::FieldArray(deaths)) = h.inner().get("x-death")
        && let Some(AMQPValue::FieldTable(first)) = deaths.as_slice().first()
        && let Some(reason) = first.inner().get("reason").and_then(text)
    {
        return reason;
    }
    "unknown".into()
}

/// Messages in `P.dead` right now.
async fn depth(channel: &Channel, topology: &Topology) -> Result<u32, lapin::Error> {
    let q = channel
        .queue_declare(
            topology.dead().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(q.message_count())
}

/// Lists up to `limit` parked messages without consuming them.
pub async fn list(
    conn: &Connection,
    topology: &Topology,
    limit: Option<u64>,
) -> Result<Vec<Parked>, lapin::Error> {
    let channel = conn.create_channel().await?;
    let total = u64::from(depth(&channel, topology).await?);
    let mut out = Vec::new();
    while (out.len() as u64) < total.min(limit.unwrap_or(u64::MAX)) {
        let Some(msg) = channel
            .basic_get(topology.dead().into(), BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        out.push(Parked::read(&msg.delivery.data, &msg.delivery.properties));
    }
    // Closing the channel returns every message we looked at.
    let _ = channel.close(200, "listed".into()).await;
    Ok(out)
}

/// Moves parked messages back to `P.deliveries` through the default exchange
/// (so no other queue bound to `P` sees them twice), with their retry state
/// cleared. Each is confirmed by the broker before its dead copy is acked.
pub async fn replay(
    conn: &Connection,
    topology: &Topology,
    limit: Option<u64>,
    reason: Option<&str>,
) -> Result<ReplayReport, PublishError> {
    let channel = conn.create_channel().await?;
    let publisher = Publisher::open(conn).await?;
    let total = depth(&channel, topology).await?;
    let mut report = ReplayReport::default();
    for _ in 0..total {
        if limit.is_some_and(|l| report.moved >= l) {
            break;
        }
        let Some(msg) = channel
            .basic_get(topology.dead().into(), BasicGetOptions { no_ack: false })
            .await?
        else {
            break;
        };
        let d = msg.delivery;
        let parked = Parked::read(&d.data, &d.properties);
        if reason.is_some_and(|r| r != parked.reason) {
            // Held unacked until the channel closes, so basic.get moves on.
            report.kept += 1;
            continue;
        }
        let headers = without_retry_headers(d.properties.headers().as_ref());
        publisher
            .publish(
                topology.deliveries(),
                &d.data,
                d.properties.clone().with_headers(headers),
            )
            .await?;
        channel
            .basic_ack(d.delivery_tag, BasicAckOptions::default())
            .await?;
        report.moved += 1;
        tracing::info!(id = parked.id.as_deref().unwrap_or("?"), reason = %parked.reason, "replayed");
    }
    publisher.close().await;
    let _ = channel.close(200, "replayed".into()).await;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_from_our_header_or_the_brokers_x_death() {
        let mut ours = FieldTable::default();
        ours.insert(
            HEADER_DROP_REASON.into(),
            AMQPValue::LongString("gone".into()),
        );
        assert_eq!(parked_reason(Some(&ours)), "gone");

        let mut death = FieldTable::default();
        death.insert(
            "reason".into(),
            AMQPValue::LongString("delivery_limit".into()),
        );
        let mut broker = FieldTable::default();
        broker.insert(
            "x-death".into(),
            AMQPValue::FieldArray(vec![AMQPValue::FieldTable(death)].into()),
        );
        assert_eq!(parked_reason(Some(&broker)), "delivery_limit");
        assert_eq!(parked_reason(None), "unknown");
    }
}
