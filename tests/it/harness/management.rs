//! The RabbitMQ management API of the broker under test
//! (`RABBITMQ_MANAGEMENT_URL`, default the local node's, enabled by
//! `scripts/ensure-rabbitmq.sh`; `scripts/brokers.sh env VERSION` names it):
//! queue arguments as the broker sees them, and the worker's two
//! connections and their channels (found by the prefix and the role in
//! their names), closable from the broker's side.

use std::{collections::HashMap, time::Duration};

use super::wait_for;

/// The management API of the broker under test (`RABBITMQ_MANAGEMENT_URL`).
pub(crate) fn management_url() -> String {
    std::env::var("RABBITMQ_MANAGEMENT_URL")
        .map(|u| u.trim_end_matches('/').to_string())
        .unwrap_or_else(|_| "http://127.0.0.1:15672".into())
}

/// One call to the management API, whatever its status.
async fn call(method: reqwest::Method, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(method, format!("{}/api/{path}", management_url()))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .unwrap()
}

/// One call to the management API.
pub(crate) async fn management(method: reqwest::Method, path: &str) -> reqwest::Response {
    let resp = call(method, path).await;
    assert!(
        resp.status().is_success(),
        "management API {path}: {}",
        resp.status()
    );
    resp
}

/// A GET of the management API, as JSON.
pub(crate) async fn management_json<T: serde::de::DeserializeOwned>(path: &str) -> T {
    let resp = management(reqwest::Method::GET, path).await;
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
}

/// A GET of the management API, as JSON, for a caller polling in
/// [`wait_for`]: `None` on an error status, so it asks again (RabbitMQ 3.10
/// answers a queue listing with 500 now and then while another test
/// deletes a queue the listing names; KEDA's scaler polls the same way).
pub(crate) async fn management_json_polled<T: serde::de::DeserializeOwned>(
    path: &str,
) -> Option<T> {
    let resp = call(reqwest::Method::GET, path).await;
    if !resp.status().is_success() {
        eprintln!("management API {path}: {} (asking again)", resp.status());
        return None;
    }
    Some(serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap())
}

/// Queue details from the management API.
pub(crate) async fn management_queue(name: &str) -> serde_json::Value {
    management_json(&format!("queues/%2f/{name}")).await
}

/// Connections with their properties, from the management API.
pub(crate) async fn management_connections() -> Vec<HashMap<String, serde_json::Value>> {
    management_json("connections").await
}

/// Which of the worker's two connections (`src/broker/connect.rs`,
/// `SessionConnections`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Role {
    /// Its consumers and their acks.
    Consuming,
    /// Its publisher's confirm-mode channels.
    Publishing,
}

impl Role {
    fn suffix(self) -> &'static str {
        match self {
            Role::Consuming => " consuming",
            Role::Publishing => " publishing",
        }
    }
}

/// The management API's record of the worker's connection `role` (its
/// client-provided name carries the prefix and ends with the role), once
/// listed.
pub(crate) async fn worker_connection(
    prefix: &str,
    role: Role,
) -> HashMap<String, serde_json::Value> {
    wait_for(
        "worker connection listed",
        Duration::from_secs(60),
        async || {
            management_connections().await.into_iter().find(|c| {
                c.get("client_properties")
                    .and_then(|p| p.get("connection_name"))
                    .and_then(|n| n.as_str())
                    .is_some_and(|n| {
                        n.contains(&format!("prefix {prefix} ")) && n.ends_with(role.suffix())
                    })
            })
        },
    )
    .await
}

/// The channels of the worker's connection `role`, from the management
/// API.
pub(crate) async fn worker_channels(prefix: &str, role: Role) -> Vec<serde_json::Value> {
    let c = worker_connection(prefix, role).await;
    let name = c["name"].as_str().unwrap();
    management_json(&format!("connections/{}/channels", urlencode(name))).await
}

/// Closes the worker's connection `role` from the broker's side.
pub(crate) async fn close_worker_connection(prefix: &str, role: Role) {
    let c = worker_connection(prefix, role).await;
    let name = c["name"].as_str().unwrap();
    management(
        reqwest::Method::DELETE,
        &format!("connections/{}", urlencode(name)),
    )
    .await;
}

/// Percent-encodes a path segment of the management API.
pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A policy of the test's own (its name and pattern carry the test's
/// prefix), deleted when dropped, also when the test panicked.
pub(crate) struct Policy {
    name: String,
}

impl Policy {
    /// Sets policy `name` on the queues matching `pattern`, with priority
    /// 10 (above a default one an operator may have).
    pub(crate) async fn set(name: &str, pattern: &str, definition: serde_json::Value) -> Self {
        let body = serde_json::json!({
            "pattern": pattern, "definition": definition, "apply-to": "queues", "priority": 10,
        });
        let resp = reqwest::Client::new()
            .put(format!(
                "{}/api/policies/%2f/{}",
                management_url(),
                urlencode(name)
            ))
            .basic_auth("guest", Some("guest"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "set policy {name}: {}",
            resp.status()
        );
        Self {
            name: name.to_string(),
        }
    }
}

impl Drop for Policy {
    fn drop(&mut self) {
        let url = format!(
            "{}/api/policies/%2f/{}",
            management_url(),
            urlencode(&self.name)
        );
        // A thread of its own: the drop may run inside the test's runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let _ = reqwest::Client::new()
                    .delete(url)
                    .basic_auth("guest", Some("guest"))
                    .send()
                    .await;
            });
        })
        .join();
    }
}

/// The (major, minor) version of the broker under test (`rabbitmq_version`).
pub(crate) async fn broker_version() -> (u32, u32) {
    let overview: serde_json::Value = management_json("overview").await;
    let version = overview["rabbitmq_version"].as_str().unwrap();
    let mut parts = version.split('.').map(|p| p.parse().unwrap());
    (parts.next().unwrap(), parts.next().unwrap())
}
