//! The receiver scenarios' figures: per round and binary, the medians
//! across rounds, the target verdicts, and the Markdown table.

use serde_json::{Value, json};

use super::{
    median,
    receivers::{ALL, others_steady, recovery},
};
use crate::sys::round;

/// The figures of one round for worker binary `k`.
pub(super) fn figures(name: &str, round: &Value, k: usize, fleet_round: Option<&Value>) -> Value {
    let (w, n) = (&round["workers"][k], &round["naive"]);
    let rate = |v: &Value| v["steady_per_s"].as_f64().unwrap_or(0.0);
    let mut f = json!({
        "worker_per_s": rate(w),
        "naive_per_s": rate(n),
        "worker_over_naive": round_opt(rate(w) / rate(n)),
        "peak_rss_mib": w["peak_rss_mib"],
        "naive_peak_rss_mib": n["peak_rss_mib"],
        "lost": w["accounting"]["lost"], "duplicates": w["accounting"]["duplicates"], "parked": w["accounting"]["parked"],
        "in_retry_tiers": w["accounting"]["in_retry_tiers"], "deferred": w["deferred"],
        "naive_lost": n["accounting"]["lost"], "naive_duplicates": n["accounting"]["duplicates"],
        "loadavg": w["loadavg"], "other_cores": w["noise"]["other_cores"],
    });
    match name {
        "hang" => {
            let fw = fleet_round
                .map(|f| f["workers"][k]["steady_per_s"].as_f64().unwrap_or(0.0))
                .unwrap_or(0.0);
            let fnv = fleet_round
                .map(|f| f["naive"]["steady_per_s"].as_f64().unwrap_or(0.0))
                .unwrap_or(0.0);
            f["others_per_s"] = json!(others_steady(w));
            f["others_share_of_fleet"] = json!(round_opt(others_steady(w) / fw));
            f["naive_others_share_of_fleet"] = json!(round_opt(others_steady(n) / fnv));
        }
        "turns-bad" => {
            f["worker"] = recovery(w);
            f["naive"] = recovery(n);
        }
        "overloaded" => {
            for (key, v) in [("worker", w), ("naive", n)] {
                f[key] = json!({
                    "first_attempt_success_share": v["first_attempt_success_share"],
                    "converged_share": v["first_attempt_success_share_second_half"],
                    "answers_by_status": v["answers_by_status"],
                    "max_in_flight": v["per_host"][0]["max_in_flight"],
                });
            }
        }
        _ => {}
    }
    f
}

fn round_opt(x: f64) -> Value {
    if x.is_finite() {
        json!(round(x, 3))
    } else {
        Value::Null
    }
}

