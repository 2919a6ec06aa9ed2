//! Everything the bench takes from the `webhook_worker` library, in one
//! place: the library is being restructured, so when a name moves this is
//! the only file to fix. The rest of the bench uses the wrappers below (its
//! own `QueueType`, `Topology`), never `webhook_worker::` directly.

use webhook_worker::{broker::topology, config};

/// Outcome events as the worker writes them to `P.outcomes`.
pub(crate) use webhook_worker::domain::outcome_event::{
    Next, OutcomeEvent, OutcomeKind, encode_batch,
};

use crate::Res;

/// The worker's default `WEBHOOK_CONCURRENCY`, as compiled into the library
/// next to this bench (a `--worker-bin` built elsewhere may differ: the
/// report records the value the worker logged at start).
pub(crate) const DEFAULT_CONCURRENCY: u16 = config::DEFAULT_CONCURRENCY;
/// The worker's default `WEBHOOK_HOST_CONCURRENCY`, likewise.
pub(crate) const DEFAULT_HOST_CONCURRENCY: u16 = config::DEFAULT_HOST_CONCURRENCY;

/// Queue type of a scenario's queues (`--queue-type` of the worker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum QueueType {
    Quorum,
    Classic,
}

impl std::fmt::Display for QueueType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(qt_name(*self))
    }
}

pub(crate) fn qt_name(q: QueueType) -> &'static str {
    match q {
        QueueType::Quorum => "quorum",
        QueueType::Classic => "classic",
    }
}

/// The worker's topology (contract section 2) for one scenario's prefix.
pub(crate) struct Topology(topology::Topology);

impl Topology {
    /// The worker's defaults with this prefix, queue type and, when given,
    /// retry schedule.
    pub(crate) fn new(prefix: &str, qt: QueueType, schedule: Option<&str>) -> Self {
        let mut c = config::Config::defaults();
        c.names.prefix = prefix.to_string();
        c.topology.queue_type = match qt {
            QueueType::Quorum => topology::QueueType::Quorum,
            QueueType::Classic => topology::QueueType::Classic,
        };
        if let Some(s) = schedule {
            c.topology.retry_schedule = s.parse().expect("retry schedule");
        }
        Self(c.topology())
    }

    /// Declares it exactly as the worker would (so the worker's own
    /// declaration at start is a no-op).
    pub(crate) async fn declare(&self, conn: &lapin::Connection) -> Res<()> {
        self.0.declare(conn).await?;
        Ok(())
    }

    pub(crate) fn exchange(&self) -> &str {
        self.0.exchange()
    }

    pub(crate) fn deliveries(&self) -> &str {
        self.0.deliveries()
    }

    pub(crate) fn dead(&self) -> &str {
        self.0.dead()
    }

    /// The delivery log stream (`P.log`).
    pub(crate) fn log(&self) -> &str {
        self.0.log()
    }

    /// The outcome events' exchange (`P.outcomes`).
    pub(crate) fn outcomes(&self) -> &str {
        self.0.outcomes()
    }

    /// `P.retry.<delay>` of every tier of the schedule.
    pub(crate) fn retry_queues(&self) -> Vec<String> {
        self.0
            .tiers()
            .iter()
            .map(|(tier, _)| self.0.retry_queue(tier))
            .collect()
    }
}
