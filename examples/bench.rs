//! The benchmark harness (`bench/run.sh` runs it; see `bench/README.md`).
//!
//! One binary, several modes:
//!
//! - `bench run` (the default): the orchestrator. It runs the HTTP receivers
//!   in this process, publishes the envelopes, starts each system under test
//!   as a subprocess, measures it from outside (`/proc/<pid>`), prints a
//!   table and writes `bench/results/<date>.json`.
//! - `bench raw-consume`, `bench raw-http`, `bench naive-worker`: the
//!   baselines, started by the orchestrator as subprocesses of their own so
//!   that their CPU time and peak RSS are theirs alone, exactly like the
//!   worker's (`webhook-worker run`, the release binary).
//!
//! Every scenario gets its own prefix (`bench-<run>-<scenario>`), declares
//! the worker's own topology for it, and deletes every queue and the
//! exchange afterwards.

use std::{
    collections::VecDeque,
    fs,
    io::{BufRead, BufReader, Write},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::{Router, extract::State, http::StatusCode, serve::ListenerExt};
use futures_lite::StreamExt;
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, PublisherConfirm,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
        ConfirmSelectOptions, QueueDeleteOptions,
    },
    types::FieldTable,
};
use serde_json::{Value, json};
use tokio::sync::watch;
use webhook_worker::{
    config::{Config, DEFAULT_CONCURRENCY, DEFAULT_HOST_CONCURRENCY, QueueType},
    topology::Topology,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

const SECRET: &str = "bench-signing-secret";
const MIB: f64 = 1024.0 * 1024.0;

// ------------------------------------------------------------------ main --

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("run");
    let rest = if args.is_empty() { &[][..] } else { &args[1..] };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = match mode {
        "run" => rt.block_on(orchestrate(Opts::parse(rest))),
        "raw-consume" => rt.block_on(raw_consume(Flags(rest))),
        "raw-http" => rt.block_on(raw_http(Flags(rest))),
        "naive-worker" => rt.block_on(naive_worker(Flags(rest))),
        "-h" | "--help" | "help" => {
            println!("{}", Opts::HELP);
            Ok(())
        }
        other => Err(format!("unknown mode {other:?}; try --help").into()),
    };
    if let Err(e) = result {
        eprintln!("bench: error: {e}");
        std::process::exit(1);
    }
}

/// `--name value` lookup for the subprocess modes.
struct Flags<'a>(&'a [String]);

impl Flags<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .position(|a| a == name)
            .and_then(|i| self.0.get(i + 1))
            .map(String::as_str)
    }
    fn req(&self, name: &str) -> Res<String> {
        self.get(name)
            .map(str::to_string)
            .ok_or_else(|| format!("missing {name}").into())
    }
    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }
    fn num(&self, name: &str, default: u64) -> Res<u64> {
        match self.get(name) {
            Some(v) => Ok(v
                .parse()
                .map_err(|_| format!("{name}: not a number: {v}"))?),
            None => Ok(default),
        }
    }
}

// -------------------------------------------------------------- payloads --

/// The `data` object of event `i`: a realistic chat message event, ~450 bytes.
fn data_json(i: usize) -> String {
    format!(
        concat!(
            r#"{{"chat":{{"id":"c-{i:08}","site_id":10001,"campaign_id":42,"started_at":"2025-01-15T10:20:30Z","#,
            r#""visitor":{{"id":"v-{i:08}","name":"Visitor {i}","email":"visitor{i}@example.com","ip":"203.0.113.7","#,
            r#""browser":"Firefox 134","country":"CA"}},"agent":{{"id":17,"name":"Agent Smith","email":"smith@example.com"}}}},"#,
            r#""message":{{"id":"m-{i:08}","type":"text","content":"Hello, I have a question about my order #{i}: "#,
            r#"it shipped last week but the tracking page still shows nothing.","sent_at":"2025-01-15T10:21:05Z"}}}}"#
        ),
        i = i
    )
}

/// A full event message (contract section 3), webhook 105.
fn envelope(id: &str, url: &str, i: usize) -> Vec<u8> {
    format!(
        r#"{{"id":"{id}","webhook":105,"url":"{url}","site_id":10001,"created_at":"2025-01-15T10:21:05Z","data":{}}}"#,
        data_json(i)
    )
    .into_bytes()
}

/// A latency probe: the envelope of event `i` whose `data` starts with its
/// publish time (`"lat_ns":<unix ns>`), so the receiver can time any worker,
/// the naive one included, from the request body alone.
fn latency_envelope(i: usize, url: &str, sent_ns: u64) -> Vec<u8> {
    format!(
        r#"{{"id":"lat-{i:08}","webhook":105,"url":"{url}","site_id":10001,"created_at":"2025-01-15T10:21:05Z","data":{{"lat_ns":{sent_ns},{}}}"#,
        &data_json(i)[1..]
    )
    .into_bytes()
}

fn props() -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
}

// ------------------------------------------------------------ /proc bits --

fn clk_tck() -> f64 {
    static T: OnceLock<f64> = OnceLock::new();
    *T.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// utime + stime of a process, in seconds (all threads, live or exited).
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clk_tck())
}

/// A `Vm*` line of `/proc/<pid>/status`, in bytes.
fn vm_bytes(pid: u32, key: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn open_sockets(pid: u32) -> usize {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
        })
        .count()
}

/// Busy CPU seconds of the whole machine (every core).
fn machine_busy_secs() -> f64 {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return 0.0;
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy: u64 = v
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4 && *i < 8)
        .map(|(_, x)| *x)
        .sum();
    busy as f64 / clk_tck()
}

/// Seconds the threads of `pid` spent runnable but waiting for a CPU
/// (`/proc/<pid>/task/*/schedstat`, second field): the scheduler's share of
/// a latency.
fn runqueue_wait_secs(pid: u32) -> f64 {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum::<u64>() as f64
        / 1e9
}

fn broker_pid() -> Option<u32> {
    fs::read_dir("/proc")
        .ok()?
        .filter_map(Result::ok)
        .find_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let comm = fs::read_to_string(e.path().join("comm")).ok()?;
            (comm.trim() == "beam.smp").then_some(pid)
        })
}

/// CPU seconds of the machine, the broker and this process, for telling
/// how much of a scenario's window went to somebody else.
#[derive(Clone, Copy)]
struct Noise {
    machine: f64,
    broker: f64,
    bench: f64,
}

impl Noise {
    fn now() -> Self {
        Self {
            machine: machine_busy_secs(),
            broker: broker_pid().and_then(cpu_secs).unwrap_or(0.0),
            bench: cpu_secs(std::process::id()).unwrap_or(0.0),
        }
    }
    /// Breakdown of a window, given the CPU of the process under test.
    fn since(&self, start: &Noise, wall: f64, sut_cpu: f64) -> Value {
        let now = *self;
        let machine = now.machine - start.machine;
        let broker = now.broker - start.broker;
        let bench = now.bench - start.bench;
        let other = (machine - broker - bench - sut_cpu).max(0.0);
        json!({
            "wall_s": round(wall, 3),
            "machine_busy_cores": round(machine / wall, 2),
            "sut_cores": round(sut_cpu / wall, 2),
            "broker_cores": round(broker / wall, 2),
            "bench_and_receiver_cores": round(bench / wall, 2),
            "other_cores": round(other / wall, 2),
        })
    }
}

fn num_cpus() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

// ------------------------------------------------- subprocess: baselines --

