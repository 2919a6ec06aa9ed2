//! `dead replay` under load and faults: `--rate` holds its pace, a replay
//! killed midway loses nothing, and a replay in several passes (as a long
//! paced one runs) moves each selected message once and leaves the rest
//! in order.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures_lite::StreamExt;
use lapin::{
    options::{BasicConsumeOptions, BasicQosOptions},
    types::FieldTable,
};
use webhook_worker::{
    broker::{
        dead_letters::{self, Pacing},
        retry_headers::{Parking, with_retry_headers},
    },
    domain::{policy::DropReason, selection::Selection},
};

use crate::harness::*;

const LONG: Duration = Duration::from_secs(60);

/// Parks `ids` in `P.dead` as the worker would, reason `gone` (or
/// `expired` for ids starting with `x`).
async fn park_all(broker: &Broker, ids: &[String]) {
    for id in ids {
        let reason = if id.starts_with('x') {
            DropReason::Expired
        } else {
            DropReason::Gone
        };
        let headers = with_retry_headers(
            None,
            1,
            Some(1),
            Some("HTTP 410 Gone"),
            Some(Parking { reason, at_ms: 1 }),
        );
        let body = event(id, 104, "http://r.test/h", "{}");
        broker.park(&body, headers).await;
    }
}

/// Every message arriving in `P.deliveries`: its id and when it arrived.
type Arrivals = Arc<Mutex<Vec<(String, Instant)>>>;

async fn record_arrivals(broker: &Broker) -> Arrivals {
    let arrivals = Arrivals::default();
    let ch = broker.conn.create_channel().await.unwrap();
    ch.basic_qos(1000, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = ch
        .basic_consume(
            broker.topology.deliveries().into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let a = arrivals.clone();
    tokio::spawn(async move {
        let _ch = ch;
        while let Some(Ok(d)) = consumer.next().await {
            let id = webhook_worker::domain::envelope::identify(&d.data)
                .0
                .unwrap();
            a.lock().unwrap().push((id, Instant::now()));
        }
    });
    arrivals
}

fn ids(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_holds_within_ten_percent() {
    // Timed: no other rig may take the cores meanwhile.
    let _alone = Alone::take().await;
    let prefix = unique_prefix("replayrate");
    let broker = Broker::new(&test_config(&prefix)).await;
    let all = ids(41, "r");
    park_all(&broker, &all).await;
    let arrivals = record_arrivals(&broker).await;
    let p = prefix.clone();
    let out = tokio::task::spawn_blocking(move || {
        cli(&["dead", "replay", "--rate", "20", "--prefix", &p])
    })
    .await
    .unwrap();
    let (stdout, stderr) = printed(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("replayed 41 message(s); 0 left parked"),
        "{stdout}"
    );
    assert!(
        !stderr.contains("looked at"),
        "no progress bar without a terminal: {stderr}"
    );
    let got = wait_for("41 arrivals", LONG, async || {
        let a = arrivals.lock().unwrap().clone();
        (a.len() >= 41).then_some(a)
    })
    .await;
    let span = got[40].1 - got[0].1;
    let rate = 40.0 / span.as_secs_f64();
    eprintln!("measured {rate:.2} messages/s over {span:?}");
    assert!(
        (18.0..=22.0).contains(&rate),
        "rate {rate:.2}/s, wanted 20 ± 10 %"
    );
    let mut seen: Vec<_> = got.iter().map(|(id, _)| id.clone()).collect();
    seen.sort();
    let mut want = all.clone();
    want.sort();
    assert_eq!(seen, want);
    broker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_killed_midway_loses_nothing_and_duplicates_at_most_one() {
    // Paced (--rate) and killed midway: no other rig may take the cores.
    let _alone = Alone::take().await;
    let prefix = unique_prefix("replaykill");
    let broker = Broker::new(&test_config(&prefix)).await;
    let all = ids(30, "k");
    park_all(&broker, &all).await;
    let arrivals = record_arrivals(&broker).await;
    let mut child = bin()
        .args(["dead", "replay", "--rate", "10", "--prefix", &prefix])
        .env("AMQP_URL", amqp_url())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("a third replayed", LONG, async || {
        (arrivals.lock().unwrap().len() >= 10).then_some(())
    })
    .await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let moved_before = arrivals.lock().unwrap().len();
    assert!(
        moved_before < 30,
        "killed midway ({moved_before} of 30 moved)"
    );

    // Everything the killed replay held goes back to P.dead.
    let parked = wait_for("the rest back in P.dead", LONG, async || {
        let n = broker.depth(broker.topology.dead()).await as usize;
        (n + arrivals.lock().unwrap().len() >= 30).then_some(n)
    })
    .await;
    let out = cli(&["dead", "replay", "--prefix", &prefix]);
    assert!(out.status.success(), "{:?}", printed(&out));
    let got = wait_for("every id", LONG, async || {
        let a = arrivals.lock().unwrap().clone();
        (a.len() >= moved_before + parked).then_some(a)
    })
    .await;
    let mut count: HashMap<String, usize> = HashMap::new();
    for (id, _) in &got {
        *count.entry(id.clone()).or_default() += 1;
    }
    for id in &all {
        assert!(count.contains_key(id), "{id} lost");
    }
    let duplicates: usize = count.values().map(|n| n - 1).sum();
    assert!(
        duplicates <= 1,
        "{duplicates} duplicates: at most the one in flight"
    );
    assert_eq!(broker.depth(broker.topology.dead()).await, 0);
    broker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_in_passes_moves_each_once_and_keeps_the_rest_in_order() {
    let prefix = unique_prefix("replaypass");
    let broker = Broker::new(&test_config(&prefix)).await;
    // Interleaved: g* are selected (gone), x* are not (expired).
    let all: Vec<String> = (0..12)
        .flat_map(|i| [format!("g{i}"), format!("x{i}")])
        .collect();
    park_all(&broker, &all).await;
    let selection = Selection {
        reason: Some("gone".into()),
        ..Selection::default()
    };
    // 5 per second with 1 s passes: more than one pass.
    let pacing = Pacing {
        rate: Some(5.0),
        pass: Duration::from_secs(1),
    };
    let mut passes = 0;
    let report = dead_letters::replay(
        &broker.conn,
        &broker.topology,
        &selection,
        pacing,
        i64::MAX,
        &mut |p| passes += matches!(p, dead_letters::ReplayProgress::Pass(_)) as u32,
    )
    .await
    .unwrap();
    assert!(passes >= 2, "{passes} passes");
    assert_eq!(report.taken, 12);
    assert_eq!(report.kept, 12);
    let moved = broker.drain(broker.topology.deliveries()).await;
    let moved: Vec<_> = moved
        .iter()
        .map(|d| {
            webhook_worker::domain::envelope::identify(&d.data)
                .0
                .unwrap()
        })
        .collect();
    assert_eq!(moved, ids(12, "g"), "each once, in order");
    let left: Vec<_> = broker
        .peek(broker.topology.dead())
        .await
        .iter()
        .map(|d| {
            webhook_worker::domain::envelope::identify(&d.data)
                .0
                .unwrap()
        })
        .collect();
    assert_eq!(left, ids(12, "x"), "the rest in its order");
    broker.cleanup().await;
}
