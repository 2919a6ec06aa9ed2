//! What the one HTTP client is built from ([`DeliveryConfig`], taken from
//! `crate::config::Config` by the app), and why building it can fail.

use std::time::Duration;

use super::proxy::ProxyConfig;
use crate::domain::signing::SigningKey;

/// Settings of the delivery side, taken from [`crate::config::Config`].
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// PEM root certificates trusted besides the public roots
    /// (`WEBHOOK_CA_FILE`), already checked.
    pub extra_roots: Option<Vec<u8>>,
    /// Client certificate and key presented to receivers that ask for one
    /// (`WEBHOOK_CLIENT_CERT`, `WEBHOOK_CLIENT_KEY`), already checked.
    pub client_identity: Option<ClientIdentity>,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Allow non-public targets.
    pub allow_private_targets: bool,
    /// Default signing key.
    pub default_key: Option<SigningKey>,
    /// Idle connections kept per host (the process concurrency: idle ones
    /// are bounded by [`super::client::POOL_IDLE_TIMEOUT`] instead).
    pub pool_per_host: usize,
    /// The forward proxy (`WEBHOOK_PROXY_URL`, `WEBHOOK_NO_PROXY`).
    pub proxy: Option<ProxyConfig>,
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The TLS backend refused the roots or the identity.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    /// The proxy relay could not listen on loopback.
    #[error("cannot start the proxy relay on loopback: {0}")]
    Relay(std::io::Error),
}

/// A client certificate chain and its private key, PEM (checked by the
/// caller); never shown.
#[derive(Clone)]
pub struct ClientIdentity {
    pub(super) pem: Vec<u8>,
}

impl ClientIdentity {
    /// The identity of a PEM certificate chain and a PEM key.
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Self {
        Self {
            pem: [cert, b"\n", key].concat(),
        }
    }
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientIdentity(<key redacted>)")
    }
}
