//! Opening a channel: the one way, past lapin's stale channel errors.
//!
//! When the broker closes a channel (a passive declare's `NOT_FOUND`, a
//! refused declaration), lapin 4 keeps that error under the channel's *id*
//! for the life of the connection. Channel ids are reused once the
//! connection has opened `channel_max` channels (2047 on RabbitMQ), and a
//! new channel that gets such an id fails to open with the old error —
//! a `NOT_FOUND` about a queue probed hours ago. The failed channel keeps
//! its id, so the next attempt gets a fresh one: [`open`] tries again.
//!
//! A `channel.open` cannot be refused with a channel-level error (the
//! broker answers it with a connection-level one, if any), so a
//! channel-level error here is always such a stale one.

use lapin::{Channel, Connection, ErrorKind, protocol::AMQPErrorKind};

/// Most stale ids skipped in one [`open`]: each one is skipped once per
/// connection, and a connection has one per channel the broker closed.
const MAX_STALE: usize = 64;

/// Opens a channel on `conn`, skipping ids that carry a stale error.
pub async fn open(conn: &Connection) -> Result<Channel, lapin::Error> {
    let mut stale = 0;
    loop {
        match conn.create_channel().await {
            Err(e) if is_stale(&e) && stale < MAX_STALE => {
                stale += 1;
                tracing::debug!(error = %e, "a reused channel id carried an old error; opening another");
            }
            opened => return opened,
        }
    }
}

/// Whether a failed `channel.open` failed with an earlier channel's error.
fn is_stale(e: &lapin::Error) -> bool {
    match e.kind() {
        ErrorKind::ProtocolError(amqp) => matches!(amqp.kind(), AMQPErrorKind::Soft(_)),
        ErrorKind::InvalidChannelState(..) => true,
        _ => false,
    }
}
