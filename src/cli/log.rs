//! `webhook-worker log`: what happened to an event, read from the delivery
//! log `P.log` (contract section 8) without changing it — shaped like
//! `journalctl`: a selection, `--since` (default: the last hour), `--until`,
//! `--follow`, a table for people and `--json` (one event per line).
//!
//! The read starts at `--since` (the stream seeks there by timestamp, so a
//! bracketing `--since` reads little of a long log) and ends when nothing
//! new arrives for a moment or the events have passed `--until` (or the
//! command's start); `--follow` keeps reading until interrupted. While a
//! scan runs longer than a moment, a progress line on stderr (a terminal
//! only) says how far it got; a summary line on stderr ends it.

use std::{
    io::Write,
    time::{Duration, Instant},
};

use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

use super::connect_once;
use crate::{
    Error,
    broker::delivery_log::{LogReader, Read},
    clock::now_ms,
    config::{BrokerArgs, Config, NameArgs},
    domain::{
        log_selection::LogSelection,
        outcome_event::{OutcomeEvent, OutcomeKind},
        selection::{TimeSpec, parse_host, parse_time_spec},
    },
    error::is_missing_queue,
};

/// The read starts this much before `--since`: the broker seeks by whole
/// seconds and chunks, and workers' clocks differ a little.
const START_MARGIN_MS: i64 = 10_000;

/// Events later than the end of the window by this much mean the read has
/// passed it (workers publish an event within milliseconds of its `at`).
const PAST_END_MS: i64 = 2_000;

/// A one-shot read ends when nothing arrived for this long (longer for
/// the first message, which may need the broker to seek).
const IDLE: Duration = Duration::from_secs(1);
const FIRST_IDLE: Duration = Duration::from_secs(5);

/// When the progress line appears.
const PROGRESS_AFTER: Duration = Duration::from_secs(1);

/// Print outcome events from the delivery log.
#[derive(Debug, Args)]
pub(super) struct Log {
    /// Only events of this event id; repeatable.
    #[arg(long = "id", value_name = "ID")]
    ids: Vec<String>,
    /// Only events of receivers with this host (no port).
    #[arg(long, value_name = "HOST", value_parser = parse_host)]
    receiver: Option<String>,
    /// Only events of this webhook number.
    #[arg(long, value_name = "N")]
    webhook: Option<i64>,
    /// Only events of this site id.
    #[arg(long, value_name = "N")]
    site: Option<i64>,
    /// Only events of this kind: attempt.succeeded, attempt.failed,
    /// message.parked, message.deferred, receiver.failing,
    /// receiver.recovered.
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    kind: Option<OutcomeKind>,
    /// Events at or after this time: RFC 3339 (2024-05-01T12:00:00Z) or an
    /// age (30m, 2h, 1d).
    #[arg(long, value_name = "TIME", value_parser = parse_time_spec, default_value = "1h")]
    since: TimeSpec,
    /// Events at or before this time: RFC 3339 or an age.
    #[arg(long, value_name = "TIME", value_parser = parse_time_spec)]
    until: Option<TimeSpec>,
    /// At most this many events.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    /// Keep printing new events until interrupted.
    #[arg(long, short = 'f')]
    follow: bool,
    /// Print one JSON object per event instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(flatten)]
    names: NameArgs,
}

/// Why a `--kind` was refused.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown kind '{0}' (one of: {kinds})", kinds = OutcomeKind::ALL.map(OutcomeKind::as_str).join(", "))]
struct KindError(String);

fn parse_kind(s: &str) -> Result<OutcomeKind, KindError> {
    OutcomeKind::parse(s.trim()).ok_or_else(|| KindError(s.trim().to_string()))
}

impl Log {
    fn selection(&self, now_ms: i64) -> Result<LogSelection, Error> {
        let selection = LogSelection {
            ids: self.ids.clone(),
            receiver_host: self.receiver.clone(),
            webhook: self.webhook,
            site_id: self.site,
            kind: self.kind,
            since_ms: self.since.resolve(now_ms),
            until_ms: self.until.map(|t| t.resolve(now_ms)),
            limit: self.limit,
        };
        if selection.is_empty_window() {
            return Err(Error::Usage(format!(
                "--since ({}) is later than --until ({}): the window selects nothing",
                rfc3339(selection.since_ms),
                rfc3339(selection.until_ms.unwrap_or_default())
            )));
        }
        Ok(selection)
    }

