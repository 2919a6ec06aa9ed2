//! `dead list` and `dead show`: looking at parked messages without
//! consuming them. Neither ever prints a secret: `list` shows no body and
//! no producer header, `show` redacts both (see
//! [`crate::domain::parked::redacted_body`] and
//! [`crate::broker::dead_letters::shown_headers`]).

use clap::Args;
use serde_json::{Value, json};

use super::{DeadQueue, SelectionArgs, now_ms, rfc3339};
use crate::{
    Error,
    broker::dead_letters::{self, Parked, shown_headers},
    domain::parked::redacted_body,
};

/// `dead list`.
#[derive(Debug, Args)]
pub(crate) struct List {
    /// Print one JSON object per message instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    queue: DeadQueue,
    #[command(flatten)]
    selection: SelectionArgs,
}

impl List {
    pub(super) async fn execute(self) -> Result<(), Error> {
        let selection = self.selection.selection(now_ms())?;
        let conn = self.queue.connect("dead list").await?;
        let mut rows = Vec::new();
        let json = self.json;
        let seen = dead_letters::inspect(&conn, &self.queue.topology(), &selection, |p, _| {
            if json {
                println!("{}", summary_json(&p));
            } else {
                rows.push(p);
            }
        })
        .await;
        let _ = conn.close(200, "listed".into()).await;
        let seen = seen.map_err(|e| self.queue.explain(e.into()))?;
        if !json {
            print!("{}", table(&rows));
        }
        eprintln!(
            "{} parked message(s) selected of {} looked at",
            seen.selected, seen.looked
        );
        Ok(())
    }
}

/// `dead show ID`.
#[derive(Debug, Args)]
pub(crate) struct Show {
    /// The event id of the message (every parked copy with it is shown).
    id: String,
    /// Print one JSON object per message.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    queue: DeadQueue,
    #[command(flatten)]
    selection: SelectionArgs,
}

impl Show {
    pub(super) async fn execute(self) -> Result<(), Error> {
        let mut selection = self.selection.selection(now_ms())?;
        let conn = self.queue.connect("dead show").await?;
        selection.ids.push(self.id.clone());
        let json = self.json;
        let seen = dead_letters::inspect(&conn, &self.queue.topology(), &selection, |p, d| {
            let mut full = summary_json(&p);
            full["headers"] = Value::Object(shown_headers(&d.properties));
            let body = redacted_body(&d.data);
            full["body"] = match serde_json::from_str(&body) {
                Ok(parsed) if json => parsed,
                _ => Value::String(body),
            };
            if json {
                println!("{full}");
            } else {
                println!("{}", detail(&full));
            }
        })
        .await;
        let _ = conn.close(200, "shown".into()).await;
        if seen.map_err(|e| self.queue.explain(e.into()))?.selected == 0 {
            return Err(Error::NotFound(format!(
                "no parked message with id '{}' (and the rest of the selection)",
                self.id
            )));
        }
        Ok(())
    }
}

/// The JSON object of one message in `dead list --json` (and the head of
/// `dead show --json`).
pub(super) fn summary_json(p: &Parked) -> Value {
    json!({
        "id": p.id,
        "webhook": p.webhook,
        "event": p.event,
        "host": p.host,
        "reason": p.reason,
        "attempts": p.attempts,
        "first_attempt_at": p.first_attempt_ms.map(rfc3339),
        "parked_at": p.parked_at_ms.map(rfc3339),
        "last_error": p.last_error,
        "size": p.size,
    })
}

/// The table of `dead list` (and of `dead replay --dry-run`).
pub(super) fn table(rows: &[Parked]) -> String {
    let head = [
        "ID",
        "WEBHOOK",
        "HOST",
        "REASON",
        "ATTEMPTS",
        "PARKED AT",
        "LAST ERROR",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|p| {
            [
                p.id.clone().unwrap_or_else(|| "?".into()),
                p.webhook.map_or_else(|| "?".into(), |w| w.to_string()),
                p.host.clone().unwrap_or_else(|| "?".into()),
                p.reason.clone(),
                p.attempts.to_string(),
                p.parked_at_ms.map_or_else(|| "?".into(), rfc3339),
                p.last_error.chars().take(80).collect(),
            ]
        })
        .collect();
    let mut widths = head.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[&str]| {
        let mut s = String::new();
        for (i, (c, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&head);
    for row in &cells {
        out.push_str(&line(&row.each_ref().map(String::as_str)));
    }
    out
}

/// `dead show` for people: one field per line, then headers and body.
fn detail(full: &Value) -> String {
    let text = |v: &Value| match v {
        Value::Null => "?".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = String::new();
    for (label, key) in [
        ("id", "id"),
        ("webhook", "webhook"),
        ("event", "event"),
        ("host", "host"),
        ("reason", "reason"),
        ("attempts", "attempts"),
        ("first attempt", "first_attempt_at"),
        ("parked at", "parked_at"),
        ("last error", "last_error"),
        ("size (bytes)", "size"),
    ] {
        out.push_str(&format!("{label:<14} {}\n", text(&full[key])));
    }
    out.push_str("headers\n");
    if let Value::Object(h) = &full["headers"] {
        for (k, v) in h {
            out.push_str(&format!("  {k}: {}\n", text(v)));
        }
    }
    out.push_str("body\n");
    for l in text(&full["body"]).lines() {
        out.push_str(&format!("  {l}\n"));
    }
    out
}
