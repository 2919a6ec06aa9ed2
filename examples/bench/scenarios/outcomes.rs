//! Outcome events on vs off, in the same run (bench/README.md, "Outcome
//! events"): the worker's success path with `--outcomes all` and
//! `--outcomes off`, interleaved per round, against the instant receiver
//! and a receiver answering after 100 ms, per queue type; the ratio of
//! the rates, the CPU per delivered event, and the bytes `P.log` takes on
//! the broker's disk per million events.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{
    Bench, median, median_run, per_s,
    throughput::{DeclaredBy, Under},
};
use crate::{
    Res,
    lib_api::qt_name,
    receiver::{Mode, Port},
    sys::round,
};

/// Latency of the slow receiver of this scenario.
const SLOW_MS: u64 = 100;

impl Bench {
    /// Every `--worker-bin` runs `off` then `all` in every round, so
    /// variants compare in the same run; the first binary's figures are
    /// also the scenario's top level, as with one binary.
    pub(super) async fn outcomes(&self) -> Res<Value> {
        let mut out = Map::new();
        let slow: &Arc<Port> = &self.recv.slow;
        let tags: Vec<String> = (0..self.worker_bins.len())
            .map(|k| {
                if k == 0 {
                    String::new()
                } else {
                    format!("-bin{k}")
                }
            })
            .collect();
        for &qt in &self.opts.queue_types {
            let mut by_receiver = Map::new();
            for (name, to) in [("instant", None), ("100ms", Some(slow))] {
                if to.is_some() {
                    slow.set(Mode::Hang, SLOW_MS);
                }
                let mut runs = vec![(Vec::new(), Vec::new()); self.worker_bins.len()];
                for round in 0..self.opts.repeat {
                    eprintln!(
                        "bench: ---- outcomes, {}, {name} receiver, round {} of {}",
                        qt_name(qt),
                        round + 1,
                        self.opts.repeat
                    );
                    let to = to.map(|p| p.as_ref());
                    for ((bin, tag), (off, all)) in
                        self.worker_bins.iter().zip(&tags).zip(runs.iter_mut())
                    {
                        for (mode, into) in [("off", &mut *off), ("all", &mut *all)] {
                            let under = Under {
                                bin,
                                tag,
                                declared_by: DeclaredBy::Harness,
                            };
                            let args = ["--outcomes", mode];
                            into.push(self.worker_run_on(&under, qt, false, &args, to).await?);
                        }
                    }
                }
                if to.is_some() {
                    slow.set(Mode::Gate, 60_000);
                }
                let mut figures: Vec<Value> = runs
                    .iter()
                    .zip(&self.worker_bins)
                    .map(|((off, all), bin)| on_over_off(off, all, bin))
                    .collect();
                let mut first = figures.remove(0);
                if !figures.is_empty() {
                    first["other_worker_bins"] = Value::Array(figures);
                }
                by_receiver.insert(name.into(), first);
            }
            out.insert(qt_name(qt).into(), Value::Object(by_receiver));
        }
        Ok(Value::Object(out))
    }
}

/// One binary's rounds: the medians, `all ÷ off` per round and its median,
/// and `P.log`'s bytes per million events.
fn on_over_off(off: &[Value], all: &[Value], bin: &std::path::Path) -> Value {
    let ratios: Vec<f64> = off
        .iter()
        .zip(all)
        .map(|(o, a)| per_s(a) / per_s(o))
        .collect();
    let steady = |v: &Value| v["steady_per_s"].as_f64().unwrap_or(0.0);
    let steady_ratios: Vec<f64> = off
        .iter()
        .zip(all)
        .map(|(o, a)| steady(a) / steady(o))
        .collect();
    let disk: Vec<f64> = all
        .iter()
        .filter_map(|a| Some(a["log_disk_bytes"].as_f64()? * 1e6 / a["n"].as_f64()?))
        .collect();
    json!({
        "worker_bin": bin.display().to_string(),
        "off": median_run(off),
        "all": median_run(all),
        "all_over_off": round(median(&ratios), 3),
        "rounds_all_over_off": ratios.iter().map(|r| round(*r, 3)).collect::<Vec<_>>(),
        "steady_all_over_off": round(median(&steady_ratios), 3),
        "rounds_steady_all_over_off": steady_ratios.iter().map(|r| round(*r, 3)).collect::<Vec<_>>(),
        "log_disk_bytes_per_million_events": (!disk.is_empty()).then(|| median(&disk).round()),
    })
}

/// Bytes of the stream `queue` on the broker's disk: its directory under
/// `BENCH_STREAM_DIR` (default: the local node's), `None` when not found.
pub(super) fn stream_disk_bytes(queue: &str) -> Option<u64> {
    let dir = std::env::var("BENCH_STREAM_DIR")
        .unwrap_or_else(|_| "/var/lib/rabbitmq/mnesia/rabbit@localhost/stream".into());
    let prefix = format!("__{}_", queue.replace('.', "_"));
    let entry = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))?;
    Some(dir_bytes(&entry.path()))
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    })
}
