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
//! exchange afterwards. Every `webhook_worker::` name is in `lib_api.rs`.

mod amqp;
mod baselines;
mod chart;
mod lib_api;
mod payloads;
mod perf;
mod receiver;
mod report;
mod scenarios;
mod sys;
mod vhosts;
mod worker_proc;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::{
    baselines::{naive_worker, raw_consume, raw_http},
    lib_api::{DEFAULT_CONCURRENCY, QueueType},
    scenarios::orchestrate,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

const SECRET: &str = "bench-signing-secret";
const MIB: f64 = 1024.0 * 1024.0;

/// webhook-worker benchmark harness. AMQP_URL selects the broker (default:
/// the local one, guest/guest).
#[derive(Parser)]
#[command(name = "bench")]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
}

#[derive(Subcommand)]
enum Mode {
    /// The orchestrator (the default): every scenario, the table, the JSON.
    Run(Opts),
    /// Baseline 1: consume and ack N messages.
    RawConsume(RawConsume),
    /// Baseline 2: N POSTs to one receiver.
    RawHttp(RawHttp),
    /// Baseline 3: consume → POST → ack, until killed.
    NaiveWorker(NaiveWorker),
}

/// `bench run`. The worker under test is the release binary next to this
/// example's directory (target/<profile>/webhook-worker) unless
/// --worker-bin is given.
#[derive(Args)]
struct Opts {
    /// Events per throughput run.
    #[arg(long, default_value_t = 50_000)]
    n: usize,
    /// Concurrency of the throughput and latency runs (worker and
    /// baselines). The receiver scenarios ignore it: the worker runs at its
    /// own defaults there, the naive baseline at 256.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY)]
    concurrency: u16,
    /// Where to write the JSON report (and the table as .md, the charts as
    /// <stem>-hang.svg and <stem>-turns-bad.svg beside it).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The worker binary under test. Repeat it to compare binaries: the
    /// receiver and compare scenarios run every one of them in each round
    /// (the other scenarios use the first).
    #[arg(long = "worker-bin")]
    worker_bin: Vec<PathBuf>,
    /// Length of the all-healthy isolation run, seconds.
    #[arg(long, default_value_t = 10.0)]
    iso_seconds: f64,
    /// Length of each latency run, seconds.
    #[arg(long, default_value_t = 10.0)]
    latency_seconds: f64,
    /// Deliveries held in flight by the memory scenario.
    #[arg(long, default_value_t = 2000)]
    inflight: usize,
    /// Scenarios to run, comma separated (default: all): baselines, success,
    /// failure, latency, isolation, memory, outcomes, log-scan, slow,
    /// fleet, hang, turns-bad, overloaded, burst, instant, ten-hang;
    /// compare (only when named: success at 0 and 100 ms and failure, per
    /// --worker-bin, --repeat rounds).
    #[arg(long, alias = "scenarios", value_delimiter = ',')]
    only: Vec<String>,
    /// Queue types of the throughput and latency runs.
    #[arg(long, value_delimiter = ',', default_values_t = [QueueType::Quorum, QueueType::Classic])]
    queue_types: Vec<QueueType>,
    /// The command line recorded in the report.
    #[arg(long, default_value = "bench/run.sh")]
    command: String,
    /// perf record the worker on the success and failure runs.
    #[arg(long)]
    perf: bool,
    /// Rounds of the throughput runs.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Rounds of the isolation runs.
    #[arg(long, default_value_t = 3)]
    iso_repeat: usize,
    /// Rounds of the receiver scenarios (slow, fleet, hang, turns-bad,
    /// overloaded); every round is kept in the JSON.
    #[arg(long, default_value_t = 1)]
    receiver_repeat: usize,
    /// Offered rate of the latency runs (default: half the worker's measured
    /// peak).
    #[arg(long)]
    latency_rate: Option<f64>,
    /// Skip the naive worker's latency reference.
    #[arg(long)]
    no_naive_latency: bool,
    /// Backlogs of the burst scenario (one healthy 100 ms receiver).
    #[arg(long, value_delimiter = ',', default_values_t = [10_000, 50_000])]
    burst_sizes: Vec<usize>,
    /// Rounds of the burst and ten-hang scenarios (a fresh consumer each).
    #[arg(long, default_value_t = 5)]
    burst_repeat: usize,
}

impl Opts {
    fn wants(&self, what: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == what)
    }
}

#[derive(Args)]
struct RawConsume {
    #[arg(long)]
    queue: String,
    #[arg(long, default_value_t = 50_000)]
    n: u64,
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY)]
    prefetch: u16,
}

#[derive(Args)]
struct RawHttp {
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 50_000)]
    n: usize,
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY.into())]
    concurrency: usize,
}

#[derive(Args)]
struct NaiveWorker {
    #[arg(long)]
    queue: String,
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY)]
    concurrency: u16,
}

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mode = cli
        .mode
        .unwrap_or_else(|| Cli::parse_from(["bench", "run"]).mode.expect("run"));
    let result = match mode {
        Mode::Run(mut opts) => {
            opts.repeat = opts.repeat.max(1);
            opts.iso_repeat = opts.iso_repeat.max(1);
            opts.receiver_repeat = opts.receiver_repeat.max(1);
            opts.burst_repeat = opts.burst_repeat.max(1);
            rt.block_on(orchestrate(opts))
        }
        Mode::RawConsume(a) => rt.block_on(raw_consume(a)),
        Mode::RawHttp(a) => rt.block_on(raw_http(a)),
        Mode::NaiveWorker(a) => rt.block_on(naive_worker(a)),
    };
    if let Err(e) = result {
        eprintln!("bench: error: {e}");
        std::process::exit(1);
    }
}
