//! Sharded work queues (contract section 9) on the real broker: events of
//! one site land in one shard and their retries return to it; a worker
//! with another shard count is refused, by `declare` and by `check`;
//! nothing is lost across a kill -9 with four shards.
//!
//! Needs the `rabbitmq_consistent_hash_exchange` plugin on the broker
//! (`scripts/ensure-rabbitmq.sh` and `scripts/brokers.sh` enable it).

use std::{
    collections::{BTreeSet, HashMap},
    time::Duration,
};

use lapin::BasicProperties;
use webhook_worker::broker::{shards::HASH_PLUGIN, topology::TopologyError};

use crate::harness::*;

const LONG: Duration = Duration::from_secs(60);

/// Which shard holds each event id, read without consuming.
async fn shard_of_each_id(broker: &Broker) -> HashMap<String, String> {
    let mut at = HashMap::new();
    for queue in broker.topology.work_queues() {
        for d in broker.peek(&queue).await {
            let body: serde_json::Value = serde_json::from_slice(&d.data).unwrap();
            at.insert(body["id"].as_str().unwrap().to_string(), queue.clone());
        }
    }
    at
}

fn site_event(site: u32, n: u32, url: &str) -> (String, Vec<u8>) {
    let id = format!("s{site}-{n}");
    let body = event_with(&id, 104, url, "{}", &format!(r#""site_id":{site}"#));
    (site.to_string(), body)
}

#[tokio::test]
async fn a_sites_events_share_a_shard_and_their_retries_return_to_it() {
    const SITES: u32 = 12;
    const PER_SITE: u32 = 4;
    let total = (SITES * PER_SITE) as usize;
    let mut rig = Harness::new("shard-route")
        .config(|c| {
            c.topology.shards = 4;
            c.topology.retry_schedule = "1500ms".parse().unwrap();
        })
        .receiver(|_, _| Reply::status(500))
        .declare()
        .await;
    let url = rig.receiver().url("/s");
    let events = (0..SITES).flat_map(|s| (0..PER_SITE).map(move |n| (s, n)));
    rig.broker
        .publish_many_keyed(events.map(|(s, n)| site_event(s, n, &url)))
        .await;
    let before = shard_of_each_id(&rig.broker).await;
    assert_eq!(before.len(), total, "every event is in exactly one shard");
    for site in 0..SITES {
        let shards: BTreeSet<_> = (0..PER_SITE)
            .map(|n| before[&format!("s{site}-{n}")].clone())
            .collect();
        assert_eq!(shards.len(), 1, "site {site} spread over {shards:?}");
    }
    let used: BTreeSet<_> = before.values().collect();
    assert!(used.len() >= 2, "12 sites hashed onto one shard: {used:?}");

    // One failed attempt each, then the worker stops: the retry copies wait
    // in the shared tier and come back by themselves.
    rig.start_worker().await;
    rig.receiver().wait_requests(total, LONG).await;
    rig.worker().stop().await.unwrap();
    let broker = &rig.broker;
    let after = wait_for("every retry back in a shard", LONG, async || {
        let at = shard_of_each_id(broker).await;
        (at.len() == total).then_some(at)
    })
    .await;
    assert_eq!(after, before, "each retry returned to its own shard");
    for queue in broker.topology.work_queues() {
        for d in broker.peek(&queue).await {
            assert_eq!(header_int(&d, "webhook-attempts"), Some(1));
        }
    }
    assert_eq!(broker.depth(broker.topology.dead()).await, 0);
    rig.finish().await;
}

#[tokio::test]
async fn another_shard_count_is_refused_by_declare_and_check() {
    let rig = Harness::new("shard-count")
        .config(|c| c.topology.shards = 4)
        .declare()
        .await;
    let prefix = rig.prefix().to_string();
    for other in [1u16, 2, 8] {
        let topology = rig.config.topology().with_shards(other);
        match topology.declare(&rig.broker.conn).await {
            Err(TopologyError::Conflict {
                argument, detail, ..
            }) => {
                assert_eq!(argument, "shard count");
                assert!(detail.contains("4 shards"), "{detail}");
            }
            other => panic!("declared against 4 shards: {other:?}"),
        }
    }
    let check = |shards: &str| {
        cli(&[
            "check",
            "--prefix",
            &prefix,
            "--retry-schedule",
            "200ms*2,500ms",
            "--dead-ttl",
            "10m",
            "--shards",
            shards,
        ])
    };
    let out = check("2");
    let (stdout, _) = printed(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("shard count"), "{stdout}");
    let out = check("4");
    let (stdout, stderr) = printed(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("ok       plugin {HASH_PLUGIN}")),
        "{stdout}"
    );
    let out = cli(&[
        "declare",
        "--prefix",
        &prefix,
        "--retry-schedule",
        "200ms*2,500ms",
        "--dead-ttl",
        "10m",
        "--shards",
        "1",
    ]);
    let (_, stderr) = printed(&out);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr.contains("shard count"), "{stderr}");
    rig.finish().await;
}

