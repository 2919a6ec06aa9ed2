//! The drain scenarios of issue 23, each run `--burst-repeat` times (5)
//! with a fresh consumer per run, the naive loop in the same round:
//!
//! - `burst`: `--burst-sizes` events (10 000 and 50 000) to one healthy
//!   100 ms receiver. Targets: 0 deferrals in every run, and the worker's
//!   first → last rate ≥ 3 × the naive loop's (medians).
//! - `instant`: 20 000 events to one receiver answering at once (the
//!   same figures, to compare binaries; the throughput scenario's
//!   `success` measures it with more baselines).
//! - `ten-hang`: 30 000 events over ten 100 ms receivers, then the same
//!   30 000 with one more receiver that hangs taking every eleventh event
//!   (33 000 in all). Target: the ten keep ≥ 0.9 of their rate without it
//!   (median of the paired per-round ratios).

use serde_json::{Map, Value, json};

use super::{Bench, drain::Drain, vrun::Sut};
use crate::{Res, vhosts::Behave};

const LATENCY_MS: u64 = 100;
/// The ten's events in the ten-hang runs.
const TEN_EVENTS: usize = 30_000;

/// Events of the instant-receiver drain.
const INSTANT_EVENTS: usize = 20_000;

/// `n` events to one receiver answering after `ms`.
fn burst(n: usize, ms: u64) -> Drain {
    Drain {
        name: match ms {
            0 => format!("instant{n}"),
            _ => format!("burst{n}"),
        },
        hosts: vec![Behave::Ok(ms)],
        route: |_| 0,
        events: n,
        measured: vec![0],
    }
}

fn ten() -> Drain {
    Drain {
        name: "ten".into(),
        hosts: vec![Behave::Ok(LATENCY_MS); 10],
        route: |i| i % 10,
        events: TEN_EVENTS,
        measured: (0..10).collect(),
    }
}

