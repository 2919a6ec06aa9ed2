//! The `dead` selection against the real broker: on a mixed dead queue
//! (several reasons, webhooks, hosts and ages; fabricated with the headers
//! the worker writes, the broker's own `x-death`, and a few parked by a
//! real worker), each selector lists, counts, replays and purges exactly
//! its messages, and what is not selected stays in order with the time it
//! had left before `WEBHOOK_DEAD_TTL`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lapin::types::{AMQPValue, FieldTable};
use webhook_worker::{
    broker::retry_headers::{Parking, with_retry_headers},
    domain::policy::DropReason,
};

use crate::harness::*;

const LONG: Duration = Duration::from_secs(30);
const SECRET: &str = "whsec_dGVzdHNlY3JldDEyMw==";
const TOKEN: &str = "Bearer tok-8c1f";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms as u64)).to_string()
}

/// A parked message as the worker parks it (or, for `delivery_limit`, as
/// the broker does), `ago` before now, with a producer header and a body
/// holding a secret and an authorization header.
async fn park(broker: &Broker, id: &str, webhook: &str, host: &str, reason: &str, ago: Duration) {
    let at = now_ms() - ago.as_millis() as i64;
    let extra = format!(r#""secret":"{SECRET}","headers":{{"Authorization":"{TOKEN}"}}"#);
    let body = format!(
        r#"{{"id":"{id}","webhook":{webhook},"url":"http://{host}/hook","data":{{}},{extra}}}"#
    );
    let mut producer = FieldTable::default();
    producer.insert(
        "trace-id".into(),
        AMQPValue::LongString(format!("t-{id}").into()),
    );
    let headers = if reason == "delivery_limit" {
        let mut death = FieldTable::default();
        death.insert("reason".into(), AMQPValue::LongString(reason.into()));
        death.insert("time".into(), AMQPValue::Timestamp((at / 1000) as u64));
        death.insert("count".into(), AMQPValue::LongLongInt(1));
        producer.insert(
            "x-death".into(),
            AMQPValue::FieldArray(vec![AMQPValue::FieldTable(death)].into()),
        );
        producer
    } else {
        let reason = DropReason::ALL
            .into_iter()
            .find(|r| r.as_str() == reason)
            .unwrap();
        with_retry_headers(
            Some(&producer),
            2,
            Some(at - 60_000),
            Some("HTTP 500"),
            Some(Parking { reason, at_ms: at }),
        )
    };
    broker.park(body.as_bytes(), headers).await;
}

fn id_of(d: &lapin::message::Delivery) -> String {
    webhook_worker::domain::envelope::identify(&d.data)
        .0
        .unwrap_or_default()
}

async fn dead_ids(broker: &Broker) -> Vec<String> {
    broker
        .peek(broker.topology.dead())
        .await
        .iter()
        .map(id_of)
        .collect()
}

/// `dead list --json` with `args`: the ids, in order (every line parsed).
fn listed(prefix: &str, args: &[&str]) -> Vec<String> {
    let out = cli(&[&["dead", "list", "--json", "--prefix", prefix], args].concat());
    let (stdout, stderr) = printed(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stdout.contains("tok-8c1f") && !stdout.contains("dGVzdHNlY3JldDEyMw"),
        "{stdout}"
    );
    stdout
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect(l);
            for field in [
                "id",
                "webhook",
                "event",
                "host",
                "reason",
                "attempts",
                "last_error",
                "parked_at",
                "size",
            ] {
                assert!(v.get(field).is_some(), "{field} in {l}");
            }
            v["id"].as_str().unwrap_or("?").to_string()
        })
        .collect()
}

