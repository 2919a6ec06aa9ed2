//! Test harness: the real local RabbitMQ, real HTTP receivers on loopback,
//! and the worker from the library crate (or the binary, for process-level
//! tests). Every test gets its own prefix and deletes what it declared.

#![allow(dead_code, unreachable_pub)]

pub mod process;
pub mod tls;

#[allow(unused_imports)]
pub use process::{WorkerProcess, free_port};

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
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties,
    options::{BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeleteOptions},
    types::{AMQPValue, FieldTable},
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use webhook_worker::{
    app::{self, Running},
    broker::topology::{QueueType, Topology},
    config::Config,
};

/// The broker the tests use (the machine's local RabbitMQ).
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// The management API (enabled by `.ci/run`).
pub const MANAGEMENT: &str = "http://127.0.0.1:15672";

/// A prefix no other test uses.
pub fn unique_prefix(name: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "t-{name}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A test configuration: fast tiers, private targets allowed, metrics on
/// an ephemeral port.
pub fn test_config(prefix: &str) -> Config {
    let mut c = Config::defaults();
    c.broker.amqp_url = amqp_url();
    c.names.prefix = prefix.to_string();
    c.topology.retry_schedule = "200ms*2,500ms".parse().unwrap();
    c.retry.max_age = Duration::from_secs(60);
    c.delivery.allow_private_targets = true;
    c.delivery.timeout = Duration::from_secs(2);
    c.delivery.shutdown_grace = Duration::from_secs(5);
    c.topology.dead_ttl = Duration::from_secs(600);
    c.telemetry.metrics_addr = "127.0.0.1:0".parse().unwrap();
    c.delivery.concurrency = 64;
    c
}

/// Waits until `check` returns `Some`, polling, or panics at the deadline.
pub async fn wait_for<T>(
    what: &str,
    deadline: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// ---------------------------------------------------------------- broker --

/// A connection and a confirm-mode channel for the test's own publishing
/// and inspection, plus the prefix to clean up.
pub struct Broker {
    pub conn: Connection,
    pub channel: Channel,
    pub topology: Topology,
    pub prefix: String,
    url: String,
    cleaned: bool,
}

impl Broker {
    /// Connects and declares the topology of `config` (as the worker would).
    pub async fn new(config: &Config) -> Self {
        Self::on(&amqp_url(), config).await
    }

    /// The same on the broker (node) at `url`.
    pub async fn on(url: &str, config: &Config) -> Self {
        let conn = Connection::connect(url, ConnectionProperties::default())
            .await
            .expect("broker up");
        let channel = conn.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let topology = config.topology();
        topology.declare(&channel).await.expect("declare");
        Self {
            conn,
            channel,
            topology,
            prefix: config.names.prefix.clone(),
            url: url.to_string(),
            cleaned: false,
        }
    }

    /// Publishes a body to the fanout exchange, as a producer would.
    pub async fn publish(&self, body: &[u8]) {
        self.publish_with(body, BasicProperties::default()).await;
    }

    /// Publishes with properties (e.g. headers), confirmed.
    pub async fn publish_with(&self, body: &[u8], props: BasicProperties) {
        let confirm = self
            .channel
            .basic_publish(
                self.prefix.as_str().into(),
                "".into(),
                BasicPublishOptions::default(),
                body,
                props,
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack());
    }

    /// Publishes straight into `queue` through the default exchange,
    /// confirmed: how a test fabricates a parked message in `P.dead`.
    pub async fn publish_to(&self, queue: &str, body: &[u8], props: BasicProperties) {
        let confirm = self
            .channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                body,
                props.with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(confirm.is_ack());
    }

    /// Every message in `queue`, without consuming any: they are taken
    /// unacked and returned one by one, in order (as the `dead` commands
    /// do; a closing channel would return them to a quorum queue in no
    /// particular order), and the call waits (up to 1 s: some may expire
    /// meanwhile) until they are ready again.
    pub async fn peek(&self, queue: &str) -> Vec<lapin::message::Delivery> {
        let ch = self.conn.create_channel().await.unwrap();
        let mut out = Vec::new();
        while let Some(m) = ch
            .basic_get(queue.into(), BasicGetOptions { no_ack: false })
            .await
            .unwrap()
        {
            out.push(m.delivery);
        }
        for d in &out {
            let requeue = lapin::options::BasicNackOptions {
                multiple: false,
                requeue: true,
            };
            ch.basic_nack(d.delivery_tag, requeue).await.unwrap();
        }
        ch.close(200, "peeked".into()).await.unwrap();
        let n = out.len() as u32;
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.depth(queue).await < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        out
    }

    /// Publishes many bodies, pipelining confirms.
    pub async fn publish_many(&self, bodies: impl IntoIterator<Item = Vec<u8>>) {
        let mut pending = Vec::new();
        for body in bodies {
            pending.push(
                self.channel
                    .basic_publish(
                        self.prefix.as_str().into(),
                        "".into(),
                        BasicPublishOptions::default(),
                        &body,
                        BasicProperties::default(),
                    )
                    .await
                    .unwrap(),
            );
        }
        for p in pending {
            assert!(p.await.unwrap().is_ack());
        }
    }

    /// Takes every message currently in `queue` (acked: removed).
    pub async fn drain(&self, queue: &str) -> Vec<lapin::message::Delivery> {
        let mut out = Vec::new();
        while let Some(m) = self
            .channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            out.push(m.delivery);
        }
        out
    }

    /// Messages ready in a queue.
    pub async fn depth(&self, queue: &str) -> u32 {
        let ch = self.conn.create_channel().await.unwrap();
        let q = ch
            .queue_declare(
                queue.into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let _ = ch.close(200, "".into()).await;
        q.message_count()
    }

    /// Waits until `P.dead` holds `n` messages, then takes them all.
    pub async fn dead_messages(
        &self,
        n: usize,
        deadline: Duration,
    ) -> Vec<lapin::message::Delivery> {
        let dead = self.topology.dead().to_string();
        let mut got = Vec::new();
        wait_for(&format!("{n} dead messages"), deadline, async || {
            got.extend(self.drain(&dead).await);
            (got.len() >= n).then_some(())
        })
        .await;
        got
    }

    /// Deletes the exchange and every queue of the prefix.
    pub async fn cleanup(mut self) {
        delete_topology(&self.conn, &self.prefix, &self.topology).await;
        let _ = self.conn.close(200, "done".into()).await;
        self.cleaned = true;
    }
}

/// A test that panicked before `cleanup` still leaves nothing behind: the
/// topology is deleted from a fresh runtime on another thread.
impl Drop for Broker {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        let (prefix, topology, url) =
            (self.prefix.clone(), self.topology.clone(), self.url.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(conn) = Connection::connect(&url, ConnectionProperties::default()).await {
                    delete_topology(&conn, &prefix, &topology).await;
                    let _ = conn.close(200, "cleanup".into()).await;
                }
            });
        })
        .join();
    }
}

