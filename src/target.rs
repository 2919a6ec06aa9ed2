//! The target guard: receivers may not live on loopback, private,
//! link-local or otherwise internal addresses unless
//! `WEBHOOK_ALLOW_PRIVATE_TARGETS` is set.
//!
//! A webhook URL is chosen by whoever configures the webhook, so without
//! this guard the worker is a server-side request forgery tool pointed at
//! the operator's own network. The check runs on the addresses the
//! connection will actually use: IP literals before the request, DNS names
//! inside the HTTP client's resolver, so a name that resolves to `10.0.0.5`
//! (or is re-pointed there between two lookups) is caught at connect time.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether an address is one a public webhook may not target.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_forbidden_v4(v4);
            }
            let seg0 = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg0 & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (seg0 & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || is_nat64_or_6to4_of_forbidden(v6)
        }
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0 // "this network" 0.0.0.0/8
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT 100.64.0.0/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments 192.0.0.0/24
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18.0.0/15
        || a >= 240 // reserved 240.0.0.0/4
}

/// 6to4 (`2002::/16`) and NAT64 (`64:ff9b::/96`) addresses embed an IPv4
/// address; they are forbidden when that one is.
fn is_nat64_or_6to4_of_forbidden(v6: Ipv6Addr) -> bool {
    let s = v6.segments();
    let embedded = if s[0] == 0x2002 {
        Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ))
    } else if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        Some(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ))
    } else {
        None
    };
    embedded.is_some_and(is_forbidden_v4)
}

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

    #[test]
    fn forbidden_addresses() {
        for a in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.1.1",
            "2002:7f00:1::",
            "64:ff9b::a00:1",
            "ff02::1",
        ] {
            assert!(is_forbidden(a.parse().unwrap()), "{a} should be forbidden");
        }
    }

    #[test]
    fn public_addresses() {
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "2002:0808:0808::",
        ] {
            assert!(!is_forbidden(a.parse().unwrap()), "{a} should be allowed");
        }
    }

    #[tokio::test]
    async fn resolver_refuses_localhost() {
        let err = match GuardedResolver.resolve("localhost".parse().unwrap()).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(e) => e,
        };
        assert!(err.downcast_ref::<ForbiddenTarget>().is_some(), "{err}");
    }
}
