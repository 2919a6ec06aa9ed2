//! `dead replay` and `dead purge`: taking the selected messages out of
//! `P.dead`, each only after what replaces it (a confirmed copy in
//! `P.deliveries` — in a sharded topology, in the shard of the event's
//! `site_id` through `P.shards` — or nothing for a purge) is done.
//!
//! A long paced replay holds every unselected message it has looked at
//! unacked for as long as its scan runs, and RabbitMQ closes a channel
//! whose oldest unacked message is older than its `consumer_timeout`
//! (30 minutes by default). So a replay works in *passes* no longer than
//! [`Pacing::pass`]: at the end of one, the scan's channel closes (the
//! unselected messages go back where they were) and a new scan starts
//! from the head, skipping them again. Each pass looks at no more messages
//! than remain of those parked when the replay started.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use lapin::{Connection, message::Delivery};

use super::{parked::Parked, scan::Scan};
use crate::{
    broker::{
        publisher::{PublishError, Publisher},
        retry_headers::without_retry_headers,
        shards,
        topology::Topology,
    },
    domain::selection::Selection,
};

/// How fast a replay moves messages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacing {
    /// Messages per second; `None`: as fast as the broker confirms.
    pub rate: Option<f64>,
    /// Longest pass over the queue (see the module doc).
    pub pass: Duration,
}

impl Pacing {
    /// Passes short enough for RabbitMQ's default 30 minute
    /// `consumer_timeout`.
    pub const DEFAULT_PASS: Duration = Duration::from_secs(600);

    /// At most `rate` messages per second (`None`: unlimited).
    pub fn new(rate: Option<f64>) -> Self {
        Self {
            rate,
            pass: Self::DEFAULT_PASS,
        }
    }
}

/// What a replay or purge did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Messages taken out of `P.dead` (replayed, or purged).
    pub taken: u64,
    /// Messages that were parked when the command started and are still
    /// parked.
    pub kept: u64,
    /// `taken`, by reason.
    pub by_reason: BTreeMap<String, u64>,
}

/// What a replay did.
pub type ReplayReport = Tally;
/// What a purge did.
pub type PurgeReport = Tally;

/// Progress of a replay or purge, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayProgress {
    /// A pass starts that looks at up to this many messages.
    Pass(u64),
    /// One message looked at (and kept).
    Kept,
    /// One message taken; `taken` so far.
    Taken(u64),
}

/// What happens to a selected message before it leaves `P.dead`.
enum Action<'a> {
    Replay {
        publisher: Publisher,
        deliveries: &'a str,
        /// `P.shards` when sharded: a message goes back by its site.
        shards: Option<String>,
        pacer: Pacer,
    },
    Purge,
}

/// Moves the selected messages back to `P.deliveries` through the default
/// exchange, retry state cleared; each copy is confirmed before its
/// original is acked. Messages parked after `cutoff_ms` are left alone:
/// they are this replay's own messages failing again.
pub async fn replay(
    conn: &Arc<Connection>,
    topology: &Topology,
    selection: &Selection,
    pacing: Pacing,
    cutoff_ms: i64,
    progress: &mut dyn FnMut(ReplayProgress),
) -> Result<ReplayReport, PublishError> {
    // The broker's own shard count decides where replayed messages go, so
    // the `dead` commands need no shard setting.
    let sharded = matches!(
        shards::broker_shards(conn, topology).await?,
        shards::BrokerShards::Sharded(_)
    );
    let publisher = Publisher::open(conn).await?;
    let mut action = Action::Replay {
        publisher: publisher.clone(),
        deliveries: topology.deliveries(),
        shards: sharded.then(|| shards::hash_exchange(topology)),
        pacer: Pacer::new(pacing.rate),
    };
    let result = drive(
        conn,
        topology,
        selection,
        &mut action,
        pacing.pass,
        cutoff_ms,
        progress,
    )
    .await;
    publisher.close().await;
    result
}

/// Deletes the selected messages parked no later than `cutoff_ms` (the
/// moment the operator was shown the count).
pub async fn purge(
    conn: &Connection,
    topology: &Topology,
    selection: &Selection,
    cutoff_ms: i64,
    progress: &mut dyn FnMut(ReplayProgress),
) -> Result<PurgeReport, PublishError> {
    drive(
        conn,
        topology,
        selection,
        &mut Action::Purge,
        Duration::MAX,
        cutoff_ms,
        progress,
    )
    .await
}

/// How a pass ended.
enum PassEnd {
    /// Every message of the pass was looked at, or the limit was reached.
    Complete,
    /// The pass ran out of time: another one follows.
    OutOfTime,
}

