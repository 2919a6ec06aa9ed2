//! The baseline runs of the throughput rounds: raw HTTP, raw consume, and
//! the naive worker draining the instant receiver.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};

use super::{Bench, figure, run_baseline};
use crate::{
    Res, amqp_url,
    lib_api::{QueueType, qt_name},
    sys::{Noise, round, vm_bytes},
};

impl Bench {
    pub(super) async fn raw_http(&self) -> Res<Value> {
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

    pub(super) async fn raw_consume(&self, qt: QueueType) -> Res<Value> {
        let prefix = self.prefix(&format!("{}-consume", qt_name(qt)));
        let t = self.broker.declare(&prefix, qt, None).await?;
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

    pub(super) async fn naive(&self, qt: QueueType) -> Res<Value> {
        let prefix = self.prefix(&format!("{}-naive", qt_name(qt)));
        let t = self.broker.declare(&prefix, qt, None).await?;
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
}