fn stats_total(prefix: &str, args: &[&str]) -> u64 {
    let out = cli(&[&["dead", "stats", "--json", "--prefix", prefix], args].concat());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["total"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_selector_lists_counts_replays_and_purges_exactly_its_messages() {
    let prefix = unique_prefix("deadsel");
    let config = test_config(&prefix);
    let broker = Broker::new(&config).await;
    let min = |m: u64| Duration::from_secs(60 * m);
    park(&broker, "m0", "104", "a.test", "gone", min(180)).await;
    park(&broker, "m1", "201", "b.test", "expired", min(120)).await;
    park(&broker, "m2", "201", "a.test", "gone", min(60)).await;
    park(&broker, "m3", "\"x\"", "nohost", "malformed", min(30)).await;
    park(&broker, "m4", "104", "b.test", "delivery_limit", min(10)).await;
    park(&broker, "m5", "105", "c.test", "too_large", min(0)).await;
    // And two that a real worker parks (a receiver that is gone).
    let receiver = Receiver::start(|_, _| Reply::status(410)).await;
    let worker = RunningWorker::start(config.clone()).await;
    for id in ["w0", "w1"] {
        broker
            .publish(&event(id, 109, &receiver.url("/w"), "{}"))
            .await;
        wait_for("parked by the worker", LONG, async || {
            dead_ids(&broker)
                .await
                .contains(&id.to_string())
                .then_some(())
        })
        .await;
    }
    worker.stop().await.unwrap();
    let all = dead_ids(&broker).await;
    assert_eq!(all, ["m0", "m1", "m2", "m3", "m4", "m5", "w0", "w1"]);

    let since = rfc3339(now_ms() - 150 * 60_000);
    let until = rfc3339(now_ms() - 45 * 60_000);
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec![], all.iter().map(String::as_str).collect()),
        (vec!["--reason", "gone"], vec!["m0", "m2", "w0", "w1"]),
        (vec!["--reason", "delivery_limit"], vec!["m4"]),
        (vec!["--webhook", "201"], vec!["m1", "m2"]),
        (vec!["--host", "A.test"], vec!["m0", "m2"]),
        (vec!["--host", "127.0.0.1"], vec!["w0", "w1"]),
        (vec!["--id", "m1", "--id", "m4"], vec!["m1", "m4"]),
        (
            vec!["--since", "90m"],
            vec!["m2", "m3", "m4", "m5", "w0", "w1"],
        ),
        (vec!["--until", "90m"], vec!["m0", "m1"]),
        (vec!["--since", &since, "--until", &until], vec!["m1", "m2"]),
        (vec!["--reason", "gone", "--webhook", "201"], vec!["m2"]),
        (vec!["--limit", "2"], vec!["m0", "m1"]),
    ];
    for (args, want) in &cases {
        assert_eq!(listed(&prefix, args), *want, "list {args:?}");
        assert_eq!(
            stats_total(&prefix, args),
            want.len() as u64,
            "stats {args:?}"
        );
        let out = cli(&[
            &["dead", "replay", "--dry-run", "--prefix", &prefix],
            &args[..],
        ]
        .concat());
        let (stdout, _) = printed(&out);
        assert!(
            stdout.contains(&format!("dry run: would replay {} message(s)", want.len())),
            "{args:?}: {stdout}"
        );
    }
    assert_eq!(dead_ids(&broker).await, all, "looking changes nothing");

    // stats: counts by reason, webhook and host.
    let out = cli(&["dead", "stats", "--json", "--prefix", &prefix]);
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["by_reason"]["gone"], 4);
    assert_eq!(stats["by_webhook"]["201"], 2);
    assert_eq!(stats["by_host"]["a.test"], 2);
    assert_eq!(
        stats["oldest_parked_at"].as_str().unwrap()[..13],
        rfc3339(now_ms() - 180 * 60_000)[..13]
    );

    // show: one message in full, secrets redacted.
    let out = cli(&["dead", "show", "m2", "--json", "--prefix", &prefix]);
    let (stdout, stderr) = printed(&out);
    assert!(out.status.success(), "{stderr}");
    let shown: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(shown["reason"], "gone");
    assert_eq!(shown["headers"]["webhook-drop-reason"], "gone");
    assert_eq!(shown["headers"]["trace-id"], "<redacted>");
    assert_eq!(shown["body"]["secret"], "<redacted>");
    assert_eq!(shown["body"]["headers"]["Authorization"], "<redacted>");
    let text = printed(&cli(&["dead", "show", "m2", "--prefix", &prefix])).0;
    assert!(
        text.contains("reason         gone")
            && !text.contains("tok-8c1f")
            && !text.contains(SECRET),
        "{text}"
    );
    assert_eq!(
        cli(&["dead", "show", "nope", "--prefix", &prefix])
            .status
            .code(),
        Some(1)
    );

    // replay --host a.test moves m0 and m2, with fresh retry state.
    let out = cli(&["dead", "replay", "--host", "a.test", "--prefix", &prefix]);
    let (stdout, stderr) = printed(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("replayed 2 message(s); 6 left parked\n  by reason: gone 2"),
        "{stdout}"
    );
    let moved = broker.drain(broker.topology.deliveries()).await;
    assert_eq!(moved.iter().map(id_of).collect::<Vec<_>>(), ["m0", "m2"]);
    for m in &moved {
        // (A quorum P.deliveries annotates what basic.get returns with its
        // own x-delivery-count, 0 here: not a header the replay wrote.)
        for gone in [
            "webhook-attempts",
            "webhook-first-attempt-ms",
            "webhook-drop-reason",
            "webhook-parked-at-ms",
            "x-death",
        ] {
            assert_eq!(header(m, gone), None, "{gone}");
        }
        assert!(header_str(m, "trace-id").unwrap().starts_with("t-m"));
    }
    // purge --reason malformed removes m3 only.
    let out = cli(&[
        "dead",
        "purge",
        "--yes",
        "--reason",
        "malformed",
        "--prefix",
        &prefix,
    ]);
    assert!(
        printed(&out)
            .0
            .contains("purged 1 message(s); 5 left parked"),
        "{:?}",
        printed(&out)
    );
    let left = broker.peek(broker.topology.dead()).await;
    assert_eq!(
        left.iter().map(id_of).collect::<Vec<_>>(),
        ["m1", "m4", "m5", "w0", "w1"]
    );
    assert_eq!(
        header_str(&left[0], "webhook-drop-reason").as_deref(),
        Some("expired"),
        "unchanged"
    );
    assert_eq!(header_str(&left[0], "trace-id").as_deref(), Some("t-m1"));
    broker.cleanup().await;
}

