//! The worker as one value: what `webhook-worker run` starts, and what the
//! tests and the benchmark start the same way (like mini-redis's
//! `server::run(listener, shutdown)`).
//!
//! [`start`] validates what the command line could not (the broker URLs,
//! the TLS files, the signing secret), builds the one HTTP client, binds `METRICS_ADDR`
//! (failing early if it is taken) and spawns the worker. The returned
//! [`Running`] ends when `shutdown` has been cancelled and the drain is
//! over, or when the worker meets a fatal error.

use std::{net::SocketAddr, sync::Arc};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    Error,
    config::{Config, tls::load_roots},
    domain::signing::SigningKey,
    error::ConfigError,
    http::client::{Deliverer, DeliveryConfig},
    telemetry::{health::Health, metrics::Metrics, server},
    worker::{Worker, drain::Drain},
};

/// A started worker.
#[derive(Debug)]
pub struct Running {
    metrics_addr: SocketAddr,
    health: Arc<Health>,
    worker: JoinHandle<Result<(), Error>>,
    server: JoinHandle<std::io::Result<()>>,
    stop_server: CancellationToken,
}

/// Starts the metrics server and the worker; the worker runs until
/// `shutdown` is cancelled (then drains) or a fatal error.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running, Error> {
    let name = format!(
        "webhook-worker {} prefix {} pid {}",
        env!("CARGO_PKG_VERSION"),
        config.names.prefix,
        std::process::id()
    );
    let connector = config.broker.connector(name)?;
    let deliverer = deliverer(&config)?;
    let metrics = Metrics::new(&config.topology.retry_schedule.tiers());
    let health = Arc::new(Health::default());
    let stop_server = CancellationToken::new();
    let (metrics_addr, serve) = server::serve(
        config.telemetry.metrics_addr,
        metrics.clone(),
        health.clone(),
        stop_server.clone(),
    )
    .await?;
    let server = tokio::spawn(serve);
    tracing::info!(
        metrics = %metrics_addr, prefix = %config.names.prefix,
        broker = %connector.urls().redacted(),
        queue_type = config.topology.queue_type.as_str(),
        schedule = %config.topology.retry_schedule, concurrency = config.delivery.concurrency,
        "webhook-worker starting"
    );
    let drain = Drain::new(shutdown, config.delivery.shutdown_grace);
    let worker = Worker::new(&config, deliverer, metrics, health.clone());
    let worker = tokio::spawn(worker.run(connector, drain));
    Ok(Running {
        metrics_addr,
        health,
        worker,
        server,
        stop_server,
    })
}

impl Running {
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// Whether the worker is connected and consuming.
    pub fn is_ready(&self) -> bool {
        self.health.is_ready()
    }

    /// Waits until the worker has ended, then stops the metrics server.
    pub async fn wait(self) -> Result<(), Error> {
        let result = match self.worker.await {
            Ok(result) => result,
            Err(join) => Err(Error::Io(std::io::Error::other(join))),
        };
        self.stop_server.cancel();
        let _ = self.server.await;
        result
    }
}

/// Builds the one HTTP client of the process from the configuration.
fn deliverer(config: &Config) -> Result<Deliverer, Error> {
    let default_key = config
        .delivery
        .signing_secret
        .as_deref()
        .map(SigningKey::from_secret)
        .transpose()
        .map_err(|source| ConfigError::Secret {
            setting: "WEBHOOK_SIGNING_SECRET",
            source,
        })?;
    let extra_roots = config
        .delivery
        .ca_file
        .as_deref()
        .map(|p| load_roots("WEBHOOK_CA_FILE", p))
        .transpose()
        .map_err(ConfigError::from)?;
    Ok(Deliverer::new(DeliveryConfig {
        extra_roots: extra_roots.map(|r| r.pem.into_bytes()),
        timeout: config.delivery.timeout,
        allow_private_targets: config.delivery.allow_private_targets,
        default_key,
        pool_per_host: usize::from(config.delivery.concurrency),
    })?)
}
