//! `dead stats`: the first thing on-call runs. How many messages are
//! parked, why, for which webhooks and which receivers, since when.

use std::collections::BTreeMap;

use clap::Args;
use serde_json::json;

use super::{DeadQueue, SelectionArgs, now_ms, rfc3339};
use crate::{
    Error,
    broker::dead_letters::{self, Parked},
};

/// `dead stats`.
#[derive(Debug, Args)]
pub(crate) struct Stats {
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
    /// Show the busiest N webhooks and hosts.
    #[arg(long, value_name = "N", default_value_t = 10)]
    top: usize,
    #[command(flatten)]
    queue: DeadQueue,
    #[command(flatten)]
    selection: SelectionArgs,
}

impl Stats {
    pub(super) async fn execute(self) -> Result<(), Error> {
        let selection = self.selection.selection(now_ms())?;
        let conn = self.queue.connect("dead stats").await?;
        let topology = self.queue.topology();
        let mut counts = Counts::default();
        let seen = dead_letters::inspect(&conn, &topology, &selection, |p, _| counts.add(&p)).await;
        let _ = conn.close(200, "counted".into()).await;
        seen.map_err(|e| self.queue.explain(e.into()))?;
        if self.json {
            println!("{}", counts.json(self.top));
        } else {
            print!("{}", counts.text(topology.dead(), self.top));
        }
        Ok(())
    }
}

/// The key, in the tables, of messages without a webhook number or host.
const UNKNOWN: &str = "?";

/// The counts of a selection.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    total: u64,
    by_reason: BTreeMap<String, u64>,
    by_webhook: BTreeMap<String, u64>,
    by_host: BTreeMap<String, u64>,
    oldest_ms: Option<i64>,
    newest_ms: Option<i64>,
}

impl Counts {
    fn add(&mut self, p: &Parked) {
        self.total += 1;
        *self.by_reason.entry(p.reason.clone()).or_default() += 1;
        let webhook = p.webhook.map_or_else(|| UNKNOWN.into(), |w| w.to_string());
        *self.by_webhook.entry(webhook).or_default() += 1;
        let host = p.host.clone().unwrap_or_else(|| UNKNOWN.into());
        *self.by_host.entry(host).or_default() += 1;
        if let Some(t) = p.parked_at_ms {
            self.oldest_ms = Some(self.oldest_ms.map_or(t, |o| o.min(t)));
            self.newest_ms = Some(self.newest_ms.map_or(t, |n| n.max(t)));
        }
    }

    fn json(&self, top: usize) -> serde_json::Value {
        // A message without a webhook number or a host is counted apart
        // (`without_webhook`, `without_host`): a JSON key cannot be null,
        // and `list --json` shows the unknown value as null, not "?".
        let top_of = |m: &BTreeMap<String, u64>| -> serde_json::Map<String, serde_json::Value> {
            busiest(m, top)
                .into_iter()
                .filter(|(k, _)| *k != UNKNOWN)
                .map(|(k, n)| (k.to_string(), n.into()))
                .collect()
        };
        let known = |m: &BTreeMap<String, u64>| m.keys().filter(|k| *k != UNKNOWN).count();
        let unknown = |m: &BTreeMap<String, u64>| m.get(UNKNOWN).copied().unwrap_or(0);
        json!({
            "total": self.total,
            "by_reason": self.by_reason,
            "by_webhook": top_of(&self.by_webhook),
            "by_host": top_of(&self.by_host),
            "without_webhook": unknown(&self.by_webhook),
            "without_host": unknown(&self.by_host),
            "webhooks": known(&self.by_webhook),
            "hosts": known(&self.by_host),
            "oldest_parked_at": self.oldest_ms.map(rfc3339),
            "newest_parked_at": self.newest_ms.map(rfc3339),
        })
    }

    fn text(&self, queue: &str, top: usize) -> String {
        let mut out = format!("{} parked message(s) selected in {queue}\n", self.total);
        if let (Some(o), Some(n)) = (self.oldest_ms, self.newest_ms) {
            out.push_str(&format!(
                "oldest parked {}, newest {}\n",
                rfc3339(o),
                rfc3339(n)
            ));
        }
        for (title, map, limit) in [
            ("REASON", &self.by_reason, usize::MAX),
            ("WEBHOOK", &self.by_webhook, top),
            ("HOST", &self.by_host, top),
        ] {
            let rows = busiest(map, limit);
            let width = rows
                .iter()
                .map(|(k, _)| k.chars().count())
                .chain([title.len()])
                .max()
                .unwrap_or(0);
            out.push_str(&format!("\n{title:<width$}  COUNT\n"));
            for (k, n) in &rows {
                out.push_str(&format!("{k:<width$}  {n}\n"));
            }
            if rows.len() < map.len() {
                let rest: u64 =
                    map.values().sum::<u64>() - rows.iter().map(|(_, n)| n).sum::<u64>();
                out.push_str(&format!(
                    "({} more, {rest} message(s))\n",
                    map.len() - rows.len()
                ));
            }
        }
        out
    }
}

/// The `n` largest counts, largest first (ties by name).
fn busiest(m: &BTreeMap<String, u64>, n: usize) -> Vec<(&str, u64)> {
    let mut v: Vec<_> = m.iter().map(|(k, n)| (k.as_str(), *n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.truncate(n);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parked(reason: &str, webhook: i64, host: &str, at: i64) -> Parked {
        Parked {
            id: Some("e".into()),
            webhook: Some(webhook),
            event: None,
            host: Some(host.into()),
            reason: reason.into(),
            attempts: 1,
            first_attempt_ms: None,
            parked_at_ms: Some(at),
            last_error: String::new(),
            size: 2,
        }
    }

    #[test]
    fn counts_by_reason_webhook_and_host_with_the_top_n() {
        let mut c = Counts::default();
        c.add(&parked("gone", 104, "a.example", 3000));
        c.add(&parked("gone", 104, "b.example", 1000));
        c.add(&parked("expired", 201, "a.example", 2000));
        let mut unknown = parked("malformed", 0, "", 0);
        (unknown.webhook, unknown.host, unknown.parked_at_ms) = (None, None, None);
        c.add(&unknown);
        let j = c.json(1);
        assert_eq!(j["total"], 4);
        assert_eq!(
            j["by_reason"],
            json!({"gone": 2, "expired": 1, "malformed": 1})
        );
        assert_eq!(j["by_webhook"], json!({"104": 2}));
        assert_eq!(j["by_host"], json!({"a.example": 2}));
        assert_eq!(j["hosts"], 2);
        assert_eq!(j["webhooks"], 2);
        assert_eq!(
            (j["without_webhook"].clone(), j["without_host"].clone()),
            (json!(1), json!(1))
        );
        assert!(!j.to_string().contains('?'), "{j}");
        assert_eq!(j["oldest_parked_at"], "1970-01-01T00:00:01Z");
        assert_eq!(j["newest_parked_at"], "1970-01-01T00:00:03Z");
        let text = c.text("p.dead", 1);
        assert!(
            text.starts_with("4 parked message(s) selected in p.dead\n"),
            "{text}"
        );
        assert!(
            text.contains("\nREASON     COUNT\ngone       2\nexpired    1\n"),
            "{text}"
        );
        assert!(text.contains("(2 more, 2 message(s))"), "{text}");
    }
}
