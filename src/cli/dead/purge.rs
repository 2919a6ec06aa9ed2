//! `dead purge`: deleting the selection for good. It shows the count and
//! asks first; `--yes` skips the question, and without a terminal to ask
//! on it refuses rather than guess.

use std::io::{BufRead, IsTerminal, Write};

use clap::Args;

use super::{
    DeadQueue, SelectionArgs, now_ms,
    outcome::{self, Action, Output},
    replay::{moved_message, progress_bar},
};
use crate::{
    Error,
    broker::dead_letters::{self, ReplayProgress},
    domain::selection::Selection,
};

/// `dead purge`.
#[derive(Debug, Args)]
pub(crate) struct Purge {
    /// Delete without asking.
    #[arg(long)]
    yes: bool,
    /// Only show what would be deleted; delete nothing (asks nothing).
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON object (what was, or would be, deleted) instead of
    /// text; the question, if any, still goes to stderr.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    queue: DeadQueue,
    #[command(flatten)]
    selection: SelectionArgs,
}

impl Purge {
    pub(super) async fn execute(self) -> Result<(), Error> {
        let cutoff_ms = now_ms();
        let selection = self.selection.selection(cutoff_ms)?;
        if !self.yes && !self.dry_run && !std::io::stdin().is_terminal() {
            return Err(Error::Usage(
                "dead purge asks before deleting, and standard input is not a terminal: pass --yes to purge without asking".into(),
            ));
        }
        let conn = self.queue.connect("dead purge").await?;
        let result = self.purge(&conn, selection, cutoff_ms).await;
        let _ = conn.close(200, "purged".into()).await;
        result.map_err(|e| self.queue.explain(e))
    }

    async fn purge(
        &self,
        conn: &lapin::Connection,
        mut selection: Selection,
        cutoff_ms: i64,
    ) -> Result<(), Error> {
        let topology = self.queue.topology();
        let output = Output::of(self.json);
        if self.dry_run {
            return outcome::dry_run(conn, &topology, &selection, Action::Purge, output).await;
        }
        if !self.yes {
            let seen = dead_letters::inspect(conn, &topology, &selection, |_, _| {}).await?;
            if seen.selected == 0 {
                outcome::nothing(Action::Purge, output, seen.looked);
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
            ReplayProgress::Kept => bar.inc(1),
            ReplayProgress::Taken(gone) => {
                bar.inc(1);
                bar.set_message(moved_message(gone, bar.elapsed(), "purged"));
            }
        };
        let report =
            dead_letters::purge(conn, &topology, &selection, cutoff_ms, &mut progress).await;
        bar.finish_and_clear();
        outcome::report(&report?, Action::Purge, output);
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
