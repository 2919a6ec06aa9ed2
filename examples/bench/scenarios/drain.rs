//! One drain run (issue 23): a backlog published before a fresh consumer
//! starts, measured from outside at the receivers, by the last event. The
//! run lasts until every measured event got its 2xx (deferred ones
//! included: they come back after the 60 s tier) or [`GIVE_UP`] passed.
//!
//! Figures: first → last 2xx of the measured receivers and the rate over
//! it; the delivery latency of each measured event (its 2xx answer, less
//! the run's first request at any receiver: time waiting in the queue and
//! in the worker, plus the receiver's own latency), p50/p99/max; the
//! worker's `webhook_deferred_total`; CPU of the consumer; lost events.
//! The broker's CPU over the run too, when exactly one `beam.smp` runs on
//! the machine (with several the harness cannot tell which is under test).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::{
    Bench,
    vrun::{NAIVE_CONCURRENCY, Sut, sample_limits},
};
use crate::{
    Res,
    lib_api::QueueType,
    sys::{cpu_secs, loadavg, only_broker_pid, round},
    vhosts::Behave,
    worker_proc::{WorkerProc, metric_sum},
};

/// Longest a run waits for its last measured event: past the shortest
/// tier (60 s), so deferred events are counted where they arrive.
const GIVE_UP: Duration = Duration::from_secs(100);

/// The limit timeline is kept for this long after the first request.
const COLD_START_S: f64 = 2.0;

/// A drain scenario: receivers, how events are spread, which are measured.
pub(super) struct Drain {
    pub(super) name: String,
    pub(super) hosts: Vec<Behave>,
    pub(super) route: fn(usize) -> usize,
    pub(super) events: usize,
    /// Hosts whose events are measured (not a hanging one's).
    pub(super) measured: Vec<usize>,
}

impl Drain {
    fn measured_events(&self) -> Vec<usize> {
        (0..self.events)
            .filter(|i| self.measured.contains(&(self.route)(*i)))
            .collect()
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

impl Bench {
    /// One run of `d` against `sut`, a fresh consumer process.
    pub(super) async fn drain_run(&self, d: &Drain, sut: Sut<'_>, label: &str) -> Res<Value> {
        let scenario = format!("{}-{label}", d.name);
        let prefix = self.prefix(&scenario);
        let t = self
            .broker
            .declare(&prefix, QueueType::Quorum, None)
            .await?;
        let urls: Vec<String> = (0..d.hosts.len()).map(|h| self.vhosts.url(h)).collect();
        let route = d.route;
        self.broker
            .publish_bulk(t.exchange(), d.events, &|i| urls[route(i)].clone(), "e")
            .await?;
        let measured = d.measured_events();
        let rec = self.vhosts.arm(&d.hosts, d.events);
        let load_start = loadavg();
        let mut naive = None;
        let mut worker = None;
        let pid = match sut {
            Sut::Naive => {
                let c = self.spawn_naive(t.deliveries(), NAIVE_CONCURRENCY)?;
                let pid = c.id();
                naive = Some(c);
                pid
            }
            Sut::Worker(bin) => {
                let mut w = WorkerProc::spawn_defaults(bin, &prefix, &self.log(&scenario)).await?;
                w.wait_ready(Duration::from_secs(30)).await?;
                let pid = w.pid;
                worker = Some(w);
                pid
            }
        };
        let started = Instant::now();
        let broker = only_broker_pid();
        let broker_cpu_start = broker.and_then(cpu_secs);
        // The cold start: the worker's limits every 250 ms.
        let limits = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sampler = worker.as_ref().map(|w| {
            tokio::spawn(sample_limits(
                w.http.clone(),
                w.metrics.clone(),
                w.pid,
                rec.clone(),
                limits.clone(),
            ))
        });
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if rec.ok_total() >= measured.len() as u64 {
                let counts = rec.ok_counts();
                if measured.iter().all(|i| counts[*i] > 0) {
                    break;
                }
            }
            if started.elapsed() > GIVE_UP {
                break;
            }
        }
        if let Some(h) = sampler {
            h.abort();
        }
        let cpu = cpu_secs(pid).unwrap_or(0.0);
        let broker_cpu = broker
            .and_then(cpu_secs)
            .zip(broker_cpu_start)
            .map(|(end, start)| round(end - start, 2));
        let mut extra = json!({});
        if let Some(w) = &worker {
            let text = w.metrics_text().await.unwrap_or_default();
            extra = json!({
                "deferred": metric_sum(&text, "webhook_deferred_total"),
                "retried": metric_sum(&text, "webhook_retried_total"),
                "limits_first_2s": limits.lock().unwrap().iter()
                    .filter(|v| v["t_s"].as_f64().is_some_and(|t| t <= COLD_START_S))
                    .map(|v| json!([v["t_s"], v["receivers"]]))
                    .collect::<Vec<_>>(),
            });
        }
        self.vhosts.release();
        if let Some(mut c) = naive {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(w) = worker {
            w.stop(Duration::from_secs(40)).await;
        }
        self.broker.cleanup(&t).await;
        let counts = rec.ok_counts();
        let lost = measured.iter().filter(|i| counts[**i] == 0).count();
        let mut times: Vec<f64> = rec
            .answers()
            .iter()
            .filter(|a| (200..300).contains(&a.status) && d.measured.contains(&(a.host as usize)))
            .map(|a| a.t_us as f64 / 1e6)
            .collect();
        times.sort_by(f64::total_cmp);
        let first_request = rec.first_s().unwrap_or(0.0);
        let (first, last) = (
            times.first().copied().unwrap_or(0.0),
            times.last().copied().unwrap_or(0.0),
        );
        let span = (last - first).max(1e-3);
        let lat: Vec<f64> = times.iter().map(|t| (t - first_request) * 1000.0).collect();
        let mut v = json!({
            "events": d.events,
            "measured_events": measured.len(),
            "delivered": times.len(),
            "lost": lost,
            "first_to_last_s": round(span, 3),
            "per_s": (times.len() as f64 / span).round(),
            "latency_ms": {
                "p50": pct(&lat, 0.5).round(),
                "p99": pct(&lat, 0.99).round(),
                "max": lat.last().copied().unwrap_or(0.0).round(),
            },
            "cpu_s": round(cpu, 2),
            "broker_cpu_s": broker_cpu,
            "loadavg": { "start": load_start, "end": loadavg() },
            "sut": match sut {
                Sut::Naive => json!(format!("naive-worker --concurrency {NAIVE_CONCURRENCY}")),
                Sut::Worker(bin) => json!(bin.display().to_string()),
            },
        });
        if let Value::Object(e) = extra {
            v.as_object_mut().unwrap().extend(e);
        }
        eprintln!(
            "bench:   {scenario}: {} /s first→last ({} s), deferred {}, latency p50/p99/max {}/{}/{} ms, lost {}",
            v["per_s"],
            v["first_to_last_s"],
            v.get("deferred").cloned().unwrap_or(json!("-")),
            v["latency_ms"]["p50"],
            v["latency_ms"]["p99"],
            v["latency_ms"]["max"],
            lost
        );
        Ok(v)
    }
}
