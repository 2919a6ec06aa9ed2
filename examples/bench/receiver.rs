//! The HTTP receivers the worker delivers to (axum, in the orchestrator's
//! process): per-port behaviour (ok, fail, hang, gate) and receipt counters.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Router, extract::State, http::StatusCode, serve::ListenerExt};
use tokio::sync::watch;

use crate::{
    Res,
    sys::{cpu_secs, unix_nanos},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Mode {
    /// 200 at once.
    Ok = 0,
    /// 500 at once.
    Fail = 1,
    /// Sleep `hang_ms`, then 200.
    Hang = 2,
    /// Wait for the gate (or `hang_ms`), then 200.
    Gate = 3,
}

/// One receiver port.
pub(crate) struct Port {
    addr: SocketAddr,
    mode: AtomicU32,
    hang_ms: AtomicU64,
    count: AtomicU64,
    /// Nanoseconds since [`epoch`] of the last receipt.
    pub(crate) last_ns: AtomicU64,
    shared: Arc<Shared>,
}

/// What every port reports into.
pub(crate) struct Shared {
    total: AtomicU64,
    pub(crate) first_ns: AtomicU64,
    nth_ns: AtomicU64,
    /// Receipts n/10 and 9n/10: the steady part of a drain, past the cold
    /// start's ramp and before the tail.
    tenth_ns: AtomicU64,
    ninth_tenth_ns: AtomicU64,
    /// The process under test, whose CPU is read at the first and n-th receipt.
    pid: AtomicU32,
    target_n: AtomicU64,
    pub(crate) cpu_first: Mutex<Option<f64>>,
    pub(crate) cpu_nth: Mutex<Option<f64>>,
    pub(crate) latency_on: AtomicBool,
    /// (publish unix ns, publish→receipt ns).
    pub(crate) latencies: Mutex<Vec<(u64, u64)>>,
    pub(crate) gate: watch::Sender<bool>,
}

/// The receipt that ends the steady part of a drain of `n` (no overflow
/// at the unset target, `u64::MAX`).
fn nine_tenths(n: u64) -> u64 {
    n - n / 10
}

pub(crate) fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}

pub(crate) fn since_epoch_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

impl Shared {
    fn reset(&self, pid: u32, target_n: u64) {
        self.total.store(0, Ordering::SeqCst);
        self.first_ns.store(0, Ordering::SeqCst);
        self.nth_ns.store(0, Ordering::SeqCst);
        self.tenth_ns.store(0, Ordering::SeqCst);
        self.ninth_tenth_ns.store(0, Ordering::SeqCst);
        self.pid.store(pid, Ordering::SeqCst);
        self.target_n.store(target_n, Ordering::SeqCst);
        *self.cpu_first.lock().unwrap() = None;
        *self.cpu_nth.lock().unwrap() = None;
        self.latencies.lock().unwrap().clear();
        self.latency_on.store(false, Ordering::SeqCst);
        self.gate.send_replace(false);
    }

    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::SeqCst)
    }
}

async fn receive(State(port): State<Arc<Port>>, req: axum::extract::Request) -> StatusCode {
    let at = since_epoch_ns();
    let shared = &port.shared;
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    if shared.latency_on.load(Ordering::Relaxed)
        && let Some(sent) = body.strip_prefix(br#"{"lat_ns":"#).map(|rest| {
            rest.iter()
                .take_while(|b| b.is_ascii_digit())
                .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'))
        })
    {
        let now = unix_nanos();
        shared
            .latencies
            .lock()
            .unwrap()
            .push((sent, now.saturating_sub(sent)));
    }
    let mode = port.mode.load(Ordering::Relaxed);
    if mode == Mode::Hang as u32 {
        tokio::time::sleep(Duration::from_millis(port.hang_ms.load(Ordering::Relaxed))).await;
    } else if mode == Mode::Gate as u32 {
        let mut gate = shared.gate.subscribe();
        let max = Duration::from_millis(port.hang_ms.load(Ordering::Relaxed));
        let _ = tokio::time::timeout(max, gate.wait_for(|open| *open)).await;
    }
    // Counted when answered: a receipt is a completed request.
    let at_done = if mode == Mode::Ok as u32 || mode == Mode::Fail as u32 {
        at
    } else {
        since_epoch_ns()
    };
    port.count.fetch_add(1, Ordering::Relaxed);
    port.last_ns.fetch_max(at_done, Ordering::Relaxed);
    let total = shared.total.fetch_add(1, Ordering::SeqCst) + 1;
    if total == 1 {
        shared.first_ns.store(at_done, Ordering::SeqCst);
        *shared.cpu_first.lock().unwrap() = cpu_secs(shared.pid.load(Ordering::SeqCst));
    }
    let target_n = shared.target_n.load(Ordering::SeqCst);
    if total == target_n / 10 {
        shared.tenth_ns.store(at_done, Ordering::SeqCst);
    }
    if total == nine_tenths(target_n) {
        shared.ninth_tenth_ns.store(at_done, Ordering::SeqCst);
    }
    if total == target_n {
        shared.nth_ns.store(at_done, Ordering::SeqCst);
        *shared.cpu_nth.lock().unwrap() = cpu_secs(shared.pid.load(Ordering::SeqCst));
    }
    if mode == Mode::Fail as u32 {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

async fn start_port(shared: Arc<Shared>, mode: Mode) -> Res<Arc<Port>> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind("127.0.0.1:0".parse()?)?;
    let listener = socket.listen(4096)?;
    let addr = listener.local_addr()?;
    let port = Arc::new(Port {
        addr,
        mode: AtomicU32::new(mode as u32),
        hang_ms: AtomicU64::new(15_000),
        count: AtomicU64::new(0),
        last_ns: AtomicU64::new(0),
        shared,
    });
    let app = Router::new().fallback(receive).with_state(port.clone());
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(port)
}