/// The report line every self-measuring baseline prints on stdout.
fn report_line(n: u64, elapsed: f64, cpu: f64, extra: Value) {
    let hwm = vm_bytes(std::process::id(), "VmHWM").unwrap_or(0);
    let mut v = json!({ "n": n, "elapsed_s": elapsed, "cpu_s": cpu, "hwm_bytes": hwm });
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        m.extend(e);
    }
    println!("{v}");
}

/// Baseline 1: consume `n` messages and ack each (acks pipelined: each is
/// its own task, none awaited one by one before the next delivery).
async fn raw_consume(f: Flags<'_>) -> Res<()> {
    let queue = f.req("--queue")?;
    let n = f.num("--n", 50_000)?;
    let prefetch = f.num("--prefetch", DEFAULT_CONCURRENCY.into())? as u16;
    let conn = Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
    let mut consumer = ch
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let me = std::process::id();
    let mut started = None;
    let mut acks = Vec::with_capacity(n as usize);
    let mut got = 0;
    while let Some(d) = consumer.next().await {
        let d = d?;
        if started.is_none() {
            started = Some((Instant::now(), cpu_secs(me).unwrap_or(0.0)));
        }
        acks.push(tokio::spawn(async move {
            d.acker.ack(BasicAckOptions::default()).await
        }));
        got += 1;
        if got == n {
            break;
        }
    }
    for a in acks {
        a.await??;
    }
    let (t0, c0) = started.ok_or("no message consumed")?;
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs(me).unwrap_or(0.0) - c0;
    report_line(got, elapsed, cpu, json!({}));
    let _ = conn.close(200, "done".into()).await;
    Ok(())
}

/// The HTTP client the way the worker builds it (src/delivery.rs).
fn http_client(concurrency: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(concurrency)
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .user_agent("bench/0")
        .build()
        .expect("http client")
}

