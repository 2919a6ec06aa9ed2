//! The target rule applied where connections are made: a DNS resolver for
//! the HTTP client that refuses names resolving to any forbidden address,
//! so a name that resolves to `10.0.0.5` (or is re-pointed there between
//! two lookups) is caught at connect time. IP literals are checked before
//! the request (`super::client`).

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::target::is_forbidden;

/// The error the guarded resolver returns; the delivery code finds it in the
/// HTTP error's source chain and reports `forbidden_target`.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to the non-public address {addr}")]
pub struct ForbiddenTarget {
    /// The name that was looked up.
    pub host: String,
    /// The first forbidden address it resolved to.
    pub addr: IpAddr,
}

/// A DNS resolver that refuses names resolving to any forbidden address.
///
/// All addresses must be public: a name with one public and one private
/// address could otherwise be steered to the private one.
#[derive(Debug, Default, Clone)]
pub struct GuardedResolver;

impl GuardedResolver {
    /// The resolver, shareable with the HTTP client.
    pub fn shared() -> Arc<Self> {
        Arc::new(Self)
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(bad) = addrs.iter().find(|a| is_forbidden(a.ip())) {
                return Err(Box::new(ForbiddenTarget {
                    host,
                    addr: bad.ip(),
                }) as _);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolver_refuses_localhost() {
        let err = match GuardedResolver.resolve("localhost".parse().unwrap()).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(e) => e,
        };
        assert!(err.downcast_ref::<ForbiddenTarget>().is_some(), "{err}");
    }
}
