//! `webhook-worker demo-receiver`: a small webhook receiver for demos and
//! benchmarks. It prints one line per request, can fail a share of requests
//! and add latency, and verifies signatures when given the secret.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
};
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::signals;
use crate::{
    Error,
    domain::{duration::parse_duration, signing::SigningKey},
    error::ConfigError,
};

/// Run a demo receiver that prints what it gets.
#[derive(Debug, Args)]
pub(super) struct DemoReceiver {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Share of requests to fail (0.0-1.0).
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Status of a failed request.
    #[arg(long, default_value_t = 500)]
    fail_status: u16,
    /// Latency added to every request.
    #[arg(long, default_value = "0ms", value_parser = parse_duration)]
    latency: Duration,
    /// Verify signatures with this secret.
    #[arg(long, env = "WEBHOOK_SIGNING_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Do not print a line per request.
    #[arg(long)]
    quiet: bool,
}

impl DemoReceiver {
    pub(super) async fn execute(self) -> Result<(), Error> {
        let secret = self
            .secret
            .as_deref()
            .map(SigningKey::from_secret)
            .transpose()
            .map_err(|source| ConfigError::Secret {
                setting: "--secret",
                source,
            })?;
        let options = ReceiverOptions {
            fail_rate: self.fail_rate,
            fail_status: self.fail_status,
            latency: self.latency,
            secret,
            quiet: self.quiet,
        };
        let cancel = CancellationToken::new();
        signals::listen(cancel.clone())?;
        let (addr, server) = serve(self.listen, options, cancel).await?;
        eprintln!(
            "demo receiver listening on http://{addr}/ (fail rate {}, latency {:?})",
            self.fail_rate, self.latency
        );
        Ok(server.await?)
    }
}

/// How the receiver behaves.
#[derive(Debug, Clone)]
struct ReceiverOptions {
    /// Share of requests answered with `fail_status` (0.0–1.0).
    fail_rate: f64,
    /// Status of a failed request.
    fail_status: u16,
    /// Added before every answer.
    latency: Duration,
    /// When set, `webhook-signature` is checked and reported.
    secret: Option<SigningKey>,
    /// No line per request.
    quiet: bool,
}

struct Shared {
    options: ReceiverOptions,
    received: AtomicU64,
}

/// Serves until `cancel` fires; returns the bound address at once and the
/// serving future.
async fn serve(
    listen: SocketAddr,
    options: ReceiverOptions,
    cancel: CancellationToken,
) -> std::io::Result<(SocketAddr, impl Future<Output = std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        options,
        received: AtomicU64::new(0),
    });
    let app = Router::new().fallback(handle).with_state(shared);
    let server =
        axum::serve(listener, app).with_graceful_shutdown(async move { cancel.cancelled().await });
    Ok((addr, async move { server.await }))
}

async fn handle(
    State(s): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let n = s.received.fetch_add(1, Ordering::Relaxed) + 1;
    let o = &s.options;
    if !o.latency.is_zero() {
        tokio::time::sleep(o.latency).await;
    }
    let status = if o.fail_rate > 0.0 && rand::random::<f64>() < o.fail_rate {
        StatusCode::from_u16(o.fail_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    } else {
        StatusCode::OK
    };
    if !o.quiet {
        let h = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_string()
        };
        let signature = match &o.secret {
            None => "",
            Some(key) => {
                let ts = h("webhook-timestamp").parse().unwrap_or(0);
                if key.verify(&h("webhook-id"), ts, &body, &h("webhook-signature")) {
                    " signature=ok"
                } else {
                    " signature=BAD"
                }
            }
        };
        println!(
            "#{n} {} {} id={} webhook={} event={} attempt={} bytes={}{signature} -> {}",
            uri.path(),
            humantime::format_rfc3339_millis(std::time::SystemTime::now()),
            h("x-comm100-delivery-id"),
            h("x-comm100-webhook-no"),
            h("x-comm100-event"),
            h("x-comm100-attempt"),
            body.len(),
            status.as_u16(),
        );
    }
    status
}
