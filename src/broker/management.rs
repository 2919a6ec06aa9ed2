//! The RabbitMQ management API, read by `check` when
//! `RABBITMQ_MANAGEMENT_URL` is set: what AMQP cannot tell, the policies
//! in effect on a queue (see [`super::dead_reads::assess`]), the broker's
//! version, and where the work queues' leaders are. Read only; one GET per
//! question.
//!
//! The credentials are the URL's own (`http://user:password@host:15672`),
//! else those of the first `AMQP_URL` node; the vhost is that node's. The
//! password is never shown: errors name the URL without it.

use std::time::Duration;

use lapin::uri::AMQPUri;
use serde_json::Value;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why the management API gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum ManagementError {
    /// `RABBITMQ_MANAGEMENT_URL` is not an `http(s)://` URL.
    #[error("RABBITMQ_MANAGEMENT_URL is not an http:// or https:// URL: {0}")]
    Url(String),
    /// The request failed, or the answer was not what the API gives.
    #[error("the management API at {url} (RABBITMQ_MANAGEMENT_URL): {reason}")]
    Request {
        /// The URL asked, without credentials.
        url: String,
        /// What went wrong, in one line.
        reason: String,
    },
}

/// A queue as the management API shows it: what decides its delivery limit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueuePolicies {
    /// `x-queue-type` (`quorum`, `classic`, ...).
    pub queue_type: String,
    /// Its `x-delivery-limit` argument.
    pub argument: Option<i64>,
    /// `delivery-limit` of the policies in effect (user and operator).
    pub policy: Option<i64>,
    /// The names of those policies, for the report.
    pub policy_names: Vec<String>,
}

/// Where the work queues' leaders are (`check`, with shards on a cluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaders {
    /// Each work queue and its leader's node (`None`: none named yet).
    pub of: Vec<(String, Option<String>)>,
    /// The cluster's running nodes.
    pub running_nodes: usize,
}

impl Leaders {
    /// How many nodes hold a leader.
    pub fn nodes(&self) -> usize {
        let mut nodes: Vec<_> = self.of.iter().filter_map(|(_, n)| n.as_deref()).collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes.len()
    }

    /// Whether the leaders are on as many nodes as they can be: every
    /// running node, or one node per queue when there are fewer queues.
    pub fn spread(&self) -> bool {
        self.nodes() >= self.of.len().min(self.running_nodes)
    }
}

/// The management API of one broker.
pub struct Management {
    client: reqwest::Client,
    /// `scheme://host:port` and any path prefix, without credentials.
    base: String,
    user: String,
    password: String,
    vhost: String,
}

