//! `dead replay`: moving the selection back to `P.deliveries`, paced so a
//! receiver that just recovered is not stampeded, with a progress bar on a
//! terminal and a summary at the end.

use std::{io::IsTerminal, time::Duration};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::{
    DeadQueue, SelectionArgs, now_ms,
    outcome::{self, Action, Output},
};
use crate::{
    Error,
    broker::dead_letters::{self, Pacing, ReplayProgress},
    domain::selection::Selection,
};

/// `dead replay`.
#[derive(Debug, Args)]
pub(crate) struct Replay {
    /// Print one JSON object (what was, or would be, replayed) instead of
    /// text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    queue: DeadQueue,
    #[command(flatten)]
    selection: SelectionArgs,
    #[command(flatten)]
    pacing: PacingArgs,
}

/// How fast, and whether for real.
#[derive(Debug, Args)]
#[command(next_help_heading = "Pacing")]
struct PacingArgs {
    /// Move at most this many messages per second (e.g. 20, or 0.5), so a
    /// recovered receiver is not stampeded; 0 (the default): as fast as the
    /// broker confirms, as for `publish --rate`.
    #[arg(long, value_name = "N", value_parser = parse_rate, default_value = "0")]
    rate: Rate,
    /// Only show what would move; move nothing.
    #[arg(long)]
    dry_run: bool,
}

/// `--rate`: a pace, or none.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rate {
    /// As fast as the broker confirms.
    Unlimited,
    /// At most this many messages per second.
    PerSecond(f64),
}

/// Why a `--rate` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate must be 0 (no limit) or a number of messages per second between 0.001 and 1000000")]
struct RateError;

fn parse_rate(s: &str) -> Result<Rate, RateError> {
    match s.trim().parse::<f64>() {
        Ok(0.0) => Ok(Rate::Unlimited),
        Ok(r) if r.is_finite() && (0.001..=1_000_000.0).contains(&r) => Ok(Rate::PerSecond(r)),
        _ => Err(RateError),
    }
}

impl Replay {
    pub(super) async fn execute(self) -> Result<(), Error> {
        let started_ms = now_ms();
        let selection = self.selection.selection(started_ms)?;
        let conn = self.queue.connect("dead replay").await?;
        let result = self.replay(&conn, &selection, started_ms).await;
        let _ = conn.close(200, "replayed".into()).await;
        result.map_err(|e| self.queue.explain(e))
    }

    async fn replay(
        &self,
        conn: &std::sync::Arc<lapin::Connection>,
        selection: &Selection,
        started_ms: i64,
    ) -> Result<(), Error> {
        let topology = self.queue.topology();
        let output = Output::of(self.json);
        if self.pacing.dry_run {
            return outcome::dry_run(conn, &topology, selection, Action::Replay, output).await;
        }
        let bar = progress_bar();
        let mut progress = |p: ReplayProgress| match p {
            ReplayProgress::Pass(n) => {
                bar.set_length(n);
                bar.set_position(0);
            }
            ReplayProgress::Kept => bar.inc(1),
            ReplayProgress::Taken(moved) => {
                bar.inc(1);
                bar.set_message(moved_message(moved, bar.elapsed(), "replayed"));
            }
        };
        let rate = match self.pacing.rate {
            Rate::Unlimited => None,
            Rate::PerSecond(r) => Some(r),
        };
        let report = dead_letters::replay(
            conn,
            &topology,
            selection,
            Pacing::new(rate),
            started_ms,
            &mut progress,
        )
        .await;
        bar.finish_and_clear();
        outcome::report(&report?, Action::Replay, output);
        Ok(())
    }
}

/// "12 replayed, 4.0/s": the rate of the messages moved, not of the
/// messages looked at (which `--rate` does not pace).
pub(super) fn moved_message(moved: u64, elapsed: Duration, what: &str) -> String {
    let secs = elapsed.as_secs_f64();
    if secs < 0.5 {
        return format!("{moved} {what}");
    }
    format!("{moved} {what}, {:.1}/s", moved as f64 / secs)
}

/// A bar on stderr when it is a terminal; nothing otherwise (logs and
/// pipes stay clean).
pub(super) fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} looked at, {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_zero_for_none_or_positive_and_bounded() {
        assert_eq!(parse_rate("20"), Ok(Rate::PerSecond(20.0)));
        assert_eq!(parse_rate("0.5"), Ok(Rate::PerSecond(0.5)));
        assert_eq!(parse_rate("0"), Ok(Rate::Unlimited));
        assert_eq!(parse_rate("0.0"), Ok(Rate::Unlimited));
        for bad in ["-1", "0.0001", "NaN", "inf", "fast", "1e9"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_bar_shows_the_rate_of_what_moved() {
        assert_eq!(
            moved_message(3, Duration::from_millis(100), "replayed"),
            "3 replayed"
        );
        assert_eq!(
            moved_message(12, Duration::from_secs(3), "replayed"),
            "12 replayed, 4.0/s"
        );
    }
}
