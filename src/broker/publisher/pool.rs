//! The channels a [`super::Publisher`] publishes on, each carrying one
//! publish at a time.
//!
//! Why not one channel: a `basic.return` carries no delivery tag, so lapin
//! gives it to the next confirm it completes; when the broker confirms
//! several publishes in one `basic.ack(multiple)`, that is whichever of
//! them comes first in a hash map. With concurrent publishes on one
//! channel, a returned retry copy could be taken for a success (its
//! original acked: the event lost) while a confirmed copy was taken for a
//! return (its original given back: the event twice). Measured on 3.10: a
//! give-back copy confirmed together with the next attempt's returned
//! retry copy was reported unroutable. On a channel with one publish
//! outstanding, every return is that publish's.
//!
//! Channels are opened when every open one is busy, kept for the next
//! publish, and dropped when the broker closed them; at most
//! [`MAX_CHANNELS`] are open, beyond that a publish waits for one.

use std::sync::{Arc, Mutex};

use lapin::{Channel, Connection, options::ConfirmSelectOptions};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The most channels one publisher keeps open (RabbitMQ allows 2047 per
/// connection; the consumers need a few).
pub(super) const MAX_CHANNELS: usize = 512;

/// Idle channels in confirm mode, and the bound on open ones.
#[derive(Debug)]
pub(super) struct Pool {
    conn: Arc<Connection>,
    idle: Mutex<Vec<Channel>>,
    open: Arc<Semaphore>,
}

impl Pool {
    /// A pool on `conn` with one channel open already, so that a broker
    /// refusing channels fails here, not at the first publish.
    pub(super) async fn open(conn: &Arc<Connection>) -> Result<Self, lapin::Error> {
        let pool = Self {
            conn: conn.clone(),
            idle: Mutex::new(Vec::new()),
            open: Arc::new(Semaphore::new(MAX_CHANNELS)),
        };
        let first = pool.lease().await?;
        drop(first);
        Ok(pool)
    }

    /// A channel of its own until the lease is dropped: an idle one, or a
    /// new one when none is idle.
    pub(super) async fn lease(&self) -> Result<Lease<'_>, lapin::Error> {
        let permit = self
            .open
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let idle = self.lock().pop();
        let channel = match idle {
            Some(channel) => channel,
            None => {
                let channel = crate::broker::channel::open(&self.conn).await?;
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await?;
                channel
            }
        };
        Ok(Lease {
            pool: self,
            channel: Some(channel),
            _permit: permit,
        })
    }

    /// Closes the idle channels.
    pub(super) async fn close(&self) {
        let idle = std::mem::take(&mut *self.lock());
        for channel in idle {
            let _ = channel.close(200, "bye".into()).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Channel>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One channel lent to one publish; back to the pool when dropped, unless
/// the broker closed it.
pub(super) struct Lease<'a> {
    pool: &'a Pool,
    channel: Option<Channel>,
    _permit: OwnedSemaphorePermit,
}

impl Lease<'_> {
    pub(super) fn channel(&self) -> &Channel {
        self.channel.as_ref().expect("held until dropped")
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(channel) = self.channel.take()
            && channel.status().connected()
        {
            self.pool.lock().push(channel);
        }
    }
}