    pub(super) async fn execute(self) -> Result<(), Error> {
        let started_ms = now_ms();
        let selection = self.selection(started_ms)?;
        let topology = crate::config::topology(&self.names, &Config::defaults().topology);
        let conn = connect_once(&self.broker, "log").await?;
        let stream = topology.log();
        let reader = LogReader::open(&conn, stream, selection.since_ms - START_MARGIN_MS)
            .await
            .map_err(|e| {
                if is_missing_queue(&e, stream) {
                    Error::NotFound(format!(
                        "no stream '{stream}' — is --prefix right? (prefix '{}'; workers with WEBHOOK_LOG_RETENTION=0 keep no log)",
                        topology.prefix()
                    ))
                } else {
                    e.into()
                }
            })?;
        let end = match (self.follow, selection.until_ms) {
            (_, Some(until)) => Some(until),
            (false, None) => Some(started_ms),
            (true, None) => None,
        };
        let mut scan = Scan::new(selection, self.json);
        let result = scan.run(reader, end, self.follow).await;
        let _ = conn.close(200, "read".into()).await;
        scan.finish();
        result
    }
}

/// One read of the log: what it printed and how far it got.
struct Scan {
    selection: LogSelection,
    json: bool,
    out: std::io::BufWriter<std::io::Stdout>,
    messages: u64,
    events: u64,
    shown: u64,
    started: Instant,
    progress: indicatif::ProgressBar,
}

