//! Memory: RSS and sockets per in-flight delivery.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Bench;
use crate::{
    BoxError, MIB, Res,
    lib_api::QueueType,
    receiver::Mode,
    sys::{open_sockets, round, vm_bytes},
    worker_proc::WorkerProc,
};

impl Bench {
    /// `inflight` events to a receiver that holds every request until
    /// released: RSS and sockets with ~0 and with `inflight` in flight.
    pub(super) async fn memory(&self) -> Res<Value> {
        let scenario = "inflight";
        let prefix = self.prefix(scenario);
        let qt = QueueType::Quorum;
        let t = self.broker.declare(&prefix, qt, None).await?;
        let k = self.opts.inflight;
        let conc = k.to_string();
        let mut w = WorkerProc::spawn(
            self.worker_bin(),
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
