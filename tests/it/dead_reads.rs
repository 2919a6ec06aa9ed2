//! Reading `P.dead` never drops a parked message, on every broker version
//! (contract section 6; `src/broker/dead_reads.rs`): from RabbitMQ 4.0 a
//! quorum queue has a default delivery limit of 20, and each read of the
//! `dead` commands returns the messages it looked at, so without the
//! unlimited `x-delivery-limit` of `P.dead` the 21st `dead list` emptied it.
//! A `P.dead` declared the old way (no `x-delivery-limit`) is still used,
//! and `check` and `declare` report it.

use lapin::{Connection, ConnectionProperties, options::QueueDeclareOptions, types::AMQPValue};
use webhook_worker::{
    broker::{
        retry_headers::{Parking, with_retry_headers},
        topology::QueueSpec,
    },
    domain::policy::DropReason,
};

use crate::harness::*;

/// Parks `ids` in `P.dead` as the worker parks them, in this order.
async fn park(broker: &Broker, ids: &[String]) {
    for id in ids {
        let body = event(id, 104, "http://receiver.example/hook", "{}");
        let parking = Parking {
            reason: DropReason::Expired,
            at_ms: 1_700_000_000_000,
        };
        let headers = with_retry_headers(None, 8, Some(1), Some("HTTP 500"), Some(parking));
        broker.park(&body, headers).await;
    }
}

/// The ids `dead list --json` prints, in order.
fn listed(prefix: &str) -> Vec<String> {
    let out = cli(&["dead", "list", "--json", "--prefix", prefix]);
    let (stdout, stderr) = printed(&out);
    assert!(out.status.success(), "{stderr}");
    stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect(l)["id"].to_string())
        .map(|id| id.trim_matches('"').to_string())
        .collect()
}