async fn delete_topology(conn: &Connection, prefix: &str, topology: &Topology) {
    let ch = conn.create_channel().await.unwrap();
    let mut queues = vec![
        topology.deliveries().to_string(),
        topology.dead().to_string(),
    ];
    queues.extend(
        topology
            .tiers()
            .iter()
            .map(|(t, _)| topology.retry_queue(t)),
    );
    for q in queues {
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = ch.exchange_delete(prefix.into(), Default::default()).await;
}

/// A header of a message as text or integer, for assertions.
pub fn header(d: &lapin::message::Delivery, name: &str) -> Option<AMQPValue> {
    d.properties.headers().as_ref()?.inner().get(name).cloned()
}

pub fn header_str(d: &lapin::message::Delivery, name: &str) -> Option<String> {
    match header(d, name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        other => panic!("header {name} is not a string: {other:?}"),
    }
}

pub fn header_int(d: &lapin::message::Delivery, name: &str) -> Option<i64> {
    match header(d, name)? {
        AMQPValue::LongLongInt(n) => Some(n),
        AMQPValue::LongInt(n) => Some(n.into()),
        other => panic!("header {name} is not an integer: {other:?}"),
    }
}

// -------------------------------------------------------------- receiver --

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_else(|| panic!("no header {name}"))
    }
}

/// What a receiver answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub delay: Duration,
    pub body: Bytes,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: vec![],
            delay: Duration::ZERO,
            body: Bytes::new(),
        }
    }
    pub fn ok() -> Self {
        Self::status(200)
    }
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// What a receiver knows when it decides a reply.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Earlier requests to the same path.
    pub seen: usize,
    /// Requests in flight at this receiver, this one included.
    pub in_flight: usize,
}

/// Decides the reply from the request and the receiver's load.
pub type Behaviour = Arc<dyn Fn(&Received, Load) -> Reply + Send + Sync>;

#[derive(Clone)]
struct ReceiverState {
    log: Arc<Mutex<Vec<Received>>>,
    behaviour: Behaviour,
    in_flight: Arc<InFlight>,
}