impl Management {
    /// The API at `url`, with the credentials and vhost of `amqp` unless
    /// `url` names a user.
    pub fn new(url: &str, amqp: &AMQPUri) -> Result<Self, ManagementError> {
        let bad = || ManagementError::Url(url::Url::parse(url).map_or_else(|_| "?".into(), shown));
        let parsed = url::Url::parse(url).map_err(|_| bad())?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(bad());
        }
        let (user, password) = if parsed.username().is_empty() {
            let auth = &amqp.authority.userinfo;
            (auth.username.clone(), auth.password.clone())
        } else {
            let decode = |s: &str| urlencoding_decode(s);
            (
                decode(parsed.username()),
                decode(parsed.password().unwrap_or("")),
            )
        };
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .no_proxy()
            .build()
            .map_err(|e| ManagementError::Url(e.to_string()))?;
        Ok(Self {
            client,
            base: shown(parsed).trim_end_matches('/').to_string(),
            user,
            password,
            vhost: amqp.vhost.clone(),
        })
    }

    /// The broker's major version (`rabbitmq_version` 4.3.6 → 4).
    pub async fn major_version(&self) -> Result<u32, ManagementError> {
        let overview = self.get("overview").await?;
        overview["rabbitmq_version"]
            .as_str()
            .and_then(|v| v.split('.').next()?.parse().ok())
            .ok_or_else(|| self.failed("overview", "no rabbitmq_version".into()))
    }

    /// What decides `queue`'s delivery limit.
    pub async fn queue_policies(&self, queue: &str) -> Result<QueuePolicies, ManagementError> {
        let path = format!("queues/{}/{}", segment(&self.vhost), segment(queue));
        let q = self.get(&path).await?;
        let int = |v: &Value| v.as_i64();
        let names = [&q["policy"], &q["operator_policy"]]
            .into_iter()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect();
        Ok(QueuePolicies {
            queue_type: q["type"].as_str().unwrap_or("classic").to_string(),
            argument: int(&q["arguments"]["x-delivery-limit"]),
            policy: int(&q["effective_policy_definition"]["delivery-limit"]),
            policy_names: names,
        })
    }

    /// The node of `queue`'s leader (a quorum queue's `leader`, another
    /// queue's `node`); `None` while the broker names none.
    pub async fn queue_leader(&self, queue: &str) -> Result<Option<String>, ManagementError> {
        let path = format!("queues/{}/{}", segment(&self.vhost), segment(queue));
        let q = self.get(&path).await?;
        Ok([&q["leader"], &q["node"]]
            .into_iter()
            .find_map(|n| n.as_str().map(str::to_string)))
    }

    /// The leaders of `queues` and the running nodes.
    pub async fn leaders(&self, queues: &[String]) -> Result<Leaders, ManagementError> {
        let mut of = Vec::with_capacity(queues.len());
        for q in queues {
            of.push((q.clone(), self.queue_leader(q).await?));
        }
        let running_nodes = self.running_nodes().await?;
        Ok(Leaders { of, running_nodes })
    }

    /// How many of the cluster's nodes are running.
    pub async fn running_nodes(&self) -> Result<usize, ManagementError> {
        let nodes = self.get("nodes").await?;
        let nodes = nodes
            .as_array()
            .ok_or_else(|| self.failed("nodes", "not a list".into()))?;
        Ok(nodes.iter().filter(|n| n["running"] == true).count())
    }

    async fn get(&self, path: &str) -> Result<Value, ManagementError> {
        let url = format!("{}/api/{path}", self.base);
        let resp = self
            .client
            .get(&url)
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
            .map_err(|e| self.failed(path, without_url(e)))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(self.failed(path, format!("HTTP {status}")));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.failed(path, without_url(e)))?;
        serde_json::from_slice(&body).map_err(|e| self.failed(path, e.to_string()))
    }

    fn failed(&self, path: &str, reason: String) -> ManagementError {
        ManagementError::Request {
            url: format!("{}/api/{path}", self.base),
            reason,
        }
    }
}

/// A URL without its user and password.
fn shown(mut url: url::Url) -> String {
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

/// A reqwest error's text without the URL it carries.
fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// Percent-encodes one path segment (a vhost `/` is `%2F`).
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Percent-decodes a URL's user or password.
fn urlencoding_decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        let hex = |c: Option<u8>| c.and_then(|c| (c as char).to_digit(16));
        out.push(match b {
            b'%' => {
                let mut ahead = bytes.clone();
                match (hex(ahead.next()), hex(ahead.next())) {
                    (Some(h), Some(l)) => {
                        bytes = ahead;
                        (h * 16 + l) as u8
                    }
                    _ => b,
                }
            }
            _ => b,
        });
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaders_are_spread_over_as_many_nodes_as_they_can_be() {
        let leaders = |nodes: &[&str], running| Leaders {
            of: nodes
                .iter()
                .enumerate()
                .map(|(k, n)| (format!("p.deliveries.{k}"), Some(n.to_string())))
                .collect(),
            running_nodes: running,
        };
        assert!(leaders(&["a", "b", "c"], 3).spread());
        assert!(!leaders(&["a", "a", "b"], 3).spread());
        assert!(leaders(&["a", "b", "c", "a"], 3).spread());
        assert!(leaders(&["a", "b"], 3).spread(), "two queues, two nodes");
        assert!(!leaders(&["a", "a"], 3).spread());
        assert!(leaders(&["a", "a", "a"], 1).spread(), "one node");
        assert_eq!(leaders(&["a", "b", "a"], 3).nodes(), 2);
    }

    #[test]
    fn credentials_never_show_and_come_from_amqp_unless_given() {
        let amqp: AMQPUri = "amqp://alice:s3cret@h:5672/v%2Fh".parse().unwrap();
        let m = Management::new("http://h:15672/", &amqp).unwrap();
        assert_eq!((m.user.as_str(), m.password.as_str()), ("alice", "s3cret"));
        assert_eq!(segment(&m.vhost), "v%2Fh");
        let m = Management::new("http://bob:p%40s+s@h:15672", &amqp).unwrap();
        assert_eq!((m.user.as_str(), m.password.as_str()), ("bob", "p@s+s"));
        assert!(
            !m.base.contains("p%40s") && !m.base.contains("bob"),
            "{}",
            m.base
        );
        let err = Management::new("ftp://bob:p%40ss@h", &amqp).err().unwrap();
        assert!(!err.to_string().contains("p%40ss"), "{err}");
    }
}
