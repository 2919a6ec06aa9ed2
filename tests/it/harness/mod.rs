//! The one test harness: the real local RabbitMQ, real HTTP receivers on
//! loopback, and the worker from the library crate ([`Harness`] → [`Rig`])
//! or as a process of the binary ([`WorkerProcess`]). Every test gets its
//! own prefix and deletes what it declared, also when it panics.
//!
//! | module | what |
//! |---|---|
//! | `rig` | [`Harness`]: the builder of one in-process test setup |
//! | `broker` | [`Broker`]: the test's own connection (publish, inspect, clean up) |
//! | `receiver` | [`Receiver`]: a recording loopback HTTP server |
//! | `worker` | [`RunningWorker`]: `app::start` in this process |
//! | `process` | [`WorkerProcess`]: `webhook-worker run` as a child process; [`cli`]: a one-shot command |
//! | `management` | the RabbitMQ management API |
//! | `proxy` | [`ForwardProxy`]: tinyproxy or microsocks on loopback |
//! | `hang_mix` | [`hanging_and_healthy`], [`publish_hang_mix`]: a hanging receiver beside a healthy one |
//! | `tls` | [`Pki`] (certificates made by the test), [`TlsReceiver`], [`TempDir`] |

mod broker;
mod hang_mix;
mod management;
mod process;
mod proxy;
mod receiver;
mod rig;
mod tls;
mod worker;

use std::time::{Duration, Instant};

use webhook_worker::{broker::topology::QueueType, config::Config};

pub(crate) use broker::*;
pub(crate) use hang_mix::*;
pub(crate) use management::*;
pub(crate) use process::*;
pub(crate) use proxy::*;
pub(crate) use receiver::*;
pub(crate) use rig::*;
pub(crate) use tls::*;
pub(crate) use worker::*;

/// The broker under test (`AMQP_URL`, default the machine's local RabbitMQ;
/// `scripts/brokers.sh env VERSION` names the others).
pub(crate) fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A prefix no other test uses.
pub(crate) fn unique_prefix(name: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "t-{name}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A test configuration: fast tiers, private targets allowed, metrics on
/// an ephemeral port.
pub(crate) fn test_config(prefix: &str) -> Config {
    let mut c = Config::defaults();
    c.broker.amqp_url = amqp_url();
    c.names.prefix = prefix.to_string();
    c.topology.retry_schedule = "200ms*2,500ms".parse().unwrap();
    c.retry.max_age = Duration::from_secs(60);
    c.delivery.allow_private_targets = true;
    c.delivery.timeout = Duration::from_secs(2);
    c.delivery.shutdown_grace = Duration::from_secs(5);
    c.topology.dead_ttl = Duration::from_secs(600);
    c.telemetry.metrics_addr = "127.0.0.1:0".parse().unwrap();
    c.delivery.concurrency = 64;
    c
}

/// Waits until `check` returns `Some`, polling, or panics at the deadline.
pub(crate) async fn wait_for<T>(
    what: &str,
    deadline: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A valid event message for `webhook` to `url`, with `data` as given
/// (raw JSON text, inserted byte for byte).
pub(crate) fn event(id: &str, webhook: u16, url: &str, data: &str) -> Vec<u8> {
    format!(r#"{{"id":"{id}","webhook":{webhook},"url":"{url}","data":{data}}}"#).into_bytes()
}

/// An event with extra top-level JSON fields (`"k":v,...`).
pub(crate) fn event_with(id: &str, webhook: u16, url: &str, data: &str, extra: &str) -> Vec<u8> {
    format!(r#"{{"id":"{id}","webhook":{webhook},"url":"{url}","data":{data},{extra}}}"#)
        .into_bytes()
}

/// Classic queues instead of quorum ones (`.config(classic)`).
pub(crate) fn classic(c: &mut Config) {
    c.topology.queue_type = QueueType::Classic;
}
