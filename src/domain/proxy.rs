//! The forward-proxy settings (contract sections 1 and 4):
//! `WEBHOOK_PROXY_URL` — `http://` (CONNECT) or `socks5://`, with an
//! optional `user:password` — and `WEBHOOK_NO_PROXY`, the hosts,
//! `.suffix`es and CIDRs reached directly. Parsed and checked here, at
//! start; the HTTP edge (`crate::http::proxy`) uses them.
//!
//! The password is the one secret here: it has no `Display`, its `Debug`
//! is redacted, the URL shows as `scheme://user:<redacted>@host:port`, and
//! no error quotes the setting's value.

use std::{fmt, net::IpAddr};

/// How the proxy is asked for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocol {
    /// `http://`: an HTTP `CONNECT` tunnel, for http and https receivers.
    HttpConnect,
    /// `socks5://`: a SOCKS5 `CONNECT`.
    Socks5,
}

/// A user name and password for the proxy.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyCredentials {
    /// The user name (percent-decoded).
    pub user: String,
    password: String,
}

impl ProxyCredentials {
    /// The password (percent-decoded), for the proxy handshake only.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for ProxyCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyCredentials({:?}, <redacted>)", self.user)
    }
}

/// A checked `WEBHOOK_PROXY_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// CONNECT or SOCKS5.
    pub protocol: ProxyProtocol,
    /// The proxy's host name or address (not subject to the target rule:
    /// a proxy usually lives on the operator's own network).
    pub host: String,
    /// The proxy's port (default 80 for `http://`, 1080 for `socks5://`).
    pub port: u16,
    /// `user:password`, when given.
    pub credentials: Option<ProxyCredentials>,
}

/// The URL with the password redacted: what logs and `check` show.
impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.protocol {
            ProxyProtocol::HttpConnect => "http",
            ProxyProtocol::Socks5 => "socks5",
        };
        write!(f, "{scheme}://")?;
        if let Some(c) = &self.credentials {
            write!(f, "{}:<redacted>@", c.user)?;
        }
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Why a proxy setting cannot be used. No variant quotes
/// `WEBHOOK_PROXY_URL`'s value (it may hold a password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxySettingError {
    /// Not a URL at all.
    #[error(
        "WEBHOOK_PROXY_URL is not a URL: expected http://[user:password@]host:port or socks5://[user:password@]host:port"
    )]
    NotAUrl,
    /// A scheme other than `http` and `socks5`.
    #[error("WEBHOOK_PROXY_URL: only http:// (CONNECT) and socks5:// proxies are supported")]
    Scheme,
    /// No host.
    #[error("WEBHOOK_PROXY_URL has no host")]
    NoHost,
    /// A path, query or fragment.
    #[error("WEBHOOK_PROXY_URL: a proxy URL has no path, query or fragment")]
    Path,
    /// A password without a user, or credentials that are not UTF-8 or too
    /// long for SOCKS5 (255 bytes each).
    #[error(
        "WEBHOOK_PROXY_URL: the user name and password must be UTF-8, the user not empty, each at most 255 bytes"
    )]
    Credentials,
    /// A `WEBHOOK_NO_PROXY` entry that is neither a host, a `.suffix` nor a
    /// CIDR (entries are not secret: quoted).
    #[error("WEBHOOK_NO_PROXY: '{0}' is not a host name, .suffix, IP address or CIDR")]
    NoProxyEntry(String),
}

impl ProxyUrl {
    /// Parses and checks `WEBHOOK_PROXY_URL`.
    pub fn parse(raw: &str) -> Result<Self, ProxySettingError> {
        let url = url::Url::parse(raw.trim()).map_err(|_| ProxySettingError::NotAUrl)?;
        let (protocol, default_port) = match url.scheme() {
            "http" => (ProxyProtocol::HttpConnect, 80),
            "socks5" => (ProxyProtocol::Socks5, 1080),
            _ => return Err(ProxySettingError::Scheme),
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
            Some(url::Host::Ipv4(v4)) => v4.to_string(),
            Some(url::Host::Ipv6(v6)) => v6.to_string(),
            _ => return Err(ProxySettingError::NoHost),
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(ProxySettingError::Path);
        }
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            ("", Some(_)) => return Err(ProxySettingError::Credentials),
            (user, password) => {
                let decode = |s: &str| {
                    percent_decode(s)
                        .filter(|d| d.len() <= 255)
                        .ok_or(ProxySettingError::Credentials)
                };
                Some(ProxyCredentials {
                    user: decode(user)?,
                    password: decode(password.unwrap_or(""))?,
                })
            }
        };
        Ok(Self {
            protocol,
            host,
            port: url.port().unwrap_or(default_port),
            credentials,
        })
    }
}

