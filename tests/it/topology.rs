//! Topology as the broker sees it (read back through the management API),
//! declaration conflicts, and the `declare` command.

use lapin::{
    Connection, ConnectionProperties,
    options::QueueDeclareOptions,
    types::{AMQPValue, FieldTable},
};
use serde_json::json;
use webhook_worker::broker::channel;

use crate::harness::*;

/// A queue's arguments as the management API shows them, but the
/// `x-queue-type: classic` that RabbitMQ 4.x records for a classic queue
/// declared without one (3.10 records nothing).
fn arguments(q: &serde_json::Value) -> serde_json::Value {
    let mut args = q["arguments"].clone();
    if let Some(map) = args.as_object_mut()
        && map.get("x-queue-type") == Some(&json!("classic"))
    {
        map.remove("x-queue-type");
    }
    args
}

#[tokio::test]
async fn quorum_arguments_read_back_from_the_broker() {
    let prefix = unique_prefix("topo-q");
    let status = bin()
        .args([
            "declare",
            "--prefix",
            &prefix,
            "--retry-schedule",
            "60s*3,1h*3,24h*3,90s,1500ms",
        ])
        .env("AMQP_URL", amqp_url())
        .status()
        .unwrap();
    assert!(status.success());
    let config = test_config(&prefix);
    let broker = Broker::new(&{
        let mut c = config.clone();
        c.topology.retry_schedule = "60s*3,1h*3,24h*3,90s,1500ms".parse().unwrap();
        c.topology.dead_ttl = std::time::Duration::from_secs(7 * 86400);
        c
    })
    .await;

    let q = management_queue(&format!("{prefix}.deliveries")).await;
    assert_eq!(q["type"], "quorum");
    assert_eq!(q["durable"], true);
    assert_eq!(
        q["arguments"],
        json!({
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": format!("{prefix}.dead"),
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
            "x-delivery-limit": 10
        })
    );
    for (suffix, ttl) in [
        ("60s", 60_000),
        ("90s", 90_000),
        ("1h", 3_600_000),
        ("24h", 86_400_000),
        ("1500ms", 1500),
    ] {
        let q = management_queue(&format!("{prefix}.retry.{suffix}")).await;
        assert_eq!(
            q["arguments"],
            json!({
                "x-queue-type": "quorum",
                "x-message-ttl": ttl,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": format!("{prefix}.deliveries"),
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish"
            }),
            "retry tier {suffix}"
        );
    }
    let q = management_queue(&format!("{prefix}.dead")).await;
    assert_eq!(
        q["arguments"],
        json!({"x-queue-type": "quorum", "x-message-ttl": 604_800_000, "x-delivery-limit": 2_147_483_647})
    );

    // Bound to the fanout exchange, which is durable.
    let ex: serde_json::Value = management_json(&format!("exchanges/%2f/{prefix}")).await;
    assert_eq!(
        (ex["type"].as_str(), ex["durable"].as_bool()),
        (Some("fanout"), Some(true))
    );

    // Declaring again is a no-op.
    assert!(
        bin()
            .args([
                "declare",
                "--prefix",
                &prefix,
                "--retry-schedule",
                "60s*3,1h*3,24h*3,90s,1500ms"
            ])
            .status()
            .unwrap()
            .success()
    );
    broker.cleanup().await;
}

