//! The binary as a child process: one-shot commands ([`cli`], or [`bin`]
//! for a command line of the test's own) and `webhook-worker run`
//! ([`WorkerProcess`]), whose metrics address is the one it bound itself
//! (`--metrics-addr 127.0.0.1:0`), read back from its `webhook-worker
//! starting` log line: no port is picked in advance.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use super::{Receiver, amqp_url, wait_for};

/// How long a worker process gets to start, and to be ready.
const START: Duration = Duration::from_secs(60);

/// The binary built for the tests.
pub(crate) fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_webhook-worker"))
}

/// Runs a one-shot command of the binary (`dead ...`, `check`, ...) against
/// the test broker, with no terminal on stdin, and waits for it.
pub(crate) fn cli(args: &[&str]) -> Output {
    bin()
        .args(args)
        .env("AMQP_URL", amqp_url())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The text a command printed on stdout and stderr.
pub(crate) fn printed(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `check` of `prefix` with the test configuration's tiers and dead TTL
/// ([`super::test_config`]) and `extra`: its exit code and everything it
/// printed.
pub(crate) fn check_as_tests(prefix: &str, extra: &[&str]) -> (Option<i32>, String) {
    let args = [
        "check",
        "--prefix",
        prefix,
        "--retry-schedule",
        "200ms*2,500ms",
        "--dead-ttl",
        "10m",
    ];
    let out = cli(&[&args[..], extra].concat());
    let (stdout, stderr) = printed(&out);
    (out.status.code(), stdout + &stderr)
}

/// A port on loopback where nothing listens while the returned socket
/// lives: bound, never listening, so a connection to it is refused and no
/// one else can take it.
pub(crate) fn closed_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}

/// `webhook-worker run` as a child process, its log (stderr) in a file.
/// Dropping it kills the process (SIGKILL) and removes the log.
pub(crate) struct WorkerProcess {
    /// Behind a lock so that `&self` can see whether it has exited.
    child: Mutex<Child>,
    pid: u32,
    /// Known once the process has logged it.
    metrics_addr: OnceLock<SocketAddr>,
    log: PathBuf,
}

impl WorkerProcess {
    /// Starts `webhook-worker run` with the test defaults (the prefix, an
    /// ephemeral metrics port, private targets allowed, the tiers
    /// `200ms*2,500ms`, dead TTL 10 minutes, `RUST_LOG=info`), then `args`
    /// and `env` (which win), and waits until `/readyz` answers 200.
    pub(crate) async fn start(prefix: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let w = Self::spawn(prefix, args, env);
        wait_for("worker process ready", START, async || {
            (w.readyz().await == Some(200)).then_some(())
        })
        .await;
        w
    }

    /// Like [`WorkerProcess::start`], without waiting for anything (it may
    /// never become ready, or exit at once): its metrics address is read
    /// from its log when first needed.
    pub(crate) fn spawn(prefix: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let log =
            std::env::temp_dir().join(format!("{prefix}-{}.log", N.fetch_add(1, Ordering::SeqCst)));
        let mut cmd = bin();
        cmd.args([
            "run",
            "--prefix",
            prefix,
            "--metrics-addr",
            "127.0.0.1:0",
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
            pid: child.id(),
            child: Mutex::new(child),
            metrics_addr: OnceLock::new(),
            log,
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The address `/metrics`, `/healthz` and `/readyz` are served on, as
    /// the process logged it (waited for; a process that exits first
    /// fails the test with its log).
    pub(crate) async fn metrics_addr(&self) -> SocketAddr {
        if let Some(addr) = self.metrics_addr.get() {
            return *addr;
        }
        let addr = wait_for("the worker's metrics address", START, async || {
            let text = self.log_text();
            if let Some(addr) = metrics_addr_in(&text) {
                return Some(addr);
            }
            if let Some(status) = self.child.lock().unwrap().try_wait().unwrap() {
                panic!("the worker exited ({status}) before it started:\n{text}");
            }
            None
        })
        .await;
        *self.metrics_addr.get_or_init(|| addr)
    }

    /// `http://` and the [metrics address](WorkerProcess::metrics_addr).
    pub(crate) async fn base_url(&self) -> String {
        format!("http://{}", self.metrics_addr().await)
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        let r = reqwest::get(format!("{}{path}", self.base_url().await))
            .await
            .ok()?;
        let status = r.status().as_u16();
        Some((status, r.text().await.ok()?))
    }

    /// The `/readyz` status (None while nothing answers).
    pub(crate) async fn readyz(&self) -> Option<u16> {
        self.get("/readyz").await.map(|(s, _)| s)
    }

    /// The `/metrics` text.
    pub(crate) async fn scrape(&self) -> String {
        self.get("/metrics").await.expect("metrics").1
    }

    /// SIGKILL: the process dies holding whatever it holds.
    pub(crate) fn kill_9(&self) {
        self.signal("-KILL");
    }

    /// Kills the process with SIGKILL once `receiver` has had more than
    /// `n` requests, mid-flight, and waits until it is gone. Returns the
    /// requests the receiver had by then.
    pub(crate) async fn kill_9_after(mut self, receiver: &Receiver, n: usize) -> usize {
        let deadline = Duration::from_secs(60);
        wait_for(&format!("more than {n} requests"), deadline, async || {
            (receiver.requests().len() > n).then_some(())
        })
        .await;
        self.kill_9();
        self.wait_exit(deadline).await;
        receiver.requests().len()
    }

    /// SIGTERM: a graceful shutdown.
    pub(crate) fn terminate(&self) {
        self.signal("-TERM");
    }

    /// SIGINT (a second one forces the exit).
    pub(crate) fn interrupt(&self) {
        self.signal("-INT");
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }

    /// Whether the process has not exited yet.
    pub(crate) fn is_running(&self) -> bool {
        self.child.lock().unwrap().try_wait().unwrap().is_none()
    }

    /// Waits for the process to exit; returns its code and how long it took.
    pub(crate) async fn wait_exit(&mut self, deadline: Duration) -> (Option<i32>, Duration) {
        let start = Instant::now();
        let child = self.child.get_mut().unwrap();
        let status = wait_for("worker exit", deadline, async || child.try_wait().unwrap()).await;
        (status.code(), start.elapsed())
    }

    /// Everything the process has logged so far.
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The `metrics` field of the `webhook-worker starting` line, in the text
/// format (`metrics=127.0.0.1:PORT`) or the JSON one (`"metrics":"..."`).
fn metrics_addr_in(log: &str) -> Option<SocketAddr> {
    let line = log
        .lines()
        .find(|l| l.contains("webhook-worker starting"))?;
    let value = match line.split_once("metrics=") {
        Some((_, rest)) => rest.split_whitespace().next()?,
        None => line.split_once(r#""metrics":""#)?.1.split('"').next()?,
    };
    Some(value.parse().expect("a socket address after metrics="))
}
