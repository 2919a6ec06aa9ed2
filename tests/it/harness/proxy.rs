//! Real forward proxies on loopback, one per test, started from the
//! binaries `scripts/egress.sh deps` installs: tinyproxy (HTTP CONNECT)
//! and microsocks (SOCKS5), with or without a user and password. Each
//! logs what it was asked for (a CONNECT line of tinyproxy, "connected to"
//! of microsocks), so a test sees which address the proxy was given.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use super::{TempDir, wait_for};

/// Which proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProxyKind {
    /// tinyproxy: `http://`, CONNECT.
    Tinyproxy,
    /// microsocks: `socks5://`.
    Microsocks,
}

/// A running proxy; killed on drop.
pub(crate) struct ForwardProxy {
    pub(crate) kind: ProxyKind,
    pub(crate) port: u16,
    auth: Option<(String, String)>,
    child: Child,
    dir: TempDir,
}

impl ForwardProxy {
    /// Starts one on a free loopback port and waits until it accepts.
    pub(crate) async fn start(kind: ProxyKind, auth: Option<(&str, &str)>) -> Self {
        let dir = TempDir::new("ww-proxy");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("out.log")).unwrap();
        let mut cmd = match kind {
            ProxyKind::Tinyproxy => {
                let mut conf = format!(
                    "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 512\n\
                     LogLevel Connect\nAllow 127.0.0.1\nDisableViaHeader Yes\n"
                );
                if let Some((user, password)) = auth {
                    conf.push_str(&format!("BasicAuth {user} {password}\n"));
                }
                let path = dir.file("tinyproxy.conf", &conf);
                let mut cmd = Command::new("tinyproxy");
                cmd.arg("-d").arg("-c").arg(path);
                cmd
            }
            ProxyKind::Microsocks => {
                let mut cmd = Command::new("microsocks");
                cmd.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
                if let Some((user, password)) = auth {
                    cmd.args(["-u", user, "-P", password]);
                }
                cmd
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{kind:?} ({e}): run scripts/egress.sh deps"));
        let proxy = Self {
            kind,
            port,
            auth: auth.map(|(u, p)| (u.to_string(), p.to_string())),
            child,
            dir,
        };
        wait_for("the proxy listening", Duration::from_secs(20), async || {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        proxy
    }

    /// Its URL, with its user and password when it has them.
    pub(crate) fn url(&self) -> String {
        match &self.auth {
            Some((user, password)) => self.url_as(user, password),
            None => format!("{}://127.0.0.1:{}", self.scheme(), self.port),
        }
    }

    /// Its URL with the given user and password.
    pub(crate) fn url_as(&self, user: &str, password: &str) -> String {
        format!(
            "{}://{user}:{password}@127.0.0.1:{}",
            self.scheme(),
            self.port
        )
    }

    fn scheme(&self) -> &'static str {
        match self.kind {
            ProxyKind::Tinyproxy => "http",
            ProxyKind::Microsocks => "socks5",
        }
    }

    /// The targets it was asked to connect to (`host:port`), in order.
    pub(crate) fn targets(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.path().join("out.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| match self.kind {
                // "CONNECT   Dec 06 21:00:00.123 [42]: Request (file descriptor 7): CONNECT 127.0.0.1:5000 HTTP/1.1"
                ProxyKind::Tinyproxy => l
                    .split_once("): CONNECT ")
                    .map(|(_, rest)| rest.split(' ').next().unwrap_or_default().to_string()),
                // "client[4] 127.0.0.1: connected to 127.0.0.1:5000"
                ProxyKind::Microsocks => l
                    .split_once("connected to ")
                    .map(|(_, target)| target.trim().to_string()),
            })
            .collect()
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