#[tokio::test]
async fn kill_9_with_four_shards_loses_nothing() {
    let rig = Harness::new("shard-kill9")
        .alone()
        .config(|c| c.topology.shards = 4)
        .receiver(|_, _| Reply::ok().after(Duration::from_millis(20)))
        .declare()
        .await;
    let (broker, receiver, prefix) = (&rig.broker, rig.receiver(), rig.prefix());
    const N: u32 = 2000;
    let url = receiver.url("/k");
    broker
        .publish_many_keyed((0..N).map(|i| site_event(i % 40, i / 40, &url)))
        .await;
    let args = ["--concurrency", "100", "--shards", "4"];
    let first = WorkerProcess::start(prefix, &args, &[]).await;
    let before = first.kill_9_after(receiver, 300).await;
    assert!(before < N as usize, "killed mid-flight ({before} of {N})");

    let second = WorkerProcess::start(prefix, &args, &[]).await;
    let seen = receiver.wait_ids(N as usize, LONG).await;
    let duplicates: usize = seen.values().map(|c| c - 1).sum();
    // Each shard's channel may hold up to the prefetch unacked; the slots
    // bound what was in flight at the kill.
    assert!(
        duplicates <= 4 * 100,
        "at most the unacked window is delivered again, got {duplicates}"
    );
    for queue in broker.topology.work_queues() {
        wait_for(&format!("{queue} empty"), LONG, async || {
            (broker.depth(&queue).await == 0).then_some(())
        })
        .await;
    }
    assert_eq!(broker.depth(broker.topology.dead()).await, 0, "none parked");
    drop(second);
    rig.finish().await;
}