/// Event i: every eleventh to the hanging receiver (host 10), the rest
/// round robin over the ten.
fn ten_and_hanging() -> Drain {
    let mut hosts = vec![Behave::Ok(LATENCY_MS); 10];
    hosts.push(Behave::Hang);
    Drain {
        name: "tenhang".into(),
        hosts,
        route: |i| {
            if i % 11 == 10 {
                10
            } else {
                (i / 11 * 10 + i % 11) % 10
            }
        },
        events: TEN_EVENTS * 11 / 10,
        measured: (0..10).collect(),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn field(runs: &[Value], path: &[&str]) -> Vec<f64> {
    runs.iter()
        .map(|r| path.iter().fold(r, |v, k| &v[*k]).as_f64().unwrap_or(0.0))
        .collect()
}

/// Rounds of one SUT: every run's rate, deferrals, latency; the medians.
fn summarise(runs: &[Value]) -> Value {
    json!({
        "per_s": field(runs, &["per_s"]),
        "median_per_s": median(field(runs, &["per_s"])).round(),
        "first_to_last_s": field(runs, &["first_to_last_s"]),
        "deferred": field(runs, &["deferred"]),
        "lost": field(runs, &["lost"]),
        "latency_ms_p50": field(runs, &["latency_ms", "p50"]),
        "latency_ms_p99": field(runs, &["latency_ms", "p99"]),
        "latency_ms_max": field(runs, &["latency_ms", "max"]),
        "cpu_s": field(runs, &["cpu_s"]),
        "broker_cpu_s": field(runs, &["broker_cpu_s"]),
    })
}

impl Bench {
    fn bins(&self) -> Vec<(String, Sut<'_>)> {
        self.worker_bins
            .iter()
            .enumerate()
            .map(|(k, b)| (format!("worker{k}"), Sut::Worker(b)))
            .collect()
    }

    /// Runs the bursts and ten-hang (as selected) into `results["drains"]`.
    pub(super) async fn drains(&self, results: &mut Map<String, Value>) -> Res<()> {
        let mut out = Map::new();
        let repeat = self.opts.burst_repeat;
        let mut drains: Vec<Drain> = Vec::new();
        if self.opts.wants("burst") {
            drains.extend(self.opts.burst_sizes.iter().map(|&n| burst(n, LATENCY_MS)));
        }
        if self.opts.wants("instant") {
            drains.push(burst(INSTANT_EVENTS, 0));
        }
        for d in drains {
            let (mut naive, mut workers) = (Vec::new(), vec![Vec::new(); self.worker_bins.len()]);
            for r in 0..repeat {
                eprintln!("bench: ---- {}, round {} of {repeat}", d.name, r + 1);
                naive.push(self.drain_run(&d, Sut::Naive, "naive").await?);
                for (k, (label, sut)) in self.bins().into_iter().enumerate() {
                    workers[k].push(self.drain_run(&d, sut, &label).await?);
                }
            }
            out.insert(d.name.clone(), self.drain_figures(&naive, &workers));
        }
        if self.opts.wants("ten-hang") {
            let (alone, with) = (ten(), ten_and_hanging());
            let mut naive = Vec::new();
            let mut runs = vec![(Vec::new(), Vec::new()); self.worker_bins.len()];
            for r in 0..repeat {
                eprintln!(
                    "bench: ---- ten (+ one hanging), round {} of {repeat}",
                    r + 1
                );
                naive.push(self.drain_run(&alone, Sut::Naive, "naive").await?);
                for (k, (label, sut)) in self.bins().into_iter().enumerate() {
                    runs[k].0.push(self.drain_run(&alone, sut, &label).await?);
                    runs[k].1.push(self.drain_run(&with, sut, &label).await?);
                }
            }
            let figures: Vec<Value> = runs
                .iter()
                .zip(&self.worker_bins)
                .map(|((a, w), bin)| {
                    let ratios: Vec<f64> = a
                        .iter()
                        .zip(w)
                        .map(|(a, w)| {
                            w["per_s"].as_f64().unwrap_or(0.0)
                                / a["per_s"].as_f64().unwrap_or(1.0).max(1.0)
                        })
                        .map(|x| (x * 1000.0).round() / 1000.0)
                        .collect();
                    json!({
                        "worker_bin": bin.display().to_string(),
                        "ten_alone": summarise(a),
                        "ten_with_hanging": summarise(w),
                        "share_per_round": ratios,
                        "median_share": median(ratios.clone()),
                        "target_share_ge_0_9": median(ratios) >= 0.9,
                        "runs_alone": a,
                        "runs_with_hanging": w,
                    })
                })
                .collect();
            out.insert(
                "ten-hang".into(),
                json!({ "naive_ten_alone": summarise(&naive), "naive_runs": naive, "workers": figures }),
            );
        }
        if !out.is_empty() {
            results.insert("drains".into(), Value::Object(out));
        }
        Ok(())
    }

    fn drain_figures(&self, naive: &[Value], workers: &[Vec<Value>]) -> Value {
        let naive_s = summarise(naive);
        let naive_median = naive_s["median_per_s"].as_f64().unwrap_or(1.0).max(1.0);
        let figures: Vec<Value> = workers
            .iter()
            .zip(&self.worker_bins)
            .map(|(runs, bin)| {
                let s = summarise(runs);
                let x = s["median_per_s"].as_f64().unwrap_or(0.0) / naive_median;
                json!({
                    "worker_bin": bin.display().to_string(),
                    "summary": s,
                    "x_naive": (x * 100.0).round() / 100.0,
                    "target_x_naive_ge_3": x >= 3.0,
                    "target_no_deferral": field(runs, &["deferred"]).iter().all(|d| *d == 0.0),
                    "runs": runs,
                })
            })
            .collect();
        json!({ "naive": naive_s, "naive_runs": naive, "workers": figures })
    }
}
