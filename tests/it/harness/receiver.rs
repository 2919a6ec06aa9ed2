//! Real HTTP receivers on loopback that record every request and answer
//! as the test decides (status, headers, body, delay), knowing their load.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use tokio::task::JoinHandle;

use super::wait_for;
/// One request a receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) at: Instant,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_else(|| panic!("no header {name}"))
    }
}

/// What a receiver answers.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) delay: Duration,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn status(status: u16) -> Self {
        Self {
            status,
            headers: vec![],
            delay: Duration::ZERO,
            body: Bytes::new(),
        }
    }
    pub(crate) fn ok() -> Self {
        Self::status(200)
    }
    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    pub(crate) fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }
    pub(crate) fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// What a receiver knows when it decides a reply.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Load {
    /// Earlier requests to the same path.
    pub(crate) seen: usize,
    /// Requests in flight at this receiver, this one included.
    pub(crate) in_flight: usize,
}

/// Decides the reply from the request and the receiver's load.
type Behaviour = Arc<dyn Fn(&Received, Load) -> Reply + Send + Sync>;

#[derive(Clone)]
struct ReceiverState {
    log: Arc<Mutex<Vec<Received>>>,
    behaviour: Behaviour,
    in_flight: Arc<InFlight>,
}

/// Requests in flight at a receiver, and the most there ever were.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    now: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
}

/// Counts one request in flight until it is answered or its connection
/// is dropped.
struct InFlightGuard(Arc<InFlight>);

impl InFlightGuard {
    fn enter(counter: &Arc<InFlight>) -> (Self, usize) {
        use std::sync::atomic::Ordering::SeqCst;
        let n = counter.now.fetch_add(1, SeqCst) + 1;
        counter.peak.fetch_max(n, SeqCst);
        (Self(counter.clone()), n)
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A real HTTP server on loopback that records every request.
pub(crate) struct Receiver {
    pub(crate) addr: SocketAddr,
    log: Arc<Mutex<Vec<Received>>>,
    in_flight: Arc<InFlight>,
    task: JoinHandle<()>,
}

impl Receiver {
    /// Starts a receiver answering with `behaviour`, given the request and
    /// how many earlier requests the same path got (for a test not on a
    /// rig; a rig's come from [`Harness::receiver`](super::Harness::receiver)).
    pub(crate) async fn start(
        behaviour: impl Fn(&Received, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::start_loaded(move |r, load| behaviour(r, load.seen)).await
    }

    /// A receiver that answers 200 to everything.
    pub(crate) async fn ok() -> Self {
        Self::start(|_, _| Reply::ok()).await
    }

    /// Starts a receiver whose replies may depend on its load.
    pub(crate) async fn start_loaded(
        behaviour: impl Fn(&Received, Load) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let log = Arc::new(Mutex::new(Vec::new()));
        let in_flight = Arc::new(InFlight::default());
        let state = ReceiverState {
            log: log.clone(),
            behaviour: Arc::new(behaviour),
            in_flight: in_flight.clone(),
        };
        let app = Router::new().fallback(handle).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            log,
            in_flight,
            task,
        }
    }

    /// Requests in flight now.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.now.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The most requests that were ever in flight at once.
    pub(crate) fn peak_in_flight(&self) -> usize {
        self.in_flight
            .peak
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The URL of a path on this receiver.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything received so far.
    pub(crate) fn requests(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// Requests to one path.
    pub(crate) fn requests_to(&self, path: &str) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// How many requests each delivery id (`x-comm100-delivery-id`) got.
    pub(crate) fn delivery_counts(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for r in self.log.lock().unwrap().iter() {
            *m.entry(r.header("x-comm100-delivery-id").to_string())
                .or_default() += 1;
        }
        m
    }

    /// Waits until `n` different delivery ids arrived; returns how many
    /// requests each got ([`Receiver::delivery_counts`]).
    pub(crate) async fn wait_ids(&self, n: usize, deadline: Duration) -> HashMap<String, usize> {
        wait_for(&format!("{n} delivery ids"), deadline, async || {
            let m = self.delivery_counts();
            (m.len() >= n).then_some(m)
        })
        .await
    }

    /// Waits until `n` requests arrived in all.
    pub(crate) async fn wait_requests(&self, n: usize, deadline: Duration) -> Vec<Received> {
        wait_for(&format!("{n} requests"), deadline, async || {
            let r = self.requests();
            (r.len() >= n).then_some(r)
        })
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    State(s): State<ReceiverState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = Received {
        path: uri.path().to_string(),
        headers,
        body,
        at: Instant::now(),
    };
    let (_guard, in_flight) = InFlightGuard::enter(&s.in_flight);
    let reply = {
        let mut log = s.log.lock().unwrap();
        let seen = log.iter().filter(|x| x.path == r.path).count();
        let reply = (s.behaviour)(&r, Load { seen, in_flight });
        log.push(r);
        reply
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    for (name, value) in reply.headers {
        resp.headers_mut().insert(name, value.parse().unwrap());
    }
    resp
}
