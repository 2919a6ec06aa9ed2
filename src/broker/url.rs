//! The broker's addresses as operators give them (`AMQP_URL`: one URL, or
//! a comma-separated list of the nodes of one cluster), with the defaults
//! the worker adds, and the only form of them that may be shown.
//!
//! Everything here is pure (no I/O), so it can be checked for any input
//! string: [`parse_urls`] reads a list, [`redact`] turns any input into
//! text that may appear in a log line or an error. Neither ever puts the
//! password, or any other part of an unparsable URL, into its output: a
//! shown URL is rebuilt from its scheme, user name, host, port and vhost
//! ([`BrokerUrl::redacted`]), and an error names a URL by its position in
//! the list and says what is wrong with words of its own.

use std::{fmt, str::FromStr};

use lapin::uri::{AMQPScheme, AMQPUri};

/// Heartbeat asked of the broker unless the URL sets one: a dead peer is
/// noticed within about two intervals instead of the broker's 60 s default.
pub const DEFAULT_HEARTBEAT_SECS: u16 = 10;

/// Largest AMQP frame the worker asks for, unless the URL sets
/// `frame_max`. lapin keeps 32 frames of read and of write buffer per
/// connection, zero-filled: at RabbitMQ's default 128 KiB that is 8 MiB of
/// resident memory; at 16 KiB, 1 MiB. Bodies larger than a frame are simply
/// sent in more frames.
pub const DEFAULT_FRAME_MAX: u32 = 16 * 1024;

/// How long one connection attempt to one node may take (TCP, TLS and the
/// AMQP handshake) unless the URL sets `connection_timeout`.
pub const DEFAULT_CONNECTION_TIMEOUT_MS: u64 = 10_000;

/// One node of the list: what lapin connects to, and how it may be shown.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    uri: AMQPUri,
    shown: String,
}

impl BrokerUrl {
    /// The URI to connect to (it holds the password: never print it).
    pub fn uri(&self) -> &AMQPUri {
        &self.uri
    }

    /// `scheme://user@host:port/vhost`: the URL without its password.
    pub fn redacted(&self) -> &str {
        &self.shown
    }

    /// Whether this node is reached over TLS (`amqps://`).
    pub fn is_tls(&self) -> bool {
        self.uri.scheme == AMQPScheme::AMQPS
    }
}

/// Shows the redacted form only.
impl fmt::Debug for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// The nodes of one broker cluster (at least one), in the order given.
/// They share vhost, scheme and credentials (checked by [`parse_urls`]).
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerUrls {
    nodes: Vec<BrokerUrl>,
}

impl BrokerUrls {
    /// How many nodes the list has (at least one).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: a list has at least one node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node at `index` (from 0), wrapping around the list.
    pub fn node(&self, index: usize) -> &BrokerUrl {
        &self.nodes[index % self.nodes.len()]
    }

    /// The nodes in the order given.
    pub fn iter(&self) -> impl Iterator<Item = &BrokerUrl> {
        self.nodes.iter()
    }

    /// Whether the nodes are reached over TLS (all or none are).
    pub fn is_tls(&self) -> bool {
        self.nodes[0].is_tls()
    }

    /// Every node's redacted form, comma separated.
    pub fn redacted(&self) -> String {
        let shown: Vec<&str> = self.nodes.iter().map(BrokerUrl::redacted).collect();
        shown.join(",")
    }
}

/// Shows the redacted form only.
impl fmt::Debug for BrokerUrls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BrokerUrls({})", self.redacted())
    }
}

impl FromStr for BrokerUrls {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_urls(s)
    }
}

/// Reads `AMQP_URL`: one URL or a comma-separated list (spaces around the
/// commas are allowed), adding the default heartbeat, frame size and
/// connection timeout where a URL sets none.
///
/// Refused: an empty entry, a URL lapin cannot read, a vhost holding a
/// comma or whitespace, a tab or line break anywhere, and a list whose
/// URLs differ in vhost, scheme (`amqp`/`amqps`), user, password or
/// `auth_mechanism` — the nodes of one cluster share all of these. A
/// comma inside a password must be written `%2C`.
pub fn parse_urls(input: &str) -> Result<BrokerUrls, UrlError> {
    let pieces: Vec<&str> = input.split(',').map(str::trim).collect();
    let count = pieces.len();
    let mut nodes: Vec<BrokerUrl> = Vec::with_capacity(count);
    for (i, piece) in pieces.iter().enumerate() {
        let at = Position { index: i, count };
        let node = parse_one(piece).map_err(|reason| UrlError::Invalid { at, reason })?;
        if let Some(first) = nodes.first()
            && let Some(what) = difference(first.uri(), node.uri())
        {
            return Err(UrlError::Mixed { at, what });
        }
        nodes.push(node);
    }
    Ok(BrokerUrls { nodes })
}

/// The form of any `AMQP_URL` text that may be shown: the redacted list
/// when it parses, else the error [`parse_urls`] gives (which names the
/// URL by position). Never the password, for any input: the output is
/// made only of fixed words, positions, and the scheme, user name, host,
/// port and vhost of URLs that parse (so a password shows only where the
/// same text is also one of those).
pub fn redact(input: &str) -> String {
    match parse_urls(input) {
        Ok(urls) => urls.redacted(),
        Err(e) => e.to_string(),
    }
}

/// Where a URL stands in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// From 0.
    pub index: usize,
    /// How many URLs the list has.
    pub count: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == 1 {
            f.write_str("the URL")
        } else {
            write!(f, "URL {} of {}", self.index + 1, self.count)
        }
    }
}

