//! The receiver scenarios (slow, fleet, hang, turns-bad, overloaded): the
//! round loop (in each round and scenario, the naive baseline once, then
//! every worker binary), the per-round figures, the medians, the targets,
//! and the two timeline charts.

use serde_json::{Map, Value, json};

use super::{
    Bench, fleet, hang, overloaded,
    receivers_report::{figures, summary, verdicts},
    slow, turns_bad,
    vrun::{BIN_S, Plan, Sut},
};
use crate::{Res, chart, sys::round};

pub(super) const ALL: [&str; 5] = ["slow", "fleet", "hang", "turns-bad", "overloaded"];

fn plan_of(name: &str) -> Plan {
    match name {
        "slow" => slow::plan(),
        "fleet" => fleet::plan(),
        "hang" => hang::plan(),
        "turns-bad" => turns_bad::plan(),
        _ => overloaded::plan(),
    }
}

/// The others' (every group but the hanging one) 2xx per second, per bin.
fn others_bins(run: &Value) -> Vec<f64> {
    let groups = run["timeline"]["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let bins = &run["timeline"]["ok_per_bin"];
    let n = bins[0].as_array().map_or(0, Vec::len);
    (0..n)
        .map(|b| {
            groups
                .iter()
                .enumerate()
                .filter(|(_, g)| !matches!(g.as_str(), Some(hang::HANGING | turns_bad::BAD)))
                .map(|(g, _)| bins[g][b].as_f64().unwrap_or(0.0))
                .sum::<f64>()
                / BIN_S
        })
        .collect()
}

pub(super) fn others_steady(run: &Value) -> f64 {
    run["steady_per_s_by_group"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), hang::HANGING | turns_bad::BAD))
                .filter_map(|(_, v)| v.as_f64())
                .sum()
        })
        .unwrap_or(0.0)
}

/// Turns-bad: the others' mean rate before the turn, how long after it
/// they were back to ≥ 80 % (end of the first such half second), and their
/// mean and lowest share from 2 s after it to the end of the window.
pub(super) fn recovery(run: &Value) -> Value {
    let bins = others_bins(run);
    let at = run["turned_bad_at_s"]
        .as_f64()
        .unwrap_or(turns_bad::TURNS_AT_S);
    let window = run["window_s"]
        .as_f64()
        .unwrap_or(25.0)
        .min(run["ran_s"].as_f64().unwrap_or(0.0));
    let skip = run["steady_window_s"][0].as_f64().unwrap_or(2.5);
    let idx = |t: f64| (t / BIN_S) as usize;
    let full = idx(window).min(bins.len());
    let before: Vec<f64> = bins[idx(skip).min(full)..idx(at).min(full)].to_vec();
    let before = before.iter().sum::<f64>() / before.len().max(1) as f64;
    let back = (idx(at)..full)
        .find(|b| bins[*b] >= 0.8 * before)
        .map(|b| round((b + 1) as f64 * BIN_S - at, 2));
    let after: Vec<f64> = bins[idx(at + 2.0).min(full)..full]
        .iter()
        .map(|x| x / before.max(1.0))
        .collect();
    json!({
        "others_before_per_s": before.round(),
        "back_to_80pc_after_s": back,
        "others_share_after_2s_mean": round(after.iter().sum::<f64>() / after.len().max(1) as f64, 3),
        "others_share_after_2s_min": round(after.iter().copied().fold(f64::INFINITY, f64::min).min(9.0), 3),
    })
}

