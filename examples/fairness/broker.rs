//! The broker side: the topology, publishing, probing the sites' shards, clean-up, leaders, CPU.

use std::time::Duration;

use lapin::{
    BasicProperties, Connection,
    options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueuePurgeOptions},
    types::FieldTable,
};
use serde_json::{Value, json};
use webhook_worker::broker::topology::{QueueType, Topology};

use super::Res;

pub(crate) fn topology(prefix: &str, shards: u16) -> Topology {
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
pub(crate) async fn publish(
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
pub(crate) async fn choose_sites(conn: &Connection, shards: u16, n: usize) -> Res<(u32, Vec<u32>)> {
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

pub(crate) async fn delete(conn: &Connection, t: &Topology) {
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

/// The node this example publishes and probes through: the first of
/// `AMQP_URL`'s list (the worker gets the whole list).
pub(crate) fn own_url() -> String {
    amqp_url().split(',').next().unwrap_or_default().to_string()
}

pub(crate) fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Each work queue's leader node, read from `RABBITMQ_MANAGEMENT_URL`
/// (none without it).
pub(crate) async fn leaders(t: &Topology) -> Value {
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
pub(crate) fn broker_cpu_s() -> Vec<f64> {
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
