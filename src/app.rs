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
    broker::{
        connect::Connector,
        tls::{BROKER_IDENTITY, BrokerTls, RECEIVER_IDENTITY, load_identity, load_roots},
        url::parse_urls,
    },
    config::{BrokerArgs, Config, DeliveryArgs},
    domain::limit::LimitConfig,
    domain::proxy::{ProxyUrl, parse_no_proxy},
    domain::signing::SigningKey,
    error::ConfigError,
    http::{
        client::Deliverer,
        proxy::ProxyConfig,
        settings::{BuildError, ClientIdentity, DeliveryConfig},
    },
    telemetry::{health::Health, metrics::Metrics, server},
    worker::{
        Worker,
        drain::Drain,
        limits::ReceiverLimits,
        receiver_health::{HealthBoard, ReceiverHealth},
    },
};

/// How often the per-receiver limits are brought up to date for the
/// receivers nobody is delivering to, and their gauges refreshed.
const MAINTAIN_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

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
    let connector = broker_connector(&config.broker, name)?;
    let deliverer = deliverer(&config)?;
    let metrics = Metrics::new(&config.topology.retry_schedule.tiers());
    let health = Arc::new(Health::default());
    let limits = Arc::new(ReceiverLimits::new(limit_config(&config), metrics.clone()));
    let receiver_health = Arc::new(ReceiverHealth::default());
    let board = Arc::new(HealthBoard {
        limits: limits.clone(),
        health: receiver_health.clone(),
    });
    let stop_server = CancellationToken::new();
    let (metrics_addr, serve) = server::serve(
        config.telemetry.metrics_addr,
        metrics.clone(),
        health.clone(),
        board,
        stop_server.clone(),
    )
    .await
    .map_err(|source| ConfigError::MetricsAddr {
        addr: config.telemetry.metrics_addr,
        source,
    })?;
    let server = tokio::spawn(serve);
    tokio::spawn(maintain(limits.clone(), stop_server.clone()));
    tracing::info!(
        metrics = %metrics_addr, prefix = %config.names.prefix,
        broker = %connector.urls().redacted(),
        queue_type = config.topology.queue_type.as_str(),
        schedule = %config.topology.retry_schedule, concurrency = config.delivery.concurrency,
        "webhook-worker starting"
    );
    let drain = Drain::new(shutdown, config.delivery.shutdown_grace);
    let worker = Worker::new(
        &config,
        deliverer,
        metrics,
        health.clone(),
        limits,
        receiver_health,
    );
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

/// The connector of the broker settings: the nodes of `AMQP_URL` and the
/// TLS files, read and checked (a bad one is a configuration error). Its
/// connections are named `name` (shown by the management API).
pub fn broker_connector(broker: &BrokerArgs, name: String) -> Result<Connector, Error> {
    let urls = parse_urls(&broker.amqp_url)?;
    let roots = broker
        .amqp_ca_file
        .as_deref()
        .map(|p| load_roots("AMQP_CA_FILE", p))
        .transpose()
        .map_err(ConfigError::from)?;
    let identity = load_identity(
        BROKER_IDENTITY,
        broker.amqp_client_cert.as_deref(),
        broker.amqp_client_key.as_deref(),
    )
    .map_err(ConfigError::from)?;
    let tls = BrokerTls::new(
        roots.map(|r| r.pem),
        identity.map(|i| (i.cert_pem, i.key_pem)),
    );
    if tls.is_configured() && !urls.is_tls() {
        tracing::warn!(
            "AMQP_CA_FILE or AMQP_CLIENT_CERT is set but AMQP_URL is amqp://, not amqps://: not used"
        );
    }
    Ok(Connector::new(urls, tls, name))
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
    let client_identity = load_identity(
        RECEIVER_IDENTITY,
        config.delivery.client_cert.as_deref(),
        config.delivery.client_key.as_deref(),
    )
    .map_err(ConfigError::from)?
    .map(|i| ClientIdentity::from_pem(&i.cert_pem, &i.key_pem));
    let proxy = proxy_config(&config.delivery)?;
    if let Some(p) = &proxy {
        tracing::info!(proxy = %p.url, no_proxy = %p.no_proxy, "deliveries go through the forward proxy");
    }
    Deliverer::new(DeliveryConfig {
        extra_roots: extra_roots.map(|r| r.pem.into_bytes()),
        client_identity,
        timeout: config.delivery.timeout,
        allow_private_targets: config.delivery.allow_private_targets,
        default_key,
        pool_per_host: usize::from(config.delivery.concurrency),
        proxy,
    })
    .map_err(|e| match e {
        BuildError::Http(e) => Error::Http(e),
        BuildError::Relay(e) => Error::Io(e),
    })
}

/// The forward proxy settings, checked: `None` without `WEBHOOK_PROXY_URL`
/// (or with it empty). `WEBHOOK_NO_PROXY` is checked either way. A bad
/// setting is a configuration error that quotes no password.
pub fn proxy_config(delivery: &DeliveryArgs) -> Result<Option<ProxyConfig>, Error> {
    let no_proxy =
        parse_no_proxy(delivery.no_proxy.as_deref().unwrap_or("")).map_err(ConfigError::from)?;
    let raw = delivery.proxy_url.as_ref().map(|p| p.expose().trim());
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let url = ProxyUrl::parse(raw).map_err(ConfigError::from)?;
    Ok(Some(ProxyConfig { url, no_proxy }))
}

/// The per-receiver limit's bounds: the hard ceiling is
/// `WEBHOOK_HOST_CONCURRENCY`, or the process concurrency when it is 0.
fn limit_config(config: &Config) -> LimitConfig {
    let process = u32::from(config.delivery.concurrency);
    let ceiling = match u32::from(config.delivery.host_concurrency) {
        0 => process,
        n => n.min(process),
    };
    LimitConfig::new(LimitConfig::default().initial.min(ceiling), 1, ceiling)
}

/// Keeps the receivers' limits and gauges current until `stop`.
async fn maintain(limits: Arc<ReceiverLimits>, stop: CancellationToken) {
    let mut every = tokio::time::interval(MAINTAIN_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => limits.maintain(),
            () = stop.cancelled() => return,
        }
    }
}
