//! `webhook-worker run`: the metrics server, the signal listener and the
//! worker, until a signal and the drain that follows it.

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::signals;
use crate::{Error, app, config::Config};

/// Consume and deliver until SIGTERM/SIGINT.
#[derive(Debug, Args)]
pub(super) struct Run {
    #[command(flatten)]
    config: Config,
}

impl Run {
    pub(super) async fn execute(self) -> Result<(), Error> {
        let shutdown = CancellationToken::new();
        signals::listen(shutdown.clone())?;
        let result = app::start(self.config, shutdown).await?.wait().await;
        match &result {
            Ok(()) => tracing::info!("stopped"),
            Err(e) => tracing::error!(error = %e, "stopped on a fatal error"),
        }
        result
    }
}