/// Checks `WEBHOOK_NO_PROXY`: comma-separated hosts (each matching itself
/// and its subdomains), `.suffix`es, IP addresses, CIDRs, or `*` (every
/// receiver direct). Returns the list normalised (entries trimmed, empty
/// ones left out).
pub fn parse_no_proxy(raw: &str) -> Result<String, ProxySettingError> {
    let mut entries = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if !is_no_proxy_entry(entry) {
            return Err(ProxySettingError::NoProxyEntry(entry.to_string()));
        }
        entries.push(entry);
    }
    Ok(entries.join(","))
}

fn is_no_proxy_entry(entry: &str) -> bool {
    if entry == "*" || entry.parse::<IpAddr>().is_ok() {
        return true;
    }
    if let Some((ip, bits)) = entry.split_once('/') {
        let max = match ip.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => 32,
            Ok(IpAddr::V6(_)) => 128,
            Err(_) => return false,
        };
        return bits.parse::<u8>().is_ok_and(|b| b <= max);
    }
    let name = entry.strip_prefix('.').unwrap_or(entry);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// `%XX` escapes decoded; `None` when the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h)? * 16 + hex(l)?) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls() {
        let p = ProxyUrl::parse("http://egress.internal:3128").unwrap();
        assert_eq!(p.protocol, ProxyProtocol::HttpConnect);
        assert_eq!((p.host.as_str(), p.port), ("egress.internal", 3128));
        assert_eq!(p.credentials, None);
        assert_eq!(p.to_string(), "http://egress.internal:3128");

        let p = ProxyUrl::parse("socks5://svc%40corp:p%3Ass%20w@10.0.0.7").unwrap();
        assert_eq!(p.protocol, ProxyProtocol::Socks5);
        assert_eq!(p.port, 1080);
        let c = p.credentials.as_ref().unwrap();
        assert_eq!((c.user.as_str(), c.password()), ("svc@corp", "p:ss w"));
        assert_eq!(p.to_string(), "socks5://svc@corp:<redacted>@10.0.0.7:1080");
        assert!(!format!("{p:?}").contains("p:ss"), "{p:?}");

        let p = ProxyUrl::parse("http://[::1]:8080/").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("::1", 8080));
    }

    #[test]
    fn bad_proxy_urls_never_quote_the_password() {
        for (raw, expected) in [
            ("not a url hunter2", ProxySettingError::NotAUrl),
            ("https://u:hunter2@proxy:443", ProxySettingError::Scheme),
            ("socks5h://u:hunter2@proxy:1080", ProxySettingError::Scheme),
            ("http://u:hunter2@proxy:3128/path", ProxySettingError::Path),
            ("http://u:hunter2@proxy:3128?q", ProxySettingError::Path),
            ("http://:hunter2@proxy:3128", ProxySettingError::Credentials),
            (
                "http://u:hunter2%FF@proxy:3128",
                ProxySettingError::Credentials,
            ),
        ] {
            let e = ProxyUrl::parse(raw).unwrap_err();
            assert_eq!(e, expected, "{raw}");
            assert!(!e.to_string().contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn no_proxy_lists() {
        assert_eq!(
            parse_no_proxy(" internal.example, .svc.cluster.local,10.0.0.0/8,, fd00::/8 ,::1,*")
                .unwrap(),
            "internal.example,.svc.cluster.local,10.0.0.0/8,fd00::/8,::1,*"
        );
        assert_eq!(parse_no_proxy("").unwrap(), "");
        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "a b",
            "http://x",
            "x..y",
            "host:80",
            ".",
        ] {
            assert_eq!(
                parse_no_proxy(bad),
                Err(ProxySettingError::NoProxyEntry(bad.to_string())),
                "{bad}"
            );
        }
    }
}