impl Bench {
    /// Runs the selected receiver scenarios; returns the charts
    /// (file-name suffix, SVG).
    pub(super) async fn receivers(
        &self,
        results: &mut Map<String, Value>,
    ) -> Res<Vec<(String, String)>> {
        let mut wanted: Vec<&str> = ALL.into_iter().filter(|n| self.opts.wants(n)).collect();
        if wanted.contains(&"hang") && !wanted.contains(&"fleet") {
            // (3) is a share of (2): run (2) too.
            wanted.insert(wanted.iter().position(|n| *n == "hang").unwrap(), "fleet");
        }
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let mut rounds: Map<String, Value> = Map::new();
        for r in 0..self.opts.receiver_repeat {
            eprintln!(
                "bench: ---- receiver scenarios, round {} of {}",
                r + 1,
                self.opts.receiver_repeat
            );
            for name in &wanted {
                let plan = plan_of(name);
                let naive = self.vrun(&plan, Sut::Naive, "naive").await?;
                let mut workers = Vec::new();
                for (k, bin) in self.worker_bins.iter().enumerate() {
                    workers.push(
                        self.vrun(&plan, Sut::Worker(bin), &format!("worker{k}"))
                            .await?,
                    );
                }
                let entry = rounds.entry(name.to_string()).or_insert_with(|| json!([]));
                entry
                    .as_array_mut()
                    .unwrap()
                    .push(json!({ "naive": naive, "workers": workers }));
            }
        }
        let mut out = Map::new();
        let mut targets = Vec::new();
        let bins = self.worker_bins.len();
        for name in &wanted {
            let rs = rounds[*name].as_array().unwrap();
            let mut per_bin = Vec::new();
            for k in 0..bins {
                let figs: Vec<Value> = rs
                    .iter()
                    .enumerate()
                    .map(|(i, r)| figures(name, r, k, rounds.get("fleet").and_then(|f| f.get(i))))
                    .collect();
                let s = summary(&figs);
                if k == 0 {
                    targets.extend(verdicts(name, &s));
                }
                per_bin.push(json!({ "worker_bin": self.worker_bins[k].display().to_string(), "median": s, "rounds": figs }));
            }
            out.insert(
                name.to_string(),
                json!({ "figures": per_bin, "rounds": rs }),
            );
        }
        let mut charts = Vec::new();
        for (name, suffix) in [("hang", "hang"), ("turns-bad", "turns-bad")] {
            if let Some(last) = rounds.get(name).and_then(|r| r.as_array()?.last()) {
                let fleet_ref = rounds.get("fleet").and_then(|f| f.as_array()?.last());
                charts.push((suffix.to_string(), self.chart(name, last, fleet_ref)));
            }
        }
        out.insert("targets".into(), Value::Array(targets));
        results.insert("receivers".into(), Value::Object(out));
        Ok(charts)
    }

    fn chart(&self, name: &str, round: &Value, fleet_ref: Option<&Value>) -> String {
        let w0 = &round["workers"][0];
        let groups = w0["timeline"]["groups"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut series = Vec::new();
        for (g, label) in groups.iter().enumerate() {
            let v: Vec<f64> = w0["timeline"]["ok_per_bin"][g]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| x.as_f64().unwrap_or(0.0) / BIN_S)
                        .collect()
                })
                .unwrap_or_default();
            series.push(chart::Series::new(
                format!("worker: {}", label.as_str().unwrap_or("")),
                v,
                false,
            ));
        }
        series.push(chart::Series::new(
            "worker: the others, total".into(),
            others_bins(w0),
            false,
        ));
        for (k, w) in round["workers"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .skip(1)
        {
            series.push(chart::Series::new(
                format!("worker {k}: the others, total"),
                others_bins(w),
                false,
            ));
        }
        series.push(chart::Series::new(
            "naive: the others, total".into(),
            others_bins(&round["naive"]),
            true,
        ));
        let (marks, lines, title) = if name == "hang" {
            let reference = fleet_ref
                .map(|f| f["workers"][0]["steady_per_s"].as_f64().unwrap_or(0.0))
                .unwrap_or(0.0);
            (
                vec![
                    (0.0, "receiver hangs (from the start)".to_string()),
                    (10.0, "first timeouts (10 s)".to_string()),
                ],
                vec![
                    (reference, "fleet (2), worker".to_string()),
                    (0.9 * reference, "90 % of it".to_string()),
                ],
                "(3) one hangs: 2xx per second per receiver group (fleet + 1 hanging, 5 % of events)",
            )
        } else {
            let at = w0["turned_bad_at_s"]
                .as_f64()
                .unwrap_or(turns_bad::TURNS_AT_S);
            let before = recovery(w0)["others_before_per_s"].as_f64().unwrap_or(0.0);
            (
                vec![
                    (at, "receiver turns bad".to_string()),
                    (at + 2.0, "+2 s".to_string()),
                ],
                vec![
                    (before, "others before".to_string()),
                    (0.8 * before, "80 %".to_string()),
                ],
                "(4) one turns bad: 2xx per second per receiver group (half of the events to the one that hangs)",
            )
        };
        chart::timeline(title, BIN_S, &series, &marks, &lines)
    }
}
