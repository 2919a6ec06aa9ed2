//! The target rule: receivers may not live on loopback, private,
//! link-local or otherwise internal addresses unless
//! `WEBHOOK_ALLOW_PRIVATE_TARGETS` is set. This is the pure rule; the HTTP
//! edge applies it (`crate::http::resolver`).
//!
//! A webhook URL is chosen by whoever configures the webhook, so without
//! this guard the worker is a server-side request forgery tool pointed at
//! the operator's own network. The check runs on the addresses the
//! connection will actually use: IP literals before the request, DNS names
//! inside the HTTP client's resolver, so a name that resolves to `10.0.0.5`
//! (or is re-pointed there between two lookups) is caught at connect time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
                || embedded_v4(v6).is_some_and(is_forbidden_v4)
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

/// The IPv4 address an IPv6 address embeds, for every form that routes to
/// (or is translated to) one: IPv4-compatible `::a.b.c.d` (`::/96`), 6to4
/// (`2002::/16`), IPv4-translated (`::ffff:0:0/96`), NAT64 (`64:ff9b::/96` and the local-use `64:ff9b:1::/48`)
/// and Teredo (`2001::/32`: the server's address, and the client's, stored
/// inverted in the last 32 bits; either being forbidden forbids it).
/// v4-mapped `::ffff:a.b.c.d` is handled before this.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[..6] == [0, 0, 0, 0, 0, 0] {
        // `::` and `::1` are caught as unspecified and loopback already.
        return Some(v4(s[6], s[7]));
    }
    if s[..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0 {
        // IPv4-translated `::ffff:0:a.b.c.d` (SIIT).
        return Some(v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(v4(s[1], s[2]));
    }
    if s[0] == 0x64 && s[1] == 0xff9b && (s[2..6] == [0, 0, 0, 0] || s[2] == 1) {
        return Some(v4(s[6], s[7]));
    }
    if s[0] == 0x2001 && s[1] == 0 {
        let server = v4(s[2], s[3]);
        let client = v4(!s[6], !s[7]);
        return Some(if is_forbidden_v4(server) {
            server
        } else {
            client
        });
    }
    None
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
            "::127.0.0.1",
            "::10.0.0.1",
            "::7f00:1",
            "64:ff9b:1::7f00:1",
            "::ffff:0:a00:1",
            // Teredo: server 127.0.0.1, or client 10.0.0.1 (stored inverted).
            "2001:0:7f00:1::",
            "2001:0:808:808::f5ff:fffe",
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
            "::8.8.8.8",
            "2001:0:808:808::f7f7:f7f7",
        ] {
            assert!(!is_forbidden(a.parse().unwrap()), "{a} should be allowed");
        }
    }
}
