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

mod amqp;
mod baselines;
mod payloads;
mod perf;
mod receiver;
mod report;
mod scenarios;
mod sys;
mod worker_proc;

use std::path::PathBuf;

use webhook_worker::{broker::topology::QueueType, config::DEFAULT_CONCURRENCY};

use crate::{
    baselines::{naive_worker, raw_consume, raw_http},
    scenarios::orchestrate,
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = Result<T, BoxError>;

fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

const SECRET: &str = "bench-signing-secret";
const MIB: f64 = 1024.0 * 1024.0;

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
