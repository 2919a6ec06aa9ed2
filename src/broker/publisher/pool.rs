//! The channels a [`super::Publisher`] publishes on: each carries one
//! [batch](super::batch) at a time, so every return it gets belongs to
//! that batch.
//!
//! Channels are opened when every open one is busy and kept for the next
//! batch; one the broker closed is dropped. At most [`CHANNELS`] are open,
//! which bounds the batches in flight.

use std::sync::{Arc, Mutex};

use lapin::{Channel, Connection, options::ConfirmSelectOptions};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Most batches in flight, each on a channel of its own: fewer make bigger
/// batches (fewer confirms), more let a publish wait less for a channel.
pub(super) const CHANNELS: usize = 8;

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
    pub(super) async fn open(conn: &Arc<Connection>) -> Result<Arc<Self>, lapin::Error> {
        let pool = Arc::new(Self {
            conn: conn.clone(),
            idle: Mutex::new(Vec::new()),
            open: Arc::new(Semaphore::new(CHANNELS)),
        });
        drop(pool.clone().turn().await.channel().await?);
        Ok(pool)
    }

    /// Waits until fewer than [`CHANNELS`] batches are in flight.
    pub(super) async fn turn(self: Arc<Self>) -> Turn {
        let permit = self
            .open
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        Turn { pool: self, permit }
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

/// The right to one channel, before it is taken.
pub(super) struct Turn {
    pool: Arc<Pool>,
    permit: OwnedSemaphorePermit,
}

impl Turn {
    /// An idle channel, or a new one when none is idle.
    pub(super) async fn channel(self) -> Result<Lease, lapin::Error> {
        let idle = self.pool.lock().pop();
        let channel = match idle {
            Some(channel) => channel,
            None => {
                let channel = crate::broker::channel::open(&self.pool.conn).await?;
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await?;
                channel
            }
        };
        Ok(Lease {
            pool: self.pool,
            channel: Some(channel),
            _permit: self.permit,
        })
    }
}

/// One channel lent to one batch; back to the pool when dropped, unless
/// the broker closed it.
pub(super) struct Lease {
    pool: Arc<Pool>,
    channel: Option<Channel>,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    pub(super) fn channel(&self) -> &Channel {
        self.channel.as_ref().expect("held until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(channel) = self.channel.take()
            && channel.status().connected()
        {
            self.pool.lock().push(channel);
        }
    }
}
