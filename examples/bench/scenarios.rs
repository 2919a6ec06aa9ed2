//! The orchestrator (`bench run`): runs every scenario (baselines, worker
//! success and failure paths, latency, isolation, memory) and writes the report.

use std::{
    fs,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use lapin::{options::BasicPublishOptions, types::FieldTable};
use serde_json::{Value, json};
use webhook_worker::{
    broker::topology::QueueType,
    config::{Config, DEFAULT_CONCURRENCY, DEFAULT_HOST_CONCURRENCY},
};

use crate::{
    BoxError, MIB, Opts, Res,
    amqp::Broker,
    amqp_url,
    payloads::{data_json, envelope, latency_envelope, props},
    perf::Perf,
    qt_name,
    receiver::{Mode, Receivers, epoch, since_epoch_ns},
    report::{evaluate_targets, git_rev, machine_info, summary_table},
    sys::{
        Noise, broker_pid, cpu_secs, num_cpus, open_sockets, round, runqueue_wait_secs, unix_nanos,
        vm_bytes,
    },
    worker_proc::{WorkerProc, metric_line, metric_sum},
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
    worker_bin: PathBuf,
    run_id: String,
    logs: PathBuf,
    recv: Receivers,
    broker: Broker,
}

pub(crate) async fn orchestrate(opts: Opts) -> Res<()> {
    epoch();
    let exe = std::env::current_exe()?;
    let worker_bin = match &opts.worker_bin {
        Some(p) => p.clone(),
        None => exe
            .parent()
            .and_then(Path::parent)
            .ok_or("exe path")?
            .join("webhook-worker"),
    };
    if !worker_bin.exists() {
        return Err(format!(
            "{} not found: build it with cargo build --release",
            worker_bin.display()
        )
        .into());
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
    let broker = Broker::connect().await?;
    let b = Bench {
        opts,
        exe,
        worker_bin,
        run_id,
        logs,
        recv,
        broker,
    };
    let started = Instant::now();
    let load_start = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!(
        "bench: run {} — N = {}, concurrency = {}, worker = {}, logs in {}",
        b.run_id,
        b.opts.n,
        b.opts.concurrency,
        b.worker_bin.display(),
        b.logs.display()
    );

    let mut results = serde_json::Map::new();
    let mut per_type = serde_json::Map::new();
    let qts = b.opts.queue_types.clone();
    // Throughput runs, repeated and interleaved (every system once per
    // round), so a drift of the machine's speed hits all of them alike; each
    // figure is the median round, each ratio the median of the per-round
    // ratios.
    let mut http_runs = Vec::new();
    let mut runs: Vec<[Vec<Value>; 4]> = qts.iter().map(|_| Default::default()).collect();
    let want_success =
        b.opts.wants("success") || (b.opts.wants("latency") && b.opts.latency_rate.is_none());
    for round in 0..b.opts.repeat {
        eprintln!(
            "bench: ---- throughput round {} of {}",
            round + 1,
            b.opts.repeat
        );
        if b.opts.wants("baselines") {
            http_runs.push(b.raw_http().await?);
        }
        for (i, &qt) in qts.iter().enumerate() {
            if b.opts.wants("baselines") {
                runs[i][0].push(b.raw_consume(qt).await?);
                runs[i][1].push(b.naive(qt).await?);
            }
            if want_success {
                runs[i][2].push(b.worker_run(qt, false).await?);
            }
            if b.opts.wants("failure") {
                runs[i][3].push(b.worker_run(qt, true).await?);
            }
        }
    }
    if !http_runs.is_empty() {
        results.insert("raw_http".into(), median_run(&http_runs));
    }
    for (i, &qt) in qts.iter().enumerate() {
        let mut r = serde_json::Map::new();
        for (k, name) in ["raw_consume", "naive", "worker_success", "worker_failure"]
            .into_iter()
            .enumerate()
        {
            if !runs[i][k].is_empty() {
                r.insert(name.into(), median_run(&runs[i][k]));
            }
        }
        let [consume, naive, success, failure] = &runs[i];
        let paired = |a: &[Value], f: &dyn Fn(usize) -> Option<f64>| -> Option<Value> {
            let v: Vec<f64> = (0..a.len()).filter_map(f).collect();
            (!v.is_empty()).then(|| json!(round(median(&v), 2)))
        };
        let mut ratios = serde_json::Map::new();
        if let Some(x) = paired(success, &|j| {
            Some(per_s(&success[j]) / per_s(naive.get(j)?))
        }) {
            ratios.insert("worker_over_naive".into(), x);
        }
        if let Some(x) = paired(success, &|j| {
            Some(per_s(&success[j]) / per_s(consume.get(j)?).min(per_s(http_runs.get(j)?)))
        }) {
            ratios.insert("worker_over_ceiling".into(), x);
            let ceilings: Vec<f64> = (0..consume.len().min(http_runs.len()))
                .map(|j| per_s(&consume[j]).min(per_s(&http_runs[j])))
                .collect();
            ratios.insert(
                "ceiling_per_s".into(),
                json!(median(&ceilings).round() as u64),
            );
        }
        // Both halves of the pipeline on the same cores: each costs the
        // whole machine (broker, receiver, client) some core-seconds per
        // message; no consume→POST pipeline can beat the sum.
        let machine_cost =
            |v: &Value| v["noise"]["machine_busy_cores"].as_f64().unwrap_or(0.0) / per_s(v);
        if let Some(x) = paired(success, &|j| {
            let ceiling =
                num_cpus() / (machine_cost(consume.get(j)?) + machine_cost(http_runs.get(j)?));
            Some(per_s(&success[j]) / ceiling)
        }) {
            ratios.insert("worker_over_machine_ceiling".into(), x);
            let ceilings: Vec<f64> = (0..consume.len().min(http_runs.len()))
                .map(|j| num_cpus() / (machine_cost(&consume[j]) + machine_cost(&http_runs[j])))
                .collect();
            ratios.insert(
                "machine_ceiling_per_s".into(),
                json!(median(&ceilings).round() as u64),
            );
        }
        if let Some(x) = paired(failure, &|j| {
            Some(per_s(&failure[j]) / per_s(success.get(j)?))
        }) {
            ratios.insert("failure_over_success".into(), x);
        }
        if b.opts.wants("latency") {
            let rate = b
                .opts
                .latency_rate
                .unwrap_or_else(|| per_s(&r["worker_success"]) / 2.0);
            r.insert("latency".into(), b.latency(qt, rate, false).await?);
            if !b.opts.no_naive_latency {
                r.insert("latency_naive".into(), b.latency(qt, rate, true).await?);
            }
            // Where the tail comes from: the same at a quarter of the peak.
            if b.opts.latency_rate.is_none() {
                r.insert(
                    "latency_quarter".into(),
                    b.latency(qt, rate / 2.0, false).await?,
                );
            }
        }
        r.insert("ratios".into(), Value::Object(ratios));
        per_type.insert(qt_name(qt).into(), Value::Object(r));
    }
    results.insert("by_queue_type".into(), Value::Object(per_type));
    if b.opts.wants("isolation") {
        let hint = results["by_queue_type"]["quorum"]["worker_success"]["per_s"].as_f64();
        results.insert("isolation".into(), b.isolation(hint).await?);
    }
    if b.opts.wants("memory") {
        results.insert("memory".into(), b.memory().await?);
    }

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
            "worker_flags": "run --allow-private-targets --signing-secret … --metrics-addr 127.0.0.1:<port> (other settings default unless noted)",
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

    fn config(&self, prefix: &str, qt: QueueType, schedule: Option<&str>) -> Config {
        let mut c = Config::defaults();
        c.names.prefix = prefix.to_string();
        c.topology.queue_type = qt;
        if let Some(s) = schedule {
            c.topology.retry_schedule = s.parse().expect("schedule");
        }
        c
    }

    fn log(&self, scenario: &str) -> PathBuf {
        self.logs.join(format!("{scenario}.log"))
    }

    async fn raw_http(&self) -> Res<Value> {
        eprintln!(
            "bench: raw HTTP: {} POSTs at concurrency {}",
            self.opts.n, self.opts.concurrency
        );
        self.recv.reset(0, u64::MAX);
        let args = vec![
            "--url".into(),
            self.recv.ok.url(),
            "--n".into(),
            self.opts.n.to_string(),
            "--concurrency".into(),
            self.opts.concurrency.to_string(),
        ];
        let noise0 = Noise::now();
        let r = run_baseline(&self.exe, "raw-http", &args)?;
        let (n, el, cpu) = (
            r["n"].as_u64().unwrap(),
            r["elapsed_s"].as_f64().unwrap(),
            r["cpu_s"].as_f64().unwrap(),
        );
        let mut v = figure(n, el, cpu, r["hwm_bytes"].as_u64().unwrap_or(0));
        v["errors"] = r["errors"].clone();
        v["noise"] = Noise::now().since(&noise0, el, cpu);
        eprintln!(
            "bench:   {} req/s, {} CPU-µs/req",
            v["per_s"], v["cpu_us_per_delivery"]
        );
        Ok(v)
    }

    async fn raw_consume(&self, qt: QueueType) -> Res<Value> {
        let prefix = self.prefix(&format!("{}-consume", qt_name(qt)));
        let t = self.broker.declare(&self.config(&prefix, qt, None)).await?;
        eprintln!(
            "bench: raw consume+ack, {}: publishing {}",
            qt_name(qt),
            self.opts.n
        );
        let url = self.recv.ok.url();
        let pub_rate = self
            .broker
            .publish_bulk(t.exchange(), self.opts.n, &|_| url.clone(), "b")
            .await?;
        let args = vec![
            "--queue".into(),
            t.deliveries().to_string(),
            "--n".into(),
            self.opts.n.to_string(),
            "--prefetch".into(),
            self.opts.concurrency.to_string(),
        ];
        let noise0 = Noise::now();
        let r = run_baseline(&self.exe, "raw-consume", &args);
        self.broker.cleanup(&t).await;
        let r = r?;
        let (n, el, cpu) = (
            r["n"].as_u64().unwrap(),
            r["elapsed_s"].as_f64().unwrap(),
            r["cpu_s"].as_f64().unwrap(),
        );
        let mut v = figure(n, el, cpu, r["hwm_bytes"].as_u64().unwrap_or(0));
        v["publish_per_s"] = json!(round(pub_rate, 0));
        v["noise"] = Noise::now().since(&noise0, el, cpu);
        eprintln!(
            "bench:   {} msg/s, {} CPU-µs/msg",
            v["per_s"], v["cpu_us_per_delivery"]
        );
        Ok(v)
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

    async fn naive(&self, qt: QueueType) -> Res<Value> {
        let prefix = self.prefix(&format!("{}-naive", qt_name(qt)));
        let t = self.broker.declare(&self.config(&prefix, qt, None)).await?;
        eprintln!(
            "bench: naive worker, {}: publishing {}",
            qt_name(qt),
            self.opts.n
        );
        let url = self.recv.ok.url();
        self.broker
            .publish_bulk(t.exchange(), self.opts.n, &|_| url.clone(), "b")
            .await?;
        let n = self.opts.n as u64;
        let mut child = Command::new(&self.exe)
            .arg("naive-worker")
            .args([
                "--queue",
                t.deliveries(),
                "--concurrency",
                &self.opts.concurrency.to_string(),
            ])
            .env("AMQP_URL", amqp_url())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let pid = child.id();
        self.recv.reset(pid, n);
        let noise0 = Noise::now();
        // "ready" on stdout once consuming (not needed for timing; read it so
        // the pipe never fills).
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || for _ in BufReader::new(stdout).lines() {});
        let done = self
            .wait_receipts(n, Duration::from_secs(10), Duration::from_secs(300))
            .await;
        let hwm = vm_bytes(pid, "VmHWM").unwrap_or(0);
        let _ = child.kill();
        let _ = child.wait();
        self.broker.cleanup(&t).await;
        if !done {
            return Err(format!(
                "naive worker stalled at {} of {n}",
                self.recv.shared.total()
            )
            .into());
        }
        let (first, nth, cpu) = self.recv.window().ok_or("no window")?;
        let mut v = figure(n, nth - first, cpu, hwm);
        v["noise"] = Noise::now().since(&noise0, nth - first, cpu);
        eprintln!(
            "bench:   {} deliveries/s, {} CPU-µs/delivery",
            v["per_s"], v["cpu_us_per_delivery"]
        );
        Ok(v)
    }

    /// The worker draining `n` preloaded envelopes. `failing`: every
    /// receiver answers 500, so each event takes the retry path (publish to
    /// `P.retry.1h` with confirm, then ack).
    ///
    /// Start: the first receipt at the receiver. End: the n-th receipt (all
    /// succeed), or the moment `/metrics` counts `n` events settled through
    /// the retry tier (all fail). A delivery the worker *defers* (its host
    /// had no free slot for 50 ms: published to the shortest tier without an
    /// attempt) never reaches the receiver; it counts as settled and is
    /// reported as `deferred`.
    async fn worker_run(&self, qt: QueueType, failing: bool) -> Res<Value> {
        let scenario = format!(
            "{}-{}",
            qt_name(qt),
            if failing { "failure" } else { "success" }
        );
        let prefix = self.prefix(&scenario);
        let schedule = failing.then_some("1h");
        let t = self
            .broker
            .declare(&self.config(&prefix, qt, schedule))
            .await?;
        eprintln!(
            "bench: worker, {}, {}: publishing {}",
            if failing {
                "all fail (retry path)"
            } else {
                "all succeed"
            },
            qt_name(qt),
            self.opts.n
        );
        let url = if failing {
            self.recv.fail.url()
        } else {
            self.recv.ok.url()
        };
        self.broker
            .publish_bulk(t.exchange(), self.opts.n, &|_| url.clone(), "b")
            .await?;
        let n = self.opts.n as u64;
        let conc = self.opts.concurrency.to_string();
        let mut args = vec!["--concurrency", conc.as_str()];
        if failing {
            args.extend(["--retry-schedule", "1h"]);
        }
        let mut w =
            WorkerProc::spawn(&self.worker_bin, &prefix, qt, &args, &self.log(&scenario)).await?;
        self.recv.reset(w.pid, n);
        let noise0 = Noise::now();
        let r = async {
            w.wait_ready(Duration::from_secs(30)).await?;
            let perf = if self.opts.perf { Some(Perf::start(w.pid, &self.logs, &scenario)?) } else { None };
            let started = Instant::now();
            let mut last = (0, Instant::now());
            let (end, cpu_end, deferred, retried) = loop {
                let c = self.recv.shared.total();
                if c != last.0 {
                    last = (c, Instant::now());
                }
                let quiet = last.1.elapsed() > Duration::from_millis(100);
                if !failing && c >= n {
                    let (_, nth, _) = self.recv.window().ok_or("no window")?;
                    let deferred = w.metric("webhook_deferred_total").await.unwrap_or(-1.0);
                    break (nth, (*self.recv.shared.cpu_nth.lock().unwrap()).unwrap_or(0.0), deferred, 0.0);
                }
                if c >= n || quiet {
                    let text = w.metrics_text().await.unwrap_or_default();
                    let deferred = metric_sum(&text, "webhook_deferred_total");
                    let retried = metric_sum(&text, "webhook_retried_total");
                    let settled = if failing { retried + deferred } else { c as f64 + deferred };
                    if settled as u64 >= n {
                        let end = if failing {
                            since_epoch_ns()
                        } else {
                            self.recv.ok.last_ns.load(Ordering::SeqCst)
                        };
                        break (end as f64 / 1e9, cpu_secs(w.pid).unwrap_or(0.0), deferred, retried);
                    }
                    if last.1.elapsed() > Duration::from_secs(15) || started.elapsed() > Duration::from_secs(300) {
                        return Err(format!(
                            "{scenario} stalled: {c} receipts of {n}, retried {retried}, deferred {deferred}"
                        )
                        .into());
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            let hwm = vm_bytes(w.pid, "VmHWM").unwrap_or(0);
            let first = self.recv.shared.first_ns.load(Ordering::SeqCst) as f64 / 1e9;
            let cpu0 = (*self.recv.shared.cpu_first.lock().unwrap()).unwrap_or(0.0);
            let mut v = figure(n, end - first, cpu_end - cpu0, hwm);
            if let Some(p) = perf {
                v["profile"] = p.finish();
            }
            v["receipts"] = json!(self.recv.shared.total());
            v["deferred"] = json!(deferred);
            v["consumer_rotations"] = json!(w.metric("webhook_consumer_rotations_total").await.unwrap_or(-1.0));
            if failing {
                v["retried"] = json!(retried);
            }
            v["noise"] = Noise::now().since(&noise0, end - first, cpu_end - cpu0);
            Ok::<_, BoxError>(v)
        }
        .await;
        w.stop(Duration::from_secs(15)).await;
        self.broker.cleanup(&t).await;
        let v = r?;
        eprintln!(
            "bench:   {} events/s, {} CPU-µs each, peak RSS {} MiB, deferred {}, rotations {}",
            v["per_s"],
            v["cpu_us_per_delivery"],
            v["peak_rss_mib"],
            v["deferred"],
            v["consumer_rotations"]
        );
        Ok(v)
    }

    /// Publish→receipt latency at a fixed offered rate, with the worker (or,
    /// for reference, the naive worker) running. The publisher is this
    /// process, pacing in 1 ms ticks, confirms pipelined; each event's id
    /// carries its publish time, which the receiver subtracts from the time
    /// the request arrives. The first second is reported apart (warm-up:
    /// connections to the receiver are opened then).
    async fn latency(&self, qt: QueueType, rate: f64, naive: bool) -> Res<Value> {
        let scenario = format!(
            "{}-latency{}",
            qt_name(qt),
            if naive { "-naive" } else { "" }
        );
        let prefix = self.prefix(&scenario);
        let t = self.broker.declare(&self.config(&prefix, qt, None)).await?;
        let rate = rate.max(100.0).round();
        let total = (rate * self.opts.latency_seconds) as u64;
        eprintln!(
            "bench: latency, {}{}: {rate}/s for {}s",
            qt_name(qt),
            if naive {
                " (naive worker, for reference)"
            } else {
                ""
            },
            self.opts.latency_seconds
        );
        let conc = self.opts.concurrency.to_string();
        let (mut worker, mut naive_child) = (None, None);
        let pid = if naive {
            let mut child = Command::new(&self.exe)
                .arg("naive-worker")
                .args(["--queue", t.deliveries(), "--concurrency", &conc])
                .env("AMQP_URL", amqp_url())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()?;
            let stdout = child.stdout.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let _ = tx.send(line.is_ok());
                }
            });
            // The naive worker prints "ready" once consuming.
            let _ =
                tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30))).await;
            let pid = child.id();
            naive_child = Some(child);
            pid
        } else {
            let mut w = WorkerProc::spawn(
                &self.worker_bin,
                &prefix,
                qt,
                &["--concurrency", &conc],
                &self.log(&scenario),
            )
            .await?;
            w.wait_ready(Duration::from_secs(30)).await?;
            let pid = w.pid;
            worker = Some(w);
            pid
        };
        self.recv.reset(pid, total);
        let r = async {
            self.recv.shared.latency_on.store(true, Ordering::SeqCst);
            let url = self.recv.ok.url();
            let noise0 = Noise::now();
            let cpu0 = cpu_secs(pid).unwrap_or(0.0);
            let waits = |pid: u32| {
                [pid, broker_pid().unwrap_or(0), std::process::id()].map(runqueue_wait_secs)
            };
            let wait0 = waits(pid);
            let start = Instant::now();
            let start_unix = unix_nanos();
            let mut sent = 0u64;
            let mut confirms = Vec::with_capacity(total as usize);
            // Sample, every 100 ms, the broker's ready count of the work
            // queue and (for the worker) its in-flight gauge: tells whether
            // the wait is in the queue or in the process.
            let sampling = Arc::new(AtomicBool::new(true));
            let sampler = {
                let sampling = sampling.clone();
                let queue = t.deliveries().to_string();
                let ch = self.broker.conn().await?.create_channel().await?;
                let metrics = worker.as_ref().map(|w| (w.http.clone(), format!("{}/metrics", w.metrics)));
                tokio::spawn(async move {
                    let (mut ready, mut in_flight) = (Vec::new(), Vec::new());
                    while sampling.load(Ordering::SeqCst) {
                        let opts = lapin::options::QueueDeclareOptions { passive: true, ..Default::default() };
                        if let Ok(q) = ch.queue_declare(queue.as_str().into(), opts, FieldTable::default()).await {
                            ready.push(q.message_count() as f64);
                        }
                        if let Some((http, url)) = &metrics
                            && let Ok(r) = http.get(url).send().await
                            && let Ok(text) = r.text().await
                        {
                            in_flight.push(metric_sum(&text, "webhook_in_flight"));
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    let _ = ch.close(200, "".into()).await;
                    (ready, in_flight)
                })
            };
            let channel = self.broker.channel().await?;
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            while sent < total {
                tick.tick().await;
                let due = ((start.elapsed().as_secs_f64() * rate) as u64).min(total);
                while sent < due {
                    let body = latency_envelope(sent as usize, &url, unix_nanos());
                    confirms.push(
                        channel
                            .basic_publish(t.exchange().into(), "".into(), BasicPublishOptions::default(), &body, props())
                            .await?,
                    );
                    sent += 1;
                }
            }
            let offered = total as f64 / start.elapsed().as_secs_f64();
            for c in confirms {
                c.await?;
            }
            if !self.wait_receipts(total, Duration::from_secs(10), Duration::from_secs(60)).await {
                return Err(format!("latency run: {} of {total} received", self.recv.shared.total()).into());
            }
            let wall = start.elapsed().as_secs_f64();
            let cpu = cpu_secs(pid).unwrap_or(0.0) - cpu0;
            let wait1 = waits(pid);
            let wait_ms_per_s = |i: usize| round((wait1[i] - wait0[i]) * 1e3 / wall, 1);
            sampling.store(false, Ordering::SeqCst);
            let (ready, in_flight) = sampler.await.unwrap_or_default();
            let stat = |v: &[f64]| {
                if v.is_empty() {
                    Value::Null
                } else {
                    json!({ "mean": round(v.iter().sum::<f64>() / v.len() as f64, 1), "max": v.iter().cloned().fold(0.0, f64::max) })
                }
            };
            let warmup = start_unix + 1_000_000_000;
            let all: Vec<(u64, u64)> = self.recv.shared.latencies.lock().unwrap().clone();
            let mut steady: Vec<u64> = all.iter().filter(|(p, _)| *p >= warmup).map(|(_, l)| *l).collect();
            let mut every: Vec<u64> = all.iter().map(|(_, l)| *l).collect();
            steady.sort_unstable();
            every.sort_unstable();
            let pct = |v: &[u64], p: f64| -> f64 {
                if v.is_empty() {
                    return 0.0;
                }
                let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
                round(v[i] as f64 / 1e6, 2)
            };
            // Per-second p99 and max, by publish time: shows whether the
            // tail is a steady queue or a few stalls.
            let mut timeline = Vec::new();
            for sec in 0..(self.opts.latency_seconds.ceil() as u64) {
                let lo = start_unix + sec * 1_000_000_000;
                let mut v: Vec<u64> =
                    all.iter().filter(|(p, _)| *p >= lo && *p < lo + 1_000_000_000).map(|(_, l)| *l).collect();
                v.sort_unstable();
                timeline.push(json!([pct(&v, 0.5), pct(&v, 0.99), pct(&v, 1.0)]));
            }
            Ok::<_, BoxError>(json!({
                "timeline_p50_p99_max_ms_per_second": timeline,
                "queue_ready_sampled": stat(&ready),
                "worker_in_flight_sampled": stat(&in_flight),
                "offered_per_s": offered.round() as u64,
                "target_rate_per_s": rate,
                "n": every.len(),
                "p50_ms": pct(&steady, 0.50),
                "p90_ms": pct(&steady, 0.90),
                "p99_ms": pct(&steady, 0.99),
                "max_ms": pct(&steady, 1.0),
                "n_steady": steady.len(),
                "including_first_second": { "p50_ms": pct(&every, 0.5), "p99_ms": pct(&every, 0.99), "max_ms": pct(&every, 1.0) },
                "cpu_us_per_delivery": round(cpu * 1e6 / total as f64, 1),
                "peak_rss_mib": round(vm_bytes(pid, "VmHWM").unwrap_or(0) as f64 / MIB, 1),
                // Milliseconds per second that each process's threads were
                // runnable but had no CPU (summed over threads).
                "runqueue_wait_ms_per_s": {
                    "sut": wait_ms_per_s(0), "broker": wait_ms_per_s(1), "bench_and_receiver": wait_ms_per_s(2),
                },
                "noise": Noise::now().since(&noise0, wall, cpu),
            }))
        }
        .await;
        self.recv.shared.latency_on.store(false, Ordering::SeqCst);
        if let Some(w) = worker {
            w.stop(Duration::from_secs(15)).await;
        }
        if let Some(mut c) = naive_child {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.broker.cleanup(&t).await;
        let v = r?;
        eprintln!(
            "bench:   p50 {} ms, p99 {} ms, max {} ms; machine {} cores busy; waiting for a CPU (ms/s): {}",
            v["p50_ms"],
            v["p99_ms"],
            v["max_ms"],
            v["noise"]["machine_busy_cores"],
            v["runqueue_wait_ms_per_s"]
        );
        Ok(v)
    }

    /// Ten receivers on ten ports, round robin; the hang run makes one of
    /// them answer only after 15 s (past the 10 s timeout). Default worker
    /// settings. The figure: the other nine's delivery rate, hang run over
    /// all-healthy run.
    async fn isolation(&self, rate_hint: Option<f64>) -> Res<Value> {
        // Size the backlog so the all-healthy run lasts ~iso_seconds: from the
        // worker's quorum success rate, else from a short probe.
        let rate = match rate_hint {
            Some(r) if r > 0.0 => r,
            _ => {
                self.isolation_run("iso-probe", false, 20_000).await?["nine_per_s"]
                    .as_f64()
                    .unwrap_or(5000.0)
                    / 0.9
            }
        };
        let m = ((rate * self.opts.iso_seconds) as usize).clamp(20_000, 150_000);
        let (mut healthy_runs, mut hang_runs, mut shares) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..self.opts.iso_repeat {
            let healthy = self
                .isolation_run(&format!("iso-healthy-{round}"), false, m)
                .await?;
            let hang = self
                .isolation_run(&format!("iso-hang-{round}"), true, m)
                .await?;
            let share = hang["nine_per_s"].as_f64().unwrap_or(0.0)
                / healthy["nine_per_s"].as_f64().unwrap_or(1.0);
            eprintln!(
                "bench:   the other nine keep {:.0} % of their all-healthy rate",
                share * 100.0
            );
            healthy_runs.push(healthy);
            hang_runs.push(hang);
            shares.push(share);
        }
        let pick = |runs: &[Value]| {
            let mut sorted: Vec<&Value> = runs.iter().collect();
            sorted.sort_by(|a, b| {
                a["nine_per_s"]
                    .as_f64()
                    .unwrap_or(0.0)
                    .total_cmp(&b["nine_per_s"].as_f64().unwrap_or(0.0))
            });
            sorted[(sorted.len() - 1) / 2].clone()
        };
        let (healthy, hang, share) = (pick(&healthy_runs), pick(&hang_runs), median(&shares));
        Ok(json!({
            "rounds_nine_share": shares.iter().map(|x| round(*x, 3)).collect::<Vec<_>>(),
            "rounds_all_healthy_nine_per_s": healthy_runs.iter().map(|r| r["nine_per_s"].clone()).collect::<Vec<_>>(),
            "rounds_one_hanging_nine_per_s": hang_runs.iter().map(|r| r["nine_per_s"].clone()).collect::<Vec<_>>(),
            "events": m,
            "queue_type": "quorum",
            "settings": format!("defaults: concurrency {DEFAULT_CONCURRENCY}, host concurrency {DEFAULT_HOST_CONCURRENCY}, timeout 10s, schedule 60s*3,1h*3,24h*3"),
            "hang": "receiver 0 answers after 15 s",
            "all_healthy": healthy,
            "one_hanging": hang,
            "nine_share": round(share, 3),
        }))
    }

    async fn isolation_run(&self, scenario: &str, hang: bool, m: usize) -> Res<Value> {
        let prefix = self.prefix(scenario);
        let t = self
            .broker
            .declare(&self.config(&prefix, QueueType::Quorum, None))
            .await?;
        for p in &self.recv.iso {
            p.set(Mode::Ok, 0);
        }
        if hang {
            self.recv.iso[0].set(Mode::Hang, 15_000);
        }
        eprintln!("bench: isolation {scenario}: publishing {m} to 10 receivers");
        let urls: Vec<String> = self.recv.iso.iter().map(|p| p.url()).collect();
        self.broker
            .publish_bulk(t.exchange(), m, &|i| urls[i % 10].clone(), "b")
            .await?;
        let nine: u64 = (0..m).filter(|i| i % 10 != 0).count() as u64;
        let mut w = WorkerProc::spawn(
            &self.worker_bin,
            &prefix,
            QueueType::Quorum,
            &[],
            &self.log(scenario),
        )
        .await?;
        self.recv.reset(w.pid, u64::MAX);
        let noise0 = Noise::now();
        let r = async {
            w.wait_ready(Duration::from_secs(30)).await?;
            let t0 = Instant::now();
            // The nine's deliveries per half second: shows whether a loss is
            // a start-up transient or steady.
            let (mut timeline, mut mark, mut at_mark) = (Vec::new(), Instant::now(), 0u64);
            loop {
                let got: u64 = self.recv.iso[1..].iter().map(|p| p.count()).sum();
                if mark.elapsed() >= Duration::from_millis(500) && got > 0 {
                    timeline.push(
                        ((got - at_mark) as f64 / mark.elapsed().as_secs_f64()).round() as u64,
                    );
                    (mark, at_mark) = (Instant::now(), got);
                } else if got == 0 {
                    mark = Instant::now();
                }
                if got >= nine {
                    break;
                }
                if t0.elapsed() > Duration::from_secs(240) {
                    return Err(
                        format!("isolation: only {got} of {nine} delivered to the nine").into(),
                    );
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let first = self.recv.shared.first_ns.load(Ordering::SeqCst) as f64 / 1e9;
            let last = self.recv.iso[1..]
                .iter()
                .map(|p| p.last_ns.load(Ordering::SeqCst))
                .max()
                .unwrap_or(0) as f64
                / 1e9;
            let cpu = cpu_secs(w.pid).unwrap_or(0.0)
                - (*self.recv.shared.cpu_first.lock().unwrap()).unwrap_or(0.0);
            let deferred = w.metric("webhook_deferred_total").await.unwrap_or(-1.0);
            let rotations = w
                .metric("webhook_consumer_rotations_total")
                .await
                .unwrap_or(-1.0);
            let timeouts = metric_line(&w, "webhook_attempts_total", "outcome=\"timeout\"").await;
            Ok::<_, BoxError>(json!({
                "nine_delivered": nine,
                "elapsed_s": round(last - first, 3),
                "nine_per_s": (nine as f64 / (last - first)).round() as u64,
                "nine_per_s_every_half_second": timeline,
                "hanging_receiver_requests": self.recv.iso[0].count(),
                "deferred": deferred,
                "consumer_rotations": rotations,
                "timeouts": timeouts,
                "peak_rss_mib": round(vm_bytes(w.pid, "VmHWM").unwrap_or(0) as f64 / MIB, 1),
                "cpu_us_per_delivery": round(cpu * 1e6 / nine as f64, 1),
                "noise": Noise::now().since(&noise0, last - first, cpu),
            }))
        }
        .await;
        // A hanging receiver keeps the drain busy until its attempts time out.
        w.stop(Duration::from_secs(15)).await;
        self.broker.cleanup(&t).await;
        for p in &self.recv.iso {
            p.set(Mode::Ok, 0);
        }
        let v = r?;
        eprintln!(
            "bench:   nine receivers: {} deliveries/s; every half second: {}; deferred {}, rotations {}, broker {} cores",
            v["nine_per_s"],
            v["nine_per_s_every_half_second"],
            v["deferred"],
            v["consumer_rotations"],
            v["noise"]["broker_cores"]
        );
        Ok(v)
    }

    /// `inflight` events to a receiver that holds every request until
    /// released: RSS and sockets with ~0 and with `inflight` in flight.
    async fn memory(&self) -> Res<Value> {
        let scenario = "inflight";
        let prefix = self.prefix(scenario);
        let qt = QueueType::Quorum;
        let t = self.broker.declare(&self.config(&prefix, qt, None)).await?;
        let k = self.opts.inflight;
        let conc = k.to_string();
        let mut w = WorkerProc::spawn(
            &self.worker_bin,
            &prefix,
            qt,
            &[
                "--concurrency",
                &conc,
                "--host-concurrency",
                "0",
                "--timeout",
                "60s",
            ],
            &self.log(scenario),
        )
        .await?;
        self.recv.reset(w.pid, k as u64);
        self.recv.slow.set(Mode::Gate, 50_000);
        eprintln!("bench: memory: {k} deliveries in flight to a slow receiver");
        let r = async {
            w.wait_ready(Duration::from_secs(30)).await?;
            // Warm the process up with a few deliveries, so the idle figure
            // includes the code paths a delivery touches, then let it idle.
            self.recv.shared.gate.send_replace(true);
            let url = self.recv.slow.url();
            self.broker.publish_bulk(t.exchange(), 100, &|_| url.clone(), "warm").await?;
            self.wait_receipts(100, Duration::from_secs(10), Duration::from_secs(30)).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let idle_rss = vm_bytes(w.pid, "VmRSS").unwrap_or(0);
            let idle_sockets = open_sockets(w.pid);
            let idle_in_flight = w.metric("webhook_in_flight").await.unwrap_or(-1.0);
            self.recv.reset(w.pid, k as u64);
            self.recv.shared.gate.send_replace(false);
            self.broker.publish_bulk(t.exchange(), k, &|_| url.clone(), "slow").await?;
            let t0 = Instant::now();
            let mut in_flight = 0.0;
            while t0.elapsed() < Duration::from_secs(30) {
                in_flight = w.metric("webhook_in_flight").await.unwrap_or(0.0);
                if in_flight as usize >= k {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            // Let every request reach the receiver.
            let t1 = Instant::now();
            while (self.recv.slow.count() as usize) < k && t1.elapsed() < Duration::from_secs(5) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let busy_rss = vm_bytes(w.pid, "VmRSS").unwrap_or(0);
            let busy_sockets = open_sockets(w.pid);
            let hwm = vm_bytes(w.pid, "VmHWM").unwrap_or(0);
            self.recv.shared.gate.send_replace(true);
            let released = Instant::now();
            let drained = loop {
                let f = w.metric("webhook_in_flight").await.unwrap_or(1.0);
                if f == 0.0 || released.elapsed() > Duration::from_secs(30) {
                    break released.elapsed().as_secs_f64();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            let delta = busy_rss.saturating_sub(idle_rss) as f64;
            Ok::<_, BoxError>(json!({
                "queue_type": "quorum",
                "settings": format!("--concurrency {k} --host-concurrency 0 --timeout 60s"),
                "in_flight": in_flight,
                "idle": { "in_flight": idle_in_flight, "rss_mib": round(idle_rss as f64 / MIB, 1), "sockets": idle_sockets },
                "busy": { "in_flight": in_flight, "rss_mib": round(busy_rss as f64 / MIB, 1), "sockets": busy_sockets },
                "peak_rss_mib": round(hwm as f64 / MIB, 1),
                "kib_per_in_flight": round(delta / 1024.0 / in_flight.max(1.0), 1),
                "drain_after_release_s": round(drained, 2),
            }))
        }
        .await;
        w.stop(Duration::from_secs(15)).await;
        self.broker.cleanup(&t).await;
        let v = r?;
        eprintln!(
            "bench:   {} in flight: RSS {} → {} MiB, {} KiB each, sockets {} → {}",
            v["in_flight"],
            v["idle"]["rss_mib"],
            v["busy"]["rss_mib"],
            v["kib_per_in_flight"],
            v["idle"]["sockets"],
            v["busy"]["sockets"]
        );
        Ok(v)
    }
}
