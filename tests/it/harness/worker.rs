//! A worker running in this process, started the way `run` starts it.

use std::{net::SocketAddr, sync::Mutex, time::Duration};

use tokio_util::sync::CancellationToken;
use webhook_worker::{
    app::{self, Running},
    config::Config,
    domain::outcome_event::OutcomeKind,
};

use super::{Receiver, wait_for};
/// A worker running in this process, started the way `run` starts it.
/// Dropping it (a test that panicked) cancels its shutdown token; the
/// test's runtime then ends its tasks.
pub(crate) struct RunningWorker {
    shutdown: CancellationToken,
    pub(crate) metrics_addr: SocketAddr,
    /// Taken by the first [`RunningWorker::stop`].
    running: Mutex<Option<Running>>,
}

impl RunningWorker {
    /// Starts a worker and waits until it consumes.
    pub(crate) async fn start(config: Config) -> Self {
        let shutdown = CancellationToken::new();
        let running = app::start(config, shutdown.clone()).await.unwrap();
        wait_for("worker consuming", Duration::from_secs(20), async || {
            running.is_ready().then_some(())
        })
        .await;
        Self {
            shutdown,
            metrics_addr: running.metrics_addr(),
            running: Mutex::new(Some(running)),
        }
    }

    /// Graceful shutdown; returns the worker's result.
    pub(crate) async fn stop(&self) -> Result<(), webhook_worker::Error> {
        self.shutdown.cancel();
        let running = self.running.lock().unwrap().take();
        running.expect("stopped twice").wait().await
    }

    /// Whether [`RunningWorker::stop`] has not been called yet.
    pub(crate) fn is_running(&self) -> bool {
        self.running.lock().unwrap().is_some()
    }

    /// The `GET /receivers` page.
    pub(crate) async fn receivers(&self) -> serde_json::Value {
        let text = reqwest::get(format!("http://{}/receivers", self.metrics_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// This worker's `GET /receivers` row of a receiver.
    pub(crate) async fn receiver(&self, receiver: &Receiver) -> Option<serde_json::Value> {
        let key = format!("http://{}", receiver.addr);
        self.receivers().await["receivers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == key.as_str())
            .cloned()
    }

    /// The `/metrics` text.
    pub(crate) async fn scrape(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.metrics_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Outcome events published so far, of every kind.
    pub(crate) async fn outcomes_published(&self) -> f64 {
        let text = self.scrape().await;
        OutcomeKind::ALL
            .iter()
            .map(|k| {
                let series = format!(
                    r#"webhook_outcomes_published_total{{kind="{}"}}"#,
                    k.as_str()
                );
                sample(&text, &series)
            })
            .sum()
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Reads one sample from Prometheus text (`name{labels}` exactly as
/// rendered, labels sorted by name).
pub(crate) fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}
