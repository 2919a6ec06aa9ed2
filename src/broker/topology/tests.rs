use super::*;
use crate::domain::schedule::RetrySchedule;

fn args(spec: &QueueSpec) -> Vec<(String, AMQPValue)> {
    spec.arguments
        .inner()
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn s(v: &str) -> AMQPValue {
    AMQPValue::LongString(v.into())
}

#[test]
fn quorum_topology() {
    let tiers = "60s*3,1h*3,24h*3".parse::<RetrySchedule>().unwrap().tiers();
    let t = Topology::new(
        "webhooks",
        QueueType::Quorum,
        &tiers,
        Duration::from_secs(7 * 86400),
        10,
    );
    let q = t.queues();
    let names: Vec<_> = q.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "webhooks.deliveries",
            "webhooks.retry.60s",
            "webhooks.retry.1h",
            "webhooks.retry.24h",
            "webhooks.dead"
        ]
    );
    assert_eq!(
        args(&q[0]),
        vec![
            ("x-dead-letter-exchange".into(), s("")),
            ("x-dead-letter-routing-key".into(), s("webhooks.dead")),
            ("x-dead-letter-strategy".into(), s("at-least-once")),
            ("x-delivery-limit".into(), AMQPValue::LongLongInt(10)),
            ("x-overflow".into(), s("reject-publish")),
            ("x-queue-type".into(), s("quorum")),
        ]
    );
    assert_eq!(
        args(&q[2]),
        vec![
            ("x-dead-letter-exchange".into(), s("")),
            ("x-dead-letter-routing-key".into(), s("webhooks.deliveries")),
            ("x-dead-letter-strategy".into(), s("at-least-once")),
            ("x-message-ttl".into(), AMQPValue::LongLongInt(3_600_000)),
            ("x-overflow".into(), s("reject-publish")),
            ("x-queue-type".into(), s("quorum")),
        ]
    );
    assert_eq!(
        args(&q[4]),
        vec![
            (
                "x-delivery-limit".into(),
                AMQPValue::LongLongInt(2_147_483_647)
            ),
            ("x-message-ttl".into(), AMQPValue::LongLongInt(604_800_000)),
            ("x-queue-type".into(), s("quorum"))
        ]
    );
}

#[test]
fn the_log_is_a_stream_with_retention() {
    let tiers = "60s".parse::<RetrySchedule>().unwrap().tiers();
    let t = Topology::new("p", QueueType::Classic, &tiers, Duration::from_secs(60), 10);
    assert!(!t.has_log());
    assert_eq!(t.queues().len(), 3, "no P.log unless configured");
    let t = t.with_log(
        LogRetention::Keep(Duration::from_secs(7 * 86400)),
        5_000_000_000,
    );
    let q = t.queues();
    assert_eq!(q[3].name, "p.log");
    assert_eq!(t.outcomes(), "p.outcomes");
    assert_eq!(
        args(&q[3]),
        vec![
            ("x-max-age".into(), s("7D")),
            (
                "x-max-length-bytes".into(),
                AMQPValue::LongLongInt(5_000_000_000)
            ),
            ("x-queue-type".into(), s("stream")),
            (
                "x-stream-max-segment-size-bytes".into(),
                AMQPValue::LongLongInt(100_000_000)
            ),
        ]
    );
    for (secs, arg) in [(7200, "2h"), (90, "90s"), (600, "10m"), (86400, "1D")] {
        assert_eq!(max_age_argument(Duration::from_secs(secs)), arg);
    }
}

#[test]
fn classic_topology_has_only_ttl_and_dead_lettering() {
    let t = Topology::new(
        "p",
        QueueType::Classic,
        &"500ms".parse::<RetrySchedule>().unwrap().tiers(),
        Duration::from_secs(60),
        10,
    );
    let q = t.queues();
    assert!(q[0].arguments.inner().is_empty());
    assert_eq!(q[1].name, "p.retry.500ms");
    assert_eq!(
        args(&q[1]),
        vec![
            ("x-dead-letter-exchange".into(), s("")),
            ("x-dead-letter-routing-key".into(), s("p.deliveries")),
            ("x-message-ttl".into(), AMQPValue::LongLongInt(500)),
        ]
    );
    assert_eq!(
        args(&q[2]),
        vec![("x-message-ttl".into(), AMQPValue::LongLongInt(60_000))]
    );
}
