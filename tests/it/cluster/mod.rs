//! The worker on a three-node RabbitMQ cluster (`scripts/cluster.sh start`:
//! rabbit-a/b/c@localhost on 5681–5683, management on 15681–15683; with
//! `CLUSTER_VERSION=4.3`, RabbitMQ 4.3's rabbit-a43/b43/c43 on 5745–5747), with
//! events flowing to a receiver while nodes die: the node the worker is
//! connected to (kill -9 and stop_app), the queue's leader while the worker
//! is on a follower, and every node at once. Every event is counted: each
//! id arrives, none is parked.
//!
//! The tests take turns (they stop nodes of one shared cluster), stop one
//! node at a time where the queue must make progress (a quorum queue needs
//! two of three), and a guard brings every node back even when a test
//! fails. They run alone ([`Alone`]): a node kill and reboot loads the
//! two cores, and another rig's timing would suffer. Which node the
//! worker is on comes from the management API (its two connections are
//! named `webhook-worker <version> prefix <P> pid <pid> consuming` and
//! `… publishing`). A memory alarm, set off on one node and cleared by the
//! test (or by the guard), blocks the cluster's publishing connections
//! ([`alarm`]).

use std::{collections::HashMap, sync::Mutex, time::Duration};

use crate::harness::*;

mod alarm;
mod flow;
mod leaders;
mod node_loss;
mod outage;

const NODES: usize = 3;
const LONG: Duration = Duration::from_secs(120);
/// Longest pause in deliveries a node loss may cause.
const MAX_GAP: Duration = Duration::from_secs(5);

/// The tests stop nodes of one cluster: one at a time.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The cluster under test: `scripts/cluster.sh`'s RabbitMQ 3.10 nodes, or
/// with `CLUSTER_VERSION=4.3` its 4.3 nodes (the script, run by the tests,
/// reads the same variable): AMQP port of node `i`; management is 10 000
/// above.
fn amqp_port(i: usize) -> usize {
    match std::env::var("CLUSTER_VERSION").as_deref() {
        Ok("4.3") => 5745 + i,
        _ => 5681 + i,
    }
}

fn node_url(i: usize) -> String {
    format!("amqp://guest:guest@127.0.0.1:{}/%2f", amqp_port(i))
}

fn urls(nodes: &[usize]) -> String {
    let list: Vec<String> = nodes.iter().map(|&i| node_url(i)).collect();
    list.join(",")
}

fn node_letter(i: usize) -> &'static str {
    ["a", "b", "c"][i]
}

fn node_index(name: &str) -> usize {
    match name.trim_end_matches("@localhost").trim_end_matches("43") {
        "rabbit-a" => 0,
        "rabbit-b" => 1,
        "rabbit-c" => 2,
        _ => panic!("not a node of the test cluster: {name}"),
    }
}

fn script(args: &[&str]) -> bool {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cluster.sh");
    std::process::Command::new(path)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

async fn script_async(args: &[&str]) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let ok = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        script(&args)
    })
    .await
    .unwrap();
    assert!(ok, "scripts/cluster.sh failed");
}

/// How a node was taken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Down {
    Killed,
    AppStopped,
}

/// Takes nodes down and brings them back; whatever is still down when it
/// is dropped (a failed test) is brought back then.
struct Cluster {
    down: Mutex<HashMap<usize, Down>>,
    /// Nodes with a memory alarm set off by the test.
    alarmed: Mutex<Vec<usize>>,
    _turn: tokio::sync::MutexGuard<'static, ()>,
    _alone: Alone,
}

impl Cluster {
    /// Waits for this test's turn and for every node to serve.
    async fn take_turn() -> Self {
        let turn = TURN.lock().await;
        let alone = Alone::take().await;
        let cluster = Self {
            down: Mutex::new(HashMap::new()),
            alarmed: Mutex::new(Vec::new()),
            _turn: turn,
            _alone: alone,
        };
        wait_for(
            "all three cluster nodes up (scripts/cluster.sh start)",
            LONG,
            async || {
                for i in 0..NODES {
                    let nodes: Vec<serde_json::Value> =
                        serde_json::from_slice(&node_api(i, "nodes").await?.bytes().await.ok()?)
                            .ok()?;
                    let running = nodes.iter().filter(|n| n["running"] == true).count();
                    if running < NODES {
                        return None;
                    }
                }
                Some(())
            },
        )
        .await;
        cluster
    }

