//! One HTTP attempt to a receiver (contract section 4).
//!
//! One [`Deliverer`] per process holds the one HTTP client (rustls, a
//! shared connection pool, no redirects, no proxy but the operator's, see
//! [`super::proxy`]). Every way an attempt can end is an
//! [`AttemptOutcome`], which the retry policy, the receiver's limit and the
//! metrics all read; only a failure of the forward proxy itself is not an
//! attempt ([`ProxyFailure`]).

use std::{
    error::Error as _,
    sync::Arc,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use reqwest::{StatusCode, header::RETRY_AFTER};

use super::{
    headers::{USER_AGENT_VALUE, request_headers, with_trace},
    proxy::{ProxyFailure, relay::Relay},
    resolver::{ForbiddenTarget, GuardedResolver},
    settings::{BuildError, DeliveryConfig},
};
use crate::domain::{
    envelope::Envelope, outcome::AttemptOutcome, retry_after::parse_retry_after,
    signing::SigningKey, target::is_forbidden, trace::TraceContext,
};

/// How long an idle connection is kept for reuse. Bounding idle connections
/// by count churns a busy receiver's connections (a fast receiver's
/// in-flight count swings by hundreds between one batch of deliveries and
/// the next, and a cap cost the instant receiver a share of its rate in
/// connect and malloc); bounding them by age frees what a receiver stopped
/// using. One second, not four: when a receiver that held hundreds of
/// connections starts to hang, the worker holds its idle ones for this long
/// on top of the new in-flight ones, which raised the peak memory of the
/// "one turns bad" benchmark (figures: bench/README.md, "Receivers that
/// take time"). A connection in
/// steady use is never idle that long, and 1 s is well below the 5 s
/// keep-alive timeout of Node.js servers, so the worker closes an idle
/// connection before a receiver does, instead of racing it.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(1);

/// Response bodies are read at most this far, then dropped.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The one HTTP client of the process, with the request-building rules.
#[derive(Debug, Clone)]
pub struct Deliverer {
    client: reqwest::Client,
    timeout: Duration,
    allow_private_targets: bool,
    default_key: Option<SigningKey>,
    relay: Option<Arc<Relay>>,
}

impl Deliverer {
    /// Builds the client (inside a Tokio runtime: the proxy relay starts
    /// listening). Fails only if the TLS backend cannot start or cannot
    /// take the roots or the identity, or the relay cannot listen.
    pub fn new(config: DeliveryConfig) -> Result<Self, BuildError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // The worker retries through the broker; reqwest's own retry
            // policy would only copy every request's headers.
            .retry(reqwest::retry::never().max_retries_per_request(0))
            .no_proxy()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .pool_max_idle_per_host(config.pool_per_host)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .tcp_nodelay(true)
            .user_agent(USER_AGENT_VALUE);
        if !config.allow_private_targets {
            builder = builder.dns_resolver(GuardedResolver::shared());
        }
        if let Some(pem) = &config.extra_roots {
            builder = builder.tls_certs_merge(reqwest::Certificate::from_pem_bundle(pem)?);
        }
        if let Some(identity) = &config.client_identity {
            builder = builder.identity(reqwest::Identity::from_pem(&identity.pem)?);
        }
        let relay = match config.proxy {
            None => None,
            Some(proxy) => {
                // The relay gives up on the operator's proxy before the
                // client's connect timeout, so a hanging proxy is reported
                // as the proxy's failure, not as the receiver's timeout.
                let tunnel_timeout = config.timeout * 3 / 4;
                let relay = Relay::start(proxy.url, config.allow_private_targets, tunnel_timeout)
                    .map_err(BuildError::Relay)?;
                let no_proxy = reqwest::NoProxy::from_string(&proxy.no_proxy);
                builder =
                    builder.proxy(reqwest::Proxy::all(relay.client_url())?.no_proxy(no_proxy));
                Some(Arc::new(relay))
            }
        };
        Ok(Self {
            client: builder.build()?,
            timeout: config.timeout,
            allow_private_targets: config.allow_private_targets,
            default_key: config.default_key,
            relay,
        })
    }

    /// The whole-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Makes one attempt. `body` is the message body the envelope was parsed
    /// from; the request body is a zero-copy slice of it (`data`'s bytes).
    /// `Err` when the forward proxy failed before the receiver answered.
    pub async fn attempt(
        &self,
        env: &Envelope<'_>,
        body: &Bytes,
        attempt: u32,
        trace: Option<&TraceContext>,
    ) -> Result<AttemptOutcome, ProxyFailure> {
        if !self.allow_private_targets
            && let Some(ip) = literal_ip(&env.url)
            && is_forbidden(ip)
        {
            return Ok(AttemptOutcome::ForbiddenTarget(format!(
                "{ip} is not a public address"
            )));
        }
        let payload = body.slice_ref(env.data.get().as_bytes());
        let mut headers = request_headers(env, attempt, unix_secs_now(), self.default_key.as_ref());
        if let Some(trace) = trace {
            with_trace(&mut headers, trace);
        }
        let response = self
            .client
            .post(env.url.clone())
            .headers(headers)
            .body(payload)
            .send()
            .await;
        let mut response = match response {
            Ok(r) => r,
            Err(e) => return classify_error(e, self.relay.as_deref()),
        };
        let status = response.status();
        let retry_after = if status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::SERVICE_UNAVAILABLE
        {
            response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| parse_retry_after(v.as_bytes(), SystemTime::now()))
        } else {
            None
        };
        // The status decides. Reading a bounded prefix of the body lets the
        // connection go back to the pool; errors while reading are ignored.
        let mut read = 0;
        while read < MAX_RESPONSE_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                _ => break,
            }
        }
        Ok(if status.is_success() {
            AttemptOutcome::Success {
                status: status.as_u16(),
            }
        } else if status == StatusCode::GONE {
            AttemptOutcome::Gone
        } else {
            AttemptOutcome::HttpError {
                status: status.as_u16(),
                retry_after,
            }
        })
    }
}