impl Port {
    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }
    pub(crate) fn set(&self, mode: Mode, hang_ms: u64) {
        self.mode.store(mode as u32, Ordering::SeqCst);
        self.hang_ms.store(hang_ms, Ordering::SeqCst);
    }
    fn reset(&self) {
        self.count.store(0, Ordering::SeqCst);
        self.last_ns.store(0, Ordering::SeqCst);
    }
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }
}

pub(crate) struct Receivers {
    pub(crate) shared: Arc<Shared>,
    pub(crate) ok: Arc<Port>,
    pub(crate) fail: Arc<Port>,
    pub(crate) iso: Vec<Arc<Port>>,
    pub(crate) slow: Arc<Port>,
}

impl Receivers {
    pub(crate) async fn start() -> Res<Self> {
        let shared = Arc::new(Shared {
            total: AtomicU64::new(0),
            first_ns: AtomicU64::new(0),
            nth_ns: AtomicU64::new(0),
            tenth_ns: AtomicU64::new(0),
            ninth_tenth_ns: AtomicU64::new(0),
            pid: AtomicU32::new(0),
            target_n: AtomicU64::new(u64::MAX),
            cpu_first: Mutex::new(None),
            cpu_nth: Mutex::new(None),
            latency_on: AtomicBool::new(false),
            latencies: Mutex::new(Vec::new()),
            gate: watch::channel(false).0,
        });
        let ok = start_port(shared.clone(), Mode::Ok).await?;
        let fail = start_port(shared.clone(), Mode::Fail).await?;
        let mut iso = Vec::new();
        for _ in 0..10 {
            iso.push(start_port(shared.clone(), Mode::Ok).await?);
        }
        let slow = start_port(shared.clone(), Mode::Gate).await?;
        slow.set(Mode::Gate, 60_000);
        Ok(Self {
            shared,
            ok,
            fail,
            iso,
            slow,
        })
    }

    pub(crate) fn reset(&self, pid: u32, target_n: u64) {
        for p in [&self.ok, &self.fail, &self.slow]
            .into_iter()
            .chain(self.iso.iter())
        {
            p.reset();
        }
        self.shared.reset(pid, target_n);
    }

    /// Receipts per second from receipt n/10 to 9n/10 (the steady part of
    /// a drain of n), once both happened.
    pub(crate) fn steady_per_s(&self, n: u64) -> Option<f64> {
        let from = self.shared.tenth_ns.load(Ordering::SeqCst);
        let to = self.shared.ninth_tenth_ns.load(Ordering::SeqCst);
        let receipts = nine_tenths(n) - n / 10;
        (from > 0 && to > from).then(|| receipts as f64 * 1e9 / (to - from) as f64)
    }

    /// (first receipt, n-th receipt) in seconds, and the CPU seconds of the
    /// process under test between them.
    pub(crate) fn window(&self) -> Option<(f64, f64, f64)> {
        let first = self.shared.first_ns.load(Ordering::SeqCst) as f64 / 1e9;
        let nth = self.shared.nth_ns.load(Ordering::SeqCst) as f64 / 1e9;
        let c0 = (*self.shared.cpu_first.lock().unwrap())?;
        let c1 = (*self.shared.cpu_nth.lock().unwrap())?;
        (nth > 0.0).then_some((first, nth, c1 - c0))
    }
}
