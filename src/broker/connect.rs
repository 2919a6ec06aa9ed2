//! Connecting to the broker: with backoff and jitter, forever, until the
//! connection is up or shutdown is asked for.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use lapin::{Connection, ConnectionProperties, uri::AMQPUri};
use tokio_util::sync::CancellationToken;

use super::url::redacted;

/// Longest wait between two connection attempts.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(30);

/// The reconnect backoff: exponential from 100 ms, with jitter so a fleet
/// restarted together does not reconnect in lockstep. backon's jitter adds up
/// to 100 % of the delay, so the base is capped at half of 30 s.
pub fn reconnect_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(MAX_RECONNECT_DELAY / 2)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

/// Connects, retrying with backoff until it succeeds or `cancel` fires
/// (then `None`). Each failure is logged; none is fatal.
pub async fn connect(uri: &AMQPUri, name: &str, cancel: &CancellationToken) -> Option<Connection> {
    let mut backoff = reconnect_backoff();
    let mut failures = 0u32;
    loop {
        let props = ConnectionProperties::default().with_connection_name(name.into());
        let attempt = tokio::select! {
            r = Connection::connect_uri(uri.clone(), props) => r,
            () = cancel.cancelled() => return None,
        };
        match attempt {
            Ok(conn) => {
                if failures > 0 {
                    tracing::info!(failures, broker = %redacted(uri), "connected to the broker");
                }
                return Some(conn);
            }
            Err(e) => {
                failures += 1;
                let wait = backoff.next().unwrap_or(MAX_RECONNECT_DELAY);
                tracing::warn!(
                    error = %e, failures, retry_in_ms = wait.as_millis() as u64, broker = %redacted(uri),
                    "cannot reach the broker; retrying"
                );
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = cancel.cancelled() => return None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap() {
        let delays: Vec<_> = reconnect_backoff().take(20).collect();
        assert!(
            delays.iter().all(|d| *d <= MAX_RECONNECT_DELAY),
            "{delays:?}"
        );
        assert!(delays[15] >= MAX_RECONNECT_DELAY / 2, "{delays:?}");
        assert!(delays[0] < Duration::from_secs(1), "{delays:?}");
    }
}
