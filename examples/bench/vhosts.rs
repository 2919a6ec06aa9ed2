//! Virtual receivers for the receiver scenarios (slow, fleet, hang,
//! turns-bad, overloaded): one loopback port each, so the worker sees each
//! as a receiver of its own (its key is scheme://host:port). Each answers
//! after its own latency (a tokio sleep per request, never blocking), hangs
//! (holds the request until released, then 504), or is overloaded (429 at
//! once while more than its limit of requests is in flight).
//!
//! Every answer is recorded (time, host, status, attempt) and every 2xx
//! counts against its event's index (parsed from the body, so the naive
//! worker, which sends no headers, is counted the same way): lost and
//! duplicated events are counted at the receivers.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU8, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    serve::ListenerExt,
};
use tokio::sync::watch;

use crate::Res;

/// How a receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behave {
    /// 200 after `ms`.
    Ok(u64),
    /// Never answers within any timeout: holds the request until the run
    /// releases it (then 504, not a success).
    Hang,
    /// 429 at once while more than `limit` of its requests are in flight
    /// (this one included), else 200 after `ms`.
    Overload { ms: u64, limit: u64 },
}

const HANG_MAX: Duration = Duration::from_secs(300);

/// One answer: when (µs since the run was armed), which host, the status,
/// and the attempt (`X-Comm100-Attempt`, 1 when absent).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Answer {
    pub(crate) t_us: u64,
    pub(crate) host: u16,
    pub(crate) status: u16,
    pub(crate) attempt: u16,
}

/// What one run records.
pub(crate) struct RunRec {
    start: Instant,
    /// µs since `start` of the first request at any host (`u64::MAX`: none).
    first_us: AtomicU64,
    /// 2xx answers per event index.
    ok_per_id: Vec<AtomicU8>,
    answers: Mutex<Vec<Answer>>,
    ok_total: AtomicU64,
    bad_index: AtomicU64,
}

impl RunRec {
    fn new(n: usize) -> Self {
        Self {
            start: Instant::now(),
            first_us: AtomicU64::new(u64::MAX),
            ok_per_id: (0..n).map(|_| AtomicU8::new(0)).collect(),
            answers: Mutex::new(Vec::with_capacity(n)),
            ok_total: AtomicU64::new(0),
            bad_index: AtomicU64::new(0),
        }
    }

    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Seconds since the run was armed of its first request.
    pub(crate) fn first_s(&self) -> Option<f64> {
        let f = self.first_us.load(Ordering::SeqCst);
        (f != u64::MAX).then(|| f as f64 / 1e6)
    }

    /// Seconds since the run was armed.
    pub(crate) fn now_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    pub(crate) fn ok_total(&self) -> u64 {
        self.ok_total.load(Ordering::SeqCst)
    }

    /// Every answer so far, in the order they were given.
    pub(crate) fn answers(&self) -> Vec<Answer> {
        self.answers.lock().unwrap().clone()
    }

    /// 2xx count of each event index.
    pub(crate) fn ok_counts(&self) -> Vec<u8> {
        self.ok_per_id
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .collect()
    }

    /// Bodies whose event index could not be read (should be 0).
    pub(crate) fn bad_index(&self) -> u64 {
        self.bad_index.load(Ordering::SeqCst)
    }
}

struct Host {
    index: u16,
    addr: SocketAddr,
    behave: Mutex<Behave>,
    in_flight: AtomicU64,
    arrivals: AtomicU64,
    max_in_flight: AtomicU64,
    fleet: Arc<Fleet>,
}

struct Fleet {
    run: Mutex<Arc<RunRec>>,
    /// Opened to release every hanging request (after a run's window).
    release: watch::Sender<bool>,
}

/// Decrements the host's in-flight count however the request ends (the
/// worker may give up on it and close the connection).
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The event index in a request body: the `data` of event `i` starts
/// `{"chat":{"id":"c-<i as 8 digits>"` (see `payloads::data_json`).
fn event_index(body: &[u8]) -> Option<usize> {
    let at = body.windows(3).position(|w| w == b"\"c-")? + 3;
    let digits = &body[at..];
    let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&digits[..len]).ok()?.parse().ok()
}

