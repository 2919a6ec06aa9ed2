//! The orchestrator (`bench run`): runs every scenario and writes the report.
//! One file per scenario: `throughput` (baselines, success and failure
//! paths), `latency`, `isolation`, `memory`, and the receiver scenarios
//! `slow`, `fleet`, `hang`, `turns_bad`, `overloaded` (run by `receivers`
//! through `vrun`, against the virtual receivers of `vhosts.rs`), and the
//! drain scenarios `burst` and `ten-hang` (`bursts`, through `drain`), and
//! `compare` (worker binaries side by side, only when named).

mod baseline_runs;
mod bursts;
mod compare;
mod drain;
mod fleet;
mod hang;
mod isolation;
mod latency;
mod log_scan;
mod memory;
mod outcomes;
mod overloaded;
mod receivers;
mod receivers_report;
mod slow;
mod throughput;
mod turns_bad;
mod vrun;

pub(crate) use compare::table as compare_table;
pub(crate) use receivers_report::table as receivers_table;

use std::{
    fs,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime},
};

use serde_json::{Value, json};

use crate::{
    MIB, Opts, Res,
    amqp::Broker,
    amqp_url,
    lib_api::{DEFAULT_CONCURRENCY, DEFAULT_HOST_CONCURRENCY},
    payloads::{data_json, envelope},
    receiver::{Receivers, epoch},
    report::{evaluate_targets, git_rev, machine_info, summary_table},
    sys::{round, unix_nanos},
    vhosts::VHosts,
};

/// Runs a self-measuring baseline subprocess to completion, returns its report.
fn run_baseline(exe: &Path, mode: &str, args: &[String]) -> Res<Value> {
    let out = Command::new(exe)
        .arg(mode)
        .args(args)
        .env("AMQP_URL", amqp_url())
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!("{mode} failed: {}", out.status).into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().ok_or("no report")?;
    Ok(serde_json::from_str(line)?)
}

/// A throughput figure: deliveries/s, CPU-µs per delivery, peak RSS.
fn figure(n: u64, elapsed: f64, cpu: f64, hwm: u64) -> Value {
    json!({
        "n": n,
        "elapsed_s": round(elapsed, 3),
        "per_s": (n as f64 / elapsed).round() as u64,
        "cpu_us_per_delivery": round(cpu * 1e6 / n as f64, 1),
        "cpu_cores": round(cpu / elapsed, 2),
        "peak_rss_mib": round(hwm as f64 / MIB, 1),
    })
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        0.0
    } else if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    }
}

/// The run with the median rate stands for all of them (so its CPU and
/// noise figures belong to the same run); every round's rate is listed.
fn median_run(runs: &[Value]) -> Value {
    let mut sorted: Vec<&Value> = runs.iter().collect();
    sorted.sort_by(|a, b| per_s(a).total_cmp(&per_s(b)));
    let mut v = sorted[(sorted.len() - 1) / 2].clone();
    v["rounds_per_s"] = json!(runs.iter().map(|r| per_s(r) as u64).collect::<Vec<_>>());
    v["rounds_cpu_us_per_delivery"] = json!(
        runs.iter()
            .map(|r| r["cpu_us_per_delivery"].clone())
            .collect::<Vec<_>>()
    );
    v["peak_rss_mib"] = json!(
        runs.iter()
            .filter_map(|r| r["peak_rss_mib"].as_f64())
            .fold(0.0, f64::max)
    );
    v
}

fn per_s(v: &Value) -> f64 {
    v["per_s"].as_f64().unwrap_or(0.0)
}

struct Bench {
    opts: Opts,
    exe: PathBuf,
    /// Every worker binary under test (`--worker-bin`, repeatable); the
    /// first is the one of the throughput, latency, isolation and memory
    /// scenarios.
    worker_bins: Vec<PathBuf>,
    run_id: String,
    logs: PathBuf,
    recv: Receivers,
    vhosts: VHosts,
    broker: Broker,
}

impl Bench {
    fn worker_bin(&self) -> &Path {
        &self.worker_bins[0]
    }
}

/// Every name `--only` knows.
const SCENARIOS: [&str; 17] = [
    "baselines",
    "success",
    "failure",
    "latency",
    "isolation",
    "memory",
    "outcomes",
    "log-scan",
    "slow",
    "fleet",
    "hang",
    "turns-bad",
    "overloaded",
    "burst",
    "instant",
    "ten-hang",
    "compare",
];

