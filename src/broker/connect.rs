//! Connecting to the broker: over the nodes of `AMQP_URL` in turn, with
//! backoff and jitter once a whole pass failed, forever, until a
//! connection is up or shutdown is asked for.
//!
//! A process starts at a random node, so a fleet spreads over the
//! cluster. A failed connect moves to the next node at once; so does a
//! lost connection ([`Connector::session_ended`]). Only when every node
//! failed in one pass — a refused connect, or a session that ended before
//! it was stable — does the worker wait, with the backoff, before the next
//! pass; a stable session resets the backoff.

use std::{sync::Arc, time::Duration};

use backon::{BackoffBuilder, ExponentialBuilder};
use futures_lite::StreamExt;
use lapin::{Connection, ConnectionProperties, Event};
use tokio_util::sync::CancellationToken;

use super::{tls::BrokerTls, url::BrokerUrls};

/// Longest a connect to one node may take (TCP, TLS, the AMQP handshake):
/// a node that accepts and then never answers (stopping, overloaded, a
/// half-open path) counts as failed, and the next node is tried, instead
/// of holding the worker forever.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Longest a session's connection may take to close (its `close-ok`).
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The error of a broker operation that got no answer within `limit`.
pub fn timed_out(what: &str, limit: Duration) -> lapin::Error {
    let io = std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what}: no answer within {} s", limit.as_secs()),
    );
    lapin::ErrorKind::IOError(std::sync::Arc::new(io)).into()
}

/// Longest wait between two passes over the nodes.
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(30);

/// The reconnect backoff: exponential from 100 ms, with jitter so a fleet
/// restarted together does not reconnect in lockstep. backon's jitter adds up
/// to 100 % of the delay, so the base is capped at half of 30 s.
pub fn reconnect_backoff() -> impl Iterator<Item = Duration> + Send + Sync {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(MAX_RECONNECT_DELAY / 2)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

/// A connection and the node it goes to (the one-shot commands').
pub struct Connected {
    /// The connection.
    pub conn: Arc<Connection>,
    /// The node's index in the list (from 0).
    pub node: usize,
}

/// The worker's two connections to one node: it consumes and acks on one
/// and publishes on the other (retry and dead copies, outcome events).
///
/// A node stops reading from a connection that publishes while a
/// resource alarm is on (`connection.blocked`), and many times a second
/// from one whose publishes outrun their queues (flow control); acks on
/// that connection would wait with the publishes. RabbitMQ's connection
/// guide recommends separate connections for publishing and consuming
/// for this reason: a blocked publish holds up only the deliveries that
/// wait for it, and the acks of the others still reach the queue (and
/// free its memory, which is what ends a memory alarm).
pub struct SessionConnections {
    /// Consumers and their acks; the topology is declared here.
    pub consuming: Arc<Connection>,
    /// The [`super::publisher::Publisher`]'s channels.
    pub publishing: Arc<Connection>,
    /// The node's index in the list (from 0).
    pub node: usize,
}

impl SessionConnections {
    /// Closes both connections, together, giving each at most
    /// [`CLOSE_TIMEOUT`]. A session ends when one of them failed, and the
    /// other may be going too (a node killed or stopping closes both): a
    /// close that crosses the node's own `connection.close` is never
    /// answered. So after a failure the worker closes them in the
    /// background ([`SessionConnections::close_in_background`]) and
    /// reconnects at once; it waits only when it is about to exit (at
    /// shutdown or on a fatal error).
    pub async fn close(self, reason: &'static str) {
        tokio::join!(
            close_within(&self.consuming, reason),
            close_within(&self.publishing, reason),
        );
    }

    /// [`SessionConnections::close`] in a task of its own.
    pub fn close_in_background(self, reason: &'static str) {
        tokio::spawn(self.close(reason));
    }

    /// Resolves when the publishing connection fails; meanwhile logs the
    /// node blocking and unblocking it.
    pub fn publishing_failed(&self) -> impl Future<Output = lapin::Error> + Send + 'static {
        let mut events = self.publishing.events_listener();
        async move {
            while let Some(event) = events.next().await {
                match event {
                    Event::Error(e) => return e,
                    Event::ConnectionBlocked(reason) => tracing::warn!(
                        %reason,
                        "the broker blocked the publishing connection: retries, parked copies and outcome events wait, and so do the deliveries that made them"
                    ),
                    Event::ConnectionUnblocked => {
                        tracing::info!("the broker unblocked the publishing connection")
                    }
                    _ => {}
                }
            }
            lapin::ErrorKind::InvalidConnectionState(lapin::ConnectionState::Closed).into()
        }
    }
}