/// Unselected messages keep the expiry they had: with a 20 s dead TTL, the
/// ones parked at t0 are gone at t0 + 20 s, not 20 s after a replay or a
/// purge that left them behind.
async fn the_rest_keeps_its_order_and_its_time(mut config: webhook_worker::config::Config) {
    const TTL: Duration = Duration::from_secs(20);
    config.topology.dead_ttl = TTL;
    let prefix = config.names.prefix.clone();
    let broker = Broker::new(&config).await;
    let t0 = Instant::now();
    for (id, reason) in [
        ("u0", "expired"),
        ("s0", "gone"),
        ("u1", "expired"),
        ("p0", "too_large"),
        ("s1", "gone"),
        ("u2", "expired"),
    ] {
        park(&broker, id, "104", "a.test", reason, Duration::ZERO).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let out = cli(&["dead", "replay", "--reason", "gone", "--prefix", &prefix]);
    assert!(
        printed(&out)
            .0
            .contains("replayed 2 message(s); 4 left parked"),
        "{:?}",
        printed(&out)
    );
    let out = cli(&["dead", "purge", "--yes", "--id", "p0", "--prefix", &prefix]);
    assert!(
        printed(&out)
            .0
            .contains("purged 1 message(s); 3 left parked"),
        "{:?}",
        printed(&out)
    );
    assert_eq!(dead_ids(&broker).await, ["u0", "u1", "u2"]);

    tokio::time::sleep_until((t0 + TTL - Duration::from_secs(3)).into()).await;
    assert_eq!(
        dead_ids(&broker).await,
        ["u0", "u1", "u2"],
        "still there just before t0 + TTL"
    );
    let gone_at = wait_for("the rest to expire", LONG, async || {
        // The time before looking: a look that finds the queue empty
        // proves the messages were gone when it started.
        let at = t0.elapsed();
        dead_ids(&broker).await.is_empty().then_some(at)
    })
    .await;
    assert!(
        gone_at < TTL + Duration::from_millis(2500),
        "expired {gone_at:?} after t0: the TTL must not restart at the replay (t0 + 5 s)"
    );
    broker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rest_keeps_its_order_and_its_time_in_a_quorum_queue() {
    the_rest_keeps_its_order_and_its_time(test_config(&unique_prefix("deadttlq"))).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rest_keeps_its_order_and_its_time_in_a_classic_queue() {
    let mut config = test_config(&unique_prefix("deadttlc"));
    classic(&mut config);
    the_rest_keeps_its_order_and_its_time(config).await;
}
