//! A `dead` read killed midway (contract section 6): the `dead` commands
//! walk `P.dead` by holding every message unacked and returning them one by
//! one (`src/broker/dead_letters/scan.rs`); a SIGKILL while they are held
//! leaves the broker to return them when the connection drops.
//!
//! Measured on RabbitMQ 3.10, 4.0 and 4.3: nothing is dropped or
//! duplicated on either queue type, and a classic `P.dead` keeps its
//! order. A quorum queue puts a closed channel's unacked messages back in
//! an order of its own (even ten of them), ahead of what it still held:
//! no client-side mechanism built on `basic.get` keeps the order through a
//! kill (a walk must hold every message it passed, since a returned
//! message goes back to the front), so a quorum `P.dead` read killed
//! midway keeps every message but may reorder the ones it held.

use std::{
    process::{Child, Stdio},
    time::Duration,
};

use lapin::{
    BasicProperties,
    options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions},
    types::FieldTable,
};

use crate::harness::*;

/// Parked messages: enough that a read takes a second or more to walk
/// them, so the kill lands while it holds some.
const N: usize = 1000;
const LONG: Duration = Duration::from_secs(60);

/// Parks `ids` in `P.dead` in this order (confirms pipelined).
async fn park_many(broker: &Broker, ids: &[String]) {
    let dead = broker.topology.dead().to_string();
    let mut pending = Vec::new();
    for id in ids {
        let body = event(id, 104, "http://receiver.example/hook", "{}");
        let props = BasicProperties::default().with_delivery_mode(2);
        let publish = broker.channel.basic_publish(
            "".into(),
            dead.as_str().into(),
            BasicPublishOptions::default(),
            &body,
            props,
        );
        pending.push(publish.await.unwrap());
    }
    for p in pending {
        assert!(p.await.unwrap().is_ack());
    }
}

fn ids_of(ds: &[lapin::message::Delivery]) -> Vec<String> {
    ds.iter()
        .map(|d| {
            webhook_worker::domain::envelope::identify(&d.data)
                .0
                .unwrap_or_default()
        })
        .collect()
}

/// Where the read is when it is killed.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// Half the queue taken (held), half still ready.
    Walking,
    /// Everything was held; a third is back already.
    Returning,
}

/// Whether the kill landed.
#[derive(Debug, PartialEq, Eq)]
enum Kill {
    /// Killed at the point asked for.
    Landed,
    /// The read ended before that point was seen (a loaded machine): it
    /// returned everything itself, and the kill is tried again.
    Missed,
}

/// Starts `webhook-worker dead <command>` and SIGKILLs it at `at`, watching
/// the depth of `P.dead` from a channel of the test's own, without a pause
/// (wait_for's 25 ms would miss the moment).
async fn kill_read_at(broker: &Broker, command: &str, at: KillAt) -> Kill {
    let dead = broker.topology.dead();
    let probe = broker.conn.create_channel().await.unwrap();
    let mut child: Child = bin()
        .args(["dead", command, "--json", "--prefix", &broker.prefix])
        .env("AMQP_URL", amqp_url())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (n, start) = (N as u32, std::time::Instant::now());
    let mut lowest = u32::MAX;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    loop {
        let q = probe.queue_declare(dead.into(), passive, FieldTable::default());
        let depth = q.await.unwrap().message_count();
        lowest = lowest.min(depth);
        let reached = match at {
            KillAt::Walking => depth <= n / 2,
            KillAt::Returning => lowest < n / 10 && depth > n / 3,
        };
        if reached {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            return Kill::Missed;
        }
        assert!(start.elapsed() < LONG, "the read never got {at:?}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = probe.close(200, "killed".into()).await;
    Kill::Landed
}

/// Parks `N` messages, kills a read at `at`, and returns what was parked
/// and what `P.dead` holds once the broker has put everything back.
async fn parked_after_a_kill(
    config: webhook_worker::config::Config,
    command: &str,
    at: KillAt,
) -> (Vec<String>, Vec<String>) {
    let broker = Broker::new(&config).await;
    let ids: Vec<String> = (0..N).map(|i| format!("k-{i:04}")).collect();
    park_many(&broker, &ids).await;
    let dead = broker.topology.dead().to_string();
    let all_back = async || {
        wait_for("every held message back", LONG, async || {
            (broker.depth(&dead).await as usize >= N).then_some(())
        })
        .await
    };
    let mut tries = 0;
    while kill_read_at(&broker, command, at).await == Kill::Missed {
        tries += 1;
        assert!(
            tries < 5,
            "dead {command} ended before {at:?} {tries} times"
        );
        all_back().await;
    }
    all_back().await;
    let left = ids_of(&broker.peek(&dead).await);
    broker.cleanup().await;
    (ids, left)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_read_killed_midway_keeps_a_classic_queue_whole_and_in_order() {
    for (command, at) in [("list", KillAt::Walking), ("stats", KillAt::Returning)] {
        let mut config = test_config(&unique_prefix("deadkillc"));
        classic(&mut config);
        let (ids, left) = parked_after_a_kill(config, command, at).await;
        assert_eq!(left, ids, "dead {command} killed {at:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_read_killed_midway_drops_and_duplicates_nothing_in_a_quorum_queue() {
    for (command, at) in [("list", KillAt::Walking), ("stats", KillAt::Returning)] {
        let config = test_config(&unique_prefix("deadkillq"));
        let (ids, left) = parked_after_a_kill(config, command, at).await;
        assert_eq!(
            left.len(),
            N,
            "dead {command} killed {at:?}: nothing dropped or added"
        );
        assert_eq!(sorted(left), ids, "dead {command} killed {at:?}: each once");
    }
}

/// Why the scan returns what it held one by one, and why a kill can
/// reorder a quorum `P.dead`: the broker puts ten messages held by a
/// closing channel back in an order of its own — mostly reordered (seen on
/// 3.10, 4.0 and 4.3), now and then in order (seen once on 4.3 in CI) —
/// while the same ten returned one by one keep theirs. What holds every
/// time is asserted: each message once, the rest behind them in order.
#[tokio::test(flavor = "multi_thread")]
async fn a_quorum_queue_puts_back_a_closed_channels_messages_in_an_order_of_its_own() {
    let broker = Broker::new(&test_config(&unique_prefix("deadheld"))).await;
    let dead = broker.topology.dead().to_string();
    let ids: Vec<String> = (0..40).map(|i| format!("h-{i:02}")).collect();
    park_many(&broker, &ids).await;
    let ch = broker.conn.create_channel().await.unwrap();
    for _ in 0..10 {
        let get = BasicGetOptions { no_ack: false };
        ch.basic_get(dead.as_str().into(), get)
            .await
            .unwrap()
            .unwrap();
    }
    ch.close(200, "held ten".into()).await.unwrap();
    wait_for("the ten back", LONG, async || {
        (broker.depth(&dead).await == 40).then_some(())
    })
    .await;
    let left = ids_of(&broker.peek(&dead).await);
    assert_eq!(sorted(left.clone()), ids, "every message once");
    assert_eq!(left[10..], ids[10..], "the rest behind them, in order");
    eprintln!(
        "the closed channel's ten came back {}: {:?}",
        if left[..10] == ids[..10] {
            "in order"
        } else {
            "reordered"
        },
        &left[..10]
    );
    assert_eq!(ids_of(&broker.peek(&dead).await), left, "one by one: kept");
    broker.cleanup().await;
}
