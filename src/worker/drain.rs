//! Shutdown as a type: what every task of the worker needs to know about
//! winding down, in one value instead of loose tokens.
//!
//! The first SIGTERM/SIGINT cancels [`Drain::shutdown`]: consumers stop
//! taking messages. In-flight deliveries then have `WEBHOOK_SHUTDOWN_GRACE`
//! to finish; when it runs out, the rest are *abandoned*: their tasks end
//! without settling, so the broker redelivers those messages once the
//! channel closes. Nothing is lost either way.

use std::time::Duration;

use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// The shutdown signal, the grace, and every delivery task.
#[derive(Debug, Clone)]
pub(crate) struct Drain {
    shutdown: CancellationToken,
    abandon: CancellationToken,
    tasks: TaskTracker,
    grace: Duration,
}

/// How the drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DrainEnd {
    /// Every delivery finished and settled within the grace.
    Drained,
    /// The grace ran out; this many were left to the broker.
    Abandoned(usize),
}

impl Drain {
    /// A drain that starts when `shutdown` is cancelled.
    pub(crate) fn new(shutdown: CancellationToken, grace: Duration) -> Self {
        Self {
            shutdown,
            abandon: CancellationToken::new(),
            tasks: TaskTracker::new(),
            grace,
        }
    }

    /// Resolves once shutdown was asked for.
    pub(crate) async fn requested(&self) {
        self.shutdown.cancelled().await;
    }

    /// The shutdown token, for loops that wait on it themselves.
    pub(crate) fn token(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// The grace in-flight deliveries get.
    pub(crate) fn grace(&self) -> Duration {
        self.grace
    }

    /// Runs a delivery (or a retired channel's wind-down) as a tracked
    /// task that ends, unsettled, when the grace runs out.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let abandon = self.abandon.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = task => {}
                // Grace ran out: leave the message unsettled; the broker
                // redelivers it once the channel closes.
                () = abandon.cancelled() => {}
            }
        });
    }

    /// Waits for every task, at most the grace, then abandons the rest.
    pub(crate) async fn finish(&self) -> DrainEnd {
        self.tasks.close();
        if tokio::time::timeout(self.grace, self.tasks.wait())
            .await
            .is_ok()
        {
            return DrainEnd::Drained;
        }
        let left = self.tasks.len();
        self.abandon.cancel();
        self.tasks.wait().await;
        DrainEnd::Abandoned(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn finished_tasks_drain_and_stuck_ones_are_abandoned_after_the_grace() {
        let drain = Drain::new(CancellationToken::new(), Duration::from_secs(5));
        drain.spawn(async {});
        assert_eq!(drain.finish().await, DrainEnd::Drained);

        let drain = Drain::new(CancellationToken::new(), Duration::from_secs(5));
        drain.spawn(tokio::time::sleep(Duration::from_secs(1)));
        drain.spawn(std::future::pending());
        let started = tokio::time::Instant::now();
        assert_eq!(drain.finish().await, DrainEnd::Abandoned(1));
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }
}
