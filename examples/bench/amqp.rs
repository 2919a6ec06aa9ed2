//! The harness's own broker connection: declaring each scenario's topology,
//! bulk publishing with pipelined confirms, and deleting it all afterwards.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures_lite::StreamExt;
use lapin::{
    Channel, Connection, ConnectionProperties, PublisherConfirm,
    options::{
        BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
        QueueDeclareOptions, QueueDeleteOptions,
    },
    types::FieldTable,
};

use crate::{
    Res, amqp_url,
    lib_api::{QueueType, Topology, qt_name},
    payloads::{envelope, props},
};

pub(crate) struct Broker {
    /// The harness's connection; reopened if the broker dropped it (RabbitMQ
    /// 3.10's quorum segment writer can crash while a just-drained quorum
    /// queue is deleted, which closes every connection).
    conn: Mutex<Arc<Connection>>,
    /// The publishing channel (confirm mode); reopened if the broker closed it.
    channel: Mutex<Channel>,
}

impl Broker {
    pub(crate) async fn connect() -> Res<Self> {
        let conn = Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
        let channel = webhook_worker::broker::channel::open(&conn).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self {
            conn: Mutex::new(Arc::new(conn)),
            channel: Mutex::new(channel),
        })
    }

    /// The connection, reopened (with a note) if the broker closed it.
    pub(crate) async fn conn(&self) -> Res<Arc<Connection>> {
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

    /// Declares the worker's own topology for a prefix (defaults but the
    /// queue type and, when given, the retry schedule), so the worker's
    /// declaration at start is a no-op.
    pub(crate) async fn declare(
        &self,
        prefix: &str,
        qt: QueueType,
        schedule: Option<&str>,
    ) -> Res<Topology> {
        let t = Topology::new(prefix, qt, schedule);
        t.declare(&*self.conn().await?).await?;
        Ok(t)
    }

    /// The topology `<bin> declare` declares for a prefix (the names as
    /// this library knows them): the binary declares its own arguments.
    pub(crate) async fn declare_by(
        &self,
        bin: &std::path::Path,
        prefix: &str,
        qt: QueueType,
        schedule: Option<&str>,
    ) -> Res<Topology> {
        let mut cmd = std::process::Command::new(bin);
        cmd.args(["declare", "--prefix", prefix, "--queue-type", qt_name(qt)]);
        if let Some(s) = schedule {
            cmd.args(["--retry-schedule", s]);
        }
        let out = cmd
            .env("AMQP_URL", amqp_url())
            .env_remove("RUST_LOG")
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "{} declare: {}",
                bin.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        Ok(Topology::new(prefix, qt, schedule))
    }

    /// Publishes `n` envelopes to the fanout exchange with pipelined
    /// confirms (at most `WINDOW` outstanding). Returns messages/s.
    pub(crate) async fn publish_bulk(
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
    pub(crate) async fn channel(&self) -> Res<Channel> {
        let current = self.channel.lock().unwrap().clone();
        if current.status().connected() {
            return Ok(current);
        }
        eprintln!(
            "bench: note: the broker closed the harness's channel ({:?}); opening a new one",
            current.status()
        );
        let channel = webhook_worker::broker::channel::open(&*self.conn().await?).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        *self.channel.lock().unwrap() = channel.clone();
        Ok(channel)
    }

    pub(crate) async fn cleanup(&self, t: &Topology) {
        let Ok(conn) = self.conn().await else {
            return;
        };
        let Ok(ch) = webhook_worker::broker::channel::open(&conn).await else {
            return;
        };
        let mut queues = vec![
            t.deliveries().to_string(),
            t.dead().to_string(),
            t.log().to_string(),
        ];
        queues.extend(t.retry_queues());
        for q in queues {
            let _ = ch
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        for exchange in [t.exchange(), t.outcomes()] {
            let _ = ch
                .exchange_delete(exchange.into(), Default::default())
                .await;
        }
        let _ = ch.close(200, "".into()).await;
    }

    /// Messages ready in `queue` (passive declare), if it exists.
    pub(crate) async fn ready(&self, queue: &str) -> Option<u64> {
        let ch = webhook_worker::broker::channel::open(&*self.conn().await.ok()?)
            .await
            .ok()?;
        let opts = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let q = ch
            .queue_declare(queue.into(), opts, FieldTable::default())
            .await
            .ok();
        let _ = ch.close(200, "".into()).await;
        Some(q?.message_count().into())
    }

    /// Reads (and removes) every message of the scenario's queues, once the
    /// process under test is gone: per queue, the event indices found
    /// (from the envelope's `id`, `<tag>-<index>`). The work queue is read
    /// last, so a message moving from a retry tier back to it meanwhile is
    /// still seen.
    pub(crate) async fn take_all(&self, t: &Topology) -> Res<Vec<(String, Vec<usize>)>> {
        let mut queues = vec![t.dead().to_string()];
        queues.extend(t.retry_queues());
        queues.push(t.deliveries().to_string());
        let mut out = Vec::new();
        for q in queues {
            let expect = self.ready(&q).await.unwrap_or(0);
            let mut ids = Vec::with_capacity(expect as usize);
            if expect > 0 {
                let ch = webhook_worker::broker::channel::open(&*self.conn().await?).await?;
                ch.basic_qos(2000, BasicQosOptions::default()).await?;
                let mut consumer = ch
                    .basic_consume(
                        q.as_str().into(),
                        "bench-take".into(),
                        BasicConsumeOptions {
                            no_ack: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    )
                    .await?;
                while (ids.len() as u64) < expect {
                    let next = tokio::time::timeout(Duration::from_secs(2), consumer.next()).await;
                    let Ok(Some(Ok(d))) = next else { break };
                    if let Some(i) = envelope_index(&d.data) {
                        ids.push(i);
                    }
                }
                let _ = ch.close(200, "".into()).await;
            }
            out.push((q, ids));
        }
        Ok(out)
    }
}

/// The index of an envelope's event: its `id` is `<tag>-<8 digits>`.
fn envelope_index(body: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(body).ok()?;
    let at = text.find(r#""id":""#)? + 6;
    let id = &text[at..at + text[at..].find('"')?];
    id.rsplit('-').next()?.parse().ok()
}
