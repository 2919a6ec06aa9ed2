//! The throughput runs: every system once per round (baselines, the worker's
//! success and failure paths, per queue type), and the ratios between them.

use std::{
    path::Path,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use serde_json::{Map, Value, json};

use super::{Bench, figure, median, median_run, per_s};
use crate::{
    BoxError, Res,
    lib_api::{QueueType, qt_name},
    perf::Perf,
    receiver::{Port, since_epoch_ns},
    sys::{Noise, cpu_secs, num_cpus, round, vm_bytes},
    worker_proc::{WorkerProc, metric_sum},
};

/// The worker binary of a run, and who declares its topology.
pub(super) struct Under<'a> {
    pub(super) bin: &'a Path,
    /// Tells its prefix and log apart from another binary's.
    pub(super) tag: &'a str,
    pub(super) declared_by: DeclaredBy,
}

/// Who declares a run's topology before the events are published.
#[derive(Clone, Copy)]
pub(super) enum DeclaredBy {
    /// The harness, through this library (the binary's own declaration
    /// at start is then a no-op).
    Harness,
    /// `<bin> declare`: a binary of another version declares its own
    /// topology (it may refuse the arguments this library gives a queue).
    Binary,
}

impl Bench {
    /// Throughput runs, repeated and interleaved (every system once per
    /// round), so a drift of the machine's speed hits all of them alike; each
    /// figure is the median round, each ratio the median of the per-round
    /// ratios. Latency runs follow, per queue type.
    pub(super) async fn throughput(&self, results: &mut Map<String, Value>) -> Res<()> {
        let b = self;
        if !["baselines", "success", "failure", "latency"]
            .iter()
            .any(|s| b.opts.wants(s))
        {
            return Ok(());
        }
        let mut per_type = Map::new();
        let qts = b.opts.queue_types.clone();
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
        if !per_type.is_empty() {
            results.insert("by_queue_type".into(), Value::Object(per_type));
        }
        Ok(())
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
    pub(super) async fn worker_run(&self, qt: QueueType, failing: bool) -> Res<Value> {
        self.worker_run_as(qt, failing, &[], None).await
    }

    /// [`Bench::worker_run`] with `extra` worker flags and, for the success
    /// path, another receiver port than the instant one.
    pub(super) async fn worker_run_as(
        &self,
        qt: QueueType,
        failing: bool,
        extra: &[&str],
        to: Option<&Port>,
    ) -> Res<Value> {
        let under = Under {
            bin: self.worker_bin(),
            tag: "",
            declared_by: DeclaredBy::Harness,
        };
        self.worker_run_on(&under, qt, failing, extra, to).await
    }

    /// [`Bench::worker_run_as`] with the worker binary of `under`.
    pub(super) async fn worker_run_on(
        &self,
        under: &Under<'_>,
        qt: QueueType,
        failing: bool,
        extra: &[&str],
        to: Option<&Port>,
    ) -> Res<Value> {
        let (bin, tag) = (under.bin, under.tag);
        let scenario = format!(
            "{}-{}{}{}{tag}",
            qt_name(qt),
            if failing { "failure" } else { "success" },
            if to.is_some() { "-slow" } else { "" },
            extra.join("").replace("--", "-")
        );
        let ok_port: &Port = to.unwrap_or(&self.recv.ok);
        let prefix = self.prefix(&scenario);
        let schedule = failing.then_some("1h");
        let t = match under.declared_by {
            DeclaredBy::Harness => self.broker.declare(&prefix, qt, schedule).await?,
            DeclaredBy::Binary => self.broker.declare_by(bin, &prefix, qt, schedule).await?,
        };
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
            ok_port.url()
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
        args.extend(extra);
        let mut w = WorkerProc::spawn(bin, &prefix, qt, &args, &self.log(&scenario)).await?;
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
                    // The n-th receipt is counted before its handler records
                    // its time and the worker's CPU: wait for those.
                    let Some((_, nth, _)) = self.recv.window() else {
                        if last.1.elapsed() > Duration::from_secs(5) {
                            return Err("no window".into());
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    };
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
                            ok_port.last_ns.load(Ordering::SeqCst)
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
            if !failing {
                v["steady_per_s"] = json!(self.recv.steady_per_s(n).map(f64::round));
            }
            v["log_disk_bytes"] = json!(super::outcomes::stream_disk_bytes(t.log()));
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
}
