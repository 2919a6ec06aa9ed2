//! The worker as a process: `webhook-worker run` from the binary built for
//! the tests, its log captured in a file, killed when dropped; and the
//! one-shot commands (`dead ...`, `check`) run as the binary.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::{amqp_url, wait_for};

const LONG: Duration = Duration::from_secs(60);

/// Runs a one-shot command of the binary (`dead ...`, `check`, ...) against
/// the test broker, with no terminal on stdin, and waits for it.
pub fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_webhook-worker"))
        .args(args)
        .env("AMQP_URL", amqp_url())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The text a command printed on stdout and stderr.
pub fn printed(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A worker process (the release-or-debug binary built for the tests).
pub struct WorkerProcess {
    pub child: Child,
    pub metrics: String,
    pub log: PathBuf,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl WorkerProcess {
    /// Starts `webhook-worker run` with `args` after the test defaults,
    /// and waits until it is ready.
    pub async fn start(prefix: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let w = Self::spawn(prefix, args, env);
        wait_for("worker process ready", LONG, async || {
            (w.readyz().await == Some(200)).then_some(())
        })
        .await;
        w
    }

    /// Starts it without waiting (it may never become ready).
    pub fn spawn(prefix: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("{prefix}-{port}.log"));
        let metrics_addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_webhook-worker"));
        cmd.args([
            "run",
            "--prefix",
            prefix,
            "--metrics-addr",
            &metrics_addr,
            "--allow-private-targets",
        ])
        .args(["--retry-schedule", "200ms*2,500ms", "--dead-ttl", "10m"])
        .args(args)
        .env("AMQP_URL", amqp_url())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        Self {
            child,
            metrics: format!("http://{metrics_addr}"),
            log,
        }
    }

    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let r = reqwest::get(format!("{}{path}", self.metrics)).await.ok()?;
        let status = r.status().as_u16();
        Some((status, r.text().await.ok()?))
    }

    pub async fn readyz(&self) -> Option<u16> {
        self.get("/readyz").await.map(|(s, _)| s)
    }

    pub async fn scrape(&self) -> String {
        self.get("/metrics").await.expect("metrics").1
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }

    /// Waits for the process to exit; returns its code and how long it took.
    pub async fn wait_exit(&mut self, deadline: Duration) -> (Option<i32>, Duration) {
        let start = Instant::now();
        let status = wait_for("worker exit", deadline, async || {
            self.child.try_wait().unwrap()
        })
        .await;
        (status.code(), start.elapsed())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