#[tokio::test]
async fn dead_replay_puts_a_message_back_into_its_sites_shard() {
    let mut rig = Harness::new("shard-replay")
        .config(|c| c.topology.shards = 4)
        .ok_receiver()
        .declare()
        .await;
    let url = rig.receiver().url("/r");
    let (key, body) = site_event(7, 0, &url);
    rig.broker
        .publish_keyed(&key, &body, BasicProperties::default())
        .await;
    let home = shard_of_each_id(&rig.broker).await["s7-0"].clone();
    // Park it as the worker would, then replay it.
    let moved = rig.broker.drain(&home).await;
    assert_eq!(moved.len(), 1);
    let dead = rig.broker.topology.dead().to_string();
    rig.broker
        .publish_to(&dead, &moved[0].data, BasicProperties::default())
        .await;
    let prefix = rig.prefix().to_string();
    let out = cli(&["dead", "replay", "--prefix", &prefix]);
    let (stdout, stderr) = printed(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(shard_of_each_id(&rig.broker).await["s7-0"], home);
    rig.start_worker().await;
    rig.receiver().wait_requests(1, LONG).await;
    rig.finish().await;
}

/// `reshard` with the given count, the test's tiers and dead TTL.
fn reshard(prefix: &str, shards: &str) -> String {
    let out = cli(&[
        "reshard",
        "--prefix",
        prefix,
        "--retry-schedule",
        "3s",
        "--dead-ttl",
        "10m",
        "--shards",
        shards,
    ]);
    let (stdout, stderr) = printed(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    stdout
}

#[tokio::test]
async fn resharding_1_4_2_1_loses_nothing() {
    let mut rig = Harness::new("reshard")
        .config(|c| c.topology.retry_schedule = "3s".parse().unwrap())
        .ok_receiver()
        .declare()
        .await;
    let url = rig.receiver().url("/r");
    let prefix = rig.prefix().to_string();
    let tier = rig
        .broker
        .topology
        .retry_queue(rig.broker.topology.tiers().iter().next().unwrap().0);
    // A backlog in P.deliveries, and retries waiting in the tier.
    rig.broker
        .publish_many_keyed((0..200).map(|i| site_event(i % 30, i, &url)))
        .await;
    for i in 0..20 {
        let (_, body) = site_event(i, 1000 + i, &url);
        rig.broker
            .publish_to(&tier, &body, BasicProperties::default())
            .await;
    }
    let out = reshard(&prefix, "4");
    assert!(
        out.contains("deleted") && out.contains(".deliveries"),
        "{out}"
    );
    let topology = rig.config.topology().with_shards(4);
    let queued: u32 = {
        let mut n = 0;
        for q in topology.work_queues() {
            n += rig.broker.depth(&q).await;
        }
        n
    };
    assert!(queued >= 200, "the backlog is in the shards ({queued})");
    // Events published while there are four shards.
    rig.broker
        .publish_many_keyed((0..50).map(|i| site_event(i % 7, 2000 + i, &url)))
        .await;
    reshard(&prefix, "2");
    reshard(&prefix, "1");
    let out = cli(&[
        "check",
        "--prefix",
        &prefix,
        "--retry-schedule",
        "3s",
        "--dead-ttl",
        "10m",
    ]);
    let (stdout, stderr) = printed(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");

    rig.start_worker().await;
    let total = 200 + 20 + 50;
    let seen = wait_for("every event delivered", LONG, async || {
        let mut ids = BTreeSet::new();
        for r in rig.receiver().requests() {
            ids.insert(r.header("x-comm100-delivery-id").to_string());
        }
        (ids.len() == total).then_some(ids)
    })
    .await;
    assert_eq!(seen.len(), total);
    assert_eq!(
        rig.receiver().requests().len(),
        total,
        "nothing delivered twice (no producer published during a change)"
    );
    assert_eq!(rig.broker.depth(rig.broker.topology.dead()).await, 0);
    rig.finish().await;
}

#[tokio::test]
async fn a_burst_in_one_shard_does_not_hold_back_the_others() {
    const BURST: u32 = 1000;
    let mut rig = Harness::new("shard-fair")
        .config(|c| {
            c.topology.shards = 4;
            c.delivery.concurrency = 8;
        })
        .receiver(|_, _| Reply::ok().after(Duration::from_millis(20)))
        .declare()
        .await;
    let url = rig.receiver().url("/f");
    // The burst first: without shards, everything after it would wait for
    // all of it (1000 × 20 ms ÷ 8 slots = 2.5 s).
    rig.broker
        .publish_many_keyed((0..BURST).map(|n| site_event(1, n, &url)))
        .await;
    rig.broker
        .publish_many_keyed((2..10).map(|site| site_event(site, 0, &url)))
        .await;
    let at = shard_of_each_id(&rig.broker).await;
    let burst_shard = at["s1-0"].clone();
    let others: Vec<String> = (2..10)
        .map(|site| format!("s{site}-0"))
        .filter(|id| at[id] != burst_shard)
        .collect();
    assert!(!others.is_empty(), "every site hashed with the burst");

    rig.start_worker().await;
    let receiver = rig.receiver();
    let burst_done = wait_for("the other shards' events", LONG, async || {
        let requests = receiver.requests();
        let seen: BTreeSet<&str> = requests
            .iter()
            .map(|r| r.header("x-comm100-delivery-id"))
            .collect();
        let burst = requests
            .iter()
            .filter(|r| r.header("x-comm100-delivery-id").starts_with("s1-"))
            .count();
        others
            .iter()
            .all(|id| seen.contains(id.as_str()))
            .then_some(burst)
    })
    .await;
    assert!(
        burst_done < (BURST / 4) as usize,
        "the other shards waited for {burst_done} of the burst's {BURST} events"
    );
    receiver.wait_requests(BURST as usize + 8, LONG).await;
    rig.finish().await;
}
