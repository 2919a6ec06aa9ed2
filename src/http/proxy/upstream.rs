//! Asking the operator's proxy for a tunnel to one checked address: an
//! HTTP `CONNECT ip:port` or a SOCKS5 `CONNECT` to the IP, never to a
//! name, so the proxy's own resolver has nothing to resolve.

use std::net::{IpAddr, SocketAddr};

use base64::{Engine, engine::general_purpose::STANDARD};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::domain::proxy::{ProxyProtocol, ProxyUrl};

/// The longest CONNECT answer head read from an HTTP proxy.
const MAX_HEAD: usize = 16 * 1024;

/// Why no tunnel was made.
#[derive(Debug)]
pub(super) enum TunnelError {
    /// The proxy itself failed: unreachable, refused the credentials or the
    /// request, answered with an error before the receiver did. Never the
    /// password; the proxy's host and port only.
    Proxy(String),
    /// A SOCKS5 proxy reached out and the receiver's side failed (network
    /// or host unreachable, connection refused, TTL expired): the reply
    /// code, passed on as the receiver's connect error.
    Receiver(u8),
}

/// A tunnel through `proxy` to `target`.
pub(super) async fn open(proxy: &ProxyUrl, target: SocketAddr) -> Result<TcpStream, TunnelError> {
    let mut stream = TcpStream::connect((proxy.host.as_str(), proxy.port))
        .await
        .map_err(|e| {
            TunnelError::Proxy(format!(
                "cannot reach the proxy {}:{}: {e}",
                proxy.host, proxy.port
            ))
        })?;
    stream.set_nodelay(true).ok();
    let io = |e: std::io::Error| {
        TunnelError::Proxy(format!(
            "the proxy {}:{} failed during its handshake: {e}",
            proxy.host, proxy.port
        ))
    };
    match proxy.protocol {
        ProxyProtocol::HttpConnect => http_connect(&mut stream, proxy, target, io).await?,
        ProxyProtocol::Socks5 => socks5_connect(&mut stream, proxy, target, io).await?,
    }
    Ok(stream)
}

async fn http_connect(
    stream: &mut TcpStream,
    proxy: &ProxyUrl,
    target: SocketAddr,
    io: impl Fn(std::io::Error) -> TunnelError,
) -> Result<(), TunnelError> {
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(c) = &proxy.credentials {
        let token = STANDARD.encode(format!("{}:{}", c.user, c.password()));
        request.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.map_err(&io)?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 1024];
    // One byte at a time: the head is short (one read per connection, not
    // per request), and what follows it is the receiver's, not to be read.
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut buf[..1]).await.map_err(&io)?;
        if n == 0 {
            return Err(TunnelError::Proxy(format!(
                "the proxy {}:{} closed the connection before answering CONNECT",
                proxy.host, proxy.port
            )));
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            return Err(TunnelError::Proxy(format!(
                "the proxy {}:{} answered CONNECT with an oversized head",
                proxy.host, proxy.port
            )));
        }
    }
    let status = std::str::from_utf8(&head)
        .ok()
        .and_then(|h| h.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(200..=299) => Ok(()),
        // 407, or 401 from proxies that answer CONNECT like a server
        // (tinyproxy).
        Some(code @ (401 | 407)) => Err(TunnelError::Proxy(format!(
            "the proxy {}:{} refused the credentials (HTTP {code})",
            proxy.host, proxy.port
        ))),
        Some(code) => Err(TunnelError::Proxy(format!(
            "the proxy {}:{} answered CONNECT with HTTP {code}",
            proxy.host, proxy.port
        ))),
        None => Err(TunnelError::Proxy(format!(
            "the proxy {}:{} answered CONNECT with something that is not HTTP",
            proxy.host, proxy.port
        ))),
    }
}

async fn socks5_connect(
    stream: &mut TcpStream,
    proxy: &ProxyUrl,
    target: SocketAddr,
    io: impl Fn(std::io::Error) -> TunnelError,
) -> Result<(), TunnelError> {
    let refused = |what: &str| {
        TunnelError::Proxy(format!(
            "the SOCKS5 proxy {}:{} {what}",
            proxy.host, proxy.port
        ))
    };
    // Greeting: no authentication, or user/password when configured.
    let greeting: &[u8] = match proxy.credentials {
        Some(_) => &[5, 1, 2],
        None => &[5, 1, 0],
    };
    stream.write_all(greeting).await.map_err(&io)?;
    let mut reply = [0u8; 2];
    stream.read_exact(&mut reply).await.map_err(&io)?;
    match (reply, &proxy.credentials) {
        ([5, 0], None) => {}
        ([5, 2], Some(c)) => {
            let mut auth = vec![1, c.user.len() as u8];
            auth.extend_from_slice(c.user.as_bytes());
            auth.push(c.password().len() as u8);
            auth.extend_from_slice(c.password().as_bytes());
            stream.write_all(&auth).await.map_err(&io)?;
            stream.read_exact(&mut reply).await.map_err(&io)?;
            if reply[1] != 0 {
                return Err(refused("refused the credentials"));
            }
        }
        ([5, _], _) => {
            return Err(refused(
                "accepts none of the offered authentication methods",
            ));
        }
        _ => return Err(refused("does not speak SOCKS5")),
    }
    let mut request = vec![5, 1, 0];
    match target.ip() {
        IpAddr::V4(v4) => {
            request.push(1);
            request.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            request.push(4);
            request.extend_from_slice(&v6.octets());
        }
    }
    request.extend_from_slice(&target.port().to_be_bytes());
    stream.write_all(&request).await.map_err(&io)?;
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).await.map_err(&io)?;
    match head[1] {
        0 => {}
        code @ 3..=6 => return Err(TunnelError::Receiver(code)),
        1 => return Err(refused("reported a general failure")),
        2 => return Err(refused("does not allow the connection (ruleset)")),
        code => return Err(refused(&format!("refused the request (reply {code})"))),
    }
    // The bound address, which nobody needs.
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut len = [0u8; 1];
            stream.read_exact(&mut len).await.map_err(&io)?;
            usize::from(len[0]) + 2
        }
        _ => return Err(refused("sent an unreadable reply")),
    };
    let mut bound = vec![0u8; rest];
    stream.read_exact(&mut bound).await.map_err(&io)?;
    Ok(())
}
