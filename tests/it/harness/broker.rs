//! The test's own broker connection: publishing as a producer would,
//! inspecting queues, and deleting the test's topology afterwards (also
//! when the test panicked).

use std::time::{Duration, Instant};

use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties,
    options::{
        BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions,
        QueueDeleteOptions,
    },
    types::{AMQPValue, FieldTable},
};
use webhook_worker::{broker::topology::Topology, config::Config};

use super::{amqp_url, wait_for};

/// A connection and a confirm-mode channel for the test's own publishing
/// and inspection, plus the prefix to clean up.
pub(crate) struct Broker {
    pub(crate) conn: std::sync::Arc<Connection>,
    pub(crate) channel: Channel,
    pub(crate) topology: Topology,
    pub(crate) prefix: String,
    /// The node connected to, for the cleanup.
    url: String,
    cleaned: bool,
}

impl Broker {
    /// Connects and declares the topology of `config` (as the worker would).
    pub(crate) async fn new(config: &Config) -> Self {
        Self::on(&amqp_url(), config).await
    }

    /// The same on the broker (node) at `url`.
    pub(crate) async fn on(url: &str, config: &Config) -> Self {
        let conn = Connection::connect(url, ConnectionProperties::default())
            .await
            .expect("broker up");
        let channel = conn.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        let topology = config.topology();
        topology.declare(&conn).await.expect("declare");
        Self {
            conn: std::sync::Arc::new(conn),
            channel,
            topology,
            prefix: config.names.prefix.clone(),
            url: url.to_string(),
            cleaned: false,
        }
    }

    /// Publishes a body to the fanout exchange, as a producer would.
    pub(crate) async fn publish(&self, body: &[u8]) {
        self.publish_with(body, BasicProperties::default()).await;
    }

    /// Publishes with properties (e.g. headers), confirmed.
    pub(crate) async fn publish_with(&self, body: &[u8], props: BasicProperties) {
        self.publish_keyed("", body, props).await;
    }

