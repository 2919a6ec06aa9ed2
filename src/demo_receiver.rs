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
use tokio_util::sync::CancellationToken;

use crate::signing::SigningKey;

/// How the receiver behaves.
#[derive(Debug, Clone)]
pub struct ReceiverOptions {
    /// Share of requests answered with `fail_status` (0.0–1.0).
    pub fail_rate: f64,
    /// Status of a failed request.
    pub fail_status: u16,
    /// Added before every answer.
    pub latency: Duration,
    /// When set, `webhook-signature` is checked and reported.
    pub secret: Option<SigningKey>,
    /// No line per request.
    pub quiet: bool,
}

struct Shared {
    options: ReceiverOptions,
    received: AtomicU64,
}

/// Serves until `cancel` fires; returns the bound address at once and the
/// serving future.
pub async fn serve(
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
                if key.sign(&h("webhook-id"), ts, &body) == h("webhook-signature") {
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
