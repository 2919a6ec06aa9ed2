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

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, routing::post};
use lapin::{
    BasicProperties, Connection, ConnectionProperties,
    options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueuePurgeOptions},
    types::FieldTable,
};
use serde_json::{Value, json};
use webhook_worker::broker::topology::{QueueType, Topology};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// What the receivers saw: live events' (receipt ns, latency ms), and the
/// burst's count and last receipt.
#[derive(Default)]
struct Seen {
    live: Mutex<Vec<(u64, f64)>>,
    burst: AtomicU64,
    burst_last_ns: AtomicU64,
    any: AtomicU64,
}

async fn receive(State(seen): State<Arc<Seen>>, headers: HeaderMap, body: Bytes) -> &'static str {
    let now = unix_ns();
    let sent = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["t"].as_u64())
        .unwrap_or(now);
    seen.any.fetch_add(1, Ordering::Relaxed);
    if headers.get("x-comm100-site-id").map(|v| v.as_bytes()) == Some(b"1") {
        seen.burst.fetch_add(1, Ordering::Relaxed);
        seen.burst_last_ns.fetch_max(now, Ordering::Relaxed);
    } else {
        let ms = now.saturating_sub(sent) as f64 / 1e6;
        seen.live.lock().unwrap().push((now, ms));
    }
    "ok"
}