/// The median of every numeric figure across rounds (nested one level);
/// non-numbers from the first round.
pub(super) fn summary(figs: &[Value]) -> Value {
    let mut s = figs[0].clone();
    if let Value::Object(m) = &mut s {
        for (k, v) in m.iter_mut() {
            let path = |f: &Value| f[k.as_str()].clone();
            match v {
                Value::Number(_) => {
                    let xs: Vec<f64> = figs.iter().filter_map(|f| path(f).as_f64()).collect();
                    *v = json!(round(median(&xs), 3));
                }
                Value::Object(inner) => {
                    for (k2, v2) in inner.iter_mut() {
                        if v2.is_number() {
                            let xs: Vec<f64> = figs
                                .iter()
                                .filter_map(|f| path(f)[k2.as_str()].as_f64())
                                .collect();
                            *v2 = json!(round(median(&xs), 3));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    s
}

pub(super) fn verdicts(name: &str, s: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    let mut check = |target: String, value: &Value, want: &str, pass: fn(f64) -> bool| {
        if let Some(x) = value.as_f64() {
            out.push(json!({ "target": target, "value": x, "want": want, "pass": pass(x) }));
        }
    };
    match name {
        "slow" => check(
            "(1) slow receiver: worker ÷ naive".into(),
            &s["worker_over_naive"],
            "≥ 3",
            |x| x >= 3.0,
        ),
        "fleet" => check(
            "(2) fleet: worker ÷ naive".into(),
            &s["worker_over_naive"],
            "≥ 2",
            |x| x >= 2.0,
        ),
        "hang" => check(
            "(3) one hangs: the others ÷ their rate in (2)".into(),
            &s["others_share_of_fleet"],
            "≥ 0.90",
            |x| x >= 0.9,
        ),
        "turns-bad" => {
            // Never back within the window: reported as 99 s.
            let back = json!(s["worker"]["back_to_80pc_after_s"].as_f64().unwrap_or(99.0));
            check(
                "(4) turns bad: others back to ≥ 80 % after (s)".into(),
                &back,
                "≤ 2",
                |x| x <= 2.0,
            );
            check(
                "(4) turns bad: others' mean share from +2 s".into(),
                &s["worker"]["others_share_after_2s_mean"],
                "≥ 0.80",
                |x| x >= 0.8,
            );
        }
        _ => check(
            "(5) overloaded: first attempts that succeed, converged".into(),
            &s["worker"]["converged_share"],
            "≥ 0.90",
            |x| x >= 0.9,
        ),
    }
    check(
        format!("{name}: worker peak RSS (MiB)"),
        &s["peak_rss_mib"],
        "≤ 64",
        |x| x <= 64.0,
    );
    // Duplicates are allowed (at least once) and reported, not a target.
    let bad = ["lost", "parked"]
        .iter()
        .filter_map(|k| s[*k].as_f64())
        .sum::<f64>();
    check(format!("{name}: lost + parked"), &json!(bad), "0", |x| {
        x == 0.0
    });
    out
}

/// The receiver scenarios' part of the Markdown summary.
pub(crate) fn table(r: &Value) -> String {
    use std::fmt::Write as _;
    let rec = &r["receivers"];
    if rec.is_null() {
        return String::new();
    }
    let mut s = String::from(
        "\n| receiver scenario | worker bin | worker /s | naive /s | worker ÷ naive | key figure | peak RSS MiB (naive) | lost / dup / parked (naive lost) | deferred | in retry tiers | load avg |\n|---|---|---:|---:|---:|---|---:|---|---:|---:|---|\n",
    );
    for name in ALL {
        for f in rec[name]["figures"].as_array().into_iter().flatten() {
            let m = &f["median"];
            let key = match name {
                "hang" => format!(
                    "others {} /s = {} of (2) (naive {})",
                    m["others_per_s"], m["others_share_of_fleet"], m["naive_others_share_of_fleet"]
                ),
                "turns-bad" => format!(
                    "others {} /s before; ≥ 80 % again after {} s; from +2 s mean {} / min {} (naive: {} s)",
                    m["worker"]["others_before_per_s"],
                    m["worker"]["back_to_80pc_after_s"],
                    m["worker"]["others_share_after_2s_mean"],
                    m["worker"]["others_share_after_2s_min"],
                    m["naive"]["back_to_80pc_after_s"]
                ),
                "overloaded" => format!(
                    "first tries OK {} (converged {}; naive {})",
                    m["worker"]["first_attempt_success_share"],
                    m["worker"]["converged_share"],
                    m["naive"]["converged_share"]
                ),
                _ => String::new(),
            };
            let bin = f["worker_bin"].as_str().unwrap_or("");
            let _ = writeln!(
                s,
                "| {name} | {} | {} | {} | {} | {key} | {} ({}) | {} / {} / {} ({}) | {} | {} | {} |",
                bin.rsplit('/')
                    .take(3)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("/"),
                m["worker_per_s"],
                m["naive_per_s"],
                m["worker_over_naive"],
                m["peak_rss_mib"],
                m["naive_peak_rss_mib"],
                m["lost"],
                m["duplicates"],
                m["parked"],
                m["naive_lost"],
                m["deferred"],
                m["in_retry_tiers"],
                m["loadavg"]["start"].as_str().unwrap_or("")
            );
        }
    }
    s
}