    /// Publishes with a routing key (the site: a sharded topology's shard
    /// key), confirmed.
    pub(crate) async fn publish_keyed(&self, key: &str, body: &[u8], props: BasicProperties) {
        let confirm = self
            .channel
            .basic_publish(
                self.prefix.as_str().into(),
                key.into(),
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

    /// Publishes `body` with `headers` straight into `P.dead`, as a parked
    /// message (the headers as `with_retry_headers` writes them).
    pub(crate) async fn park(&self, body: &[u8], headers: FieldTable) {
        let dead = self.topology.dead().to_string();
        self.publish_to(
            &dead,
            body,
            BasicProperties::default().with_headers(headers),
        )
        .await;
    }

    /// Publishes straight into `queue` through the default exchange,
    /// confirmed: how a test fabricates a parked message in `P.dead`.
    pub(crate) async fn publish_to(&self, queue: &str, body: &[u8], props: BasicProperties) {
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
    pub(crate) async fn peek(&self, queue: &str) -> Vec<lapin::message::Delivery> {
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
            let requeue = BasicNackOptions {
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
    pub(crate) async fn publish_many(&self, bodies: impl IntoIterator<Item = Vec<u8>>) {
        self.publish_many_keyed(bodies.into_iter().map(|b| (String::new(), b)))
            .await;
    }

    /// Publishes many (routing key, body) pairs, pipelining confirms.
    pub(crate) async fn publish_many_keyed(
        &self,
        messages: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) {
        let mut pending = Vec::new();
        for (key, body) in messages {
            pending.push(
                self.channel
                    .basic_publish(
                        self.prefix.as_str().into(),
                        key.as_str().into(),
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
    pub(crate) async fn drain(&self, queue: &str) -> Vec<lapin::message::Delivery> {
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
    pub(crate) async fn depth(&self, queue: &str) -> u32 {
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

    /// Deletes the retry tier that holds `delay` under the running worker
    /// (as someone might): its retry copies then come back unroutable.
    pub(crate) async fn delete_retry_tier(&self, delay: Duration) {
        let tier = self
            .topology
            .retry_queue(self.topology.tiers().of(delay).unwrap());
        self.channel
            .queue_delete(tier.as_str().into(), Default::default())
            .await
            .unwrap();
    }

    /// Waits until `P.dead` holds `n` messages, then takes them all.
    pub(crate) async fn dead_messages(
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

    /// A queue of the test's own (exclusive: gone with the connection)
    /// bound to `P.outcomes` with `key`, as a platform would bind one.
    pub(crate) async fn outcomes_tap(&self, key: &str) -> String {
        let q = self
            .channel
            .queue_declare(
                "".into(),
                lapin::options::QueueDeclareOptions {
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        self.channel
            .queue_bind(
                q.name().clone(),
                self.topology.outcomes().into(),
                key.into(),
                Default::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        q.name().to_string()
    }

    /// Takes what a tap holds: each message's routing key and body.
    pub(crate) async fn tapped(&self, tap: &str) -> Vec<(String, Vec<u8>)> {
        self.drain(tap)
            .await
            .into_iter()
            .map(|d| (d.routing_key.to_string(), d.data))
            .collect()
    }

    /// Deletes the exchange and every queue of the prefix.
    pub(crate) async fn cleanup(mut self) {
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
    let mut queues = topology.work_queues();
    queues.push(topology.deliveries().to_string());
    queues.push(topology.dead().to_string());
    queues.push(topology.log().to_string());
    for (t, _) in topology.tiers().iter() {
        let tier = topology.retry_queue(t);
        // `reshard`'s holding queue, should a test leave one.
        queues.push(format!("{tier}.hold"));
        queues.push(tier);
    }
    let mut exchanges = vec![prefix.to_string(), topology.outcomes().to_string()];
    if topology.is_sharded() {
        exchanges.push(webhook_worker::broker::shards::hash_exchange(topology));
        exchanges.extend(
            topology
                .tiers()
                .iter()
                .map(|(t, _)| topology.retry_queue(t)),
        );
    }
    delete_named(conn, &queues, &exchanges).await;
}

/// Deletes these queues and exchanges, each on a channel of its own: a
/// refusal (one that is not there, on a broker that says so) closes only
/// its channel, never the rest of the cleanup.
pub(crate) async fn delete_named(conn: &Connection, queues: &[String], exchanges: &[String]) {
    for q in queues {
        if let Ok(ch) = conn.create_channel().await {
            let _ = ch
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
            let _ = ch.close(200, "cleanup".into()).await;
        }
    }
    for e in exchanges {
        if let Ok(ch) = conn.create_channel().await {
            let _ = ch
                .exchange_delete(e.as_str().into(), Default::default())
                .await;
            let _ = ch.close(200, "cleanup".into()).await;
        }
    }
}

/// A header of a message as text or integer, for assertions.
/// Why a parked message was parked (the worker's reason header or the
/// broker's `x-death`), as `dead list` shows it.
pub(crate) fn parked_reason(d: &lapin::message::Delivery) -> String {
    webhook_worker::broker::dead_letters::parked_reason(d.properties.headers().as_ref())
}

pub(crate) fn header(d: &lapin::message::Delivery, name: &str) -> Option<AMQPValue> {
    d.properties.headers().as_ref()?.inner().get(name).cloned()
}

pub(crate) fn header_str(d: &lapin::message::Delivery, name: &str) -> Option<String> {
    match header(d, name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        other => panic!("header {name} is not a string: {other:?}"),
    }
}

pub(crate) fn header_int(d: &lapin::message::Delivery, name: &str) -> Option<i64> {
    match header(d, name)? {
        AMQPValue::LongLongInt(n) => Some(n),
        AMQPValue::LongInt(n) => Some(n.into()),
        other => panic!("header {name} is not an integer: {other:?}"),
    }
}
