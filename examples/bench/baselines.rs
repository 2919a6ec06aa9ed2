//! The baselines (`bench raw-consume`, `raw-http`, `naive-worker`): each runs
//! as a subprocess of its own so its CPU time and peak RSS are its alone.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_lite::StreamExt;
use lapin::{
    Connection, ConnectionProperties, Consumer,
    options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions},
    types::FieldTable,
};
use serde_json::{Value, json};

use crate::{
    NaiveWorker, RawConsume, RawHttp, Res, amqp_url,
    payloads::data_json,
    sys::{cpu_secs, vm_bytes},
};

/// The report line every self-measuring baseline prints on stdout.
fn report_line(n: u64, elapsed: f64, cpu: f64, extra: Value) {
    let hwm = vm_bytes(std::process::id(), "VmHWM").unwrap_or(0);
    let mut v = json!({ "n": n, "elapsed_s": elapsed, "cpu_s": cpu, "hwm_bytes": hwm });
    if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
        m.extend(e);
    }
    println!("{v}");
}

/// A consumer of `queue` with `prefetch`, on a connection of its own (kept
/// alive by the caller).
async fn consume(queue: &str, prefetch: u16) -> Res<(Connection, Consumer)> {
    let conn = Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
    let ch = webhook_worker::broker::channel::open(&conn).await?;
    ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
    let consumer = ch
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((conn, consumer))
}

/// Baseline 1: consume `n` messages and ack each (acks pipelined: each is
/// its own task, none awaited one by one before the next delivery).
pub(crate) async fn raw_consume(a: RawConsume) -> Res<()> {
    let (queue, n, prefetch) = (a.queue, a.n, a.prefetch);
    let (conn, mut consumer) = consume(&queue, prefetch).await?;
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

/// The HTTP client the way the worker builds it (src/http/client.rs).
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
pub(crate) async fn raw_http(a: RawHttp) -> Res<()> {
    let url: reqwest::Url = a.url.parse()?;
    let (n, conc) = (a.n, a.concurrency);
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
pub(crate) async fn naive_worker(a: NaiveWorker) -> Res<()> {
    let (queue, conc) = (a.queue, a.concurrency);
    let (_conn, mut consumer) = consume(&queue, conc).await?;
    let client = http_client(conc.into());
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