impl Scan {
    fn new(selection: LogSelection, json: bool) -> Self {
        let progress = indicatif::ProgressBar::with_draw_target(
            None,
            indicatif::ProgressDrawTarget::stderr_with_hz(4),
        );
        progress.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}").expect("valid template"),
        );
        Self {
            selection,
            json,
            out: std::io::BufWriter::new(std::io::stdout()),
            messages: 0,
            events: 0,
            shown: 0,
            started: Instant::now(),
            progress,
        }
    }

    /// Reads until the end (none with `--follow`), the limit, or a signal.
    async fn run(
        &mut self,
        mut reader: LogReader,
        end_ms: Option<i64>,
        follow: bool,
    ) -> Result<(), Error> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        if !self.json {
            self.write(&table_header())?;
        }
        let mut idle = (!follow).then_some(FIRST_IDLE);
        let result = loop {
            let read = tokio::select! {
                read = reader.next(idle) => read,
                _ = term.recv() => break Ok(()),
                _ = int.recv() => break Ok(()),
            };
            let body = match read {
                Ok(Read::Message(body)) => body,
                Ok(Read::Idle) => break Ok(()),
                Err(e) => break Err(e.into()),
            };
            idle = idle.map(|_| IDLE);
            match self.message(&body, end_ms) {
                Ok(Step::Go) => {}
                Ok(Step::Done) => break Ok(()),
                Err(e) => break Err(e),
            }
            if follow {
                self.out.flush()?;
            }
        };
        reader.close().await;
        result
    }

    /// Prints what one message holds that is selected.
    fn message(&mut self, body: &[u8], end_ms: Option<i64>) -> Result<Step, Error> {
        self.messages += 1;
        let text = String::from_utf8_lossy(body);
        let mut oldest: Option<i64> = None;
        for line in text.split('\n').filter(|l| !l.trim().is_empty()) {
            self.events += 1;
            if !self.selection.may_match_line(line) {
                continue;
            }
            let Ok(event) = serde_json::from_str::<OutcomeEvent>(line) else {
                continue;
            };
            let at = event.at_ms();
            if let Some(t) = at {
                oldest = Some(oldest.map_or(t, |o| o.min(t)));
            }
            if !self.selection.matches(&event) {
                continue;
            }
            let line = if self.json {
                serde_json::to_string(&event).expect("an event serialises") + "\n"
            } else {
                table_row(&event)
            };
            self.write(&line)?;
            self.shown += 1;
            if self.selection.is_full(self.shown) {
                return Ok(Step::Done);
            }
        }
        self.show_progress(oldest);
        let past_end = matches!((end_ms, oldest), (Some(end), Some(at)) if at > end + PAST_END_MS);
        Ok(if past_end { Step::Done } else { Step::Go })
    }

    fn write(&mut self, s: &str) -> Result<(), Error> {
        self.out.write_all(s.as_bytes())?;
        Ok(())
    }

    fn show_progress(&self, at: Option<i64>) {
        if self.started.elapsed() < PROGRESS_AFTER || !self.messages.is_multiple_of(64) {
            return;
        }
        self.progress.set_message(format!(
            "read {} events ({} messages), at {}; {} shown",
            self.events,
            self.messages,
            at.map_or_else(|| "?".into(), rfc3339),
            self.shown
        ));
        self.progress.tick();
    }

    fn finish(&mut self) {
        let _ = self.out.flush();
        self.progress.finish_and_clear();
        eprintln!(
            "{} event(s) shown of {} read ({} messages of the log) in {:.1}s",
            self.shown,
            self.events,
            self.messages,
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// Whether to read on.
enum Step {
    Go,
    Done,
}

/// The columns, with their widths (the last one unpadded).
const COLUMNS: [(&str, usize); 9] = [
    ("TIME", 24),
    ("ID", 24),
    ("WEBHOOK", 7),
    ("RECEIVER", 28),
    ("ATTEMPT", 7),
    ("OUTCOME", 16),
    ("STATUS", 6),
    ("DURATION", 8),
    ("NEXT", 0),
];

fn table_header() -> String {
    line(COLUMNS.map(|(name, _)| name.to_string()))
}

fn line(cells: [String; 9]) -> String {
    let mut s = String::new();
    for (cell, (_, width)) in cells.iter().zip(COLUMNS) {
        s.push_str(&format!("{cell:<width$}  "));
    }
    s.trim_end().to_string() + "\n"
}

/// One event as a table row.
fn table_row(e: &OutcomeEvent) -> String {
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let outcome = e.outcome.clone().unwrap_or_else(|| {
        let kind = e.kind.as_str();
        kind.split_once('.')
            .map_or(kind, |(_, what)| what)
            .to_string()
    });
    let next = match (e.kind, e.next) {
        (OutcomeKind::MessageDeferred, _) => format!("defer {}", e.tier.as_deref().unwrap_or("?")),
        (_, Some(n)) => {
            let n = serde_json::to_value(n).expect("serialises");
            let detail = e.tier.as_deref().or(e.reason.as_deref()).unwrap_or("");
            format!("{} {detail}", n.as_str().unwrap_or("?"))
        }
        (_, None) => e.error.clone().unwrap_or_else(|| "-".into()),
    };
    line([
        e.at.clone(),
        or_dash(e.id.clone()),
        or_dash(e.webhook.map(|w| w.to_string())),
        or_dash(e.receiver.clone()),
        or_dash(e.attempt.map(|a| a.to_string())),
        outcome,
        or_dash(e.status.map(|s| s.to_string())),
        or_dash(e.duration_ms.map(|d| format!("{d}ms"))),
        next.trim_end().to_string(),
    ])
}

/// A unix-ms instant as RFC 3339 with milliseconds.
fn rfc3339(ms: i64) -> String {
    crate::domain::outcome_event::rfc3339_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::outcome_event::Next;

    #[test]
    fn rows_say_what_followed() {
        let mut e = OutcomeEvent::new(OutcomeKind::AttemptFailed, 1_700_000_000_000);
        e.id = Some("e-1".into());
        e.attempt = Some(2);
        e.status = Some(503);
        e.outcome = Some("http_error".into());
        e.next = Some(Next::Retry);
        e.tier = Some("60s".into());
        e.duration_ms = Some(12);
        let row = table_row(&e);
        assert!(row.starts_with("2023-11-14T22:13:20.000Z  e-1 "), "{row}");
        assert!(row.contains(" http_error "), "{row}");
        assert!(row.trim_end().ends_with("12ms      retry 60s"), "{row}");
        let mut d = OutcomeEvent::new(OutcomeKind::MessageDeferred, 0);
        d.tier = Some("1s".into());
        assert!(table_row(&d).contains(" deferred "));
        assert!(table_row(&d).trim_end().ends_with("defer 1s"));
        assert!(table_header().starts_with("TIME "));
    }
}