async fn parked_ids(broker: &Broker) -> Vec<String> {
    broker
        .peek(broker.topology.dead())
        .await
        .iter()
        .map(|d| {
            webhook_worker::domain::envelope::identify(&d.data)
                .0
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_dead_reads_keep_every_parked_message_in_place_and_in_order() {
    let prefix = unique_prefix("deadreads");
    let broker = Broker::new(&test_config(&prefix)).await;
    let ids: Vec<String> = (0..5).map(|i| format!("r-{i}")).collect();
    park(&broker, &ids).await;

    for read in 1..=30 {
        assert_eq!(listed(&prefix), ids, "dead list, read {read}");
        if read % 10 == 0 {
            let out = cli(&["dead", "stats", "--json", "--prefix", &prefix]);
            let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(stats["total"], 5, "dead stats, read {read}");
            let out = cli(&["dead", "show", "r-3", "--json", "--prefix", &prefix]);
            assert!(out.status.success(), "dead show, read {read}");
        }
    }
    assert_eq!(parked_ids(&broker).await, ids, "still parked, in order");
    broker.cleanup().await;
}

/// Declares `P.dead` as releases before the unlimited `x-delivery-limit`
/// did, on a connection of its own (returned, to close at the end).
async fn declare_legacy_dead(config: &webhook_worker::config::Config) -> (Connection, QueueSpec) {
    let dead = format!("{}.dead", config.names.prefix);
    let conn = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let old = config
        .topology()
        .queues()
        .into_iter()
        .find(|q| q.name == dead)
        .unwrap();
    let mut args = old.arguments.inner().clone();
    assert!(args.remove("x-delivery-limit").is_some());
    ch.queue_declare(
        dead.as_str().into(),
        QueueDeclareOptions::durable(),
        args.into(),
    )
    .await
    .unwrap();
    (conn, old)
}

/// `check` with the management API, as the test's P.dead line and its
/// exit code.
fn check_dead(prefix: &str) -> (Option<i32>, String) {
    let url = management_url();
    let args = ["--dead-ttl=600s", "--retry-schedule", "200ms*2,500ms"];
    let out = cli(&[
        &["check", "--prefix", prefix, "--management-url", &url],
        &args[..],
    ]
    .concat());
    let (stdout, stderr) = printed(&out);
    let dead = format!("{prefix}.dead");
    let line = stdout.lines().find(|l| l.contains(&dead));
    let line = line.unwrap_or_else(|| panic!("no {dead} line: {stdout}{stderr}"));
    (out.status.code(), line.trim().to_string())
}

/// The delivery limit a policy puts on `queue`, once in effect.
async fn policy_in_effect(queue: &str, limit: i64) {
    wait_for("the policy in effect", LONG, async || {
        let q = management_queue(queue).await;
        (q["effective_policy_definition"]["delivery-limit"] == limit).then_some(())
    })
    .await;
}

const LONG: std::time::Duration = std::time::Duration::from_secs(30);

/// AMQP cannot see policies; with `RABBITMQ_MANAGEMENT_URL` `check` does:
/// an old `P.dead` is reported exposed until a policy gives it an
/// unlimited `delivery-limit`, then ok; a new one is ok until a policy
/// lowers its limit (the lower of argument and policy counts), then exposed.
#[tokio::test(flavor = "multi_thread")]
async fn check_sees_the_policies_that_protect_or_expose_the_dead_queue() {
    let prefix = unique_prefix("deadpol");
    let config = test_config(&prefix);
    let (conn, _) = declare_legacy_dead(&config).await;
    let broker = Broker::new(&config).await;
    let dead = broker.topology.dead().to_string();
    let pattern = format!("^{}$", dead.replace('.', "\\."));
    let (code, line) = check_dead(&prefix);
    assert_eq!(code, Some(1), "{line}");
    assert!(
        line.starts_with("exposed") && line.contains("set_policy"),
        "{line}"
    );
    {
        let limit = serde_json::json!({"delivery-limit": i32::MAX});
        let _policy = Policy::set(&format!("{prefix}-reads"), &pattern, limit).await;
        policy_in_effect(&dead, i32::MAX.into()).await;
        let (code, line) = check_dead(&prefix);
        assert_eq!((code, line.starts_with("ok")), (Some(0), true), "{line}");
    }
    broker.cleanup().await;
    let _ = conn.close(200, "done".into()).await;

    let prefix = unique_prefix("deadpol");
    let broker = Broker::new(&test_config(&prefix)).await;
    assert_eq!(check_dead(&prefix).0, Some(0), "declared by this release");
    let dead = broker.topology.dead().to_string();
    let pattern = format!("^{}$", dead.replace('.', "\\."));
    let limit = serde_json::json!({"delivery-limit": 20});
    let policy = Policy::set(&format!("{prefix}-low"), &pattern, limit).await;
    policy_in_effect(&dead, 20).await;
    let (code, line) = check_dead(&prefix);
    assert_eq!(code, Some(1), "{line}");
    let name = format!("delivery-limit 20 (from policy {prefix}-low)");
    assert!(
        line.starts_with("exposed") && line.contains(&name),
        "{line}"
    );
    drop(policy);
    broker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_queue_declared_the_old_way_is_used_and_reported_as_exposed() {
    let prefix = unique_prefix("deadold");
    let config = test_config(&prefix);
    let dead = format!("{prefix}.dead");
    // P.dead as releases before the unlimited x-delivery-limit declared it.
    let (conn, old) = declare_legacy_dead(&config).await;

    // The worker's declaration accepts it (the harness declares as the
    // worker does), so nothing parked in it is stranded.
    let broker = Broker::new(&config).await;
    park(&broker, &["o-1".to_string()]).await;
    assert_eq!(listed(&prefix), ["o-1"]);

    let ttl = "--dead-ttl=600s";
    let out = cli(&[
        "check",
        "--prefix",
        &prefix,
        ttl,
        "--retry-schedule",
        "200ms*2,500ms",
    ]);
    let (stdout, _) = printed(&out);
    assert_eq!(out.status.code(), Some(1), "check reports it: {stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains(&dead))
        .unwrap_or_default();
    assert!(line.contains("exposed"), "{stdout}");
    assert!(line.contains("set_policy"), "names the remedy: {line}");

    let out = cli(&[
        "declare",
        "--prefix",
        &prefix,
        ttl,
        "--retry-schedule",
        "200ms*2,500ms",
    ]);
    let (_, stderr) = printed(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning") && stderr.contains(&dead),
        "{stderr}"
    );

    // Its arguments are what they were: nothing was redeclared.
    let q = management_queue(&dead).await;
    assert_eq!(q["arguments"].get("x-delivery-limit"), None, "{q}");
    assert!(matches!(
        old.arguments.inner().get("x-delivery-limit"),
        Some(AMQPValue::LongLongInt(_))
    ));
    broker.cleanup().await;
    let _ = conn.close(200, "done".into()).await;
}
