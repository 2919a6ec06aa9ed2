//! One burst run and one throughput run at a shard count, with the worker process they start.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use lapin::{Connection, ConnectionProperties, options::QueueDeclareOptions, types::FieldTable};
use serde_json::{Value, json};

use super::broker::{amqp_url, broker_cpu_s, delete, leaders, own_url, publish, topology};
use super::receiver::{Seen, event, receivers, unix_ns};
use super::{Plan, Res};

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

fn stop(mut child: std::process::Child) {
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

pub(crate) fn percentile(v: &mut [f64], p: f64) -> f64 {
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

/// One burst run at `shards`: the other sites' latency over time and the
/// burst's drain.
pub(crate) async fn burst_run(
    conn: &Connection,
    plan: &Plan,
    shards: u16,
    urls: &[String],
) -> Res<Value> {
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
pub(crate) async fn throughput_run(conn: &Connection, plan: &Plan, shards: u16) -> Res<Value> {
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