async fn receive(State(h): State<Arc<Host>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let rec = h.fleet.run.lock().unwrap().clone();
    rec.first_us.fetch_min(rec.now_us(), Ordering::SeqCst);
    h.arrivals.fetch_add(1, Ordering::Relaxed);
    let attempt = headers
        .get("x-comm100-attempt")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(1);
    let now_in = h.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _guard = InFlight(&h.in_flight);
    h.max_in_flight.fetch_max(now_in, Ordering::Relaxed);
    let behave = *h.behave.lock().unwrap();
    let status = match behave {
        Behave::Ok(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            StatusCode::OK
        }
        Behave::Overload { limit, .. } if now_in > limit => StatusCode::TOO_MANY_REQUESTS,
        Behave::Overload { ms, .. } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            StatusCode::OK
        }
        Behave::Hang => {
            let mut release = h.fleet.release.subscribe();
            let _ = tokio::time::timeout(HANG_MAX, release.wait_for(|r| *r)).await;
            StatusCode::GATEWAY_TIMEOUT
        }
    };
    if status.is_success() {
        match event_index(&body).and_then(|i| rec.ok_per_id.get(i)) {
            Some(c) => {
                c.fetch_add(1, Ordering::SeqCst);
            }
            None => {
                rec.bad_index.fetch_add(1, Ordering::SeqCst);
            }
        }
        rec.ok_total.fetch_add(1, Ordering::SeqCst);
    }
    let answer = Answer {
        t_us: rec.now_us(),
        host: h.index,
        status: status.as_u16(),
        attempt,
    };
    rec.answers.lock().unwrap().push(answer);
    status
}

/// The virtual receivers: a pool of loopback ports, configured per run.
pub(crate) struct VHosts {
    fleet: Arc<Fleet>,
    hosts: Vec<Arc<Host>>,
}

/// The most receivers any scenario uses (the hang scenario: 20 + 1).
const POOL: usize = 24;

impl VHosts {
    pub(crate) async fn start() -> Res<Self> {
        let fleet = Arc::new(Fleet {
            run: Mutex::new(Arc::new(RunRec::new(0))),
            release: watch::channel(false).0,
        });
        let mut hosts = Vec::new();
        for index in 0..POOL {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.set_reuseaddr(true)?;
            socket.bind("127.0.0.1:0".parse()?)?;
            let listener = socket.listen(4096)?;
            let host = Arc::new(Host {
                index: index as u16,
                addr: listener.local_addr()?,
                behave: Mutex::new(Behave::Ok(0)),
                in_flight: AtomicU64::new(0),
                arrivals: AtomicU64::new(0),
                max_in_flight: AtomicU64::new(0),
                fleet: fleet.clone(),
            });
            let app = Router::new().fallback(receive).with_state(host.clone());
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            hosts.push(host);
        }
        Ok(Self { fleet, hosts })
    }

    /// Sets the behaviour of hosts `0..behaviours.len()`, clears their
    /// counters and starts a new record for `n` events.
    pub(crate) fn arm(&self, behaviours: &[Behave], n: usize) -> Arc<RunRec> {
        assert!(behaviours.len() <= POOL, "at most {POOL} virtual receivers");
        self.fleet.release.send_replace(false);
        for (h, b) in self.hosts.iter().zip(behaviours) {
            *h.behave.lock().unwrap() = *b;
            h.arrivals.store(0, Ordering::SeqCst);
            h.max_in_flight.store(0, Ordering::SeqCst);
        }
        let rec = Arc::new(RunRec::new(n));
        *self.fleet.run.lock().unwrap() = rec.clone();
        rec
    }

    /// Changes one host's behaviour mid-run (turns-bad).
    pub(crate) fn set(&self, host: usize, b: Behave) {
        *self.hosts[host].behave.lock().unwrap() = b;
    }

    /// Releases every hanging request (they answer 504).
    pub(crate) fn release(&self) {
        self.fleet.release.send_replace(true);
    }

    pub(crate) fn url(&self, host: usize) -> String {
        format!("http://{}/hook", self.hosts[host].addr)
    }

    /// Requests that reached host `i` (answered or not) since `arm`.
    pub(crate) fn arrivals(&self, host: usize) -> u64 {
        self.hosts[host].arrivals.load(Ordering::SeqCst)
    }

    /// Most requests host `i` held at once since `arm`.
    pub(crate) fn max_in_flight(&self, host: usize) -> u64 {
        self.hosts[host].max_in_flight.load(Ordering::SeqCst)
    }

    /// Requests in flight at every host.
    pub(crate) fn in_flight(&self) -> u64 {
        self.hosts
            .iter()
            .map(|h| h.in_flight.load(Ordering::SeqCst))
            .sum()
    }
}