/// Requests in flight at a receiver, and the most there ever were.
#[derive(Debug, Default)]
pub struct InFlight {
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
pub struct Receiver {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Received>>>,
    in_flight: Arc<InFlight>,
    task: JoinHandle<()>,
}

impl Receiver {
    /// Starts a receiver answering with `behaviour`, given the request and
    /// how many earlier requests the same path got.
    pub async fn start(
        behaviour: impl Fn(&Received, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::start_loaded(move |r, load| behaviour(r, load.seen)).await
    }

    /// Starts a receiver whose replies may depend on its load.
    pub async fn start_loaded(
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
    pub fn in_flight(&self) -> usize {
        self.in_flight.now.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The most requests that were ever in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.in_flight
            .peak
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A receiver that answers 200 to everything.
    pub async fn ok() -> Self {
        Self::start(|_, _| Reply::ok()).await
    }

    /// The URL of a path on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// Requests to one path.
    pub fn requests_to(&self, path: &str) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until `n` requests arrived in all.
    pub async fn wait_requests(&self, n: usize, deadline: Duration) -> Vec<Received> {
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

// ---------------------------------------------------------------- worker --

/// A worker running in this process, started the way `run` starts it.
pub struct RunningWorker {
    pub shutdown: CancellationToken,
    pub metrics_addr: SocketAddr,
    running: Running,
}

impl RunningWorker {
    /// Starts a worker and waits until it consumes.
    pub async fn start(config: Config) -> Self {
        let shutdown = CancellationToken::new();
        let running = app::start(config, shutdown.clone()).await.unwrap();
        wait_for("worker consuming", Duration::from_secs(20), async || {
            running.is_ready().then_some(())
        })
        .await;
        Self {
            shutdown,
            metrics_addr: running.metrics_addr(),
            running,
        }
    }

    /// Graceful shutdown; returns the worker's result.
    pub async fn stop(self) -> Result<(), webhook_worker::Error> {
        self.shutdown.cancel();
        self.running.wait().await
    }

    /// The `GET /receivers` page.
    pub async fn receivers(&self) -> serde_json::Value {
        let text = reqwest::get(format!("http://{}/receivers", self.metrics_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// This worker's `GET /receivers` row of a receiver.
    pub async fn receiver(&self, receiver: &Receiver) -> Option<serde_json::Value> {
        let key = format!("http://{}", receiver.addr);
        self.receivers().await["receivers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == key.as_str())
            .cloned()
    }

    /// The `/metrics` text.
    pub async fn scrape(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.metrics_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// Reads one sample from Prometheus text (`name{labels}` exactly as
/// rendered, labels sorted by name).
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

// --------------------------------------------------------------- events --

/// A valid event message for `webhook` to `url`, with `data` as given
/// (raw JSON text, inserted byte for byte).
pub fn event(id: &str, webhook: u16, url: &str, data: &str) -> Vec<u8> {
    format!(r#"{{"id":"{id}","webhook":{webhook},"url":"{url}","data":{data}}}"#).into_bytes()
}

/// An event with extra top-level JSON fields (`"k":v,...`).
pub fn event_with(id: &str, webhook: u16, url: &str, data: &str, extra: &str) -> Vec<u8> {
    format!(r#"{{"id":"{id}","webhook":{webhook},"url":"{url}","data":{data},{extra}}}"#)
        .into_bytes()
}

/// One call to the management API.
pub async fn management(method: reqwest::Method, path: &str) -> reqwest::Response {
    let resp = reqwest::Client::new()
        .request(method, format!("{MANAGEMENT}/api/{path}"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "management API {path}: {}",
        resp.status()
    );
    resp
}

/// A GET of the management API, as JSON.
pub async fn management_json<T: serde::de::DeserializeOwned>(path: &str) -> T {
    let resp = management(reqwest::Method::GET, path).await;
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
}

/// Queue details from the management API.
pub async fn management_queue(name: &str) -> serde_json::Value {
    management_json(&format!("queues/%2f/{name}")).await
}

/// Connections with their properties, from the management API.
pub async fn management_connections() -> Vec<HashMap<String, serde_json::Value>> {
    management_json("connections").await
}

/// The management API's record of the connection of the worker with
/// `prefix` (its client-provided name carries the prefix), once listed.
pub async fn worker_connection(prefix: &str) -> HashMap<String, serde_json::Value> {
    wait_for(
        "worker connection listed",
        Duration::from_secs(60),
        async || {
            management_connections().await.into_iter().find(|c| {
                c.get("client_properties")
                    .and_then(|p| p.get("connection_name"))
                    .and_then(|n| n.as_str())
                    .is_some_and(|n| n.contains(&format!("prefix {prefix} ")))
            })
        },
    )
    .await
}

/// The channels of the worker with `prefix`, from the management API.
pub async fn worker_channels(prefix: &str) -> Vec<serde_json::Value> {
    let c = worker_connection(prefix).await;
    let name = c["name"].as_str().unwrap();
    management_json(&format!("connections/{}/channels", urlencode(name))).await
}

/// Closes the worker's connection from the broker's side.
pub async fn close_worker_connection(prefix: &str) {
    let c = worker_connection(prefix).await;
    let name = c["name"].as_str().unwrap();
    management(
        reqwest::Method::DELETE,
        &format!("connections/{}", urlencode(name)),
    )
    .await;
}

/// Percent-encodes a path segment of the management API.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The classic variant of a test config.
pub fn classic(mut c: Config) -> Config {
    c.topology.queue_type = QueueType::Classic;
    c
}