/// Baseline 2: `n` POSTs of the same bodies to the same receiver, at the
/// same concurrency, with the same HTTP client.
async fn raw_http(f: Flags<'_>) -> Res<()> {
    let url: reqwest::Url = f.req("--url")?.parse()?;
    let n = f.num("--n", 50_000)? as usize;
    let conc = f.num("--concurrency", DEFAULT_CONCURRENCY.into())? as usize;
    let bodies: Arc<Vec<bytes::Bytes>> =
        Arc::new((0..n).map(|i| bytes::Bytes::from(data_json(i))).collect());
    let client = http_client(conc);
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let me = std::process::id();
    let c0 = cpu_secs(me).unwrap_or(0.0);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (client, url, bodies, next, errors) = (
            client.clone(),
            url.clone(),
            bodies.clone(),
            next.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= bodies.len() {
                    break;
                }
                let r = client
                    .post(url.clone())
                    .header("content-type", "application/json")
                    .body(bodies[i].clone())
                    .send()
                    .await;
                match r {
                    Ok(mut resp) if resp.status().is_success() => {
                        while let Ok(Some(_)) = resp.chunk().await {}
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs(me).unwrap_or(0.0) - c0;
    report_line(
        n as u64,
        elapsed,
        cpu,
        json!({ "errors": errors.load(Ordering::Relaxed) }),
    );
    Ok(())
}

#[derive(serde::Deserialize)]
struct Minimal<'a> {
    #[serde(borrow)]
    url: &'a str,
    #[serde(borrow)]
    data: &'a serde_json::value::RawValue,
}

/// Baseline 3: the naive worker. Consume (prefetch = concurrency), POST
/// `data` to `url`, ack. Nothing else: no validation beyond finding those
/// two fields, no signing, no metrics, no retries (a failure is acked too).
/// Runs until killed.
async fn naive_worker(f: Flags<'_>) -> Res<()> {
    let queue = f.req("--queue")?;
    let conc = f.num("--concurrency", DEFAULT_CONCURRENCY.into())? as u16;
    let conn = Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    ch.basic_qos(conc, BasicQosOptions::default()).await?;
    let client = http_client(conc.into());
    let mut consumer = ch
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    println!("ready");
    while let Some(d) = consumer.next().await {
        let d = d?;
        let client = client.clone();
        tokio::spawn(async move {
            let body = bytes::Bytes::from(d.data);
            if let Ok(m) = serde_json::from_slice::<Minimal<'_>>(&body) {
                let payload = body.slice_ref(m.data.get().as_bytes());
                if let Ok(mut resp) = client
                    .post(m.url)
                    .header("content-type", "application/json")
                    .body(payload)
                    .send()
                    .await
                {
                    while let Ok(Some(_)) = resp.chunk().await {}
                }
            }
            let _ = d.acker.ack(BasicAckOptions::default()).await;
        });
    }
    Ok(())
}

// --------------------------------------------------------------- receiver --

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum Mode {
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
struct Port {
    addr: SocketAddr,
    mode: AtomicU32,
    hang_ms: AtomicU64,
    count: AtomicU64,
    /// Nanoseconds since [`epoch`] of the last receipt.
    last_ns: AtomicU64,
    shared: Arc<Shared>,
}

/// What every port reports into.
struct Shared {
    total: AtomicU64,
    first_ns: AtomicU64,
    nth_ns: AtomicU64,
    /// The process under test, whose CPU is read at the first and n-th receipt.
    pid: AtomicU32,
    target_n: AtomicU64,
    cpu_first: Mutex<Option<f64>>,
    cpu_nth: Mutex<Option<f64>>,
    latency_on: AtomicBool,
    /// (publish unix ns, publish→receipt ns).
    latencies: Mutex<Vec<(u64, u64)>>,
    gate: watch::Sender<bool>,
}

fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}

fn since_epoch_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

impl Shared {
    fn reset(&self, pid: u32, target_n: u64) {
        self.total.store(0, Ordering::SeqCst);
        self.first_ns.store(0, Ordering::SeqCst);
        self.nth_ns.store(0, Ordering::SeqCst);
        self.pid.store(pid, Ordering::SeqCst);
        self.target_n.store(target_n, Ordering::SeqCst);
        *self.cpu_first.lock().unwrap() = None;
        *self.cpu_nth.lock().unwrap() = None;
        self.latencies.lock().unwrap().clear();
        self.latency_on.store(false, Ordering::SeqCst);
        self.gate.send_replace(false);
    }

    fn total(&self) -> u64 {
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
    if total == shared.target_n.load(Ordering::SeqCst) {
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
    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }
    fn set(&self, mode: Mode, hang_ms: u64) {
        self.mode.store(mode as u32, Ordering::SeqCst);
        self.hang_ms.store(hang_ms, Ordering::SeqCst);
    }
    fn reset(&self) {
        self.count.store(0, Ordering::SeqCst);
        self.last_ns.store(0, Ordering::SeqCst);
    }
    fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }
}

struct Receivers {
    shared: Arc<Shared>,
    ok: Arc<Port>,
    fail: Arc<Port>,
    iso: Vec<Arc<Port>>,
    slow: Arc<Port>,
}

impl Receivers {
    async fn start() -> Res<Self> {
        let shared = Arc::new(Shared {
            total: AtomicU64::new(0),
            first_ns: AtomicU64::new(0),
            nth_ns: AtomicU64::new(0),
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

    fn reset(&self, pid: u32, target_n: u64) {
        for p in [&self.ok, &self.fail, &self.slow]
            .into_iter()
            .chain(self.iso.iter())
        {
            p.reset();
        }
        self.shared.reset(pid, target_n);
    }

    /// (first receipt, n-th receipt) in seconds, and the CPU seconds of the
    /// process under test between them.
    fn window(&self) -> Option<(f64, f64, f64)> {
        let first = self.shared.first_ns.load(Ordering::SeqCst) as f64 / 1e9;
        let nth = self.shared.nth_ns.load(Ordering::SeqCst) as f64 / 1e9;
        let c0 = (*self.shared.cpu_first.lock().unwrap())?;
        let c1 = (*self.shared.cpu_nth.lock().unwrap())?;
        (nth > 0.0).then_some((first, nth, c1 - c0))
    }
}

// ----------------------------------------------------------------- broker --

struct Broker {
    /// The harness's connection; reopened if the broker dropped it (RabbitMQ
    /// 3.10's quorum segment writer can crash while a just-drained quorum
    /// queue is deleted, which closes every connection).
    conn: Mutex<Arc<Connection>>,
    /// The publishing channel (confirm mode); reopened if the broker closed it.
    channel: Mutex<Channel>,
}

impl Broker {
    async fn connect() -> Res<Self> {
        let conn = Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self {
            conn: Mutex::new(Arc::new(conn)),
            channel: Mutex::new(channel),
        })
    }

    /// The connection, reopened (with a note) if the broker closed it.
    async fn conn(&self) -> Res<Arc<Connection>> {
        let current = self.conn.lock().unwrap().clone();
        if current.status().connected() {
            return Ok(current);
        }
        eprintln!("bench: note: the broker closed the harness's connection; reconnecting");
        let mut pause = Duration::from_millis(200);
        let conn = loop {
            match Connection::connect(&amqp_url(), ConnectionProperties::default()).await {
                Ok(c) => break Arc::new(c),
                Err(e) if pause < Duration::from_secs(10) => {
                    eprintln!("bench: note: reconnect failed ({e}); again in {pause:?}");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(e) => return Err(e.into()),
            }
        };
        *self.conn.lock().unwrap() = conn.clone();
        Ok(conn)
    }

    /// Declares the worker's own topology for `config` (so the worker's
    /// declaration at start is a no-op).
    async fn declare(&self, config: &Config) -> Res<Topology> {
        let t = Topology::from_config(config);
        t.declare(&self.channel().await?).await?;
        Ok(t)
    }

    /// Publishes `n` envelopes to the fanout exchange with pipelined
    /// confirms (at most `WINDOW` outstanding). Returns messages/s.
    async fn publish_bulk(
        &self,
        exchange: &str,
        n: usize,
        url: &dyn Fn(usize) -> String,
        tag: &str,
    ) -> Res<f64> {
        const WINDOW: usize = 4096;
        let channel = self.channel().await?;
        let t0 = Instant::now();
        let mut pending: VecDeque<PublisherConfirm> = VecDeque::with_capacity(WINDOW);
        for i in 0..n {
            if pending.len() >= WINDOW {
                let c = pending.pop_front().unwrap().await?;
                if !c.is_ack() {
                    return Err("publish nacked".into());
                }
            }
            let body = envelope(&format!("{tag}-{i:08}"), &url(i), i);
            pending.push_back(
                channel
                    .basic_publish(
                        exchange.into(),
                        "".into(),
                        BasicPublishOptions::default(),
                        &body,
                        props(),
                    )
                    .await?,
            );
        }
        for p in pending {
            if !p.await?.is_ack() {
                return Err("publish nacked".into());
            }
        }
        Ok(n as f64 / t0.elapsed().as_secs_f64())
    }

    /// The publishing channel, reopened (with a note) if it was closed.
    async fn channel(&self) -> Res<Channel> {
        let current = self.channel.lock().unwrap().clone();
        if current.status().connected() {
            return Ok(current);
        }
        eprintln!(
            "bench: note: the broker closed the harness's channel ({:?}); opening a new one",
            current.status()
        );
        let channel = self.conn().await?.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        *self.channel.lock().unwrap() = channel.clone();
        Ok(channel)
    }

    async fn cleanup(&self, t: &Topology) {
        let Ok(conn) = self.conn().await else {
            return;
        };
        let Ok(ch) = conn.create_channel().await else {
            return;
        };
        let mut queues = vec![t.deliveries().to_string(), t.dead().to_string()];
        queues.extend(t.tiers().iter().map(|d| t.retry_queue(*d)));
        for q in queues {
            let _ = ch
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        let _ = ch
            .exchange_delete(t.exchange().into(), Default::default())
            .await;
        let _ = ch.close(200, "".into()).await;
    }
}

// ---------------------------------------------------------- orchestrator --

struct Opts {
    n: usize,
    concurrency: u16,
    out: Option<PathBuf>,
    worker_bin: Option<PathBuf>,
    iso_seconds: f64,
    latency_seconds: f64,
    inflight: usize,
    only: Vec<String>,
    queue_types: Vec<QueueType>,
    command: String,
    perf: bool,
    repeat: usize,
    iso_repeat: usize,
    latency_rate: Option<f64>,
    no_naive_latency: bool,
}

impl Opts {
    const HELP: &'static str = "\
bench run [--n 50000] [--repeat 5] [--iso-repeat 3] [--concurrency 256] [--queue-types quorum,classic]
          [--inflight 2000] [--iso-seconds 10] [--latency-seconds 10]
          [--latency-rate R (default: half the worker's measured peak)]
          [--no-naive-latency] (skip the naive worker's latency reference)
          [--only baselines,success,failure,latency,isolation,memory]
          [--out bench/results/X.json] [--worker-bin PATH] [--command TEXT]
          [--perf]   (perf record the worker on the success and failure runs)
  The worker under test is the release binary next to this example's
  directory (target/<profile>/webhook-worker) unless --worker-bin is given.
  AMQP_URL selects the broker (default: the local one, guest/guest).";

    fn parse(args: &[String]) -> Self {
        let f = Flags(args);
        let list = |name: &str| -> Vec<String> {
            f.get(name)
                .map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
                .unwrap_or_default()
        };
        let queue_types = {
            let l = list("--queue-types");
            if l.is_empty() {
                vec![QueueType::Quorum, QueueType::Classic]
            } else {
                l.iter()
                    .map(|s| {
                        if s == "classic" {
                            QueueType::Classic
                        } else {
                            QueueType::Quorum
                        }
                    })
                    .collect()
            }
        };
        Self {
            n: f.num("--n", 50_000).unwrap() as usize,
            concurrency: f.num("--concurrency", DEFAULT_CONCURRENCY.into()).unwrap() as u16,
            out: f.get("--out").map(PathBuf::from),
            worker_bin: f.get("--worker-bin").map(PathBuf::from),
            iso_seconds: f
                .get("--iso-seconds")
                .and_then(|s| s.parse().ok())
                .unwrap_or(10.0),
            latency_seconds: f
                .get("--latency-seconds")
                .and_then(|s| s.parse().ok())
                .unwrap_or(10.0),
            inflight: f.num("--inflight", 2000).unwrap() as usize,
            only: list("--only"),
            queue_types,
            command: f.get("--command").unwrap_or("bench/run.sh").to_string(),
            perf: f.has("--perf"),
            repeat: f.num("--repeat", 5).unwrap().max(1) as usize,
            iso_repeat: f.num("--iso-repeat", 3).unwrap().max(1) as usize,
            latency_rate: f.get("--latency-rate").and_then(|s| s.parse().ok()),
            no_naive_latency: f.has("--no-naive-latency"),
        }
    }

    fn wants(&self, what: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == what)
    }
}

fn qt_name(q: QueueType) -> &'static str {
    match q {
        QueueType::Quorum => "quorum",
        QueueType::Classic => "classic",
    }
}

/// The worker under test, a subprocess.
struct WorkerProc {
    child: Child,
    pid: u32,
    /// `http://127.0.0.1:<port>` of `/metrics`, known once the worker logged it.
    metrics: String,
    http: reqwest::Client,
    log: PathBuf,
}

impl WorkerProc {
    async fn spawn(
        bin: &Path,
        prefix: &str,
        qt: QueueType,
        extra: &[&str],
        log: &Path,
    ) -> Res<Self> {
        // Experiments: BENCH_WORKER_ARGS is appended to every worker command line.
        let more: Vec<String> = std::env::var("BENCH_WORKER_ARGS")
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let mut cmd = Command::new(bin);
        cmd.arg("run")
            .args(["--prefix", prefix, "--queue-type", qt_name(qt)])
            .arg("--allow-private-targets")
            .args(["--signing-secret", SECRET])
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

    async fn wait_ready(&mut self, within: Duration) -> Res<()> {
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

    async fn metrics_text(&self) -> Option<String> {
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
    async fn metric(&self, name: &str) -> Option<f64> {
        Some(metric_sum(&self.metrics_text().await?, name))
    }

    /// SIGTERM, then wait for the drain (SIGKILL after `grace`).
    async fn stop(mut self, grace: Duration) {
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

fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Runs a self-measuring baseline subprocess to completion, returns its report.
fn run_baseline(exe: &Path, mode: &str, args: &[String]) -> Res<Value> {
    let out = Command::new(exe)
        .arg(mode)
        .args(args)
        .env("AMQP_URL", amqp_url())
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!("{mode} failed: {}", out.status).into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().ok_or("no report")?;
    Ok(serde_json::from_str(line)?)
}

/// A throughput figure: deliveries/s, CPU-µs per delivery, peak RSS.
fn figure(n: u64, elapsed: f64, cpu: f64, hwm: u64) -> Value {
    json!({
        "n": n,
        "elapsed_s": round(elapsed, 3),
        "per_s": (n as f64 / elapsed).round() as u64,
        "cpu_us_per_delivery": round(cpu * 1e6 / n as f64, 1),
        "cpu_cores": round(cpu / elapsed, 2),
        "peak_rss_mib": round(hwm as f64 / MIB, 1),
    })
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        0.0
    } else if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    }
}

/// The run with the median rate stands for all of them (so its CPU and
/// noise figures belong to the same run); every round's rate is listed.
fn median_run(runs: &[Value]) -> Value {
    let mut sorted: Vec<&Value> = runs.iter().collect();
    sorted.sort_by(|a, b| per_s(a).total_cmp(&per_s(b)));
    let mut v = sorted[(sorted.len() - 1) / 2].clone();
    v["rounds_per_s"] = json!(runs.iter().map(|r| per_s(r) as u64).collect::<Vec<_>>());
    v["rounds_cpu_us_per_delivery"] = json!(
        runs.iter()
            .map(|r| r["cpu_us_per_delivery"].clone())
            .collect::<Vec<_>>()
    );
    v["peak_rss_mib"] = json!(
        runs.iter()
            .filter_map(|r| r["peak_rss_mib"].as_f64())
            .fold(0.0, f64::max)
    );
    v
}

fn per_s(v: &Value) -> f64 {
    v["per_s"].as_f64().unwrap_or(0.0)
}

struct Bench {
    opts: Opts,
    exe: PathBuf,
    worker_bin: PathBuf,
    run_id: String,
    logs: PathBuf,
    recv: Receivers,
    broker: Broker,
}

async fn orchestrate(opts: Opts) -> Res<()> {
    epoch();
    let exe = std::env::current_exe()?;
    let worker_bin = match &opts.worker_bin {
        Some(p) => p.clone(),
        None => exe
            .parent()
            .and_then(Path::parent)
            .ok_or("exe path")?
            .join("webhook-worker"),
    };
    if !worker_bin.exists() {
        return Err(format!(
            "{} not found: build it with cargo build --release",
            worker_bin.display()
        )
        .into());
    }
    let run_id = format!("{:x}", unix_nanos() / 1_000_000);
    let logs = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("exe path")?
        .join("bench-logs")
        .join(&run_id);
    fs::create_dir_all(&logs)?;
    let recv = Receivers::start().await?;
    let broker = Broker::connect().await?;
    let b = Bench {
        opts,
        exe,
        worker_bin,
        run_id,
        logs,
        recv,
        broker,
    };
    let started = Instant::now();
    let load_start = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!(
        "bench: run {} — N = {}, concurrency = {}, worker = {}, logs in {}",
        b.run_id,
        b.opts.n,
        b.opts.concurrency,
        b.worker_bin.display(),
        b.logs.display()
    );

    let mut results = serde_json::Map::new();
    let mut per_type = serde_json::Map::new();
    let qts = b.opts.queue_types.clone();
    // Throughput runs, repeated and interleaved (every system once per
    // round), so a drift of the machine's speed hits all of them alike; each
    // figure is the median round, each ratio the median of the per-round
    // ratios.
    let mut http_runs = Vec::new();
    let mut runs: Vec<[Vec<Value>; 4]> = qts.iter().map(|_| Default::default()).collect();
    let want_success =
        b.opts.wants("success") || (b.opts.wants("latency") && b.opts.latency_rate.is_none());
    for round in 0..b.opts.repeat {
        eprintln!(
            "bench: ---- throughput round {} of {}",
            round + 1,
            b.opts.repeat
        );
        if b.opts.wants("baselines") {
            http_runs.push(b.raw_http().await?);
        }
        for (i, &qt) in qts.iter().enumerate() {
            if b.opts.wants("baselines") {
                runs[i][0].push(b.raw_consume(qt).await?);
                runs[i][1].push(b.naive(qt).await?);
            }
            if want_success {
                runs[i][2].push(b.worker_run(qt, false).await?);
            }
            if b.opts.wants("failure") {
                runs[i][3].push(b.worker_run(qt, true).await?);
            }
        }
    }
    if !http_runs.is_empty() {
        results.insert("raw_http".into(), median_run(&http_runs));
    }
    for (i, &qt) in qts.iter().enumerate() {
        let mut r = serde_json::Map::new();
        for (k, name) in ["raw_consume", "naive", "worker_success", "worker_failure"]
            .into_iter()
            .enumerate()
        {
            if !runs[i][k].is_empty() {
                r.insert(name.into(), median_run(&runs[i][k]));
            }
        }
        let [consume, naive, success, failure] = &runs[i];
        let paired = |a: &[Value], f: &dyn Fn(usize) -> Option<f64>| -> Option<Value> {
            let v: Vec<f64> = (0..a.len()).filter_map(f).collect();
            (!v.is_empty()).then(|| json!(round(median(&v), 2)))
        };
        let mut ratios = serde_json::Map::new();
        if let Some(x) = paired(success, &|j| {
            Some(per_s(&success[j]) / per_s(naive.get(j)?))
        }) {
            ratios.insert("worker_over_naive".into(), x);
        }
        if let Some(x) = paired(success, &|j| {
            Some(per_s(&success[j]) / per_s(consume.get(j)?).min(per_s(http_runs.get(j)?)))
        }) {
            ratios.insert("worker_over_ceiling".into(), x);
            let ceilings: Vec<f64> = (0..consume.len().min(http_runs.len()))
                .map(|j| per_s(&consume[j]).min(per_s(&http_runs[j])))
                .collect();
            ratios.insert(
                "ceiling_per_s".into(),
                json!(median(&ceilings).round() as u64),
            );
        }
        // Both halves of the pipeline on the same cores: each costs the
        // whole machine (broker, receiver, client) some core-seconds per
        // message; no consume→POST pipeline can beat the sum.
        let machine_cost =
            |v: &Value| v["noise"]["machine_busy_cores"].as_f64().unwrap_or(0.0) / per_s(v);
        if let Some(x) = paired(success, &|j| {
            let ceiling =
                num_cpus() / (machine_cost(consume.get(j)?) + machine_cost(http_runs.get(j)?));
            Some(per_s(&success[j]) / ceiling)
        }) {
            ratios.insert("worker_over_machine_ceiling".into(), x);
            let ceilings: Vec<f64> = (0..consume.len().min(http_runs.len()))
                .map(|j| num_cpus() / (machine_cost(&consume[j]) + machine_cost(&http_runs[j])))
                .collect();
            ratios.insert(
                "machine_ceiling_per_s".into(),
                json!(median(&ceilings).round() as u64),
            );
        }
        if let Some(x) = paired(failure, &|j| {
            Some(per_s(&failure[j]) / per_s(success.get(j)?))
        }) {
            ratios.insert("failure_over_success".into(), x);
        }
        if b.opts.wants("latency") {
            let rate = b
                .opts
                .latency_rate
                .unwrap_or_else(|| per_s(&r["worker_success"]) / 2.0);
            r.insert("latency".into(), b.latency(qt, rate, false).await?);
            if !b.opts.no_naive_latency {
                r.insert("latency_naive".into(), b.latency(qt, rate, true).await?);
            }
            // Where the tail comes from: the same at a quarter of the peak.
            if b.opts.latency_rate.is_none() {
                r.insert(
                    "latency_quarter".into(),
                    b.latency(qt, rate / 2.0, false).await?,
                );
            }
        }
        r.insert("ratios".into(), Value::Object(ratios));
        per_type.insert(qt_name(qt).into(), Value::Object(r));
    }
    results.insert("by_queue_type".into(), Value::Object(per_type));
    if b.opts.wants("isolation") {
        let hint = results["by_queue_type"]["quorum"]["worker_success"]["per_s"].as_f64();
        results.insert("isolation".into(), b.isolation(hint).await?);
    }
    if b.opts.wants("memory") {
        results.insert("memory".into(), b.memory().await?);
    }

    let machine = machine_info(&load_start).await;
    let targets = evaluate_targets(&Value::Object(results.clone()));
    let report = json!({
        "date": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        "command": b.opts.command,
        "run_id": b.run_id,
        "duration_s": round(started.elapsed().as_secs_f64(), 1),
        "machine": machine,
        "settings": {
            "n": b.opts.n,
            "concurrency": b.opts.concurrency,
            "default_concurrency": DEFAULT_CONCURRENCY,
            "default_host_concurrency": DEFAULT_HOST_CONCURRENCY,
            "message_bytes": envelope("b-00000000", &b.recv.ok.url(), 0).len(),
            "request_body_bytes": data_json(0).len(),
            "worker_flags": "run --allow-private-targets --signing-secret … --metrics-addr 127.0.0.1:<port> (other settings default unless noted)",
            "git": git_rev(),
        },
        "results": Value::Object(results),
        "targets": targets,
    });
    let table = summary_table(&report);
    println!("{table}");
    if let Some(out) = &b.opts.out {
        if let Some(dir) = out.parent() {
            fs::create_dir_all(dir)?;
        }
        let mut f = fs::File::create(out)?;
        f.write_all(serde_json::to_string_pretty(&report)?.as_bytes())?;
        f.write_all(b"\n")?;
        fs::write(out.with_extension("md"), &table)?;
        eprintln!("bench: wrote {} (and the table as .md)", out.display());
    }
    if let Ok(conn) = b.broker.conn().await {
        let _ = conn.close(200, "done".into()).await;
    }
    Ok(())
}

impl Bench {
    fn prefix(&self, scenario: &str) -> String {
        format!("bench-{}-{scenario}", self.run_id)
    }

    fn config(&self, prefix: &str, qt: QueueType, schedule: Option<&str>) -> Config {
        let mut c = Config::defaults();
        c.prefix = prefix.to_string();
        c.queue_type = qt;
        if let Some(s) = schedule {
            c.retry_schedule = s.parse().expect("schedule");
        }
        c
    }

    fn log(&self, scenario: &str) -> PathBuf {
        self.logs.join(format!("{scenario}.log"))
    }

    async fn raw_http(&self) -> Res<Value> {
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

    async fn raw_consume(&self, qt: QueueType) -> Res<Value> {
        let prefix = self.prefix(&format!("{}-consume", qt_name(qt)));
        let t = self.broker.declare(&self.config(&prefix, qt, None)).await?;
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

    /// Waits until the receivers saw `n` requests, or nothing new came for
    /// `stall` (then returns false).
    async fn wait_receipts(&self, n: u64, stall: Duration, limit: Duration) -> bool {
        let t0 = Instant::now();
        let mut last = (0, Instant::now());
        loop {
            let c = self.recv.shared.total();
            if c >= n {
                return true;
            }
            if c != last.0 {
                last = (c, Instant::now());
            } else if last.1.elapsed() > stall || t0.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn naive(&self, qt: QueueType) -> Res<Value> {
        let prefix = self.prefix(&format!("{}-naive", qt_name(qt)));
        let t = self.broker.declare(&self.config(&prefix, qt, None)).await?;
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

    /// The worker draining `n` preloaded envelopes. `failing`: every
    /// receiver answers 500, so each event takes the retry path (publish to
    /// `P.retry.1h` with confirm, then ack).
    ///
    /// Start: the first receipt at the receiver. End: the n-th receipt (all
    /// succeed), or the moment `/metrics` counts `n` events settled through
    /// the retry tier (all fail). A delivery the worker *defers* (its host
    /// had no free slot for 50 ms: published to the shortest tier without an
    /// attempt) never reaches the receiver; it counts as settled and is
    /// reported as `deferred`.
    async fn worker_run(&self, qt: QueueType, failing: bool) -> Res<Value> {
        let scenario = format!(
            "{}-{}",
            qt_name(qt),
            if failing { "failure" } else { "success" }
        );
        let prefix = self.prefix(&scenario);
        let schedule = failing.then_some("1h");
        let t = self
            .broker
            .declare(&self.config(&prefix, qt, schedule))
            .await?;
        eprintln!(
            "bench: worker, {}, {}: publishing {}",
            if failing {
                "all fail (retry path)"
            } else {
                "all succeed"
            },
            qt_name(qt),
            self.opts.n
        );
        let url = if failing {
            self.recv.fail.url()
        } else {
            self.recv.ok.url()
        };
        self.broker
            .publish_bulk(t.exchange(), self.opts.n, &|_| url.clone(), "b")
            .await?;
        let n = self.opts.n as u64;
        let conc = self.opts.concurrency.to_string();
        let mut args = vec!["--concurrency", conc.as_str()];
        if failing {
            args.extend(["--retry-schedule", "1h"]);
        }
        let mut w =
            WorkerProc::spawn(&self.worker_bin, &prefix, qt, &args, &self.log(&scenario)).await?;
        self.recv.reset(w.pid, n);
        let noise0 = Noise::now();
        let r = async {
            w.wait_ready(Duration::from_secs(30)).await?;
            let perf = if self.opts.perf { Some(Perf::start(w.pid, &self.logs, &scenario)?) } else { None };
            let started = Instant::now();
            let mut last = (0, Instant::now());
            let (end, cpu_end, deferred, retried) = loop {
                let c = self.recv.shared.total();
                if c != last.0 {
                    last = (c, Instant::now());
                }
                let quiet = last.1.elapsed() > Duration::from_millis(100);
                if !failing && c >= n {
                    let (_, nth, _) = self.recv.window().ok_or("no window")?;
                    let deferred = w.metric("webhook_deferred_total").await.unwrap_or(-1.0);
                    break (nth, (*self.recv.shared.cpu_nth.lock().unwrap()).unwrap_or(0.0), deferred, 0.0);
                }
                if c >= n || quiet {
                    let text = w.metrics_text().await.unwrap_or_default();
                    let deferred = metric_sum(&text, "webhook_deferred_total");
                    let retried = metric_sum(&text, "webhook_retried_total");
                    let settled = if failing { retried + deferred } else { c as f64 + deferred };
                    if settled as u64 >= n {
                        let end = if failing {
                            since_epoch_ns()
                        } else {
                            self.recv.ok.last_ns.load(Ordering::SeqCst)
                        };
                        break (end as f64 / 1e9, cpu_secs(w.pid).unwrap_or(0.0), deferred, retried);
                    }
                    if last.1.elapsed() > Duration::from_secs(15) || started.elapsed() > Duration::from_secs(300) {
                        return Err(format!(
                            "{scenario} stalled: {c} receipts of {n}, retried {retried}, deferred {deferred}"
                        )
                        .into());
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            let hwm = vm_bytes(w.pid, "VmHWM").unwrap_or(0);
            let first = self.recv.shared.first_ns.load(Ordering::SeqCst) as f64 / 1e9;
            let cpu0 = (*self.recv.shared.cpu_first.lock().unwrap()).unwrap_or(0.0);
            let mut v = figure(n, end - first, cpu_end - cpu0, hwm);
            if let Some(p) = perf {
                v["profile"] = p.finish();
            }
            v["receipts"] = json!(self.recv.shared.total());
            v["deferred"] = json!(deferred);
            v["consumer_rotations"] = json!(w.metric("webhook_consumer_rotations_total").await.unwrap_or(-1.0));
            if failing {
                v["retried"] = json!(retried);
            }
            v["noise"] = Noise::now().since(&noise0, end - first, cpu_end - cpu0);
            Ok::<_, BoxError>(v)
        }
        .await;
        w.stop(Duration::from_secs(15)).await;
        self.broker.cleanup(&t).await;
        let v = r?;
        eprintln!(
            "bench:   {} events/s, {} CPU-µs each, peak RSS {} MiB, deferred {}, rotations {}",
            v["per_s"],
            v["cpu_us_per_delivery"],
            v["peak_rss_mib"],
            v["deferred"],
            v["consumer_rotations"]
        );
        Ok(v)
    }

    /// Publish→receipt latency at a fixed offered rate, with the worker (or,
    /// for reference, the naive worker) running. The publisher is this
    /// process, pacing in 1 ms ticks, confirms pipelined; each event's id
    /// carries its publish time, which the receiver subtracts from the time
    /// the request arrives. The first second is reported apart (warm-up:
    /// connections to the receiver are opened then).
    async fn latency(&self, qt: QueueType, rate: f64, naive: bool) -> Res<Value> {
        let scenario = format!(
            "{}-latency{}",
            qt_name(qt),
            if naive { "-naive" } else { "" }
        );
        let prefix = self.prefix(&scenario);
        let t = self.broker.declare(&self.config(&prefix, qt, None)).await?;
        let rate = rate.max(100.0).round();
        let total = (rate * self.opts.latency_seconds) as u64;
        eprintln!(
            "bench: latency, {}{}: {rate}/s for {}s",
            qt_name(qt),
            if naive {
                " (naive worker, for reference)"
            } else {
                ""
            },
            self.opts.latency_seconds
        );
        let conc = self.opts.concurrency.to_string();
        let (mut worker, mut naive_child) = (None, None);
        let pid = if naive {
            let mut child = Command::new(&self.exe)
                .arg("naive-worker")
                .args(["--queue", t.deliveries(), "--concurrency", &conc])
                .env("AMQP_URL", amqp_url())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()?;
            let stdout = child.stdout.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let _ = tx.send(line.is_ok());
                }
            });
            // The naive worker prints "ready" once consuming.
            let _ =
                tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30))).await;
            let pid = child.id();
            naive_child = Some(child);
            pid
        } else {
            let mut w = WorkerProc::spawn(
                &self.worker_bin,
                &prefix,
                qt,
                &["--concurrency", &conc],
                &self.log(&scenario),
            )
            .await?;
            w.wait_ready(Duration::from_secs(30)).await?;
            let pid = w.pid;
            worker = Some(w);
            pid
        };
        self.recv.reset(pid, total);
        let r = async {
            self.recv.shared.latency_on.store(true, Ordering::SeqCst);
            let url = self.recv.ok.url();
            let noise0 = Noise::now();
            let cpu0 = cpu_secs(pid).unwrap_or(0.0);
            let waits = |pid: u32| {
                [pid, broker_pid().unwrap_or(0), std::process::id()].map(runqueue_wait_secs)
            };
            let wait0 = waits(pid);
            let start = Instant::now();
            let start_unix = unix_nanos();
            let mut sent = 0u64;
            let mut confirms = Vec::with_capacity(total as usize);
            // Sample, every 100 ms, the broker's ready count of the work
            // queue and (for the worker) its in-flight gauge: tells whether
            // the wait is in the queue or in the process.
            let sampling = Arc::new(AtomicBool::new(true));
            let sampler = {
                let sampling = sampling.clone();
                let queue = t.deliveries().to_string();
                let ch = self.broker.conn().await?.create_channel().await?;
                let metrics = worker.as_ref().map(|w| (w.http.clone(), format!("{}/metrics", w.metrics)));
                tokio::spawn(async move {
                    let (mut ready, mut in_flight) = (Vec::new(), Vec::new());
                    while sampling.load(Ordering::SeqCst) {
                        let opts = lapin::options::QueueDeclareOptions { passive: true, ..Default::default() };
                        if let Ok(q) = ch.queue_declare(queue.as_str().into(), opts, FieldTable::default()).await {
                            ready.push(q.message_count() as f64);
                        }
                        if let Some((http, url)) = &metrics
                            && let Ok(r) = http.get(url).send().await
                            && let Ok(text) = r.text().await
                        {
                            in_flight.push(metric_sum(&text, "webhook_in_flight"));
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    let _ = ch.close(200, "".into()).await;
                    (ready, in_flight)
                })
            };
            let channel = self.broker.channel().await?;
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            while sent < total {
                tick.tick().await;
                let due = ((start.elapsed().as_secs_f64() * rate) as u64).min(total);
                while sent < due {
                    let body = latency_envelope(sent as usize, &url, unix_nanos());
                    confirms.push(
                        channel
                            .basic_publish(t.exchange().into(), "".into(), BasicPublishOptions::default(), &body, props())
                            .await?,
                    );
                    sent += 1;
                }
            }
            let offered = total as f64 / start.elapsed().as_secs_f64();
            for c in confirms {
                c.await?;
            }
            if !self.wait_receipts(total, Duration::from_secs(10), Duration::from_secs(60)).await {
                return Err(format!("latency run: {} of {total} received", self.recv.shared.total()).into());
            }
            let wall = start.elapsed().as_secs_f64();
            let cpu = cpu_secs(pid).unwrap_or(0.0) - cpu0;
            let wait1 = waits(pid);
            let wait_ms_per_s = |i: usize| round((wait1[i] - wait0[i]) * 1e3 / wall, 1);
            sampling.store(false, Ordering::SeqCst);
            let (ready, in_flight) = sampler.await.unwrap_or_default();
            let stat = |v: &[f64]| {
                if v.is_empty() {
                    Value::Null
                } else {
                    json!({ "mean": round(v.iter().sum::<f64>() / v.len() as f64, 1), "max": v.iter().cloned().fold(0.0, f64::max) })
                }
            };
            let warmup = start_unix + 1_000_000_000;
            let all: Vec<(u64, u64)> = self.recv.shared.latencies.lock().unwrap().clone();
            let mut steady: Vec<u64> = all.iter().filter(|(p, _)| *p >= warmup).map(|(_, l)| *l).collect();
            let mut every: Vec<u64> = all.iter().map(|(_, l)| *l).collect();
            steady.sort_unstable();
            every.sort_unstable();
            let pct = |v: &[u64], p: f64| -> f64 {
                if v.is_empty() {
                    return 0.0;
                }
                let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
                round(v[i] as f64 / 1e6, 2)
            };
            // Per-second p99 and max, by publish time: shows whether the
            // tail is a steady queue or a few stalls.
            let mut timeline = Vec::new();
            for sec in 0..(self.opts.latency_seconds.ceil() as u64) {
                let lo = start_unix + sec * 1_000_000_000;
                let mut v: Vec<u64> =
                    all.iter().filter(|(p, _)| *p >= lo && *p < lo + 1_000_000_000).map(|(_, l)| *l).collect();
                v.sort_unstable();
                timeline.push(json!([pct(&v, 0.5), pct(&v, 0.99), pct(&v, 1.0)]));
            }
            Ok::<_, BoxError>(json!({
                "timeline_p50_p99_max_ms_per_second": timeline,
                "queue_ready_sampled": stat(&ready),
                "worker_in_flight_sampled": stat(&in_flight),
                "offered_per_s": offered.round() as u64,
                "target_rate_per_s": rate,
                "n": every.len(),
                "p50_ms": pct(&steady, 0.50),
                "p90_ms": pct(&steady, 0.90),
                "p99_ms": pct(&steady, 0.99),
                "max_ms": pct(&steady, 1.0),
                "n_steady": steady.len(),
                "including_first_second": { "p50_ms": pct(&every, 0.5), "p99_ms": pct(&every, 0.99), "max_ms": pct(&every, 1.0) },
                "cpu_us_per_delivery": round(cpu * 1e6 / total as f64, 1),
                "peak_rss_mib": round(vm_bytes(pid, "VmHWM").unwrap_or(0) as f64 / MIB, 1),
                // Milliseconds per second that each process's threads were
                // runnable but had no CPU (summed over threads).
                "runqueue_wait_ms_per_s": {
                    "sut": wait_ms_per_s(0), "broker": wait_ms_per_s(1), "bench_and_receiver": wait_ms_per_s(2),
                },
                "noise": Noise::now().since(&noise0, wall, cpu),
            }))
        }
        .await;
        self.recv.shared.latency_on.store(false, Ordering::SeqCst);
        if let Some(w) = worker {
            w.stop(Duration::from_secs(15)).await;
        }
        if let Some(mut c) = naive_child {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.broker.cleanup(&t).await;
        let v = r?;
        eprintln!(
            "bench:   p50 {} ms, p99 {} ms, max {} ms; machine {} cores busy; waiting for a CPU (ms/s): {}",
            v["p50_ms"],
            v["p99_ms"],
            v["max_ms"],
            v["noise"]["machine_busy_cores"],
            v["runqueue_wait_ms_per_s"]
        );
        Ok(v)
    }

    /// Ten receivers on ten ports, round robin; the hang run makes one of
    /// them answer only after 15 s (past the 10 s timeout). Default worker
    /// settings. The figure: the other nine's delivery rate, hang run over
    /// all-healthy run.
    async fn isolation(&self, rate_hint: Option<f64>) -> Res<Value> {
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
            .declare(&self.config(&prefix, QueueType::Quorum, None))
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
            &self.worker_bin,
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

    /// `inflight` events to a receiver that holds every request until
    /// released: RSS and sockets with ~0 and with `inflight` in flight.
    async fn memory(&self) -> Res<Value> {
        let scenario = "inflight";
        let prefix = self.prefix(scenario);
        let qt = QueueType::Quorum;
        let t = self.broker.declare(&self.config(&prefix, qt, None)).await?;
        let k = self.opts.inflight;
        let conc = k.to_string();
        let mut w = WorkerProc::spawn(
            &self.worker_bin,
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

/// `perf record` of the process under test, during the measured window.
struct Perf {
    child: Child,
    data: PathBuf,
    report: PathBuf,
}

impl Perf {
    fn start(pid: u32, logs: &Path, scenario: &str) -> Res<Self> {
        let data = logs.join(format!("perf-{scenario}.data"));
        let child = Command::new("perf")
            .args(["record", "-F", "999", "--call-graph"])
            .arg(std::env::var("BENCH_PERF_CALL_GRAPH").unwrap_or_else(|_| "fp".into()))
            .args(["-p", &pid.to_string(), "-o"])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("perf: {e} (apt-get install linux-perf)"))?;
        Ok(Self {
            child,
            data,
            report: logs.join(format!("perf-{scenario}.txt")),
        })
    }

    /// Stops recording; writes the flat report beside the data and returns
    /// the top symbols (self time).
    fn finish(mut self) -> Value {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let out = Command::new("perf")
            .args([
                "report",
                "--stdio",
                "--no-children",
                "-g",
                "none",
                "--percent-limit",
                "0.7",
                "--sort",
                "dso,symbol",
                "-i",
            ])
            .arg(&self.data)
            .stderr(Stdio::null())
            .output();
        let text = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let _ = fs::write(&self.report, &text);
        let top: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .take(25)
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        json!({ "data": self.data.display().to_string(), "report": self.report.display().to_string(), "top_self": top })
    }
}

async fn metric_line(w: &WorkerProc, name: &str, label: &str) -> f64 {
    let Ok(r) = w.http.get(format!("{}/metrics", w.metrics)).send().await else {
        return -1.0;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// --------------------------------------------------------------- reports --

fn git_rev() -> String {
    let rev = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok();
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok();
    let rev = rev
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    match dirty {
        Some(o) if !o.stdout.is_empty() => format!("{rev}+dirty"),
        _ => rev,
    }
}

async fn machine_info(load_start: &str) -> Value {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("?")
        .trim()
        .to_string();
    let mem_kb: u64 = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let rabbit = async {
        let c = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(3))
            .build()
            .ok()?;
        let v: Value = c
            .get("http://127.0.0.1:15672/api/overview")
            .basic_auth("guest", Some("guest"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())?;
        Some(format!(
            "{} (Erlang {})",
            v["rabbitmq_version"].as_str()?,
            v["erlang_version"].as_str().unwrap_or("?")
        ))
    }
    .await;
    json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": model,
        "memory_gib": round(mem_kb as f64 / 1024.0 / 1024.0, 1),
        "kernel": kernel,
        "rabbitmq": rabbit.unwrap_or_else(|| "?".into()),
        "rustc": Command::new("rustc").arg("--version").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()),
        "loadavg_at_start": load_start.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        "loadavg_at_end": fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        "note": "broker, receivers, publisher and the process under test share these cores",
    })
}

fn evaluate_targets(r: &Value) -> Value {
    let mut out = Vec::new();
    let mut check = |name: String, value: Option<f64>, target: &str, pass: Option<bool>| {
        if let (Some(v), Some(p)) = (value, pass) {
            out.push(json!({ "target": name, "value": v, "want": target, "pass": p }));
        }
    };
    for qt in ["quorum", "classic"] {
        let t = &r["by_queue_type"][qt];
        if t.is_null() {
            continue;
        }
        let ratios = &t["ratios"];
        let won = ratios["worker_over_naive"].as_f64();
        check(
            format!("{qt}: worker ÷ naive"),
            won,
            "≥ 1.2",
            won.map(|x| x >= 1.2),
        );
        let woc = ratios["worker_over_ceiling"].as_f64();
        check(
            format!("{qt}: worker ÷ min(consume, HTTP)"),
            woc,
            "≥ 0.80",
            woc.map(|x| x >= 0.8),
        );
        let fos = ratios["failure_over_success"].as_f64();
        check(
            format!("{qt}: failure ÷ success rate"),
            fos,
            "≥ 0.50",
            fos.map(|x| x >= 0.5),
        );
        let rss = t["worker_success"]["peak_rss_mib"].as_f64();
        check(
            format!("{qt}: worker peak RSS (MiB), success path"),
            rss,
            "≤ 64",
            rss.map(|x| x <= 64.0),
        );
        let p99 = t["latency"]["p99_ms"].as_f64();
        check(
            format!("{qt}: p99 publish→receipt (ms) at half peak"),
            p99,
            "≤ 25",
            p99.map(|x| x <= 25.0),
        );
    }
    let share = r["isolation"]["nine_share"].as_f64();
    check(
        "isolation: other nine ÷ all-healthy".into(),
        share,
        "≥ 0.80",
        share.map(|x| x >= 0.8),
    );
    let kib = r["memory"]["kib_per_in_flight"].as_f64();
    check(
        "memory: KiB per in-flight delivery".into(),
        kib,
        "≤ 32",
        kib.map(|x| x <= 32.0),
    );
    Value::Array(out)
}

fn summary_table(report: &Value) -> String {
    use std::fmt::Write as _;
    let r = &report["results"];
    let m = &report["machine"];
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n## webhook-worker benchmark — {} ({} cores: {}; {})",
        report["date"].as_str().unwrap_or(""),
        m["cores"],
        m["cpu"].as_str().unwrap_or("?"),
        m["rabbitmq"].as_str().unwrap_or("?")
    );
    let _ = writeln!(
        s,
        "N = {} events per throughput run, concurrency {}, body {} B (message {} B); command: {}\n",
        report["settings"]["n"],
        report["settings"]["concurrency"],
        report["settings"]["request_body_bytes"],
        report["settings"]["message_bytes"],
        report["command"].as_str().unwrap_or("")
    );
    let _ = writeln!(
        s,
        "| run | queue | deliveries/s (median) | CPU-µs/delivery | peak RSS MiB | every round, deliveries/s | other load (cores) |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---|---:|");
    let row = |s: &mut String, name: &str, qt: &str, v: &Value| {
        if v.is_null() {
            return;
        }
        let _ = writeln!(
            s,
            "| {name} | {qt} | {} | {} | {} | {} | {} |",
            v["per_s"],
            v["cpu_us_per_delivery"],
            v["peak_rss_mib"],
            v["rounds_per_s"]
                .as_array()
                .map(|a| a
                    .iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default(),
            v["noise"]["other_cores"]
        );
    };
    row(&mut s, "raw HTTP POST (baseline 2)", "—", &r["raw_http"]);
    for qt in ["quorum", "classic"] {
        let t = &r["by_queue_type"][qt];
        row(
            &mut s,
            "raw consume+ack (baseline 1)",
            qt,
            &t["raw_consume"],
        );
        row(
            &mut s,
            "naive consume→POST→ack (baseline 3)",
            qt,
            &t["naive"],
        );
        row(&mut s, "worker, all succeed", qt, &t["worker_success"]);
        row(
            &mut s,
            "worker, all fail (retry + ack)",
            qt,
            &t["worker_failure"],
        );
    }
    let _ = writeln!(
        s,
        "\n| queue | worker ÷ naive | worker ÷ min(consume, HTTP) | failure ÷ success | worker ÷ machine ceiling (consume + HTTP on the same cores) |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|");
    for qt in ["quorum", "classic"] {
        let t = &r["by_queue_type"][qt];
        if t.is_null() || t["worker_success"].is_null() {
            continue;
        }
        let _ = writeln!(
            s,
            "| {qt} | {} | {} | {} | {} ({} /s) |",
            t["ratios"]["worker_over_naive"],
            t["ratios"]["worker_over_ceiling"],
            t["ratios"]["failure_over_success"],
            t["ratios"]["worker_over_machine_ceiling"],
            t["ratios"]["machine_ceiling_per_s"],
        );
    }
    let _ = writeln!(
        s,
        "\n| latency publish→receipt | queue | offered/s | p50 ms | p90 ms | p99 ms | max ms | other load (cores) |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|");
    for qt in ["quorum", "classic"] {
        for (name, key) in [
            ("worker", "latency"),
            ("naive (reference)", "latency_naive"),
            ("worker, quarter peak", "latency_quarter"),
        ] {
            let l = &r["by_queue_type"][qt][key];
            if l.is_null() {
                continue;
            }
            let _ = writeln!(
                s,
                "| {name} | {qt} | {} | {} | {} | {} | {} | {} |",
                l["offered_per_s"],
                l["p50_ms"],
                l["p90_ms"],
                l["p99_ms"],
                l["max_ms"],
                l["noise"]["other_cores"]
            );
        }
    }
    let iso = &r["isolation"];
    if !iso.is_null() {
        let _ = writeln!(
            s,
            "\nIsolation ({} events over 10 receivers, defaults): other nine {} /s all healthy, {} /s with one hanging 15 s → {} % (median of rounds {}; deferred {}, timeouts {})",
            iso["events"],
            iso["all_healthy"]["nine_per_s"],
            iso["one_hanging"]["nine_per_s"],
            round(iso["nine_share"].as_f64().unwrap_or(0.0) * 100.0, 1),
            iso["rounds_nine_share"],
            iso["one_hanging"]["deferred"],
            iso["one_hanging"]["timeouts"]
        );
    }
    let mem = &r["memory"];
    if !mem.is_null() {
        let _ = writeln!(
            s,
            "Memory ({}): RSS {} MiB idle → {} MiB with {} in flight = {} KiB per in-flight delivery; sockets {} → {}; peak RSS {} MiB",
            mem["settings"].as_str().unwrap_or(""),
            mem["idle"]["rss_mib"],
            mem["busy"]["rss_mib"],
            mem["in_flight"],
            mem["kib_per_in_flight"],
            mem["idle"]["sockets"],
            mem["busy"]["sockets"],
            mem["peak_rss_mib"]
        );
    }
    let _ = writeln!(s, "\n| target | value | want | pass |");
    let _ = writeln!(s, "|---|---:|---|---|");
    for t in report["targets"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            t["target"].as_str().unwrap_or(""),
            t["value"],
            t["want"].as_str().unwrap_or(""),
            if t["pass"].as_bool() == Some(true) {
                "yes"
            } else {
                "**no**"
            }
        );
    }
    s
}