/// Starts `n` receivers (one port each) sharing `seen`; their base URLs.
async fn receivers(n: usize, seen: &Arc<Seen>) -> Res<Vec<String>> {
    let mut urls = Vec::new();
    for _ in 0..n {
        let app = Router::new()
            .route("/{*path}", post(receive))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        urls.push(format!("http://{}", listener.local_addr()?));
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    Ok(urls)
}

fn event(id: &str, site: u32, url: &str) -> Vec<u8> {
    format!(
        r#"{{"id":"{id}","webhook":104,"url":"{url}/h","site_id":{site},"data":{{"t":{}}}}}"#,
        unix_ns()
    )
    .into_bytes()
}

fn topology(prefix: &str, shards: u16) -> Topology {
    let tiers = "60s"
        .parse::<webhook_worker::domain::schedule::RetrySchedule>()
        .unwrap()
        .tiers();
    Topology::new(
        prefix,
        QueueType::Quorum,
        &tiers,
        Duration::from_secs(3600),
        10,
    )
    .with_shards(shards)
}

async fn depth(conn: &Connection, q: &str) -> Res<u32> {
    let ch = webhook_worker::broker::channel::open(conn).await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    // A quorum queue just declared on a busy broker may not answer yet.
    let Ok(d) = ch
        .queue_declare(q.into(), passive, FieldTable::default())
        .await
    else {
        return Ok(0);
    };
    let _ = ch.close(200, "".into()).await;
    Ok(d.message_count())
}

/// Publishes with pipelined confirms; returns when all are confirmed.
async fn publish(
    conn: &Connection,
    exchange: &str,
    msgs: impl Iterator<Item = (String, Vec<u8>)>,
) -> Res<()> {
    let ch = webhook_worker::broker::channel::open(conn).await?;
    ch.confirm_select(ConfirmSelectOptions::default()).await?;
    let mut pending = std::collections::VecDeque::new();
    for (key, body) in msgs {
        pending.push_back(
            ch.basic_publish(
                exchange.into(),
                key.as_str().into(),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default(),
            )
            .await?,
        );
        if pending.len() > 4096 {
            pending.pop_front().unwrap().await?;
        }
    }
    for c in pending {
        c.await?;
    }
    let _ = ch.close(200, "".into()).await;
    Ok(())
}

/// The burst's site and `n` others outside its shard at `shards`.
async fn choose_sites(conn: &Connection, shards: u16, n: usize) -> Res<(u32, Vec<u32>)> {
    let prefix = format!("fairness-probe-{}", std::process::id());
    let t = topology(&prefix, shards);
    t.declare(conn).await?;
    let queues = t.work_queues();
    let mut shard_of = Vec::new();
    for site in 1..=300u32 {
        publish(
            conn,
            t.exchange(),
            std::iter::once((site.to_string(), b"{}".to_vec())),
        )
        .await?;
        let mut found = None;
        for (k, q) in queues.iter().enumerate() {
            if depth(conn, q).await? > 0 {
                found = Some(k);
                let ch = webhook_worker::broker::channel::open(conn).await?;
                ch.queue_purge(q.as_str().into(), QueuePurgeOptions::default())
                    .await?;
                let _ = ch.close(200, "".into()).await;
            }
        }
        shard_of.push((site, found.ok_or("probe lost")?));
    }
    delete(conn, &t).await;
    let burst = shard_of.iter().find(|(s, _)| *s == 1).unwrap().1;
    let others = shard_of
        .iter()
        .filter(|(s, k)| *s != 1 && *k != burst)
        .take(n)
        .map(|(s, _)| *s)
        .collect();
    Ok((1, others))
}

async fn delete(conn: &Connection, t: &Topology) {
    let Ok(ch) = webhook_worker::broker::channel::open(conn).await else {
        return;
    };
    let mut queues = t.work_queues();
    queues.extend(t.tiers().iter().map(|(tier, _)| t.retry_queue(tier)));
    queues.extend([t.dead().to_string(), t.log().to_string()]);
    for q in queues {
        let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
    }
    let mut exchanges: Vec<String> = vec![t.exchange().into(), t.outcomes().into()];
    exchanges.push(format!("{}.shards", t.prefix()));
    exchanges.extend(t.tiers().iter().map(|(tier, _)| t.retry_queue(tier)));
    for e in exchanges {
        let _ = ch
            .exchange_delete(e.as_str().into(), Default::default())
            .await;
    }
}

fn worker(prefix: &str, shards: u16) -> Res<std::process::Child> {
    let bin = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into())
        + "/release/webhook-worker";
    Ok(std::process::Command::new(bin)
        .args([
            "run",
            "--prefix",
            prefix,
            "--allow-private-targets",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .args([
            "--retry-schedule",
            "60s",
            "--dead-ttl",
            "1h",
            "--outcomes",
            "off",
            "--log-retention",
            "0",
        ])
        .args(["--shards", &shards.to_string()])
        .env("AMQP_URL", amqp_url())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?)
}

/// The node this example publishes and probes through: the first of
/// `AMQP_URL`'s list (the worker gets the whole list).
fn own_url() -> String {
    amqp_url().split(',').next().unwrap_or_default().to_string()
}

fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

fn stop(mut child: std::process::Child) {
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Res<()> {
    let t0 = Instant::now();
    while !done() {
        if t0.elapsed() > limit {
            return Err(format!("timed out: {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Settings of one run.
struct Plan {
    burst: u32,
    rate: f64,
    backlog: u32,
    burst_site: u32,
    others: Vec<u32>,
}

/// One burst run at `shards`: the other sites' latency over time and the
/// burst's drain.
async fn burst_run(conn: &Connection, plan: &Plan, shards: u16, urls: &[String]) -> Res<Value> {
    let seen = Arc::new(Seen::default());
    let app_urls = receivers(urls.len(), &seen).await?;
    let prefix = format!("fairness-{shards}-{}", std::process::id());
    let t = topology(&prefix, shards);
    t.declare(conn).await?;
    let w = worker(&prefix, shards)?;
    let first = t.work_queues()[0].clone();
    let ch = webhook_worker::broker::channel::open(conn).await?;
    wait_until("the worker consumes", Duration::from_secs(30), || true).await?;
    for _ in 0..300 {
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        if ch
            .queue_declare(first.as_str().into(), passive, FieldTable::default())
            .await?
            .consumer_count()
            > 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The live sites: one event every 1/(rate × sites) s, in turn.
    let live_stop = Arc::new(AtomicBool::new(false));
    let live_sent = Arc::new(AtomicU64::new(0));
    let live = {
        let (conn2, exchange) = (
            Connection::connect(&own_url(), ConnectionProperties::default()).await?,
            t.exchange().to_string(),
        );
        let (stop, sent, others, urls) = (
            live_stop.clone(),
            live_sent.clone(),
            plan.others.clone(),
            app_urls[1..].to_vec(),
        );
        let gap = Duration::from_secs_f64(1.0 / (plan.rate * others.len() as f64));
        tokio::spawn(async move {
            let mut i = 0usize;
            let start = tokio::time::Instant::now();
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep_until(start + gap * i as u32).await;
                let site = others[i % others.len()];
                let body = event(&format!("l{i}"), site, &urls[i % urls.len()]);
                if publish(&conn2, &exchange, std::iter::once((site.to_string(), body)))
                    .await
                    .is_ok()
                {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let burst_t0 = unix_ns();
    let burst_url = app_urls[0].clone();
    let b = plan.burst_site;
    publish(
        conn,
        t.exchange(),
        (0..plan.burst).map(|i| (b.to_string(), event(&format!("b{i}"), b, &burst_url))),
    )
    .await?;
    let published_s = (unix_ns() - burst_t0) as f64 / 1e9;
    wait_until("the burst drained", Duration::from_secs(600), || {
        seen.burst.load(Ordering::Relaxed) >= u64::from(plan.burst)
    })
    .await?;
    let drain_s = (seen.burst_last_ns.load(Ordering::Relaxed) - burst_t0) as f64 / 1e9;
    tokio::time::sleep(Duration::from_secs(2)).await;
    live_stop.store(true, Ordering::Relaxed);
    let _ = live.await;
    let sent = live_sent.load(Ordering::Relaxed);
    let _ = wait_until("the live events", Duration::from_secs(60), || {
        seen.live.lock().unwrap().len() as u64 >= sent
    })
    .await;
    stop(w);
    delete(conn, &t).await;
    let _ = ch.close(200, "".into()).await;
    let live = seen.live.lock().unwrap().clone();
    let burst_end = seen.burst_last_ns.load(Ordering::Relaxed);
    let mut during: Vec<f64> = live
        .iter()
        .filter(|(at, _)| *at >= burst_t0 && *at <= burst_end)
        .map(|(_, ms)| *ms)
        .collect();
    // p99 per 250 ms bucket, from the burst's start.
    let mut series = Vec::new();
    let span = (burst_end.max(burst_t0) - burst_t0) / 250_000_000 + 8;
    for k in 0..span {
        let (lo, hi) = (burst_t0 + k * 250_000_000, burst_t0 + (k + 1) * 250_000_000);
        let mut v: Vec<f64> = live
            .iter()
            .filter(|(at, _)| *at >= lo && *at < hi)
            .map(|(_, ms)| *ms)
            .collect();
        if !v.is_empty() {
            series.push(json!([
                k as f64 * 0.25,
                (percentile(&mut v, 0.99) * 10.0).round() / 10.0
            ]));
        }
    }
    let n_during = during.len();
    Ok(json!({
        "shards": shards,
        "burst_events": plan.burst,
        "burst_published_s": (published_s * 100.0).round() / 100.0,
        "burst_drain_s": (drain_s * 100.0).round() / 100.0,
        "burst_per_s": (f64::from(plan.burst) / drain_s).round(),
        "others_sent": sent,
        "others_received": live.len(),
        "others_during_burst": n_during,
        "others_p50_ms": (percentile(&mut during, 0.50) * 10.0).round() / 10.0,
        "others_p99_ms": (percentile(&mut during, 0.99) * 10.0).round() / 10.0,
        "others_max_ms": (percentile(&mut during, 1.0) * 10.0).round() / 10.0,
        "others_p99_ms_by_250ms": series,
    }))
}

/// A backlog drained by one worker at `shards`: deliveries per second.
async fn throughput_run(conn: &Connection, plan: &Plan, shards: u16) -> Res<Value> {
    let seen = Arc::new(Seen::default());
    let url = receivers(1, &seen).await?.remove(0);
    let prefix = format!("fairness-tp-{shards}-{}", std::process::id());
    let t = topology(&prefix, shards);
    t.declare(conn).await?;
    let leaders = leaders(&t).await;
    let sites = plan.others.len().max(1) as u32;
    let cpu_before_publish = broker_cpu_s();
    let published = Instant::now();
    publish(
        conn,
        t.exchange(),
        (0..plan.backlog).map(|i| {
            let site = 2 + i % (sites * 4);
            (site.to_string(), event(&format!("t{i}"), site, &url))
        }),
    )
    .await?;
    let publish_s = published.elapsed().as_secs_f64();
    let cpu_published = broker_cpu_s();
    let w = worker(&prefix, shards)?;
    wait_until("first delivery", Duration::from_secs(60), || {
        seen.any.load(Ordering::Relaxed) > 0
    })
    .await?;
    let t0 = Instant::now();
    let at0 = seen.any.load(Ordering::Relaxed);
    let cpu_t0 = broker_cpu_s();
    wait_until("the backlog drained", Duration::from_secs(600), || {
        seen.any.load(Ordering::Relaxed) >= u64::from(plan.backlog)
    })
    .await?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu_drained = broker_cpu_s();
    stop(w);
    delete(conn, &t).await;
    let n = u64::from(plan.backlog) - at0;
    let per_node = |a: &[f64], b: &[f64]| -> Vec<f64> {
        a.iter()
            .zip(b)
            .map(|(x, y)| ((y - x) * 100.0).round() / 100.0)
            .collect()
    };
    Ok(json!({
        "shards": shards, "events": plan.backlog,
        "per_s": (n as f64 / secs).round(), "elapsed_s": (secs * 100.0).round() / 100.0,
        "publish_per_s": (f64::from(plan.backlog) / publish_s).round(),
        "broker_cpu_s_publish": per_node(&cpu_before_publish, &cpu_published),
        "broker_cpu_s_drain": per_node(&cpu_t0, &cpu_drained),
        "drain_events": n,
        "leaders": leaders,
    }))
}

/// Each work queue's leader node, read from `RABBITMQ_MANAGEMENT_URL`
/// (none without it).
async fn leaders(t: &Topology) -> Value {
    let Ok(url) = std::env::var("RABBITMQ_MANAGEMENT_URL") else {
        return Value::Null;
    };
    let Ok(amqp) = own_url().parse() else {
        return Value::Null;
    };
    let Ok(m) = webhook_worker::broker::management::Management::new(&url, &amqp) else {
        return Value::Null;
    };
    match m.leaders(&t.work_queues()).await {
        Ok(l) => json!(l.of.iter().map(|(q, n)| json!([q, n])).collect::<Vec<_>>()),
        Err(e) => json!(e.to_string()),
    }
}

/// CPU seconds (user + system) so far of each broker process named in
/// `FAIRNESS_BROKER_PIDS` (comma-separated pids; none: empty).
fn broker_cpu_s() -> Vec<f64> {
    let pids = std::env::var("FAIRNESS_BROKER_PIDS").unwrap_or_default();
    pids.split(',')
        .filter(|p| !p.is_empty())
        .map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // fields after the command's closing parenthesis: utime is the
            // 12th, stime the 13th, in clock ticks (100 a second)
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let f: Vec<f64> = rest
                .split_whitespace()
                .map(|x| x.parse().unwrap_or(0.0))
                .collect();
            (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / 100.0
        })
        .collect()
}

/// The other sites' p99 over time, one line per shard count.
fn svg(runs: &[Value]) -> String {
    let (w, h, pad) = (720.0, 360.0, 48.0);
    let pts = |r: &Value| {
        r["others_p99_ms_by_250ms"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let xmax = runs
        .iter()
        .flat_map(pts)
        .map(|p| p[0].as_f64().unwrap_or(0.0))
        .fold(1.0, f64::max);
    let ymax = runs
        .iter()
        .flat_map(pts)
        .map(|p| p[1].as_f64().unwrap_or(0.0))
        .fold(1.0, f64::max);
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>"#
    );
    out += &format!(
        r#"<text x="{pad}" y="20">other sites' p99 latency (publish → receipt) per 250 ms while one site bursts; x: s from the burst's start (max {xmax:.1} s), y: ms (max {ymax:.0})</text>"#
    );
    out += &format!(
        r#"<line x1="{pad}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{pad}" y1="{pad}" x2="{pad}" y2="{}" stroke="black"/>"#,
        h - pad,
        w - pad,
        h - pad,
        h - pad
    );
    for (i, r) in runs.iter().enumerate() {
        let color = ["#d62728", "#1f77b4", "#2ca02c"][i % 3];
        let line: Vec<String> = pts(r)
            .iter()
            .map(|p| {
                let x = pad + p[0].as_f64().unwrap_or(0.0) / xmax * (w - 2.0 * pad);
                let y = h - pad - p[1].as_f64().unwrap_or(0.0) / ymax * (h - 2.0 * pad);
                format!("{x:.1},{y:.1}")
            })
            .collect();
        out += &format!(
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            line.join(" ")
        );
        out += &format!(
            r#"<text x="{}" y="{}" fill="{color}">N = {}: p99 {} ms, burst drained in {} s</text>"#,
            w - 330.0,
            pad + 16.0 * i as f64,
            r["shards"],
            r["others_p99_ms"],
            r["burst_drain_s"]
        );
    }
    out + "</svg>\n"
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
