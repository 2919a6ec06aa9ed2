//! `webhook-worker publish`: a producer for demos, smoke tests and the
//! compose stack. Publishes events from a file, stdin, or generated samples
//! of every catalog event, to the fanout exchange `P`, through the one
//! [`Publisher`] (confirmed, many in flight). The routing key is the site id (`--site`, else the
//! event's own `site_id`), as producers of a sharded topology must set it.

use std::{
    io::BufRead,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use clap::Args;
use lapin::{
    BasicProperties, Connection, ExchangeKind, options::ExchangeDeclareOptions, types::FieldTable,
};
use tokio::task::JoinSet;

use super::PrefixTopology;
use crate::{
    Error,
    broker::{
        publisher::{PublishError, Publisher},
        shards,
        topology::Topology,
    },
    domain::catalog::CATALOG,
};

/// Most publishes awaiting their confirms at a time (without `--rate`).
const IN_FLIGHT: usize = 1024;

/// Publish events: from a file of JSON lines, stdin (`--file -`), or
/// generated samples of every catalog event.
#[derive(Debug, Args)]
pub(super) struct Publish {
    /// JSON lines to publish as they are (`-` for stdin).
    #[arg(long, conflicts_with = "url")]
    file: Option<PathBuf>,
    /// Receiver URL of the generated samples.
    #[arg(long, default_value = "http://127.0.0.1:8080/hook")]
    url: String,
    /// How many events (samples: default one per catalog event; file:
    /// default all lines).
    #[arg(long)]
    count: Option<u64>,
    /// Events per second (0 = as fast as confirms allow).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Site id: the routing key of every event (the shard key of a
    /// sharded topology), and the generated samples' `site_id`. Without
    /// it, each event's own `site_id` is the routing key.
    #[arg(long)]
    site: Option<u64>,
    #[command(flatten)]
    target: PrefixTopology,
}

impl Publish {
    pub(super) async fn execute(self) -> Result<(), Error> {
        let (conn, topology) = self.target.connect("publish").await?;
        let source = match self.file {
            Some(path) => Source::Lines(path),
            None => Source::Samples { url: self.url },
        };
        let pace = Pace {
            count: self.count,
            rate: self.rate,
        };
        let n = publish(&conn, &topology, source, pace, self.site).await?;
        let _ = conn.close(200, "published".into()).await;
        println!(
            "published {n} event(s) to exchange '{}'",
            self.target.prefix()
        );
        Ok(())
    }
}

/// Where the events come from.
#[derive(Debug, Clone)]
enum Source {
    /// JSON lines from a file (`-` for stdin), published as they are.
    Lines(PathBuf),
    /// Generated samples of every catalog event, in turn, to this URL.
    Samples {
        /// Receiver URL of every sample.
        url: String,
    },
}

/// Sample `data` for a webhook number, shaped like the seed's objects.
fn sample_data(webhook: u16, n: u64) -> String {
    let visitor = format!(
        r#""visitor":{{"id":{n},"name":"allon","email":"allon@comm100.com","city":"Vancouver","country":"Canada","browser":"Google Chrome 29.0.1547.76","department":"livechat","first_visit_time":"/Date(1358486842300)/","visits":5,"page_views":3,"custom_fields":[{{"field_id":5000001,"name":"order_id","value":"1780064"}}]}}"#
    );
    match webhook {
        108 => format!(
            r#"{{{visitor},"chat":{{"id":{n},"department":"livechat","start_time":"/Date(1358486842300)/","end_time":"/Date(1358486942300)/","waiting_time":"10s","rating":5}}}}"#
        ),
        110 | 301 => r#"{}"#.to_string(),
        201 => format!(
            r#"{{{visitor},"offline_message":{{"id":{n},"subject":"Order question","content":"Where is my order?","email":"allon@comm100.com","time":"/Date(1358486842300)/"}}}}"#
        ),
        _ => format!("{{{visitor}}}"),
    }
}

/// How many events, how fast.
#[derive(Debug, Clone, Copy)]
struct Pace {
    count: Option<u64>,
    rate: f64,
}

/// The routing key of an event: `site`, else the body's `site_id`, else
/// empty.
fn routing_key(site: Option<u64>, body: &[u8]) -> String {
    site.map_or_else(|| shards::site_key(body), |site| site.to_string())
}

/// One generated event: catalog entries in turn, a fresh id, `created_at`
/// now.
fn sample_event(n: u64, url: &str, run: &str, site: u64) -> Vec<u8> {
    let (webhook, _) = CATALOG[(n % CATALOG.len() as u64) as usize];
    let created = humantime::format_rfc3339_millis(std::time::SystemTime::now());
    format!(
        r#"{{"id":"{run}-{n}","webhook":{webhook},"url":{url},"site_id":{site},"created_at":"{created}","data":{}}}"#,
        sample_data(webhook, n),
        url = serde_json::Value::from(url),
    )
    .into_bytes()
}

/// Publishes `count` events (all lines of the source when `None`) at up
/// to `rate` per second (0 = unlimited). Returns how many were confirmed
/// (a publish the broker nacked is not counted).
async fn publish(
    conn: &Arc<Connection>,
    topology: &Topology,
    source: Source,
    pace: Pace,
    site: Option<u64>,
) -> Result<u64, Error> {
    let Pace { count, rate } = pace;
    ensure_topology(conn, topology).await?;
    let publisher = Publisher::open(conn).await?;
    let run = format!(
        "demo-{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
    );

    let mut lines: Box<dyn Iterator<Item = std::io::Result<String>>> = match &source {
        Source::Lines(path) if path.as_os_str() == "-" => Box::new(std::io::stdin().lock().lines()),
        Source::Lines(path) => {
            Box::new(std::io::BufReader::new(std::fs::File::open(path)?).lines())
        }
        Source::Samples { .. } => Box::new(std::iter::empty()),
    };
    let limit = match (&source, count) {
        (_, Some(c)) => c,
        (Source::Lines(_), None) => u64::MAX,
        (Source::Samples { .. }, None) => CATALOG.len() as u64,
    };

    let started = Instant::now();
    let in_flight = if rate > 0.0 { 1 } else { IN_FLIGHT };
    let exchange: Arc<str> = topology.exchange().into();
    let mut pending = JoinSet::new();
    let mut sent = 0u64;
    let mut confirmed = 0u64;
    while sent < limit {
        let body = match &source {
            Source::Samples { url } => sample_event(sent, url, &run, site.unwrap_or(10000)),
            Source::Lines(_) => match lines.next() {
                Some(line) => {
                    let line = line?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    line.into_bytes()
                }
                None => break,
            },
        };
        if rate > 0.0 {
            let due = started + Duration::from_secs_f64(sent as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let (publisher, exchange) = (publisher.clone(), exchange.clone());
        pending.spawn(async move {
            let key = routing_key(site, &body);
            let props = BasicProperties::default().with_content_type("application/json".into());
            publisher.publish_event(&exchange, &key, &body, props).await
        });
        sent += 1;
        while pending.len() >= in_flight {
            confirmed += settled(pending.join_next().await)?;
        }
    }
    while !pending.is_empty() {
        confirmed += settled(pending.join_next().await)?;
    }
    publisher.close().await;
    Ok(confirmed)
}

/// Whether a finished publish counts as confirmed: 1 for the broker's
/// `ack`, 0 for its `nack`, an error when the channel or connection failed.
fn settled(
    done: Option<Result<Result<(), PublishError>, tokio::task::JoinError>>,
) -> Result<u64, Error> {
    match done {
        None | Some(Ok(Err(PublishError::Nacked(_)))) => Ok(0),
        Some(Ok(Ok(()))) => Ok(1),
        Some(Ok(Err(e))) => Err(e.into()),
        Some(Err(panicked)) => Err(std::io::Error::other(panicked).into()),
    }
}

/// Declares the topology only when the exchange does not exist yet, so a
/// first `publish` before any worker ran loses nothing, while a publisher
/// started with other retry settings than the workers never conflicts.
async fn ensure_topology(conn: &Connection, topology: &Topology) -> Result<(), Error> {
    let probe = crate::broker::channel::open(conn).await?;
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let exists = probe
        .exchange_declare(
            topology.exchange().into(),
            ExchangeKind::Fanout,
            passive,
            FieldTable::default(),
        )
        .await
        .is_ok();
    if exists {
        let _ = probe.close(200, "exists".into()).await;
    } else {
        topology.declare(conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_is_a_valid_event() {
        for n in 0..CATALOG.len() as u64 * 2 {
            let body = sample_event(n, "https://example.com/hook", "t", 7);
            let env = crate::domain::envelope::parse(&body, 1 << 20)
                .unwrap_or_else(|e| panic!("sample {n}: {e}"));
            assert_eq!(env.webhook, CATALOG[(n % 12) as usize].0);
            assert!(env.created_at_ms.is_some());
            assert_eq!(routing_key(None, &body), "7");
        }
    }

    #[test]
    fn the_routing_key_is_the_site() {
        assert_eq!(routing_key(Some(42), br#"{"site_id":7}"#), "42");
        assert_eq!(routing_key(None, br#"{"site_id":"abc"}"#), "abc");
        assert_eq!(routing_key(None, br#"{"id":"x"}"#), "");
        assert_eq!(routing_key(None, b"not json"), "");
    }
}
