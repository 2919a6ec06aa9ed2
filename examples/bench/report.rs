//! The report: machine and revision info, target verdicts, and the Markdown
//! summary table printed at the end of a run.

use std::{fmt::Write as _, fs, process::Command, time::Duration};

use serde_json::{Value, json};

use crate::sys::round;

pub(crate) fn git_rev() -> String {
    let rev = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok();
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok();
    let rev = rev
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    match dirty {
        Some(o) if !o.stdout.is_empty() => format!("{rev}+dirty"),
        _ => rev,
    }
}

pub(crate) async fn machine_info(load_start: &str) -> Value {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("?")
        .trim()
        .to_string();
    let mem_kb: u64 = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let rabbit = async {
        let c = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(3))
            .build()
            .ok()?;
        let v: Value = c
            .get("http://127.0.0.1:15672/api/overview")
            .basic_auth("guest", Some("guest"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())?;
        Some(format!(
            "{} (Erlang {})",
            v["rabbitmq_version"].as_str()?,
            v["erlang_version"].as_str().unwrap_or("?")
        ))
    }
    .await;
    json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": model,
        "memory_gib": round(mem_kb as f64 / 1024.0 / 1024.0, 1),
        "kernel": kernel,
        "rabbitmq": rabbit.unwrap_or_else(|| "?".into()),
        "rustc": Command::new("rustc").arg("--version").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()),
        "loadavg_at_start": load_start.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        "loadavg_at_end": fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        "note": "broker, receivers, publisher and the process under test share these cores",
    })
}

pub(crate) fn evaluate_targets(r: &Value) -> Value {
    let mut out = Vec::new();
    let mut check = |name: String, value: Option<f64>, target: &str, pass: Option<bool>| {
        if let (Some(v), Some(p)) = (value, pass) {
            out.push(json!({ "target": name, "value": v, "want": target, "pass": p }));
        }
    };
    for qt in ["quorum", "classic"] {
        let t = &r["by_queue_type"][qt];
        if t.is_null() {
            continue;
        }
        let ratios = &t["ratios"];
        let won = ratios["worker_over_naive"].as_f64();
        check(
            format!("{qt}: worker ÷ naive"),
            won,
            "≥ 1.2",
            won.map(|x| x >= 1.2),
        );
        let woc = ratios["worker_over_ceiling"].as_f64();
        check(
            format!("{qt}: worker ÷ min(consume, HTTP)"),
            woc,
            "≥ 0.80",
            woc.map(|x| x >= 0.8),
        );
        let fos = ratios["failure_over_success"].as_f64();
        check(
            format!("{qt}: failure ÷ success rate"),
            fos,
            "≥ 0.50",
            fos.map(|x| x >= 0.5),
        );
        let rss = t["worker_success"]["peak_rss_mib"].as_f64();
        check(
            format!("{qt}: worker peak RSS (MiB), success path"),
            rss,
            "≤ 64",
            rss.map(|x| x <= 64.0),
        );
        let p99 = t["latency"]["p99_ms"].as_f64();
        check(
            format!("{qt}: p99 publish→receipt (ms) at half peak"),
            p99,
            "≤ 25",
            p99.map(|x| x <= 25.0),
        );
    }
    let share = r["isolation"]["nine_share"].as_f64();
    check(
        "isolation: other nine ÷ all-healthy".into(),
        share,
        "≥ 0.80",
        share.map(|x| x >= 0.8),
    );
    let kib = r["memory"]["kib_per_in_flight"].as_f64();
    check(
        "memory: KiB per in-flight delivery".into(),
        kib,
        "≤ 32",
        kib.map(|x| x <= 32.0),
    );
    out.extend(
        r["receivers"]["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .cloned(),
    );
    Value::Array(out)
}

pub(crate) fn summary_table(report: &Value) -> String {
    let r = &report["results"];
    let m = &report["machine"];
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n## webhook-worker benchmark — {} ({} cores: {}; {})",
        report["date"].as_str().unwrap_or(""),
        m["cores"],
        m["cpu"].as_str().unwrap_or("?"),
        m["rabbitmq"].as_str().unwrap_or("?")
    );
    let _ = writeln!(
        s,
        "N = {} events per throughput run, concurrency {}, body {} B (message {} B); command: {}\n",
        report["settings"]["n"],
        report["settings"]["concurrency"],
        report["settings"]["request_body_bytes"],
        report["settings"]["message_bytes"],
        report["command"].as_str().unwrap_or("")
    );
    let has_throughput = !r["by_queue_type"].is_null() || !r["raw_http"].is_null();
    if has_throughput {
        throughput_tables(&mut s, r);
    }
    let iso = &r["isolation"];
    if !iso.is_null() {
        let _ = writeln!(
            s,
            "\nIsolation ({} events over 10 receivers, defaults): other nine {} /s all healthy, {} /s with one hanging 15 s → {} % (median of rounds {}; deferred {}, timeouts {})",
            iso["events"],
            iso["all_healthy"]["nine_per_s"],
            iso["one_hanging"]["nine_per_s"],
            round(iso["nine_share"].as_f64().unwrap_or(0.0) * 100.0, 1),
            iso["rounds_nine_share"],
            iso["one_hanging"]["deferred"],
            iso["one_hanging"]["timeouts"]
        );
    }
    let mem = &r["memory"];
    if !mem.is_null() {
        let _ = writeln!(
            s,
            "Memory ({}): RSS {} MiB idle → {} MiB with {} in flight = {} KiB per in-flight delivery; sockets {} → {}; peak RSS {} MiB",
            mem["settings"].as_str().unwrap_or(""),
            mem["idle"]["rss_mib"],
            mem["busy"]["rss_mib"],
            mem["in_flight"],
            mem["kib_per_in_flight"],
            mem["idle"]["sockets"],
            mem["busy"]["sockets"],
            mem["peak_rss_mib"]
        );
    }
    s.push_str(&crate::scenarios::compare_table(r));
    s.push_str(&crate::scenarios::receivers_table(r));
    let _ = writeln!(s, "\n| target | value | want | pass |");
    let _ = writeln!(s, "|---|---:|---|---|");
    for t in report["targets"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            t["target"].as_str().unwrap_or(""),
            t["value"],
            t["want"].as_str().unwrap_or(""),
            if t["pass"].as_bool() == Some(true) {
                "yes"
            } else {
                "**no**"
            }
        );
    }
    s
}

