//! `dead replay`: moving the selection back to `P.deliveries`, paced so a
//! receiver that just recovered is not stampeded, with a progress bar on a
//! terminal and a summary at the end.

use std::io::IsTerminal;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::{DeadQueue, SelectionArgs, by_reason_line, list, now_ms};
use crate::{
    Error,
    broker::dead_letters::{self, Pacing, ReplayProgress},
};

/// `dead replay`.
#[derive(Debug, Args)]
pub(crate) struct Replay {
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
    /// recovered receiver is not stampeded; default: as fast as the broker
    /// confirms.
    #[arg(long, value_name = "N", value_parser = parse_rate)]
    rate: Option<f64>,
    /// Only show what would move; move nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Why a `--rate` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate must be a number of messages per second between 0.001 and 1000000")]
struct RateError;

fn parse_rate(s: &str) -> Result<f64, RateError> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && (0.001..=1_000_000.0).contains(&r) => Ok(r),
        _ => Err(RateError),
    }
}

impl Replay {
    pub(super) async fn execute(self) -> Result<(), Error> {
        let conn = self.queue.connect("dead replay").await?;
        let topology = self.queue.topology();
        let started_ms = now_ms();
        let selection = self.selection.selection(started_ms);
        if self.pacing.dry_run {
            let mut rows = Vec::new();
            let seen =
                dead_letters::inspect(&conn, &topology, &selection, |p, _| rows.push(p)).await;
            let _ = conn.close(200, "dry run".into()).await;
            let seen = seen?;
            print!("{}", list::table(&rows));
            let mut by_reason = std::collections::BTreeMap::new();
            for p in &rows {
                *by_reason.entry(p.reason.clone()).or_insert(0u64) += 1;
            }
            println!(
                "dry run: would replay {} message(s); {} looked at",
                seen.selected, seen.looked
            );
            if !by_reason.is_empty() {
                println!("  by reason: {}", by_reason_line(&by_reason));
            }
            return Ok(());
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
                bar.set_message(format!("{moved} replayed"));
            }
        };
        let report = dead_letters::replay(
            &conn,
            &topology,
            &selection,
            Pacing::new(self.pacing.rate),
            started_ms,
            &mut progress,
        )
        .await;
        bar.finish_and_clear();
        let _ = conn.close(200, "replayed".into()).await;
        let report = report?;
        println!(
            "replayed {} message(s); {} left parked",
            report.taken, report.kept
        );
        if !report.by_reason.is_empty() {
            println!("  by reason: {}", by_reason_line(&report.by_reason));
        }
        Ok(())
    }
}

/// A bar on stderr when it is a terminal; nothing otherwise (logs and
/// pipes stay clean).
pub(super) fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} looked at, {msg} ({per_sec})",
    ) {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_positive_and_bounded() {
        assert_eq!(parse_rate("20"), Ok(20.0));
        assert_eq!(parse_rate("0.5"), Ok(0.5));
        for bad in ["0", "-1", "NaN", "inf", "fast", "1e9"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
}