fn literal_ip(url: &url::Url) -> Option<std::net::IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(v4.into()),
        url::Host::Ipv6(v6) => Some(v6.into()),
        url::Host::Domain(_) => None,
    }
}

fn unix_secs_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The text of the SOCKS error the client reports when the relay answers
/// "general failure", which it does only for a failure of the operator's
/// proxy (pinned by `tests/it/proxy_faults.rs`).
const RELAY_REPORTS_PROXY_FAILURE: &str = "general server failure";

/// Maps a client error to an outcome, with a description that names no
/// URL; a failure of the forward proxy is not an outcome.
fn classify_error(
    e: reqwest::Error,
    relay: Option<&Relay>,
) -> Result<AttemptOutcome, ProxyFailure> {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(f) = s.downcast_ref::<ForbiddenTarget>() {
            return Ok(AttemptOutcome::ForbiddenTarget(f.to_string()));
        }
        if let Some(relay) = relay
            && s.to_string().ends_with(RELAY_REPORTS_PROXY_FAILURE)
        {
            return Err(ProxyFailure(relay.health().last_cause()));
        }
        source = s.source();
    }
    if e.is_timeout() {
        return Ok(AttemptOutcome::Timeout);
    }
    // The innermost cause is the informative one ("Connection refused").
    let mut innermost = None;
    let mut source = e.source();
    while let Some(s) = source {
        innermost = Some(s.to_string());
        source = s.source();
    }
    Ok(AttemptOutcome::ConnectError(
        innermost.unwrap_or_else(|| e.without_url().to_string()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deliverer() -> Deliverer {
        Deliverer::new(DeliveryConfig {
            extra_roots: None,
            client_identity: None,
            timeout: Duration::from_secs(1),
            allow_private_targets: false,
            default_key: None,
            pool_per_host: 1,
            proxy: None,
        })
        .unwrap()
    }

    /// A keep-alive HTTP/1.1 receiver on loopback answering 200 to every
    /// request; it counts the connections it accepts and reports when each
    /// one is closed by the client.
    async fn counting_receiver() -> (
        std::net::SocketAddr,
        std::sync::Arc<std::sync::atomic::AtomicUsize>,
        tokio::sync::mpsc::UnboundedReceiver<tokio::time::Instant>,
    ) {
        use std::sync::{Arc, atomic::AtomicUsize, atomic::Ordering};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (closed_tx, closed_rx) = tokio::sync::mpsc::unbounded_channel();
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let closed = closed_tx.clone();
                tokio::spawn(async move {
                    let (mut pending, mut buf) = (Vec::new(), [0u8; 4096]);
                    loop {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => {
                                let _ = closed.send(tokio::time::Instant::now());
                                return;
                            }
                            Ok(n) => pending.extend_from_slice(&buf[..n]),
                        }
                        // One answer per complete request (headers + body).
                        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head =
                                String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
                            let length: usize = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse().ok())
                                .unwrap_or(0);
                            if pending.len() < end + 4 + length {
                                break;
                            }
                            pending.drain(..end + 4 + length);
                            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                            if socket.write_all(answer).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (addr, accepted, closed_rx)
    }

    #[tokio::test]
    async fn an_idle_connection_is_reused_then_closed_after_the_idle_timeout() {
        use std::sync::atomic::Ordering;
        let (addr, accepted, mut closed) = counting_receiver().await;
        let deliverer = Deliverer::new(DeliveryConfig {
            extra_roots: None,
            client_identity: None,
            timeout: Duration::from_secs(5),
            allow_private_targets: true,
            default_key: None,
            pool_per_host: 16,
            proxy: None,
        })
        .unwrap();
        let body = Bytes::from(format!(
            r#"{{"id":"e1","webhook":101,"url":"http://{addr}/h","data":{{}}}}"#
        ));
        let env = crate::domain::envelope::parse(&body, 1 << 20).unwrap();
        for attempt in 1..=3 {
            let outcome = deliverer.attempt(&env, &body, attempt, None).await.unwrap();
            assert_eq!(outcome.label(), "success", "attempt {attempt}");
        }
        // Back-to-back attempts share one kept-alive connection.
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        let idle_since = tokio::time::Instant::now();
        // The pool closes it once it has been idle for POOL_IDLE_TIMEOUT
        // (its reaper runs about once per timeout), not before.
        let closed_at = tokio::time::timeout(POOL_IDLE_TIMEOUT * 3, closed.recv())
            .await
            .expect("the idle connection was not closed within 3 idle timeouts")
            .expect("receiver gone");
        let idle = closed_at - idle_since;
        assert!(idle >= POOL_IDLE_TIMEOUT, "closed after only {idle:?} idle");
        // The next attempt opens a new connection.
        let outcome = deliverer.attempt(&env, &body, 4, None).await.unwrap();
        assert_eq!(outcome.label(), "success");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn literal_private_ip_is_refused_without_a_request() {
        let body = Bytes::from_static(
            br#"{"id":"e1","webhook":101,"url":"http://127.0.0.1:9/","data":{}}"#,
        );
        let env = crate::domain::envelope::parse(&body, 1 << 20).unwrap();
        let outcome = deliverer().attempt(&env, &body, 1, None).await.unwrap();
        assert_eq!(outcome.label(), "forbidden_target");
    }
}
