//! `dead purge`: deleting the selection for good. It shows the count and
//! asks first; `--yes` skips the question, and without a terminal to ask
//! on it refuses rather than guess.

use std::io::{BufRead, IsTerminal, Write};

use clap::Args;

use super::{DeadQueue, SelectionArgs, by_reason_line, now_ms, replay::progress_bar};
use crate::{
    Error,
    broker::dead_letters::{self, ReplayProgress},
};

/// `dead purge`.
#[derive(Debug, Args)]
pub(crate) struct Purge {
    /// Delete without asking.
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    queue: DeadQueue,
    #[command(flatten)]
    selection: SelectionArgs,
}

impl Purge {
    pub(super) async fn execute(self) -> Result<(), Error> {
        if !self.yes && !std::io::stdin().is_terminal() {
            return Err(Error::Usage(
                "dead purge asks before deleting, and standard input is not a terminal: pass --yes to purge without asking".into(),
            ));
        }
        let conn = self.queue.connect("dead purge").await?;
        let result = self.purge(&conn).await;
        let _ = conn.close(200, "purged".into()).await;
        result
    }

    async fn purge(&self, conn: &lapin::Connection) -> Result<(), Error> {
        let topology = self.queue.topology();
        let cutoff_ms = now_ms();
        let mut selection = self.selection.selection(cutoff_ms);
        if !self.yes {
            let seen = dead_letters::inspect(conn, &topology, &selection, |_, _| {}).await?;
            if seen.selected == 0 {
                println!("nothing to purge: no parked message selected");
                return Ok(());
            }
            let question = format!(
                "delete {} of the {} parked message(s) in {} for good? [y/N] ",
                seen.selected,
                seen.looked,
                topology.dead()
            );
            if !confirmed(&question)? {
                println!("not confirmed: nothing purged");
                return Ok(());
            }
            // No more than the operator agreed to, even if more matching
            // messages arrived since.
            selection.limit = Some(seen.selected);
        }
        let bar = progress_bar();
        let mut progress = |p: ReplayProgress| match p {
            ReplayProgress::Pass(n) => bar.set_length(n),
            ReplayProgress::Kept | ReplayProgress::Taken(_) => bar.inc(1),
        };
        let report =
            dead_letters::purge(conn, &topology, &selection, cutoff_ms, &mut progress).await;
        bar.finish_and_clear();
        let report = report?;
        println!(
            "purged {} message(s); {} left parked",
            report.taken, report.kept
        );
        if !report.by_reason.is_empty() {
            println!("  by reason: {}", by_reason_line(&report.by_reason));
        }
        Ok(())
    }
}

/// Asks on stderr, reads one line from stdin: yes only for `y` / `yes`.
fn confirmed(question: &str) -> Result<bool, Error> {
    eprint!("{question}");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
