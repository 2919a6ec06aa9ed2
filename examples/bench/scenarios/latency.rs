//! Publish→receipt latency at a fixed offered rate.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use lapin::{options::BasicPublishOptions, types::FieldTable};
use serde_json::{Value, json};

use super::Bench;
use crate::{
    BoxError, MIB, Res, amqp_url,
    lib_api::{QueueType, qt_name},
    payloads::{latency_envelope, props},
    sys::{Noise, broker_pid, cpu_secs, round, runqueue_wait_secs, unix_nanos, vm_bytes},
    worker_proc::{WorkerProc, metric_sum},
};

impl Bench {
    /// Publish→receipt latency at a fixed offered rate, with the worker (or,
    /// for reference, the naive worker) running. The publisher is this
    /// process, pacing in 1 ms ticks, confirms pipelined; each event's id
    /// carries its publish time, which the receiver subtracts from the time
    /// the request arrives. The first second is reported apart (warm-up:
    /// connections to the receiver are opened then).
    pub(super) async fn latency(&self, qt: QueueType, rate: f64, naive: bool) -> Res<Value> {
        let scenario = format!(
            "{}-latency{}",
            qt_name(qt),
            if naive { "-naive" } else { "" }
        );
        let prefix = self.prefix(&scenario);
        let t = self.broker.declare(&prefix, qt, None).await?;
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
                self.worker_bin(),
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
                let ch = webhook_worker::broker::channel::open(&*self.broker.conn().await?).await?;
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
}