#[tokio::test]
async fn classic_arguments_read_back_from_the_broker() {
    let rig = Harness::new("topo-c").config(classic).declare().await;
    let prefix = rig.prefix();
    let q = management_queue(&format!("{prefix}.deliveries")).await;
    assert_eq!(q["type"], "classic");
    assert_eq!(arguments(&q), json!({}));
    let q = management_queue(&format!("{prefix}.retry.200ms")).await;
    assert_eq!(
        arguments(&q),
        json!({"x-message-ttl": 200, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": format!("{prefix}.deliveries")})
    );
    let q = management_queue(&format!("{prefix}.dead")).await;
    assert_eq!(arguments(&q), json!({"x-message-ttl": 600_000}));
    rig.finish().await;
}

#[tokio::test]
async fn a_conflicting_queue_is_reported_and_left_alone() {
    let prefix = unique_prefix("conflict");
    // Someone created the retry tier with another TTL.
    let conn = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let mut args = FieldTable::default();
    args.insert("x-message-ttl".into(), AMQPValue::LongInt(1234));
    let tier = format!("{prefix}.retry.60s");
    ch.queue_declare(tier.as_str().into(), QueueDeclareOptions::durable(), args)
        .await
        .unwrap();

    let out = bin()
        .args(["declare", "--prefix", &prefix, "--queue-type", "classic"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "declare must fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("queue '{tier}'")),
        "names the queue: {stderr}"
    );
    assert!(
        stderr.contains("'x-message-ttl'"),
        "names the argument: {stderr}"
    );

    // `run` fails the same way rather than reconnecting forever.
    let out = bin()
        .args([
            "run",
            "--prefix",
            &prefix,
            "--queue-type",
            "classic",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("'x-message-ttl'"));

    // Nothing was deleted: the queue still has its own TTL.
    let q = management_queue(&tier).await;
    assert_eq!(arguments(&q), json!({"x-message-ttl": 1234}));

    let queues: Vec<String> = [
        "retry.60s",
        "retry.1h",
        "retry.24h",
        "deliveries",
        "dead",
        "log",
    ]
    .iter()
    .map(|q| format!("{prefix}.{q}"))
    .collect();
    let exchanges = [prefix.clone(), format!("{prefix}.outcomes")];
    delete_named(&conn, &queues, &exchanges).await;
}

#[test]
fn bad_settings_are_one_error_line_and_exit_2() {
    for (flag, value) in [
        ("--retry-schedule", "60s*x"),
        ("--timeout", "ten seconds"),
        ("--queue-type", "stream"),
        ("--max-age", "0s"),
        ("--concurrency", "0"),
        ("--metrics-addr", "nowhere"),
    ] {
        let out = bin().args(["run", flag, value]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr
                .lines()
                .next()
                .unwrap()
                .starts_with("error: invalid value"),
            "{flag}: {stderr}"
        );
    }
    // Environment variables are read, and the flag wins over them.
    let out = bin()
        .env("WEBHOOK_RETRY_SCHEDULE", "nope")
        .arg("declare")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bin()
        .env("WEBHOOK_SIGNING_SECRET", "whsec_***")
        .args(["run", "--metrics-addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("***"),
        "the secret is not echoed"
    );
}

/// The probe of a sharded declaration closes channels at the broker (a
/// passive declare's `NOT_FOUND`), and lapin keeps that error under the
/// channel's id. Once the connection has opened `channel_max` channels the
/// ids wrap, and `broker::channel::open` must still open working channels
/// (the fairness benchmark's probe failed here with a stale `NOT_FOUND`).
#[tokio::test]
async fn channels_open_after_the_ids_wrap_past_ones_the_broker_closed() {
    let rig = Harness::new("chan-wrap")
        .config(|c| c.topology.shards = 4)
        .declare()
        .await;
    let conn = &rig.broker.conn;
    let max = conn.configuration().channel_max();
    assert!(max > 0, "the broker bounds channel ids");
    let shard = rig.broker.topology.work_queues()[0].clone();
    let mut ids = Vec::new();
    for _ in 0..=max {
        let ch = channel::open(conn).await.expect("a channel opens");
        ids.push(ch.id());
        ch.close(200, "".into()).await.unwrap();
    }
    let wrapped = ids.windows(2).any(|w| w[1] < w[0]);
    assert!(wrapped, "channel ids wrapped: {:?}", &ids[ids.len() - 3..]);
    // a channel after the wrap works
    let ch = channel::open(conn).await.unwrap();
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    ch.queue_declare(shard.as_str().into(), passive, FieldTable::default())
        .await
        .expect("a passive declare on a fresh channel");
    rig.finish().await;
}

/// The missing-plugin path of `declare` and `check` hangs on recognising
/// the broker's refusal of an exchange type it does not know (a broker
/// without `rabbitmq_consistent_hash_exchange` refuses `x-consistent-hash`
/// so). The shared test brokers all run the plugin, so the refusal is
/// provoked with a type no broker knows: the same reply, on every version
/// of the matrix.
#[tokio::test]
async fn an_unknown_exchange_type_is_recognised_as_a_missing_plugin() {
    let prefix = unique_prefix("no-plugin");
    let conn = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let ch = channel::open(&conn).await.unwrap();
    let err = ch
        .exchange_declare(
            format!("{prefix}.shards").as_str().into(),
            lapin::ExchangeKind::Custom("x-webhook-worker-no-such-type".into()),
            lapin::options::ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect_err("the broker refuses an unknown exchange type");
    assert!(
        webhook_worker::broker::shards::is_missing_plugin(&err),
        "not recognised: {err}"
    );
    let _ = conn.close(200, "".into()).await;
}
