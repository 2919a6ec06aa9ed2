//! Whether the operator's proxy works, for the log and for the delivery:
//! one WARN line when it starts failing (then at most one a minute while
//! it keeps failing, with the count), one INFO line when it works again;
//! and the cause of the latest failure, which the delivery that hit it
//! reports. Never the password: causes name the proxy's host and port.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// How often a proxy that keeps failing is logged again.
const REMIND_EVERY: Duration = Duration::from_secs(60);

/// The state of one proxy.
#[derive(Debug)]
pub(crate) struct ProxyHealth {
    /// The proxy, as logs show it (password redacted).
    shown: String,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Since when it fails, when it does.
    failing_since: Option<Instant>,
    /// Failures in this burst, and since the last line.
    failures: u64,
    unlogged: u64,
    last_line: Option<Instant>,
    last_cause: Option<String>,
}

impl ProxyHealth {
    pub(crate) fn new(shown: String) -> Self {
        Self {
            shown,
            state: Mutex::new(State::default()),
        }
    }

    /// A tunnel could not be opened because of the proxy.
    pub(crate) fn failed(&self, cause: String) {
        let now = Instant::now();
        let mut s = self.state.lock().expect("proxy health lock");
        s.failures += 1;
        s.unlogged += 1;
        if s.failing_since.is_none() {
            s.failing_since = Some(now);
            tracing::warn!(
                proxy = %self.shown, error = %cause,
                "the forward proxy fails; deliveries through it are deferred without an attempt until it works again"
            );
            (s.unlogged, s.last_line) = (0, Some(now));
        } else if s.last_line.is_none_or(|t| now - t >= REMIND_EVERY) {
            tracing::warn!(
                proxy = %self.shown, error = %cause, failures = s.unlogged,
                since = %humantime::format_duration(secs(now - s.failing_since.unwrap_or(now))),
                "the forward proxy still fails"
            );
            (s.unlogged, s.last_line) = (0, Some(now));
        }
        s.last_cause = Some(cause);
    }

    /// A tunnel was opened (or the proxy answered for the receiver).
    pub(crate) fn succeeded(&self) {
        let mut s = self.state.lock().expect("proxy health lock");
        if let Some(since) = s.failing_since.take() {
            tracing::info!(
                proxy = %self.shown, failures = s.failures,
                after = %humantime::format_duration(secs(since.elapsed())),
                "the forward proxy works again"
            );
            (s.failures, s.unlogged) = (0, 0);
        }
    }

    /// The cause of the latest failure.
    pub(crate) fn last_cause(&self) -> String {
        let s = self.state.lock().expect("proxy health lock");
        s.last_cause
            .clone()
            .unwrap_or_else(|| format!("the proxy {} failed", self.shown))
    }
}

/// Whole seconds (the log needs no more).
fn secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}
