//! Worker binaries side by side in one run (`--only compare` with two or
//! more `--worker-bin`; bench/README.md, "Issue 22 refactor: before and
//! after"): the success path against the instant receiver and against one
//! answering after 100 ms, and the failure (retry) path, per queue type.
//! Every round runs every binary once per case, the order rotated from one
//! round to the next (A B C, B C A, …), so a drift of the machine's speed
//! hits them alike. Each binary's figure is its median round; its ratio to
//! the first binary is the median of the per-round ratios; its noise is the
//! spread of its own rounds, (max − min) ÷ median. Each binary declares its
//! own topology (`<bin> declare`): an older one may refuse the arguments
//! today's library gives a queue.

use std::path::PathBuf;

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

/// One path of the worker the binaries are compared on.
#[derive(Clone, Copy)]
enum Case {
    /// Every event to the receiver answering at once.
    Instant,
    /// Every event to the receiver answering after [`SLOW_MS`].
    Slow,
    /// Every receiver answers 500: each event goes to the retry tier.
    Failure,
}

impl Case {
    const ALL: [Case; 3] = [Case::Instant, Case::Slow, Case::Failure];

    fn name(self) -> &'static str {
        match self {
            Case::Instant => "instant",
            Case::Slow => "100ms",
            Case::Failure => "failure",
        }
    }
}

impl Bench {
    pub(super) async fn compare(&self) -> Res<Value> {
        let bins: &[PathBuf] = &self.worker_bins;
        let mut out = Map::new();
        for &qt in &self.opts.queue_types {
            let mut by_case = Map::new();
            for case in Case::ALL {
                let slow: Option<&Port> = matches!(case, Case::Slow).then_some(&*self.recv.slow);
                if let Some(p) = slow {
                    p.set(Mode::Hang, SLOW_MS);
                }
                let mut runs: Vec<Vec<Value>> = vec![Vec::new(); bins.len()];
                for r in 0..self.opts.repeat {
                    eprintln!(
                        "bench: ---- compare, {}, {}, round {} of {}",
                        qt_name(qt),
                        case.name(),
                        r + 1,
                        self.opts.repeat
                    );
                    for k in 0..bins.len() {
                        let i = (r + k) % bins.len();
                        let failing = matches!(case, Case::Failure);
                        let tag = format!("-{}-bin{i}", case.name());
                        let under = Under {
                            bin: &bins[i],
                            tag: &tag,
                            declared_by: DeclaredBy::Binary,
                        };
                        runs[i].push(self.worker_run_on(&under, qt, failing, &[], slow).await?);
                    }
                }
                if let Some(p) = slow {
                    p.set(Mode::Gate, 60_000);
                }
                by_case.insert(case.name().into(), compared(bins, &runs));
            }
            out.insert(qt_name(qt).into(), Value::Object(by_case));
        }
        Ok(Value::Object(out))
    }
}

/// Each binary's median round, its rounds' spread, and its per-round ratio
/// to the first binary.
fn compared(bins: &[PathBuf], runs: &[Vec<Value>]) -> Value {
    let by_bin: Vec<Value> = bins
        .iter()
        .zip(runs)
        .map(|(bin, rounds)| {
            let rates: Vec<f64> = rounds.iter().map(per_s).collect();
            let mid = median(&rates);
            let spread = rates.iter().copied().fold(f64::MIN, f64::max)
                - rates.iter().copied().fold(f64::MAX, f64::min);
            let ratios: Vec<f64> = rounds
                .iter()
                .zip(&runs[0])
                .map(|(b, a)| per_s(b) / per_s(a))
                .collect();
            let cpu: Vec<f64> = rounds
                .iter()
                .filter_map(|r| r["cpu_us_per_delivery"].as_f64())
                .collect();
            json!({
                "worker_bin": bin.display().to_string(),
                "median_run": median_run(rounds),
                "per_s": mid.round(),
                "cpu_us_per_delivery": round(median(&cpu), 1),
                "spread": round(spread / mid, 3),
                "over_first": round(median(&ratios), 3),
                "rounds_over_first": ratios.iter().map(|x| round(*x, 3)).collect::<Vec<_>>(),
            })
        })
        .collect();
    Value::Array(by_bin)
}

/// The compare scenario as a Markdown table (empty when it did not run).
pub(crate) fn table(r: &Value) -> String {
    use std::fmt::Write;
    let Some(by_qt) = r["compare"].as_object() else {
        return String::new();
    };
    let mut s = String::from(
        "\n| queue | case | binary | deliveries/s (median) | spread of rounds | CPU-µs/delivery | ÷ first (median; rounds) |\n|---|---|---|---:|---:|---:|---|\n",
    );
    for (qt, cases) in by_qt {
        for (case, bins) in cases.as_object().into_iter().flatten() {
            for b in bins.as_array().into_iter().flatten() {
                let _ = writeln!(
                    s,
                    "| {qt} | {case} | {} | {} | {} | {} | {} ({}) |",
                    b["worker_bin"].as_str().unwrap_or("?"),
                    b["per_s"],
                    b["spread"],
                    b["cpu_us_per_delivery"],
                    b["over_first"],
                    b["rounds_over_first"]
                );
            }
        }
    }
    s
}
