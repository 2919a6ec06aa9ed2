//! Per-host in-flight limits: one hanging receiver may not take every slot.
//!
//! All workers share one queue, and the broker hands out messages in queue
//! order, so a receiver that hangs until the timeout would otherwise collect
//! every delivery slot and stall delivery to everyone else. Each receiver
//! (scheme, host and port) gets at most `WEBHOOK_HOST_CONCURRENCY`
//! deliveries in flight.
//!
//! When a receiver's slots are all taken, what happens depends on whether it
//! is *answering*: a receiver that finished an attempt quickly within the
//! last [`RECENT`] is busy, so the delivery waits up to [`BUSY_WAIT`] for one
//! of its slots. A receiver that never answered and was first seen within
//! [`NEW_HOST_WAIT`] is too new to judge: the delivery waits until that
//! much after the receiver was first seen, and the rest of [`BUSY_WAIT`] if
//! the receiver has answered meanwhile. Any
//! other receiver is stalled, and the delivery is *deferred* at once: moved
//! to the shortest retry tier without an attempt, so it holds neither a
//! delivery slot nor a prefetch slot while the receiver hangs. A receiver
//! that hangs from the moment it is first seen therefore holds extra slots
//! for at most [`NEW_HOST_WAIT`], and a healthy one is never deferred for
//! being busy at start-up.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// An attempt that ends within this is "quick": its receiver is answering.
pub(super) const QUICK: Duration = Duration::from_secs(1);

/// How recent a quick answer must be for a full receiver to count as busy
/// rather than stalled.
pub(super) const RECENT: Duration = Duration::from_secs(1);

/// Longest wait for a slot of a busy (answering) receiver.
pub(super) const BUSY_WAIT: Duration = Duration::from_secs(1);

/// How long a receiver that has never answered counts as too new to judge,
/// and how long a delivery waits on it before the receiver has answered.
pub(super) const NEW_HOST_WAIT: Duration = Duration::from_millis(250);

/// Hosts kept in the map before idle ones are pruned.
const PRUNE_ABOVE: usize = 4096;

/// One receiver's slots and when it last answered quickly.
#[derive(Debug)]
struct Host {
    slots: Arc<Semaphore>,
    /// Milliseconds since the limiter's epoch when the host was first seen.
    created_ms: u64,
    /// Milliseconds since the limiter's epoch of the last quick answer (0:
    /// never).
    last_quick_ms: AtomicU64,
}

/// The per-host semaphores.
#[derive(Debug)]
pub(super) struct HostLimiter {
    cap: usize,
    epoch: Instant,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
}

/// The answer to a delivery asking for a slot of its receiver.
#[derive(Debug)]
pub(crate) enum Admission {
    /// A slot, held for one attempt.
    Granted(HostSlot),
    /// No slot: the receiver is full and stalled (or stayed full for the
    /// wait); defer the delivery.
    Defer,
}

/// A slot of one receiver, held for one attempt.
#[derive(Debug)]
pub(super) struct HostSlot {
    host: Option<Arc<Host>>,
    _permit: Option<OwnedSemaphorePermit>,
    epoch: Instant,
    started: Instant,
}

impl HostSlot {
    /// Releases the slot, recording how long the attempt took.
    pub(super) fn finish(self) {
        if let Some(host) = &self.host
            && self.started.elapsed() < QUICK
        {
            host.last_quick_ms.store(
                self.epoch.elapsed().as_millis() as u64 + 1,
                Ordering::Relaxed,
            );
        }
    }
}