async fn drive(
    conn: &Connection,
    topology: &Topology,
    selection: &Selection,
    action: &mut Action<'_>,
    pass_length: Duration,
    cutoff_ms: i64,
    progress: &mut dyn FnMut(ReplayProgress),
) -> Result<Tally, PublishError> {
    let mut tally = Tally::default();
    let mut originals: Option<u64> = None;
    loop {
        let bound = originals.map(|o| o.saturating_sub(tally.taken));
        let mut scan = Scan::open(conn, topology.dead(), bound).await?;
        let originals = *originals.get_or_insert(scan.left());
        progress(ReplayProgress::Pass(scan.left()));
        let end = pass(
            &mut scan,
            selection,
            action,
            pass_length,
            cutoff_ms,
            &mut tally,
            progress,
        )
        .await;
        scan.close().await;
        match end? {
            PassEnd::Complete => {
                tally.kept = originals.saturating_sub(tally.taken);
                return Ok(tally);
            }
            PassEnd::OutOfTime => {
                tracing::debug!(taken = tally.taken, "pass over; rescanning");
            }
        }
    }
}

async fn pass(
    scan: &mut Scan,
    selection: &Selection,
    action: &mut Action<'_>,
    pass_length: Duration,
    cutoff_ms: i64,
    tally: &mut Tally,
    progress: &mut dyn FnMut(ReplayProgress),
) -> Result<PassEnd, PublishError> {
    let started = Instant::now();
    while !selection.is_full(tally.taken) {
        if started.elapsed() >= pass_length {
            return Ok(PassEnd::OutOfTime);
        }
        let Some((delivery, parked)) = scan.next().await? else {
            break;
        };
        let parked_since = parked.parked_at_ms.is_some_and(|t| t > cutoff_ms);
        if parked_since || !selection.matches(&parked.facts()) {
            progress(ReplayProgress::Kept);
            continue;
        }
        action.apply(&delivery, &parked).await?;
        scan.take(&delivery).await?;
        tally.taken += 1;
        *tally.by_reason.entry(parked.reason).or_default() += 1;
        progress(ReplayProgress::Taken(tally.taken));
    }
    Ok(PassEnd::Complete)
}

impl Action<'_> {
    async fn apply(&mut self, delivery: &Delivery, parked: &Parked) -> Result<(), PublishError> {
        match self {
            Action::Replay {
                publisher,
                deliveries,
                shards,
                pacer,
            } => {
                pacer.wait().await;
                let headers = without_retry_headers(delivery.properties.headers().as_ref());
                let site;
                // Unsharded: the default exchange to `P.deliveries`;
                // sharded: `P.shards` by the event's site, as its
                // producer routed it (never `P`, whose other queues would
                // see it twice).
                let (exchange, key) = match shards {
                    None => ("", *deliveries),
                    Some(hash) => {
                        site = shards::site_key(&delivery.data);
                        (hash.as_str(), site.as_str())
                    }
                };
                publisher
                    .publish_to(
                        exchange,
                        key,
                        &delivery.data,
                        delivery.properties.clone().with_headers(headers),
                    )
                    .await?;
                tracing::debug!(id = parked.id.as_deref().unwrap_or("?"), reason = %parked.reason, "replayed");
            }
            Action::Purge => {
                tracing::debug!(id = parked.id.as_deref().unwrap_or("?"), reason = %parked.reason, "purged");
            }
        }
        Ok(())
    }
}

/// Spaces publishes `1/rate` apart, on a fixed schedule: a publish that
/// took longer than the interval is made up by the next ones, so the
/// average holds. Behind by more than [`CATCH_UP`] (a long stretch of
/// unselected messages, a new pass), it starts over from now rather than
/// bursting to catch up.
/// How far behind its schedule the pacer still catches up.
const CATCH_UP: Duration = Duration::from_secs(1);

struct Pacer {
    interval: Option<Duration>,
    next: Option<tokio::time::Instant>,
}

impl Pacer {
    fn new(rate: Option<f64>) -> Self {
        Self {
            interval: rate
                .filter(|r| r.is_finite() && *r > 0.0)
                .map(|r| Duration::from_secs_f64(1.0 / r)),
            next: None,
        }
    }

    async fn wait(&mut self) {
        let Some(interval) = self.interval else {
            return;
        };
        let now = tokio::time::Instant::now();
        let mut due = self.next.unwrap_or(now);
        if due > now {
            tokio::time::sleep_until(due).await;
        } else if now.duration_since(due) > CATCH_UP.max(interval) {
            due = now;
        }
        self.next = Some(due + interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_pacer_spaces_publishes_and_does_not_burst_after_a_gap() {
        let mut p = Pacer::new(Some(10.0));
        let t0 = tokio::time::Instant::now();
        for _ in 0..11 {
            p.wait().await;
        }
        assert_eq!(t0.elapsed(), Duration::from_secs(1));
        tokio::time::sleep(Duration::from_secs(5)).await;
        let t1 = tokio::time::Instant::now();
        p.wait().await;
        p.wait().await;
        assert_eq!(
            t1.elapsed(),
            Duration::from_millis(100),
            "no catch-up burst"
        );

        let mut unlimited = Pacer::new(None);
        let t2 = tokio::time::Instant::now();
        unlimited.wait().await;
        assert_eq!(t2.elapsed(), Duration::ZERO);
    }
}
