//! The broker's address as operators give it (`AMQP_URL`), with the
//! defaults the worker adds, and the only form of it that may be shown.

use std::str::FromStr;

use lapin::uri::AMQPUri;

/// Heartbeat asked of the broker unless the URL sets one: a dead peer is
/// noticed within about two intervals instead of the broker's 60 s default.
pub const DEFAULT_HEARTBEAT_SECS: u16 = 10;

/// Largest AMQP frame the worker asks for, unless the URL sets
/// `frame_max`. lapin keeps 32 frames of read and of write buffer per
/// connection, zero-filled: at RabbitMQ's default 128 KiB that is 8 MiB of
/// resident memory; at 16 KiB, 1 MiB. Bodies larger than a frame are simply
/// sent in more frames.
pub const DEFAULT_FRAME_MAX: u32 = 16 * 1024;

/// Parses the broker URL, adding the default heartbeat and frame size when
/// it has none.
pub fn parse_url(url: &str) -> Result<AMQPUri, UrlError> {
    if has_at_after_host(url) {
        return Err(UrlError::Invalid(
            "'@' after the host: percent-encode '/', '?' and '#' in the user name and \
             password (%2F, %3F, %23), and '@' in the vhost or query (%40)"
                .into(),
        ));
    }
    let mut uri = AMQPUri::from_str(url).map_err(|e| UrlError::Invalid(redact_text(&e, url)))?;
    if uri.query.heartbeat.is_none() {
        uri.query.heartbeat = Some(DEFAULT_HEARTBEAT_SECS);
    }
    if uri.query.frame_max.is_none() {
        uri.query.frame_max = Some(DEFAULT_FRAME_MAX);
    }
    if uri.query.connection_timeout.is_none() {
        uri.query.connection_timeout = Some(10_000);
    }
    Ok(uri)
}

/// The URL as it may appear in a log: no password.
pub fn redacted(uri: &AMQPUri) -> String {
    let scheme = format!("{:?}", uri.scheme).to_lowercase();
    format!(
        "{scheme}://{}@{}:{}/{}",
        uri.authority.userinfo.username, uri.authority.host, uri.authority.port, uri.vhost
    )
}

/// Why `AMQP_URL` cannot be used. The text never holds a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not an AMQP URL lapin can read.
    #[error("invalid AMQP_URL: {0}")]
    Invalid(String),
}

/// A parser's complaint about `url`, with anything that could be the
/// URL's password removed (the parser may quote the input back).
fn redact_text(error: &impl std::fmt::Display, url: &str) -> String {
    let text = error.to_string();
    match password_of(url) {
        Some(pw) if !pw.is_empty() => text.replace(pw, "***"),
        _ => text,
    }
}

/// Whether an `@` follows the host. A `/`, `?` or `#` in a user name or
/// password ends the host early, and the rest of the user info (the
/// password with it) becomes the vhost or the query, which the redacted
/// form shows: `amqp://user:12/3secret@host` connects to host `user` and
/// vhost `3secret@host`. An `@` is only meaningful before the host.
fn has_at_after_host(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    rest[host_end..].contains('@')
}

/// The userinfo password of a URL string, found textually (it may not
/// parse).
fn password_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let userinfo = rest.rsplit_once('@')?.0;
    Some(userinfo.split_once(':')?.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_gets_a_heartbeat_and_is_redacted() {
        let uri = parse_url("amqp://user:pw@broker:5673/vh").unwrap();
        assert_eq!(uri.query.heartbeat, Some(DEFAULT_HEARTBEAT_SECS));
        assert_eq!(uri.query.frame_max, Some(DEFAULT_FRAME_MAX));
        let shown = redacted(&uri);
        assert!(!shown.contains("pw"), "{shown}");
        assert!(shown.contains("broker:5673"), "{shown}");
        assert_eq!(
            parse_url("amqp://h/%2f?heartbeat=3")
                .unwrap()
                .query
                .heartbeat,
            Some(3)
        );
        assert!(parse_url("http://nope").is_err());
    }

    /// Found by `fuzz/` (target `broker_url`): a `/` in the user info made
    /// the rest of it, password included, the vhost of the redacted form.
    #[test]
    fn an_at_after_the_host_is_refused_without_showing_the_password() {
        for url in [
            "amqp:///:secret99@",
            "amqp://user:12/3secret99@host/",
            "amqp://us/er:secret99@host",
            "amqp://us?er:secret99@host",
            "amqp://us#er:secret99@host",
            "amqp://a@b/x:secret99@y",
        ] {
            let err = parse_url(url).unwrap_err().to_string();
            assert!(!err.contains("secret99"), "{url}: {err}");
            assert!(err.contains("'@' after the host"), "{url}: {err}");
        }
        assert_eq!(
            parse_url("amqp://user:p%2F%40ss@host/v%40h").unwrap().vhost,
            "v@h"
        );
    }
}
