//! The relay: a SOCKS5 server on a loopback port of this process, the
//! only proxy the HTTP client knows. The client resolves the receiver's
//! name itself, through the guarded resolver, and asks the relay for that
//! checked address (SOCKS5 with local resolution: an IP, never a name);
//! the relay checks the address again, asks the operator's proxy for a
//! tunnel to the same IP ([`super::upstream`]), and splices the two
//! connections. TLS runs inside, end to end between the client and the
//! receiver, verifying the receiver's name.
//!
//! The relay answers only the client that holds its random credentials,
//! and only with tunnels to addresses the target rule allows. A failure
//! of the operator's proxy is answered with SOCKS reply 1 (general
//! failure) and recorded in [`ProxyHealth`], which the delivery reads to
//! defer the message instead of charging the receiver.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use rand::{Rng, distr::Alphanumeric};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::AbortHandle,
};

use super::{
    health::ProxyHealth,
    upstream::{self, TunnelError},
};
use crate::domain::{proxy::ProxyUrl, target::is_forbidden};

/// SOCKS5 reply codes the relay sends.
mod reply {
    pub(super) const SUCCEEDED: u8 = 0;
    /// Only ever for a failure of the operator's proxy.
    pub(super) const GENERAL_FAILURE: u8 = 1;
    pub(super) const NOT_ALLOWED: u8 = 2;
    pub(super) const COMMAND_NOT_SUPPORTED: u8 = 7;
    pub(super) const ADDRESS_TYPE_NOT_SUPPORTED: u8 = 8;
}

/// What every relayed connection shares.
#[derive(Debug)]
struct Shared {
    upstream: ProxyUrl,
    allow_private_targets: bool,
    /// How long the operator's proxy gets to open a tunnel.
    tunnel_timeout: Duration,
    user: String,
    password: String,
    health: Arc<ProxyHealth>,
}

/// The running relay; its listener stops when this is dropped.
#[derive(Debug)]
pub(crate) struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: AbortHandle,
}

impl Relay {
    /// Binds a loopback port and serves on it. Must run inside a Tokio
    /// runtime.
    pub(crate) fn start(
        upstream: ProxyUrl,
        allow_private_targets: bool,
        tunnel_timeout: Duration,
    ) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let addr = listener.local_addr()?;
        let token = || -> String {
            rand::rng()
                .sample_iter(&Alphanumeric)
                .take(24)
                .map(char::from)
                .collect()
        };
        let health = Arc::new(ProxyHealth::new(upstream.to_string()));
        let shared = Arc::new(Shared {
            upstream,
            allow_private_targets,
            tunnel_timeout,
            user: token(),
            password: token(),
            health,
        });
        let serving = shared.clone();
        let accept = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((socket, _)) => {
                        tokio::spawn(serve(socket, serving.clone()));
                    }
                    // Out of file descriptors, say: the client's connect
                    // fails; pause rather than spin.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        })
        .abort_handle();
        Ok(Self {
            addr,
            shared,
            accept,
        })
    }

    /// The proxy URL the HTTP client is given (`socks5://`: it resolves
    /// names itself and sends the address).
    pub(crate) fn client_url(&self) -> String {
        format!(
            "socks5://{}:{}@{}",
            self.shared.user, self.shared.password, self.addr
        )
    }

    /// The operator's proxy's health.
    pub(crate) fn health(&self) -> &ProxyHealth {
        &self.shared.health
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// One relayed connection, from the SOCKS handshake to its end.
async fn serve(mut client: TcpStream, shared: Arc<Shared>) {
    client.set_nodelay(true).ok();
    let handshake = tokio::time::timeout(shared.tunnel_timeout, handshake(&mut client, &shared));
    let Ok(Ok(Some(target))) = handshake.await else {
        return;
    };
    let tunnel = tokio::time::timeout(
        shared.tunnel_timeout,
        upstream::open(&shared.upstream, target),
    )
    .await
    .unwrap_or_else(|_| {
        Err(TunnelError::Proxy(format!(
            "the proxy {}:{} opened no tunnel within {}",
            shared.upstream.host,
            shared.upstream.port,
            humantime::format_duration(shared.tunnel_timeout)
        )))
    });
    // The health is recorded before the client hears the reply, so the
    // delivery that reads it finds this connection's cause.
    let mut upstream = match tunnel {
        Ok(stream) => {
            shared.health.succeeded();
            stream
        }
        Err(TunnelError::Proxy(cause)) => {
            shared.health.failed(cause);
            let _ = client.write_all(&answer(reply::GENERAL_FAILURE)).await;
            return;
        }
        Err(TunnelError::Receiver(code)) => {
            shared.health.succeeded();
            let _ = client.write_all(&answer(code)).await;
            return;
        }
    };
    if client.write_all(&answer(reply::SUCCEEDED)).await.is_ok() {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}

/// The server side of SOCKS5 (RFC 1928) with user/password (RFC 1929):
/// the checked target, or `None` when the client was refused.
async fn handshake(c: &mut TcpStream, shared: &Shared) -> std::io::Result<Option<SocketAddr>> {
    let mut head = [0u8; 2];
    c.read_exact(&mut head).await?;
    let mut methods = vec![0u8; usize::from(head[1])];
    c.read_exact(&mut methods).await?;
    if head[0] != 5 || !methods.contains(&2) {
        c.write_all(&[5, 0xff]).await?;
        return Ok(None);
    }
    c.write_all(&[5, 2]).await?;
    let user = read_field(c, 1).await?;
    let password = read_field(c, 0).await?;
    if user != shared.user.as_bytes() || password != shared.password.as_bytes() {
        c.write_all(&[1, 1]).await?;
        return Ok(None);
    }
    c.write_all(&[1, 0]).await?;
    let mut request = [0u8; 4];
    c.read_exact(&mut request).await?;
    if request[0] != 5 || request[1] != 1 {
        c.write_all(&answer(reply::COMMAND_NOT_SUPPORTED)).await?;
        return Ok(None);
    }
    let ip = match request[3] {
        1 => {
            let mut v4 = [0u8; 4];
            c.read_exact(&mut v4).await?;
            IpAddr::from(v4)
        }
        4 => {
            let mut v6 = [0u8; 16];
            c.read_exact(&mut v6).await?;
            IpAddr::V6(Ipv6Addr::from(v6))
        }
        // A name: the client did not resolve it. Never passed on.
        _ => {
            c.write_all(&answer(reply::ADDRESS_TYPE_NOT_SUPPORTED))
                .await?;
            return Ok(None);
        }
    };
    let mut port = [0u8; 2];
    c.read_exact(&mut port).await?;
    if !shared.allow_private_targets && is_forbidden(ip) {
        c.write_all(&answer(reply::NOT_ALLOWED)).await?;
        return Ok(None);
    }
    Ok(Some(SocketAddr::new(ip, u16::from_be_bytes(port))))
}

/// A length-prefixed field of RFC 1929, after `skip` leading bytes (the
/// sub-negotiation version before the user name).
async fn read_field(c: &mut TcpStream, skip: usize) -> std::io::Result<Vec<u8>> {
    let mut head = vec![0u8; skip + 1];
    c.read_exact(&mut head).await?;
    let mut field = vec![0u8; usize::from(head[skip])];
    c.read_exact(&mut field).await?;
    Ok(field)
}

/// A SOCKS5 reply with an empty IPv4 bound address.
fn answer(code: u8) -> [u8; 10] {
    [5, code, 0, 1, 0, 0, 0, 0, 0, 0]
}
