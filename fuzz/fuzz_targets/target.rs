//! The target rule (`domain::target::is_forbidden`) over any IPv4 and IPv6
//! address, addresses built to embed an IPv4 address in every IPv6 form
//! that carries one, and any host text a webhook URL may have
//! (`http://<s>/`: decimal, hex, octal and shortened IPv4 forms, bracketed
//! IPv6), checked against an oracle of the forbidden ranges written here
//! from the RFC 6890 registries, independently of `src/`.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use webhook_worker::domain::target::is_forbidden;

/// IPv4 ranges no webhook may target, as (network, prefix length).
const FORBIDDEN_V4: [(u32, u8); 12] = [
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network" (incl. unspecified)
    (0x0a00_0000, 8),  // 10.0.0.0/8 private
    (0x6440_0000, 10), // 100.64.0.0/10 carrier-grade NAT
    (0x7f00_0000, 8),  // 127.0.0.0/8 loopback
    (0xa9fe_0000, 16), // 169.254.0.0/16 link-local
    (0xac10_0000, 12), // 172.16.0.0/12 private
    (0xc000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
    (0xc0a8_0000, 16), // 192.168.0.0/16 private
    (0xc612_0000, 15), // 198.18.0.0/15 benchmarking
    (0xe000_0000, 4),  // 224.0.0.0/4 multicast
    (0xf000_0000, 4),  // 240.0.0.0/4 reserved (incl. broadcast)
    (0xffff_ffff, 32), // 255.255.255.255 broadcast
];

/// IPv6 ranges forbidden in themselves.
const FORBIDDEN_V6: [(u128, u8); 6] = [
    (1, 128),            // ::1 loopback
    (0, 128),            // :: unspecified
    (0xff00 << 112, 8),  // ff00::/8 multicast
    (0xfc00 << 112, 7),  // fc00::/7 unique local
    (0xfe80 << 112, 10), // fe80::/10 link-local
    (0xfec0 << 112, 10), // fec0::/10 site-local
];

fn in_v4(ip: u32, (net, len): (u32, u8)) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    ip & mask == net & mask
}

fn in_v6(ip: u128, (net, len): (u128, u8)) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    ip & mask == net & mask
}

fn oracle_v4(ip: u32) -> bool {
    FORBIDDEN_V4.iter().any(|r| in_v4(ip, *r))
}

/// The IPv4 addresses an IPv6 address carries, in every form that routes
/// to (or is translated to) one.
fn embedded(ip: u128) -> Vec<u32> {
    let low32 = ip as u32;
    let mut out = Vec::new();
    if in_v6(ip, (0xffff << 32, 96)) {
        out.push(low32); // ::ffff:0:0/96 v4-mapped
    }
    if in_v6(ip, (0, 96)) {
        out.push(low32); // ::/96 IPv4-compatible
    }
    if in_v6(ip, (0xffff << 48, 96)) {
        out.push(low32); // ::ffff:0:0:0/96 IPv4-translated
    }
    if in_v6(ip, (0x2002 << 112, 16)) {
        out.push((ip >> 80) as u32); // 2002::/16 6to4, bits 16-47
    }
    if in_v6(ip, (0x0064_ff9b << 96, 96)) {
        out.push(low32); // 64:ff9b::/96 NAT64
    }
    if in_v6(ip, ((0x0064_ff9b_0001u128) << 80, 48)) {
        out.push(low32); // 64:ff9b:1::/48 local-use NAT64
    }
    if in_v6(ip, (0x2001_0000 << 96, 32)) {
        out.push((ip >> 64) as u32); // Teredo server, bits 32-63
        out.push(!low32); // Teredo client, inverted
    }
    out
}

fn oracle_v6(ip: u128) -> bool {
    FORBIDDEN_V6.iter().any(|r| in_v6(ip, *r)) || embedded(ip).into_iter().any(oracle_v4)
}

fn oracle(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => oracle_v4(v4.into()),
        IpAddr::V6(v6) => oracle_v6(v6.into()),
    }
}

fn check(ip: IpAddr, from: &dyn std::fmt::Debug) {
    assert_eq!(
        is_forbidden(ip),
        oracle(ip),
        "{ip} (from {from:?}): is_forbidden disagrees with the oracle"
    );
}

#[derive(Arbitrary, Debug)]
enum Input {
    V4(u32),
    V6(u128),
    /// An IPv4 address (often a forbidden one) in an IPv6 form: prefix
    /// choice, the address, and the other bits.
    Embedding(u8, u32, u128, bool),
    /// A host as a webhook URL may write it.
    Host(String),
}

fuzz_target!(|input: Input| {
    match &input {
        Input::V4(n) => {
            check(IpAddr::V4(Ipv4Addr::from(*n)), &input);
            // The same address v4-mapped.
            check(IpAddr::V6(Ipv4Addr::from(*n).to_ipv6_mapped()), &input);
        }
        Input::V6(n) => check(IpAddr::V6(Ipv6Addr::from(*n)), &input),
        Input::Embedding(form, v4, rest, pick_forbidden) => {
            let v4 = if *pick_forbidden {
                let (net, len) = FORBIDDEN_V4[(*v4 as usize) % FORBIDDEN_V4.len()];
                let host_bits = if len == 32 {
                    0
                } else {
                    (*v4 >> 4) & (u32::MAX >> len)
                };
                net | host_bits
            } else {
                *v4
            };
            let v4 = u128::from(v4);
            let ip = match form % 8 {
                0 => (0xffff << 32) | v4,
                1 => v4,
                2 => (0xffff << 48) | v4,
                3 => (0x2002 << 112) | (v4 << 80) | (rest & ((1 << 80) - 1)),
                4 => (0x0064_ff9b << 96) | v4,
                5 => (0x0064_ff9b_0001u128 << 80) | (rest & (((1 << 48) - 1) << 32)) | v4,
                6 => (0x2001_0000 << 96) | (v4 << 64) | (rest & ((1 << 64) - 1)),
                _ => {
                    (0x2001_0000 << 96)
                        | (rest & (((1 << 96) - 1) & !0xffff_ffff))
                        | (!v4 & 0xffff_ffff)
                }
            };
            check(IpAddr::V6(Ipv6Addr::from(ip)), &input);
        }
        Input::Host(s) => {
            if let Ok(ip) = s.parse::<IpAddr>() {
                check(ip, &input);
            }
            // What the HTTP edge sees: the URL's literal host, as the url
            // crate reads it (`http://0x7f.1/` is 127.0.0.1).
            if let Ok(url) = url::Url::parse(&format!("http://{s}/")) {
                let ip = match url.host() {
                    Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
                    Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
                    _ => None,
                };
                if let Some(ip) = ip {
                    check(ip, &input);
                }
            }
        }
    }
});