/// Why `AMQP_URL` cannot be used. The text never holds any part of the
/// input: a URL is named by its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// One URL of the list is not usable.
    #[error("invalid AMQP_URL: {at} {reason}")]
    Invalid {
        /// Which one.
        at: Position,
        /// What is wrong, in fixed words.
        reason: Reason,
    },
    /// The URLs are not the nodes of one cluster.
    #[error(
        "invalid AMQP_URL: {at} has another {what} than the first; the URLs of the list must be the nodes of one cluster"
    )]
    Mixed {
        /// Which URL differs from the first.
        at: Position,
        /// What differs.
        what: &'static str,
    },
}

/// What is wrong with one URL, in words that quote nothing of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// Nothing between two commas, or an empty setting.
    #[error("is empty (a stray comma?)")]
    Empty,
    /// Not a URL at all (the url crate's own, fixed, words).
    #[error("cannot be read: {0}")]
    Syntax(url::ParseError),
    /// A scheme other than amqp and amqps.
    #[error("must begin with amqp:// or amqps://")]
    Scheme,
    /// No `//host` part.
    #[error("must have the form amqp://user:password@host:port/vhost")]
    NotHierarchical,
    /// lapin refused a query option or a percent-encoded part.
    #[error(
        "has an invalid query option (heartbeat, frame_max, channel_max, connection_timeout, auth_mechanism) or percent-encoding"
    )]
    Options,
    /// A tab or line break inside the URL (the URL parser would drop it
    /// silently).
    #[error("holds a tab or line break")]
    ControlCharacter,
    /// A vhost that would break the list, or that no one means.
    #[error("has a vhost holding a comma or whitespace")]
    VhostCharacters,
    /// An `@` after the host: a `/`, `?` or `#` in the user info ended the
    /// host early, and the password would have become the vhost.
    #[error(
        "has an '@' after the host: percent-encode '/', '?' and '#' in the user name and password (%2F, %3F, %23), and '@' in the vhost or query (%40)"
    )]
    AtAfterHost,
}

/// Whether an `@` follows the host. A `/`, `?` or `#` in a user name or
/// password ends the host early, and the rest of the user info (the
/// password with it) becomes the vhost or the query, which the redacted
/// form shows: `amqp://user:12/3secret@host` connects to host `user` and
/// vhost `3secret@host`. An `@` is only meaningful before the host. Found
/// by the fuzz target `broker_url`.
fn has_at_after_host(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    rest[host_end..].contains('@')
}

/// Parses one URL of the list.
fn parse_one(piece: &str) -> Result<BrokerUrl, Reason> {
    if piece.is_empty() {
        return Err(Reason::Empty);
    }
    if piece.contains(['\t', '\n', '\r']) {
        return Err(Reason::ControlCharacter);
    }
    if has_at_after_host(piece) {
        return Err(Reason::AtAfterHost);
    }
    let url = url::Url::parse(piece).map_err(Reason::Syntax)?;
    if !matches!(url.scheme(), "amqp" | "amqps") {
        return Err(Reason::Scheme);
    }
    if url.cannot_be_a_base() || !piece[url.scheme().len()..].starts_with("://") {
        return Err(Reason::NotHierarchical);
    }
    let mut uri = AMQPUri::from_str(piece).map_err(|_| Reason::Options)?;
    // lapin reads the host with `Url::domain`, which is empty for an IPv6
    // literal (and then falls back to localhost).
    if let Some(url::Host::Ipv6(ip)) = url.host() {
        uri.authority.host = ip.to_string();
    }
    if uri.vhost.contains(',') || uri.vhost.chars().any(char::is_whitespace) {
        return Err(Reason::VhostCharacters);
    }
    if uri.query.heartbeat.is_none() {
        uri.query.heartbeat = Some(DEFAULT_HEARTBEAT_SECS);
    }
    if uri.query.frame_max.is_none() {
        uri.query.frame_max = Some(DEFAULT_FRAME_MAX);
    }
    if uri.query.connection_timeout.is_none() {
        uri.query.connection_timeout = Some(DEFAULT_CONNECTION_TIMEOUT_MS);
    }
    let shown = shown(&uri);
    Ok(BrokerUrl { uri, shown })
}

/// What two nodes of one cluster may not differ in, if they do.
fn difference(first: &AMQPUri, other: &AMQPUri) -> Option<&'static str> {
    if first.vhost != other.vhost {
        Some("vhost")
    } else if first.scheme != other.scheme {
        Some("scheme (amqp or amqps)")
    } else if first.authority.userinfo != other.authority.userinfo
        || first.query.auth_mechanism != other.query.auth_mechanism
    {
        Some("user, password or auth_mechanism")
    } else {
        None
    }
}

/// `scheme://user@host:port/vhost[?auth_mechanism=..]`, user and vhost
/// percent-encoded.
fn shown(uri: &AMQPUri) -> String {
    let host = if uri.authority.host.contains(':') {
        format!("[{}]", uri.authority.host)
    } else {
        uri.authority.host.clone()
    };
    let mut out = format!(
        "{}://{}@{host}:{}/{}",
        uri.scheme,
        encode(&uri.authority.userinfo.username),
        uri.authority.port,
        encode(&uri.vhost)
    );
    if let Some(m) = uri.query.auth_mechanism {
        out.push_str(&format!("?auth_mechanism={}", m.name().to_lowercase()));
    }
    out
}

/// Percent-encodes all but the unreserved characters of RFC 3986.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[path = "url_tests.rs"]
mod tests;
