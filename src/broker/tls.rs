//! TLS to the broker (`amqps://`): lapin's rustls connector (the platform
//! verifier: the system's roots, the server name checked against the URL's
//! host), plus the private CA of `AMQP_CA_FILE` and the client identity of
//! `AMQP_CLIENT_CERT`/`AMQP_CLIENT_KEY` for mutual TLS.
//!
//! The PEM files are read and checked once at start by
//! [`crate::config`]; this type only carries what they hold.

use std::fmt;

use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};

/// What lapin needs for `amqps://` beyond the system's roots.
#[derive(Clone, Default)]
pub struct BrokerTls {
    config: OwnedTLSConfig,
}

impl BrokerTls {
    /// `extra_roots`: PEM certificates trusted besides the system's roots;
    /// `identity`: the PEM client certificate chain and its PEM key.
    pub fn new(extra_roots: Option<String>, identity: Option<(Vec<u8>, Vec<u8>)>) -> Self {
        Self {
            config: OwnedTLSConfig {
                cert_chain: extra_roots,
                identity: identity.map(|(pem, key)| OwnedIdentity::PKCS8 { pem, key }),
            },
        }
    }

    /// Whether a private CA or a client identity is configured.
    pub fn is_configured(&self) -> bool {
        self.config.cert_chain.is_some() || self.config.identity.is_some()
    }

    /// The configuration lapin connects with.
    pub(crate) fn lapin_config(&self) -> OwnedTLSConfig {
        self.config.clone()
    }
}

/// Never the key: only what is configured.
impl fmt::Debug for BrokerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerTls")
            .field("private_ca", &self.config.cert_chain.is_some())
            .field("client_certificate", &self.config.identity.is_some())
            .finish()
    }
}
