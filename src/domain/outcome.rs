//! How one delivery attempt ended (contract section 4). The HTTP edge
//! produces an [`AttemptOutcome`]; the retry policy, the per-receiver limit
//! and the metrics all read it, so it lives here, below all three.

use std::time::Duration;

use super::duration::format_setting;

/// How one attempt ended. The label is the `outcome` of
/// `webhook_attempts_total`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx arrived in time.
    Success {
        /// The status code.
        status: u16,
    },
    /// No status within `WEBHOOK_TIMEOUT`.
    Timeout,
    /// Connection, TLS or transport error, with a short description.
    ConnectError(String),
    /// A non-2xx status other than 410.
    HttpError {
        /// The status code.
        status: u16,
        /// `Retry-After` of a 429 or 503, when present and readable.
        retry_after: Option<Duration>,
    },
    /// `410 Gone`: the receiver asks never to be called again.
    Gone,
    /// The URL points at a non-public address.
    ForbiddenTarget(String),
}

impl AttemptOutcome {
    /// Every label, for pre-registering metrics.
    pub const LABELS: [&'static str; 6] = [
        "success",
        "timeout",
        "connect_error",
        "http_error",
        "gone",
        "forbidden_target",
    ];

    /// Its kind's place in [`Self::LABELS`], for arrays indexed by outcome.
    pub fn index(&self) -> usize {
        match self {
            AttemptOutcome::Success { .. } => 0,
            AttemptOutcome::Timeout => 1,
            AttemptOutcome::ConnectError(_) => 2,
            AttemptOutcome::HttpError { .. } => 3,
            AttemptOutcome::Gone => 4,
            AttemptOutcome::ForbiddenTarget(_) => 5,
        }
    }

    /// The metric label.
    pub fn label(&self) -> &'static str {
        Self::LABELS[self.index()]
    }

    /// Whether this is a success.
    pub fn is_success(&self) -> bool {
        matches!(self, AttemptOutcome::Success { .. })
    }

    /// Short text for `webhook-last-error` and the log.
    pub fn describe(&self, timeout: Duration) -> String {
        match self {
            AttemptOutcome::Success { status } => format!("HTTP {status}"),
            AttemptOutcome::Timeout => {
                format!("timeout: no response within {}", format_setting(timeout))
            }
            AttemptOutcome::ConnectError(e) => format!("connect error: {e}"),
            AttemptOutcome::HttpError {
                status,
                retry_after: Some(d),
            } => {
                format!("HTTP {status} (Retry-After {})", format_setting(*d))
            }
            AttemptOutcome::HttpError {
                status,
                retry_after: None,
            } => format!("HTTP {status}"),
            AttemptOutcome::Gone => "HTTP 410 Gone".to_string(),
            AttemptOutcome::ForbiddenTarget(e) => format!("forbidden target: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_metric_outcomes() {
        let all = [
            AttemptOutcome::Success { status: 200 },
            AttemptOutcome::Timeout,
            AttemptOutcome::ConnectError("refused".into()),
            AttemptOutcome::HttpError {
                status: 500,
                retry_after: None,
            },
            AttemptOutcome::Gone,
            AttemptOutcome::ForbiddenTarget("10.0.0.1".into()),
        ];
        let labels: Vec<_> = all.iter().map(AttemptOutcome::label).collect();
        assert_eq!(labels, AttemptOutcome::LABELS);
        assert_eq!(
            AttemptOutcome::HttpError {
                status: 429,
                retry_after: Some(Duration::from_secs(5))
            }
            .describe(Duration::from_secs(1)),
            "HTTP 429 (Retry-After 5s)"
        );
    }
}