    async fn kill(&self, i: usize) {
        self.down.lock().unwrap().insert(i, Down::Killed);
        script_async(&["kill", node_letter(i)]).await;
    }

    async fn stop_app(&self, i: usize) {
        self.down.lock().unwrap().insert(i, Down::AppStopped);
        script_async(&["stop-app", node_letter(i)]).await;
    }

    /// Sets off a memory alarm on node `i`: the cluster blocks every
    /// connection that publishes. Returns once the node reports it.
    async fn memory_alarm(&self, i: usize) {
        self.alarmed.lock().unwrap().push(i);
        script_async(&["memory-alarm", node_letter(i), "on"]).await;
    }

    /// Clears the memory alarm of node `i`; returns once the node reports
    /// it cleared (the script waits for that).
    async fn clear_memory_alarm(&self, i: usize) {
        script_async(&["memory-alarm", node_letter(i), "off"]).await;
        self.alarmed.lock().unwrap().retain(|&n| n != i);
    }

    /// Brings a node back and waits until it serves.
    async fn restore(&self, i: usize) {
        let how = self.down.lock().unwrap().get(&i).copied();
        match how {
            Some(Down::Killed) => script_async(&["restart", node_letter(i)]).await,
            Some(Down::AppStopped) => script_async(&["start-app", node_letter(i)]).await,
            None => return,
        }
        self.down.lock().unwrap().remove(&i);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in self.alarmed.lock().unwrap().drain(..) {
            script(&["memory-alarm", node_letter(i), "off"]);
        }
        // Together: a clustered node waits at boot for its peers.
        let down: Vec<(usize, Down)> = self.down.lock().unwrap().drain().collect();
        let starts: Vec<_> = down
            .into_iter()
            .map(|(i, how)| {
                let verb = match how {
                    Down::Killed => "restart",
                    Down::AppStopped => "start-app",
                };
                std::thread::spawn(move || script(&[verb, node_letter(i)]))
            })
            .collect();
        for s in starts {
            let _ = s.join();
        }
    }
}

/// One call to the management API of node `i` (None while it is down).
async fn node_api(i: usize, path: &str) -> Option<reqwest::Response> {
    let resp = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{}/api/{path}",
            amqp_port(i) + 10_000
        ))
        .basic_auth("guest", Some("guest"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    resp.status().is_success().then_some(resp)
}

/// A GET on the management API of any node that answers.
async fn any_api(path: &str) -> Option<serde_json::Value> {
    for i in 0..NODES {
        if let Some(r) = node_api(i, path).await
            && let Ok(bytes) = r.bytes().await
            && let Ok(v) = serde_json::from_slice(&bytes)
        {
            return Some(v);
        }
    }
    None
}

/// The node the worker with `prefix` is connected to, once listed (on a
/// node other than `not`, when given: the worker has moved).
async fn worker_node(prefix: &str, not: Option<usize>) -> usize {
    let tag = format!("prefix {prefix} ");
    wait_for("the worker's connection listed", LONG, async || {
        let conns = any_api("connections").await?;
        conns.as_array()?.iter().find_map(|c| {
            let name = c["client_properties"]["connection_name"].as_str()?;
            let node = node_index(c["node"].as_str()?);
            (name.contains(&tag) && Some(node) != not).then_some(node)
        })
    })
    .await
}

/// The node leading the quorum queue.
async fn leader(queue: &str) -> usize {
    wait_for("the queue's leader", LONG, async || {
        let q = any_api(&format!("queues/%2f/{queue}")).await?;
        let node = q["leader"].as_str().or(q["node"].as_str())?;
        Some(node_index(node))
    })
    .await
}