pub(crate) async fn orchestrate(opts: Opts) -> Res<()> {
    epoch();
    if let Some(bad) = opts.only.iter().find(|o| !SCENARIOS.contains(&o.as_str())) {
        return Err(format!(
            "--only: unknown scenario {bad:?} (known: {})",
            SCENARIOS.join(", ")
        )
        .into());
    }
    let exe = std::env::current_exe()?;
    let mut worker_bins = opts.worker_bin.clone();
    if worker_bins.is_empty() {
        worker_bins.push(
            exe.parent()
                .and_then(Path::parent)
                .ok_or("exe path")?
                .join("webhook-worker"),
        );
    }
    for bin in &worker_bins {
        if !bin.exists() {
            return Err(format!(
                "{} not found: build it with cargo build --release",
                bin.display()
            )
            .into());
        }
    }
    let run_id = format!("{:x}", unix_nanos() / 1_000_000);
    let logs = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("exe path")?
        .join("bench-logs")
        .join(&run_id);
    fs::create_dir_all(&logs)?;
    let recv = Receivers::start().await?;
    let vhosts = VHosts::start().await?;
    let broker = Broker::connect().await?;
    let b = Bench {
        opts,
        exe,
        worker_bins,
        run_id,
        logs,
        recv,
        vhosts,
        broker,
    };
    let started = Instant::now();
    let load_start = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!(
        "bench: run {} — N = {}, concurrency = {}, worker = {}, logs in {}",
        b.run_id,
        b.opts.n,
        b.opts.concurrency,
        b.worker_bins
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        b.logs.display()
    );

    let mut results = serde_json::Map::new();
    b.throughput(&mut results).await?;
    if b.opts.wants("isolation") {
        let hint = results
            .get("by_queue_type")
            .and_then(|t| t["quorum"]["worker_success"]["per_s"].as_f64());
        results.insert("isolation".into(), b.isolation(hint).await?);
    }
    if b.opts.wants("memory") {
        results.insert("memory".into(), b.memory().await?);
    }
    b.drains(&mut results).await?;
    if b.opts.wants("outcomes") {
        results.insert("outcomes".into(), b.outcomes().await?);
    }
    if b.opts.wants("log-scan") {
        results.insert("log_scan".into(), b.log_scan().await?);
    }
    // Only when named: it repeats the success and failure runs per binary.
    if b.opts.only.iter().any(|o| o == "compare") {
        results.insert("compare".into(), b.compare().await?);
    }
    let charts = b.receivers(&mut results).await?;

    let machine = machine_info(&load_start).await;
    let targets = evaluate_targets(&Value::Object(results.clone()));
    let report = json!({
        "date": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        "command": b.opts.command,
        "run_id": b.run_id,
        "duration_s": round(started.elapsed().as_secs_f64(), 1),
        "machine": machine,
        "settings": {
            "n": b.opts.n,
            "concurrency": b.opts.concurrency,
            "default_concurrency": DEFAULT_CONCURRENCY,
            "default_host_concurrency": DEFAULT_HOST_CONCURRENCY,
            "message_bytes": envelope("b-00000000", &b.recv.ok.url(), 0).len(),
            "request_body_bytes": data_json(0).len(),
            "worker_flags": "run --allow-private-targets --signing-secret … --metrics-addr 127.0.0.1:<port> (other settings default unless noted); receiver scenarios: run --prefix P --allow-private-targets --metrics-addr 127.0.0.1:0 only",
            "worker_bins": b.worker_bins.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "receiver_repeat": b.opts.receiver_repeat,
            "git": git_rev(),
        },
        "results": Value::Object(results),
        "targets": targets,
    });
    let table = summary_table(&report);
    println!("{table}");
    if let Some(out) = &b.opts.out {
        if let Some(dir) = out.parent() {
            fs::create_dir_all(dir)?;
        }
        let mut f = fs::File::create(out)?;
        f.write_all(serde_json::to_string_pretty(&report)?.as_bytes())?;
        f.write_all(b"\n")?;
        fs::write(out.with_extension("md"), &table)?;
        let stem = out.with_extension("");
        for (suffix, svg) in &charts {
            let path = PathBuf::from(format!("{}-{suffix}.svg", stem.display()));
            fs::write(&path, svg)?;
            eprintln!("bench: wrote {}", path.display());
        }
        eprintln!("bench: wrote {} (and the table as .md)", out.display());
    }
    if let Ok(conn) = b.broker.conn().await {
        let _ = conn.close(200, "done".into()).await;
    }
    Ok(())
}

impl Bench {
    fn prefix(&self, scenario: &str) -> String {
        format!("bench-{}-{scenario}", self.run_id)
    }

    fn log(&self, scenario: &str) -> PathBuf {
        self.logs.join(format!("{scenario}.log"))
    }

    /// The naive baseline consuming `queue`, once it said "ready".
    fn spawn_naive(&self, queue: &str, concurrency: u16) -> Res<Child> {
        let mut child = Command::new(&self.exe)
            .arg("naive-worker")
            .args(["--queue", queue, "--concurrency", &concurrency.to_string()])
            .env("AMQP_URL", amqp_url())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("naive stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        // Keep reading so the pipe never fills.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let _ = tx.send(line.is_ok());
            }
        });
        rx.recv_timeout(Duration::from_secs(30))
            .map_err(|_| "naive worker not ready in 30 s")?;
        Ok(child)
    }

    /// Waits until the receivers saw `n` requests, or nothing new came for
    /// `stall` (then returns false).
    async fn wait_receipts(&self, n: u64, stall: Duration, limit: Duration) -> bool {
        let t0 = Instant::now();
        let mut last = (0, Instant::now());
        loop {
            let c = self.recv.shared.total();
            if c >= n {
                return true;
            }
            if c != last.0 {
                last = (c, Instant::now());
            } else if last.1.elapsed() > stall || t0.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