impl HostLimiter {
    /// A limiter allowing `cap` deliveries per host; 0 disables it.
    pub(super) fn new(cap: u16) -> Self {
        Self {
            cap: cap.into(),
            epoch: Instant::now(),
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// Milliseconds since the epoch, never 0.
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// The key of a URL's receiver: scheme, host and port.
    pub(super) fn key(url: &url::Url) -> String {
        format!(
            "{}://{}:{}",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        )
    }

    /// A slot of `host`, or [`Admission::Defer`] when the receiver is full
    /// and stalled (or stayed full for [`BUSY_WAIT`]).
    pub(crate) async fn acquire(&self, host: &str) -> Admission {
        let slot = |host: Option<Arc<Host>>, permit| HostSlot {
            host,
            _permit: permit,
            epoch: self.epoch,
            started: Instant::now(),
        };
        if self.cap == 0 {
            return Admission::Granted(slot(None, None));
        }
        let entry = {
            let mut hosts = self.hosts.lock().expect("host map lock");
            if hosts.len() > PRUNE_ABOVE {
                let cap = self.cap;
                hosts.retain(|_, h| Arc::strong_count(h) > 1 || h.slots.available_permits() < cap);
            }
            // Look up before inserting: no key allocation on the hot path.
            match hosts.get(host) {
                Some(h) => h.clone(),
                None => {
                    let h = Arc::new(Host {
                        slots: Arc::new(Semaphore::new(self.cap)),
                        created_ms: self.now_ms(),
                        last_quick_ms: AtomicU64::new(0),
                    });
                    hosts.insert(host.to_string(), h.clone());
                    h
                }
            }
        };
        if let Ok(permit) = entry.slots.clone().try_acquire_owned() {
            return Admission::Granted(slot(Some(entry), Some(permit)));
        }
        // Busy (answering recently) or too new to judge: wait for a slot.
        // Stalled: defer at once.
        let now = self.now_ms();
        let within =
            |ms: u64, d: Duration| ms != 0 && now.saturating_sub(ms) <= d.as_millis() as u64;
        let answered = || entry.last_quick_ms.load(Ordering::Relaxed);
        let answering = within(answered(), RECENT);
        let new = answered() == 0 && within(entry.created_ms, NEW_HOST_WAIT);
        if !answering && !new {
            return Admission::Defer;
        }
        // A new receiver is judged NEW_HOST_WAIT after it was first seen,
        // however late a delivery started waiting on it.
        let judged_at = entry.created_ms + NEW_HOST_WAIT.as_millis() as u64;
        let wait = if answering {
            BUSY_WAIT
        } else {
            Duration::from_millis(judged_at.saturating_sub(now))
        };
        match tokio::time::timeout(wait, entry.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => return Admission::Granted(slot(Some(entry), Some(permit))),
            Ok(Err(_)) => return Admission::Defer,
            Err(_) if answering || answered() == 0 => return Admission::Defer,
            // A new receiver that answered meanwhile is busy, not stalled.
            Err(_) => {}
        }
        match tokio::time::timeout(
            BUSY_WAIT - NEW_HOST_WAIT,
            entry.slots.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => Admission::Granted(slot(Some(entry), Some(permit))),
            _ => Admission::Defer,
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_lite::StreamExt;

    use super::*;

    impl Admission {
        fn is_granted(&self) -> bool {
            matches!(self, Admission::Granted(_))
        }

        fn slot(self) -> HostSlot {
            match self {
                Admission::Granted(slot) => slot,
                Admission::Defer => panic!("expected a slot"),
            }
        }
    }

    #[tokio::test]
    async fn a_full_stalled_host_defers_without_blocking_another() {
        let l = HostLimiter::new(2);
        let a1 = l.acquire("a").await.slot();
        let _a2 = l.acquire("a").await.slot();
        // Full and too new to judge: waited for, until NEW_HOST_WAIT after
        // the host was first seen.
        let started = Instant::now();
        assert!(!l.acquire("a").await.is_granted());
        assert!(started.elapsed() >= NEW_HOST_WAIT / 2);
        assert!(started.elapsed() < BUSY_WAIT);
        // Full, never answered, and no longer new: defer at once.
        let started = Instant::now();
        assert!(!l.acquire("a").await.is_granted());
        assert!(started.elapsed() < Duration::from_millis(100));
        assert!(
            l.acquire("b").await.is_granted(),
            "another host is unaffected"
        );
        a1.finish();
        assert!(l.acquire("a").await.is_granted(), "a freed slot is taken");
    }

    #[tokio::test]
    async fn a_new_host_that_answers_meanwhile_is_waited_for_longer() {
        let l = Arc::new(HostLimiter::new(1));
        let held = l.acquire("a").await.slot();
        let l2 = l.clone();
        let waiter = tokio::spawn(async move { l2.acquire("a").await.is_granted() });
        tokio::time::sleep(NEW_HOST_WAIT / 4).await;
        // Another attempt of this receiver answered quickly.
        let host = l.hosts.lock().unwrap()["a"].clone();
        host.last_quick_ms.store(l.now_ms(), Ordering::Relaxed);
        tokio::time::sleep(NEW_HOST_WAIT * 3 / 2).await;
        drop(held);
        assert!(
            waiter.await.unwrap(),
            "past NEW_HOST_WAIT, the waiter still got the slot"
        );
    }

    #[tokio::test]
    async fn a_full_answering_host_is_waited_for() {
        let l = Arc::new(HostLimiter::new(1));
        let first = l.acquire("a").await.slot();
        first.finish(); // a quick answer
        let held = l.acquire("a").await.slot();
        let l2 = l.clone();
        let waiter = tokio::spawn(async move { l2.acquire("a").await.is_granted() });
        tokio::time::sleep(Duration::from_millis(20)).await;
        held.finish();
        assert!(
            waiter.await.unwrap(),
            "the waiter got the slot instead of being deferred"
        );
    }

    #[tokio::test]
    async fn zero_means_no_cap() {
        let l = HostLimiter::new(0);
        let held: Vec<_> = futures_lite::stream::iter(0..10)
            .then(|_| l.acquire("a"))
            .collect()
            .await;
        assert!(held.iter().all(Admission::is_granted));
    }

    #[test]
    fn key_includes_default_port() {
        let u = url::Url::parse("https://Example.com/x").unwrap();
        assert_eq!(HostLimiter::key(&u), "https://example.com:443");
    }
}
