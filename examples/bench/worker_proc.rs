//! The worker under test as a subprocess: start it, wait until it is ready,
//! read its `/metrics`, stop it with a drain.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{
    Res, SECRET, amqp_url,
    lib_api::{QueueType, qt_name},
};

/// The worker under test, a subprocess.
pub(crate) struct WorkerProc {
    child: Child,
    pub(crate) pid: u32,
    /// `http://127.0.0.1:<port>` of `/metrics`, known once the worker logged it.
    pub(crate) metrics: String,
    pub(crate) http: reqwest::Client,
    log: PathBuf,
}

impl WorkerProc {
    /// The worker with signing on, `--queue-type` and `extra` (the
    /// throughput, latency, isolation and memory scenarios).
    pub(crate) async fn spawn(
        bin: &Path,
        prefix: &str,
        qt: QueueType,
        extra: &[&str],
        log: &Path,
    ) -> Res<Self> {
        let mut args = vec!["--queue-type", qt_name(qt), "--signing-secret", SECRET];
        args.extend(extra);
        Self::spawn_with(bin, prefix, &args, log).await
    }

    /// The worker at its defaults: only what a test needs (its prefix,
    /// private targets allowed, a free metrics port).
    pub(crate) async fn spawn_defaults(bin: &Path, prefix: &str, log: &Path) -> Res<Self> {
        Self::spawn_with(bin, prefix, &[], log).await
    }

    async fn spawn_with(bin: &Path, prefix: &str, extra: &[&str], log: &Path) -> Res<Self> {
        // Experiments: BENCH_WORKER_ARGS is appended to every worker command line.
        let more: Vec<String> = std::env::var("BENCH_WORKER_ARGS")
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let mut cmd = Command::new(bin);
        cmd.arg("run")
            .args(["--prefix", prefix])
            .arg("--allow-private-targets")
            // Port 0: the worker binds a free port and logs it (no race).
            .args(["--metrics-addr", "127.0.0.1:0"])
            .args(extra)
            .args(&more)
            .env("AMQP_URL", amqp_url())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(log)?);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let pid = child.id();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self {
            child,
            pid,
            metrics: String::new(),
            http,
            log: log.to_path_buf(),
        })
    }

    pub(crate) async fn wait_ready(&mut self, within: Duration) -> Res<()> {
        let t0 = Instant::now();
        loop {
            if self.metrics.is_empty()
                && let Some(port) = logged_metrics_port(&self.log)
            {
                self.metrics = format!("http://127.0.0.1:{port}");
            }
            if !self.metrics.is_empty()
                && let Ok(r) = self
                    .http
                    .get(format!("{}/readyz", self.metrics))
                    .send()
                    .await
                && r.status().is_success()
            {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("worker exited early: {status}").into());
            }
            if t0.elapsed() > within {
                return Err("worker not ready in time".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What the worker logged at start (its effective concurrency, ...).
    pub(crate) fn startup_line(&self) -> Option<String> {
        let text = fs::read_to_string(&self.log).ok()?;
        text.lines()
            .find(|l| l.contains("starting"))
            .map(str::to_string)
    }

    /// `GET <path>` on the metrics port (e.g. `/receivers`), when it answers 200.
    pub(crate) async fn get(&self, path: &str) -> Option<String> {
        let r = self
            .http
            .get(format!("{}{path}", self.metrics))
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.text().await.ok()
    }

    pub(crate) async fn metrics_text(&self) -> Option<String> {
        self.http
            .get(format!("{}/metrics", self.metrics))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()
    }

    /// Sum of every series of a metric.
    pub(crate) async fn metric(&self, name: &str) -> Option<f64> {
        Some(metric_sum(&self.metrics_text().await?, name))
    }

    /// SIGTERM, then wait for the drain (SIGKILL after `grace`).
    pub(crate) async fn stop(mut self, grace: Duration) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < grace {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port of the worker's start-up line (`... starting metrics=127.0.0.1:PORT ...`).
fn logged_metrics_port(log: &Path) -> Option<u16> {
    let text = fs::read_to_string(log).ok()?;
    let at = text.find("metrics")?;
    let rest = &text[at..];
    let at = rest.find("127.0.0.1:")? + "127.0.0.1:".len();
    let digits: String = rest[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok().filter(|p| *p != 0)
}

pub(crate) fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub(crate) async fn metric_line(w: &WorkerProc, name: &str, label: &str) -> f64 {
    let Ok(r) = w.http.get(format!("{}/metrics", w.metrics)).send().await else {
        return -1.0;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
