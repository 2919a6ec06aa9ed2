//! Deliveries through the operator's forward proxy (`WEBHOOK_PROXY_URL`)
//! without giving up the target rule (contract section 4).
//!
//! A proxy resolves the names it is asked for, so handing it the
//! receiver's name would let it (or DNS rebinding between two lookups)
//! reach an address the guard refuses. Instead the HTTP client resolves
//! the name itself through the guarded resolver and asks for that checked
//! IP: the client speaks SOCKS5 with local resolution to the in-process
//! [`relay`], which asks the operator's proxy for a tunnel to the same IP
//! (`CONNECT ip:port`, or SOCKS5 to the IP; [`upstream`]). TLS runs end to
//! end inside the tunnel and verifies the receiver's name (SNI and
//! certificate); the request's `Host` is the receiver's. reqwest's own
//! proxy support cannot do this: it sends `CONNECT name:port` (its
//! connector layer cannot replace the connection either), and would
//! forward plain-http requests in absolute form for the proxy to resolve.
//!
//! `WEBHOOK_NO_PROXY` is reqwest's no-proxy matcher: matching receivers
//! are connected directly, guarded as always. A failure of the proxy
//! itself is a [`ProxyFailure`], not an attempt outcome: the delivery
//! defers the message without an attempt and counts it.

mod health;
pub(crate) mod relay;
mod upstream;

use crate::domain::proxy::ProxyUrl;

/// The proxy settings of the HTTP client, checked.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// `WEBHOOK_PROXY_URL`.
    pub url: ProxyUrl,
    /// `WEBHOOK_NO_PROXY`, normalised (may be empty).
    pub no_proxy: String,
}

/// The forward proxy failed before the receiver answered (unreachable,
/// 407, an error status to CONNECT, a SOCKS refusal): not the receiver's
/// failure. Its text names the proxy's host and port, never the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("forward proxy: {0}")]
pub struct ProxyFailure(pub String);
