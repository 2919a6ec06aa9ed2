//! Per-host in-flight limits: one hanging receiver may not take every slot.
//!
//! All workers share one queue, and the broker hands out messages in queue
//! order, so a receiver that hangs until the timeout would otherwise collect
//! every delivery slot and stall delivery to everyone else. Each receiver
//! (scheme, host and port) gets at most `WEBHOOK_HOST_CONCURRENCY`
//! deliveries in flight. A delivery whose host stays full for
//! [`HOST_SLOT_WAIT`] is deferred: moved to the shortest retry tier without
//! an attempt, so it neither holds a prefetch slot nor counts as a failure.
//! A healthy busy host frees slots in milliseconds and is never deferred.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a delivery waits for its host's slot before it is deferred.
pub const HOST_SLOT_WAIT: Duration = Duration::from_millis(50);

/// Hosts kept in the map before idle ones are pruned.
const PRUNE_ABOVE: usize = 4096;

/// The per-host semaphores.
#[derive(Debug)]
pub struct HostLimiter {
    cap: usize,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// What the limiter answers.
#[derive(Debug)]
pub enum HostSlot {
    /// A slot, held until dropped (or no cap configured).
    Granted(Option<OwnedSemaphorePermit>),
    /// The host stayed full for the whole wait.
    Full,
}

impl HostLimiter {
    /// A limiter allowing `cap` deliveries per host; 0 disables it.
    pub fn new(cap: u16) -> Self {
        Self {
            cap: cap.into(),
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// The key of a URL's receiver: scheme, host and port.
    pub fn key(url: &url::Url) -> String {
        format!(
            "{}://{}:{}",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        )
    }

    /// Waits up to `wait` for a slot of `host`.
    pub async fn acquire(&self, host: &str, wait: Duration) -> HostSlot {
        if self.cap == 0 {
            return HostSlot::Granted(None);
        }
        let semaphore = {
            let mut hosts = self.hosts.lock().expect("host map lock");
            if hosts.len() > PRUNE_ABOVE {
                let cap = self.cap;
                hosts.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < cap);
            }
            hosts
                .entry(host.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.cap)))
                .clone()
        };
        if let Ok(permit) = semaphore.clone().try_acquire_owned() {
            return HostSlot::Granted(Some(permit));
        }
        match tokio::time::timeout(wait, semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => HostSlot::Granted(Some(permit)),
            _ => HostSlot::Full,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_host_does_not_block_another() {
        let l = HostLimiter::new(2);
        let a1 = l.acquire("a", HOST_SLOT_WAIT).await;
        let a2 = l.acquire("a", HOST_SLOT_WAIT).await;
        assert!(matches!(a1, HostSlot::Granted(Some(_))));
        assert!(matches!(a2, HostSlot::Granted(Some(_))));
        assert!(matches!(
            l.acquire("a", Duration::from_millis(5)).await,
            HostSlot::Full
        ));
        assert!(matches!(
            l.acquire("b", HOST_SLOT_WAIT).await,
            HostSlot::Granted(Some(_))
        ));
        drop(a1);
        assert!(matches!(
            l.acquire("a", HOST_SLOT_WAIT).await,
            HostSlot::Granted(Some(_))
        ));
    }

    #[tokio::test]
    async fn zero_means_no_cap() {
        let l = HostLimiter::new(0);
        for _ in 0..10 {
            assert!(matches!(
                l.acquire("a", Duration::ZERO).await,
                HostSlot::Granted(None)
            ));
        }
    }

    #[test]
    fn key_includes_default_port() {
        let u = url::Url::parse("https://Example.com/x").unwrap();
        assert_eq!(HostLimiter::key(&u), "https://example.com:443");
    }
}
