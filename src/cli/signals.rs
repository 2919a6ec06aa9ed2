//! Signals: the first SIGTERM or SIGINT asks for a graceful shutdown, a
//! second one ends the process at once.
//!
//! Ending at once loses nothing: every message not yet acked is still the
//! broker's, and it redelivers them when the connection drops.

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Exit code of a second signal.
pub(super) const FORCED_EXIT_CODE: i32 = 130;

/// Spawns the signal listener; `token` is cancelled on the first signal.
pub(super) fn listen(token: CancellationToken) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down gracefully (send again to stop at once)"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down gracefully (send again to stop at once)"),
        }
        token.cancel();
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("second signal: exiting now; unacked messages return to the queue");
        std::process::exit(FORCED_EXIT_CODE);
    });
    Ok(())
}
