//! The HTTP server on `METRICS_ADDR`: `/metrics`, `/healthz`, `/readyz`,
//! `/receivers`.

use std::{net::SocketAddr, sync::Arc};

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use tokio_util::sync::CancellationToken;

use super::{health::Health, metrics::Metrics, receivers::ReceiverBoard};

#[derive(Clone)]
struct ServerState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    receivers: Arc<dyn ReceiverBoard>,
}

/// Binds `METRICS_ADDR` (failing early if it is taken) and returns the
/// bound address and the server future, which runs until `cancel` fires.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    receivers: Arc<dyn ReceiverBoard>,
    cancel: CancellationToken,
) -> std::io::Result<(SocketAddr, impl Future<Output = std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/receivers", get(list_receivers))
        .with_state(ServerState {
            metrics,
            health,
            receivers,
        });
    let server =
        axum::serve(listener, app).with_graceful_shutdown(async move { cancel.cancelled().await });
    Ok((bound, async move { server.await }))
}

async fn render_metrics(State(s): State<ServerState>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        s.metrics.render(),
    )
}

async fn readyz(State(s): State<ServerState>) -> impl IntoResponse {
    if s.health.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not consuming\n")
    }
}

async fn list_receivers(State(s): State<ServerState>) -> impl IntoResponse {
    Json(s.receivers.page())
}