fn throughput_tables(s: &mut String, r: &Value) {
    let _ = writeln!(
        s,
        "| run | queue | deliveries/s (median) | CPU-µs/delivery | peak RSS MiB | every round, deliveries/s | other load (cores) |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---|---:|");
    let row = |s: &mut String, name: &str, qt: &str, v: &Value| {
        if v.is_null() {
            return;
        }
        let _ = writeln!(
            s,
            "| {name} | {qt} | {} | {} | {} | {} | {} |",
            v["per_s"],
            v["cpu_us_per_delivery"],
            v["peak_rss_mib"],
            v["rounds_per_s"]
                .as_array()
                .map(|a| a
                    .iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default(),
            v["noise"]["other_cores"]
        );
    };
    row(s, "raw HTTP POST (baseline 2)", "—", &r["raw_http"]);
    for qt in ["quorum", "classic"] {
        let t = &r["by_queue_type"][qt];
        row(s, "raw consume+ack (baseline 1)", qt, &t["raw_consume"]);
        row(s, "naive consume→POST→ack (baseline 3)", qt, &t["naive"]);
        row(s, "worker, all succeed", qt, &t["worker_success"]);
        row(
            s,
            "worker, all fail (retry + ack)",
            qt,
            &t["worker_failure"],
        );
    }
    let _ = writeln!(
        s,
        "\n| queue | worker ÷ naive | worker ÷ min(consume, HTTP) | failure ÷ success | worker ÷ machine ceiling (consume + HTTP on the same cores) |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|");
    for qt in ["quorum", "classic"] {
        let t = &r["by_queue_type"][qt];
        if t.is_null() || t["worker_success"].is_null() {
            continue;
        }
        let _ = writeln!(
            s,
            "| {qt} | {} | {} | {} | {} ({} /s) |",
            t["ratios"]["worker_over_naive"],
            t["ratios"]["worker_over_ceiling"],
            t["ratios"]["failure_over_success"],
            t["ratios"]["worker_over_machine_ceiling"],
            t["ratios"]["machine_ceiling_per_s"],
        );
    }
    let _ = writeln!(
        s,
        "\n| latency publish→receipt | queue | offered/s | p50 ms | p90 ms | p99 ms | max ms | other load (cores) |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|");
    for qt in ["quorum", "classic"] {
        for (name, key) in [
            ("worker", "latency"),
            ("naive (reference)", "latency_naive"),
            ("worker, quarter peak", "latency_quarter"),
        ] {
            let l = &r["by_queue_type"][qt][key];
            if l.is_null() {
                continue;
            }
            let _ = writeln!(
                s,
                "| {name} | {qt} | {} | {} | {} | {} | {} | {} |",
                l["offered_per_s"],
                l["p50_ms"],
                l["p90_ms"],
                l["p99_ms"],
                l["max_ms"],
                l["noise"]["other_cores"]
            );
        }
    }
}
