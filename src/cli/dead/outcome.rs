//! What `dead replay` and `dead purge` print: the dry run (what would move
//! or go, moving nothing) and the tally of what did, as text for people or
//! one JSON object with `--json`.

use std::collections::BTreeMap;

use serde_json::json;

use super::{by_reason_line, list};
use crate::{
    Error,
    broker::{
        dead_letters::{self, Tally},
        topology::Topology,
    },
    domain::selection::Selection,
};

/// Which command reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// `dead replay`.
    Replay,
    /// `dead purge`.
    Purge,
}

impl Action {
    fn command(self) -> &'static str {
        match self {
            Action::Replay => "dead replay",
            Action::Purge => "dead purge",
        }
    }

    fn past(self) -> &'static str {
        match self {
            Action::Replay => "replayed",
            Action::Purge => "purged",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Action::Replay => "replay",
            Action::Purge => "purge",
        }
    }
}

/// How the outcome is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Output {
    /// A table and lines for people.
    Text,
    /// One JSON object on stdout.
    Json,
}

impl Output {
    pub(super) fn of(json: bool) -> Self {
        if json { Output::Json } else { Output::Text }
    }
}

/// Shows what `action` would do to the selection, changing nothing.
pub(super) async fn dry_run(
    conn: &lapin::Connection,
    topology: &Topology,
    selection: &Selection,
    action: Action,
    output: Output,
) -> Result<(), Error> {
    let mut rows = Vec::new();
    let seen = dead_letters::inspect(conn, topology, selection, |p, _| rows.push(p)).await?;
    let mut by_reason = BTreeMap::new();
    for p in &rows {
        *by_reason.entry(p.reason.clone()).or_insert(0u64) += 1;
    }
    match output {
        Output::Json => println!(
            "{}",
            json!({
                "command": action.command(),
                "dry_run": true,
                "count": seen.selected,
                "looked_at": seen.looked,
                "by_reason": by_reason,
                "ids": rows.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
            })
        ),
        Output::Text => {
            print!("{}", list::table(&rows));
            println!(
                "dry run: would {} {} message(s); {} looked at",
                action.verb(),
                seen.selected,
                seen.looked
            );
            if !by_reason.is_empty() {
                println!("  by reason: {}", by_reason_line(&by_reason));
            }
        }
    }
    Ok(())
}

/// Prints what `action` did.
pub(super) fn report(tally: &Tally, action: Action, output: Output) {
    match output {
        Output::Json => println!(
            "{}",
            json!({
                "command": action.command(),
                "dry_run": false,
                "count": tally.taken,
                "left_parked": tally.kept,
                "by_reason": tally.by_reason,
            })
        ),
        Output::Text => {
            println!(
                "{} {} message(s); {} left parked",
                action.past(),
                tally.taken,
                tally.kept
            );
            if !tally.by_reason.is_empty() {
                println!("  by reason: {}", by_reason_line(&tally.by_reason));
            }
        }
    }
}

/// Prints that nothing was selected, so nothing was done.
pub(super) fn nothing(action: Action, output: Output, looked: u64) {
    match output {
        Output::Json => println!(
            "{}",
            json!({"command": action.command(), "dry_run": false, "count": 0, "looked_at": looked, "by_reason": {}})
        ),
        Output::Text => println!("nothing to {}: no parked message selected", action.verb()),
    }
}
