//! `check` with the management API shows where each shard's leader is and
//! warns when they share a node they need not: three shards declared
//! through node a, their leaders placed by a `queue-leader-locator` policy
//! on the test's prefix (`client-local`: all on a; `balanced`: one per
//! node, as the docs advise for 3.x).

use super::*;

/// Puts the policy `queue-leader-locator: locator` on `prefix`'s queues
/// (through node a's management API); `None` removes it.
async fn leader_policy(prefix: &str, locator: Option<&str>) {
    let url = format!(
        "http://127.0.0.1:{}/api/policies/%2F/{prefix}-leaders",
        amqp_port(0) + 10_000
    );
    let client = reqwest::Client::new();
    let req = match locator {
        Some(l) => client
            .put(&url)
            .header("content-type", "application/json")
            .body(
                serde_json::json!({
                    "pattern": format!("^{prefix}\\."),
                    "definition": {"queue-leader-locator": l},
                    "apply-to": "queues",
                })
                .to_string(),
            ),
        None => client.delete(&url),
    };
    let resp = req.basic_auth("guest", Some("guest")).send().await.unwrap();
    assert!(resp.status().is_success(), "policy: {}", resp.status());
}

/// Deletes the queues an earlier run of the tests left on the cluster
/// (a crashed or killed run cannot clean up): `balanced` places a new
/// leader on the node with the fewest, so theirs would skew ours. Only
/// cluster tests use the cluster, one at a time (the caller holds the
/// turn), and this process's own prefixes carry its pid.
async fn delete_leftovers_of_earlier_runs() {
    let base = format!("http://127.0.0.1:{}/api/queues", amqp_port(0) + 10_000);
    let client = reqwest::Client::new();
    let listed = node_api(0, "queues?columns=name")
        .await
        .expect("node a's queues");
    let list: serde_json::Value = serde_json::from_slice(&listed.bytes().await.unwrap()).unwrap();
    let ours = format!("-{}-", std::process::id());
    for q in list.as_array().into_iter().flatten() {
        let Some(name) = q["name"].as_str() else {
            continue;
        };
        if name.starts_with("t-") && !name.contains(&ours) {
            let _ = client
                .delete(format!("{base}/%2F/{name}"))
                .basic_auth("guest", Some("guest"))
                .send()
                .await;
        }
    }
}

/// `check` of `prefix` with three shards, through node a: (stdout, stderr).
fn check_leaders(prefix: &str) -> (String, String) {
    let out = bin()
        .args(["check", "--prefix", prefix, "--shards", "3"])
        .args(["--retry-schedule", "200ms*2,500ms", "--dead-ttl", "10m"])
        .env("AMQP_URL", node_url(0))
        .env(
            "RABBITMQ_MANAGEMENT_URL",
            format!("http://127.0.0.1:{}", amqp_port(0) + 10_000),
        )
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(out.status.success(), "check: {}", text(&out.stderr));
    (text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn check_shows_the_shards_leaders_and_warns_when_they_share_a_node() {
    let _cluster = Cluster::take_turn().await;
    delete_leftovers_of_earlier_runs().await;
    for (locator, on, warned) in [("client-local", 1, true), ("balanced", 3, false)] {
        let prefix = unique_prefix(&format!("leaders-{locator}"));
        let mut config = test_config(&prefix);
        config.topology.shards = 3;
        leader_policy(&prefix, Some(locator)).await;
        let broker = Broker::on(&node_url(0), &config).await;
        let (stdout, stderr) = check_leaders(&prefix);
        broker.cleanup().await;
        leader_policy(&prefix, None).await;
        assert!(
            stdout.contains(&format!(
                "leaders of the work queues (on {on} of 3 running nodes)"
            )),
            "{locator}: {stdout}"
        );
        for k in 0..3 {
            assert!(
                stdout.contains(&format!("{prefix}.deliveries.{k}")),
                "{stdout}"
            );
        }
        assert_eq!(
            stderr.contains("work queues' leaders are on 1 of 3 running nodes"),
            warned,
            "{locator}: {stderr}"
        );
    }
}
