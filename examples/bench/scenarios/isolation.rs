//! Isolation: ten receivers, one of them hanging (the older scenario; the
//! receiver scenarios `hang` and `turns-bad` refine it).

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::{Bench, median};
use crate::{
    BoxError, MIB, Res,
    lib_api::{DEFAULT_CONCURRENCY, DEFAULT_HOST_CONCURRENCY, QueueType},
    receiver::Mode,
    sys::{Noise, cpu_secs, round, vm_bytes},
    worker_proc::{WorkerProc, metric_line},
};

impl Bench {
    /// Ten receivers on ten ports, round robin; the hang run makes one of
    /// them answer only after 15 s (past the 10 s timeout). Default worker
    /// settings. The figure: the other nine's delivery rate, hang run over
    /// all-healthy run.
    pub(super) async fn isolation(&self, rate_hint: Option<f64>) -> Res<Value> {
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
            .declare(&prefix, QueueType::Quorum, None)
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
            self.worker_bin(),
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
}
