//! `webhook-worker log --id` on a delivery log of a million events
//! (bench/README.md, "Outcome events"): the log is filled with outcome
//! events as the worker writes them (64 to a message, the group commit's
//! batches under load, every field a real event has), then `log --id X`
//! is timed for one event in the middle, with `--since`/`--until`
//! bracketing it by a minute each way, and once over the whole log.

use std::{process::Command, time::Instant};

use lapin::{BasicProperties, options::BasicPublishOptions};
use serde_json::{Value, json};

use super::Bench;
use crate::{
    Res, amqp_url,
    lib_api::{Next, OutcomeEvent, OutcomeKind, QueueType, encode_batch},
    sys::round,
};

const EVENTS: usize = 1_000_000;
const PER_MESSAGE: usize = 64;

impl Bench {
    pub(super) async fn log_scan(&self) -> Res<Value> {
        let prefix = self.prefix("log-scan");
        let t = self
            .broker
            .declare(&prefix, QueueType::Classic, None)
            .await?;
        let channel = self.broker.channel().await?;
        eprintln!(
            "bench: log scan: publishing {EVENTS} events to {}",
            t.outcomes()
        );
        let started = Instant::now();
        let mut pending = std::collections::VecDeque::new();
        let target = format!("scan-{}", EVENTS / 2);
        let mut target_at = 0;
        for m in 0..EVENTS / PER_MESSAGE {
            let now_ms = wall_ms();
            let events: Vec<OutcomeEvent> = (0..PER_MESSAGE)
                .map(|i| event(m * PER_MESSAGE + i, now_ms))
                .collect();
            if events.iter().any(|e| e.id.as_deref() == Some(&target)) {
                target_at = now_ms;
            }
            let confirm = channel
                .basic_publish(
                    t.outcomes().into(),
                    "attempt.succeeded".into(),
                    BasicPublishOptions::default(),
                    &encode_batch(&events),
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await?;
            pending.push_back(confirm);
            if pending.len() >= 256 {
                pending.pop_front().unwrap().await?;
            }
        }
        for c in pending {
            c.await?;
        }
        let publish_s = started.elapsed().as_secs_f64();
        let disk = super::outcomes::stream_disk_bytes(t.log());
        let at = |ms: i64| {
            humantime::format_rfc3339_millis(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64),
            )
            .to_string()
        };
        let bracketed = self.time_log(
            &prefix,
            &target,
            &at(target_at - 60_000),
            &at(target_at + 60_000),
        )?;
        let whole = self.time_log(&prefix, &target, "1h", "0s")?;
        self.broker.cleanup(&t).await;
        let r = json!({
            "events": EVENTS,
            "events_per_message": PER_MESSAGE,
            "publish_s": round(publish_s, 1),
            "log_disk_bytes": disk,
            "log_disk_bytes_per_million_events": disk.map(|d| (d as f64 * 1e6 / EVENTS as f64).round()),
            "log_id_bracketed_1min": bracketed,
            "log_id_whole_log": whole,
        });
        eprintln!("bench:   {r}");
        Ok(r)
    }

    /// Runs `log --id` and returns its wall time and what it printed last.
    fn time_log(&self, prefix: &str, id: &str, since: &str, until: &str) -> Res<Value> {
        let started = Instant::now();
        let out = Command::new(self.worker_bin())
            .args([
                "log", "--prefix", prefix, "--id", id, "--json", "--since", since, "--until", until,
            ])
            .env("AMQP_URL", amqp_url())
            .output()?;
        let secs = started.elapsed().as_secs_f64();
        let found = String::from_utf8_lossy(&out.stdout).lines().count();
        let summary = String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or("")
            .to_string();
        Ok(
            json!({ "wall_s": round(secs, 2), "found": found, "exit": out.status.code(), "summary": summary }),
        )
    }
}

/// Unix milliseconds now (the events' `at` and the broker's chunk
/// timestamps must be on the same clock).
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One event with every field a real `attempt.succeeded` has.
fn event(n: usize, at_ms: i64) -> OutcomeEvent {
    let mut e = OutcomeEvent::new(OutcomeKind::AttemptSucceeded, at_ms);
    e.id = Some(format!("scan-{n}"));
    e.webhook = Some(104);
    e.event = Some("Chat.started".into());
    e.site_id = Some(10_000 + (n % 500) as i64);
    e.receiver = Some(format!("https://hooks-{}.example.com:443", n % 200));
    e.attempt = Some(1);
    e.outcome = Some("success".into());
    e.status = Some(200);
    e.duration_ms = Some((n % 300) as u64);
    e.next = Some(Next::Done);
    e.worker = Some("webhook-worker-7d9f8c6b5-x2k4p".into());
    e
}
