//! The fairness benchmark of sharded work queues (bench/README.md,
//! "Fair over shards"), one run comparing shard counts on this broker:
//!
//! - **burst**: one site publishes `--burst` events at once to a fast
//!   receiver while `--sites` other sites publish `--rate` events/s each to
//!   receivers of their own; the others' latency (publish → receipt) over
//!   time, and the burst's drain time, for each shard count;
//! - **throughput**: a backlog of `--backlog` events to a fast receiver,
//!   drained by one worker, for each shard count.
//!
//! The other sites are chosen so that none shares the burst's shard at the
//! largest count (the consistent hash is probed first): a site that does
//! share it waits like the unsharded case (docs/architecture.md). Needs
//! the release worker (`cargo build --release --bin webhook-worker`).
//!
//! ```text
//! cargo run --release --example fairness -- --out bench/results/<stamp>-fairness.json
//! ```
//!
//! `FAIRNESS_BROKER_PIDS=pid,pid,…` (the brokers' Erlang VMs) adds their CPU
//! seconds while the backlog is published and while it drains.
//!
//! Options: `--shards 1,16`, `--burst 200000`, `--sites 20`, `--rate 50`,
//! `--backlog 100000`, `--rounds 1` (throughput rounds, alternating the
//! counts), `--only burst|throughput`, `--out FILE.json` (the
//! chart goes beside it as `FILE.svg`).

mod broker;
mod chart;
mod receiver;
mod runs;

use lapin::{Connection, ConnectionProperties};
use serde_json::{Value, json};

use broker::{amqp_url, choose_sites, own_url};
use chart::svg;
use runs::{burst_run, percentile, throughput_run};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Settings of one run.
struct Plan {
    burst: u32,
    rate: f64,
    backlog: u32,
    burst_site: u32,
    others: Vec<u32>,
}

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

#[tokio::main]
async fn main() -> Res<()> {
    let counts: Vec<u16> = arg("--shards", "1,16")
        .split(',')
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    let sites: usize = arg("--sites", "20").parse()?;
    let conn = Connection::connect(&own_url(), ConnectionProperties::default()).await?;
    let largest = *counts.iter().max().unwrap_or(&1);
    let (burst_site, others) = choose_sites(&conn, largest.max(2), sites).await?;
    let plan = Plan {
        burst: arg("--burst", "200000").parse()?,
        rate: arg("--rate", "50").parse()?,
        backlog: arg("--backlog", "100000").parse()?,
        burst_site,
        others,
    };
    let urls = vec![String::new(); sites + 1];
    let only = arg("--only", "both");
    let mut bursts = Vec::new();
    for &n in counts.iter().filter(|_| only != "throughput") {
        eprintln!("fairness: burst run, {n} shard(s)");
        let r = burst_run(&conn, &plan, n, &urls).await?;
        eprintln!(
            "fairness:   {}",
            json!({"shards": n, "drain_s": r["burst_drain_s"], "others_p99_ms": r["others_p99_ms"]})
        );
        bursts.push(r);
    }
    // Throughput rounds alternate the shard counts, so a change of the
    // machine's load falls on all of them alike; the summary is the median.
    let rounds: usize = arg("--rounds", "1").parse()?;
    let mut tps = Vec::new();
    for round in 0..rounds {
        for &n in counts.iter().filter(|_| only != "burst") {
            eprintln!(
                "fairness: throughput run, {n} shard(s), round {}",
                round + 1
            );
            let mut r = throughput_run(&conn, &plan, n).await?;
            r["round"] = json!(round + 1);
            eprintln!("fairness:   {r}");
            tps.push(r);
        }
    }
    let medians: Vec<Value> = counts
        .iter()
        .filter(|_| only != "burst")
        .map(|&n| {
            let mut v: Vec<f64> = tps
                .iter()
                .filter(|r| r["shards"] == n)
                .filter_map(|r| r["per_s"].as_f64())
                .collect();
            {
                let rounds = v.clone();
                json!({"shards": n, "median_per_s": percentile(&mut v, 0.5), "rounds": rounds})
            }
        })
        .collect();
    let report = json!({
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "broker": amqp_url().split(',').map(|u| u.split('@').next_back().unwrap_or("")).collect::<Vec<_>>().join(","),
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "burst_site": plan.burst_site, "other_sites": plan.others, "rate_per_site": plan.rate,
        "burst": bursts, "throughput": tps, "throughput_median": medians,
    });
    let out = arg("--out", "bench/results/fairness.json");
    std::fs::write(&out, serde_json::to_string_pretty(&report)? + "\n")?;
    std::fs::write(out.replace(".json", ".svg"), svg(&bursts))?;
    println!("{}", serde_json::to_string(&report)?);
    let _ = conn.close(200, "".into()).await;
    Ok(())
}
