//! The HTTP receivers the worker delivers to, what they saw, and the events sent to them.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, routing::post};
use serde_json::Value;

use super::Res;

pub(crate) fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// What the receivers saw: live events' (receipt ns, latency ms), and the
/// burst's count and last receipt.
#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) live: Mutex<Vec<(u64, f64)>>,
    pub(crate) burst: AtomicU64,
    pub(crate) burst_last_ns: AtomicU64,
    pub(crate) any: AtomicU64,
}

async fn receive(State(seen): State<Arc<Seen>>, headers: HeaderMap, body: Bytes) -> &'static str {
    let now = unix_ns();
    let sent = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["t"].as_u64())
        .unwrap_or(now);
    seen.any.fetch_add(1, Ordering::Relaxed);
    if headers.get("x-comm100-site-id").map(|v| v.as_bytes()) == Some(b"1") {
        seen.burst.fetch_add(1, Ordering::Relaxed);
        seen.burst_last_ns.fetch_max(now, Ordering::Relaxed);
    } else {
        let ms = now.saturating_sub(sent) as f64 / 1e6;
        seen.live.lock().unwrap().push((now, ms));
    }
    "ok"
}

/// Starts `n` receivers (one port each) sharing `seen`; their base URLs.
pub(crate) async fn receivers(n: usize, seen: &Arc<Seen>) -> Res<Vec<String>> {
    let mut urls = Vec::new();
    for _ in 0..n {
        let app = Router::new()
            .route("/{*path}", post(receive))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        urls.push(format!("http://{}", listener.local_addr()?));
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    Ok(urls)
}

pub(crate) fn event(id: &str, site: u32, url: &str) -> Vec<u8> {
    format!(
        r#"{{"id":"{id}","webhook":104,"url":"{url}/h","site_id":{site},"data":{{"t":{}}}}}"#,
        unix_ns()
    )
    .into_bytes()
}