/// Closes `conn`, waiting at most [`CLOSE_TIMEOUT`] for the node's answer.
async fn close_within(conn: &Connection, reason: &str) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, conn.close(200, reason.into())).await;
}

/// The connect loop's state: where the next attempt goes, how many nodes
/// failed in the current pass, and the backoff between passes.
pub struct Connector {
    urls: BrokerUrls,
    tls: BrokerTls,
    name: String,
    next: usize,
    failed_in_pass: usize,
    backoff: Box<dyn Iterator<Item = Duration> + Send + Sync>,
}

impl Connector {
    /// A connector over `urls` that names its connections `name` (shown in
    /// the management UI), starting at a random node.
    pub fn new(urls: BrokerUrls, tls: BrokerTls, name: String) -> Self {
        let next = rand::random_range(0..urls.len());
        Self {
            urls,
            tls,
            name,
            next,
            failed_in_pass: 0,
            backoff: Box::new(reconnect_backoff()),
        }
    }

    /// The nodes.
    pub fn urls(&self) -> &BrokerUrls {
        &self.urls
    }

    /// Connects, going over the nodes and backing off between failed
    /// passes, until a connection is up or `cancel` fires (then `None`).
    /// Each failure is logged and passed to `on_failure` with the node's
    /// index; none is fatal.
    pub async fn connect(
        &mut self,
        cancel: &CancellationToken,
        mut on_failure: impl FnMut(usize),
    ) -> Option<SessionConnections> {
        let count = self.urls.len();
        loop {
            if self.failed_in_pass >= count {
                let wait = self.backoff.next().unwrap_or(MAX_RECONNECT_DELAY);
                tracing::warn!(
                    nodes = count,
                    retry_in_ms = wait.as_millis() as u64,
                    "no broker node reachable; retrying"
                );
                self.failed_in_pass = 0;
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = cancel.cancelled() => return None,
                }
            }
            let node = self.next % count;
            let attempt = tokio::select! {
                r = self.attempt_session(node) => r,
                () = cancel.cancelled() => return None,
            };
            match attempt {
                Ok((consuming, publishing)) => {
                    tracing::info!(
                        node = node + 1, nodes = count, broker = %self.urls.node(node).redacted(),
                        "connected to the broker"
                    );
                    return Some(SessionConnections {
                        consuming: Arc::new(consuming),
                        publishing: Arc::new(publishing),
                        node,
                    });
                }
                Err(e) => {
                    on_failure(node);
                    self.failed_in_pass += 1;
                    self.next = node + 1;
                    tracing::warn!(
                        error = %e, node = node + 1, nodes = count,
                        broker = %self.urls.node(node).redacted(),
                        "cannot connect to the broker node; trying the next"
                    );
                }
            }
        }
    }

    /// One pass over the nodes from the current one, without backoff: the
    /// one-shot commands' connect. The last node's error when all failed.
    pub async fn connect_once(&mut self) -> Result<Connected, lapin::Error> {
        let count = self.urls.len();
        let mut last = None;
        for _ in 0..count {
            let node = self.next % count;
            match self.attempt(node, &self.name).await {
                Ok(conn) => {
                    return Ok(Connected {
                        conn: Arc::new(conn),
                        node,
                    });
                }
                Err(e) => {
                    if count > 1 {
                        tracing::warn!(
                            error = %e, node = node + 1, nodes = count,
                            broker = %self.urls.node(node).redacted(),
                            "cannot connect to the broker node; trying the next"
                        );
                    }
                    last = Some(e);
                    self.next = node + 1;
                }
            }
        }
        Err(last.expect("at least one node"))
    }

    /// A session on `node` ended: the next connect goes to the next node
    /// at once. A session shorter than `stable` counts as a failure of its
    /// node (a broker that accepts and then drops us is never hammered);
    /// a longer one resets the backoff.
    pub fn session_ended(&mut self, node: usize, was_stable: bool) {
        self.next = node + 1;
        if was_stable {
            self.failed_in_pass = 0;
            self.backoff = Box::new(reconnect_backoff());
        } else {
            self.failed_in_pass += 1;
        }
    }

    /// A session's two connections to `node`, named after their roles (as
    /// the management UI lists them); none when either fails.
    async fn attempt_session(&self, node: usize) -> Result<(Connection, Connection), lapin::Error> {
        let consuming = self
            .attempt(node, &format!("{} consuming", self.name))
            .await?;
        match self
            .attempt(node, &format!("{} publishing", self.name))
            .await
        {
            Ok(publishing) => Ok((consuming, publishing)),
            Err(e) => {
                close_within(&consuming, "no publishing connection").await;
                Err(e)
            }
        }
    }

    async fn attempt(&self, node: usize, name: &str) -> Result<Connection, lapin::Error> {
        let props = ConnectionProperties::default().with_connection_name(name.into());
        let uri = self.urls.node(node).uri().clone();
        let runtime = lapin::runtime::default_runtime()?;
        let connect =
            Connection::connect_uri_with_config(uri, props, self.tls.lapin_config(), runtime);
        tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .unwrap_or_else(|_| Err(timed_out("connecting", CONNECT_TIMEOUT)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap() {
        let delays: Vec<_> = reconnect_backoff().take(20).collect();
        assert!(
            delays.iter().all(|d| *d <= MAX_RECONNECT_DELAY),
            "{delays:?}"
        );
        assert!(delays[15] >= MAX_RECONNECT_DELAY / 2, "{delays:?}");
        assert!(delays[0] < Duration::from_secs(1), "{delays:?}");
    }

    /// A node that accepts the TCP connection and never answers fails
    /// after [`CONNECT_TIMEOUT`] (paused time: at once); `connect` then
    /// goes on to the next node as after any failure.
    #[tokio::test(start_paused = true)]
    async fn a_node_that_never_answers_fails_after_the_connect_timeout() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let url: BrokerUrls = format!("amqp://guest:guest@127.0.0.1:{port}/%2f")
            .parse()
            .unwrap();
        let connector = Connector::new(url, BrokerTls::default(), "test".into());
        let held = tokio::spawn(async move {
            let (socket, _) = silent.accept().await.unwrap();
            tokio::time::sleep(CONNECT_TIMEOUT * 4).await;
            drop(socket);
        });
        let started = tokio::time::Instant::now();
        let err = connector
            .attempt(0, "test")
            .await
            .expect_err("no handshake");
        assert!(err.to_string().contains("no answer within 15 s"), "{err}");
        assert!(started.elapsed() >= CONNECT_TIMEOUT);
        assert!(started.elapsed() < CONNECT_TIMEOUT * 2);
        held.abort();
    }

    /// Nodes that refuse at once: a pass over all of them, then a pause.
    #[tokio::test]
    async fn a_whole_pass_fails_before_the_backoff() {
        let closed: Vec<_> = (0..3)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        let list: Vec<String> = closed
            .iter()
            .map(|p| format!("amqp://guest:guest@127.0.0.1:{p}/%2f"))
            .collect();
        let urls: BrokerUrls = list.join(",").parse().unwrap();
        let mut connector = Connector::new(urls, BrokerTls::default(), "test".into());
        let start = connector.next;
        let mut failed = Vec::new();
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let run = connector.connect(&cancel, |n| {
            failed.push(n);
            if failed.len() == 4 {
                stop.cancel();
            }
        });
        assert!(run.await.is_none());
        assert_eq!(
            failed,
            vec![start % 3, (start + 1) % 3, (start + 2) % 3, start % 3],
            "one pass from the random start, then the next pass"
        );
    }
}
