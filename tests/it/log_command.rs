//! `webhook-worker log` against a real `P.log`: an event's history in
//! order, each selection option, `--json`, `--follow`, bad options; and
//! a worker killed with SIGKILL mid-flight leaves no settled attempt out
//! of the log.

use std::{
    io::{BufRead, BufReader},
    process::Stdio,
    time::Duration,
};

use webhook_worker::domain::outcome_event::{OutcomeEvent, OutcomeKind};

use crate::harness::*;

const LONG: Duration = Duration::from_secs(60);

/// `log --prefix P args...`: exit code, stdout, stderr.
fn log(prefix: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = cli(&[&["log", "--prefix", prefix][..], args].concat());
    let (stdout, stderr) = printed(&out);
    (out.status.code(), stdout, stderr)
}

/// The events `log --json` prints for `args`.
fn log_json(prefix: &str, args: &[&str]) -> Vec<OutcomeEvent> {
    let (code, stdout, stderr) = log(prefix, &[&["--json"][..], args].concat());
    assert_eq!(code, Some(0), "{stderr}");
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Waits until the worker has published `n` outcome events.
async fn published(worker: &RunningWorker, n: f64) {
    wait_for(&format!("{n} outcome events"), LONG, async || {
        (worker.outcomes_published().await >= n).then_some(())
    })
    .await;
}

#[tokio::test]
async fn log_prints_an_events_history_and_selects() {
    let rig = Harness::new("logcmd")
        .receiver(|r, seen| match r.path.as_str() {
            "/flaky" if seen == 0 => Reply::status(503),
            _ => Reply::ok(),
        })
        .start()
        .await;
    let (broker, receiver, p) = (&rig.broker, rig.receiver(), rig.prefix());
    broker
        .publish(&event_with(
            "e-flaky",
            104,
            &receiver.url("/flaky"),
            "{}",
            r#""site_id":77"#,
        ))
        .await;
    broker
        .publish(&event("e-ok", 105, &receiver.url("/ok"), "{}"))
        .await;
    published(rig.worker(), 3.0).await;

    // The history of one event, in order, as a table...
    let (code, table, stderr) = log(p, &["--id", "e-flaky"]);
    assert_eq!(code, Some(0), "{stderr}");
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(
        rows[0].starts_with("TIME") && rows[0].contains("NEXT"),
        "{table}"
    );
    let host = format!("http://{}", receiver.addr);
    for (row, words) in rows[1..].iter().zip([
        [
            "e-flaky",
            "104",
            &host,
            "1",
            "http_error",
            "503",
            "retry 200ms",
        ],
        ["e-flaky", "104", &host, "2", "success", "200", "done"],
    ]) {
        for w in words {
            assert!(row.contains(w), "'{w}' missing from {row}");
        }
    }
    assert!(stderr.contains("2 event(s) shown"), "{stderr}");
    // ...and as JSON lines.
    let json = log_json(p, &["--id", "e-flaky"]);
    let attempts: Vec<_> = json.iter().map(|e| (e.kind, e.attempt)).collect();
    assert_eq!(
        attempts,
        [
            (OutcomeKind::AttemptFailed, Some(1)),
            (OutcomeKind::AttemptSucceeded, Some(2))
        ]
    );

    // Each option narrows.
    let ids = |args: &[&str]| -> Vec<String> {
        log_json(p, args).into_iter().filter_map(|e| e.id).collect()
    };
    assert_eq!(ids(&[]).len(), 3);
    assert_eq!(ids(&["--webhook", "105"]), ["e-ok"]);
    assert_eq!(ids(&["--site", "77"]).len(), 2);
    assert_eq!(ids(&["--kind", "attempt.failed"]), ["e-flaky"]);
    assert_eq!(ids(&["--receiver", "127.0.0.1"]).len(), 3);
    assert!(ids(&["--receiver", "other.example"]).is_empty());
    assert_eq!(ids(&["--limit", "1"]).len(), 1);
    assert_eq!(ids(&["--id", "e-ok", "--id", "e-flaky"]).len(), 3);
    assert!(ids(&["--until", "30m"]).is_empty(), "all are newer");
    assert!(
        ids(&[
            "--since",
            "2000-01-01T00:00:00Z",
            "--until",
            "2000-01-02T00:00:00Z"
        ])
        .is_empty()
    );
    rig.finish().await;
}

#[tokio::test]
async fn bad_log_options_are_one_error_and_exit_2() {
    let prefix = unique_prefix("logbad");
    for (args, says) in [
        (vec!["--kind", "attempt"], "unknown kind 'attempt'"),
        (vec!["--since", "yesterday"], "invalid time 'yesterday'"),
        (vec!["--since", "1m", "--until", "2h"], "later than --until"),
        (vec!["--limit", "0"], "--limit"),
        (vec!["--receiver", "example.com:443"], "has a port"),
        (vec!["--webhook", "abc"], "--webhook"),
        (vec!["--reason", "gone"], "--reason"),
    ] {
        let (code, _, stderr) = log(&prefix, &args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // A prefix with no log: named, exit 1.
    let (code, _, stderr) = log(&prefix, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("no stream '{prefix}.log'")),
        "{stderr}"
    );
}

#[tokio::test]
async fn follow_prints_new_events_until_interrupted() {
    let rig = Harness::new("logfollow").ok_receiver().start().await;
    let (broker, receiver, p) = (&rig.broker, rig.receiver(), rig.prefix());
    let mut child = bin()
        .args(["log", "--prefix", p, "--follow", "--json", "--id", "f-1"])
        .env("AMQP_URL", amqp_url())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    // It runs on with nothing to print...
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "--follow keeps running"
    );
    // ...prints an event published after it started...
    broker
        .publish(&event("f-1", 104, &receiver.url("/"), "{}"))
        .await;
    broker
        .publish(&event("f-2", 104, &receiver.url("/"), "{}"))
        .await;
    let line = wait_for("the followed event", LONG, async || rx.try_recv().ok()).await;
    let e: OutcomeEvent = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (e.id.as_deref(), e.kind),
        (Some("f-1"), OutcomeKind::AttemptSucceeded)
    );
    published(rig.worker(), 2.0).await;
    // ...and ends cleanly on SIGINT, having printed only the selected one.
    let ok = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let status = wait_for("log to exit", LONG, async || child.try_wait().unwrap()).await;
    assert_eq!(status.code(), Some(0));
    assert!(rx.try_recv().is_err(), "f-2 is not selected");
    rig.finish().await;
}

#[tokio::test]
async fn a_worker_killed_mid_flight_leaves_no_settled_attempt_out_of_the_log() {
    let _alone = Alone::take().await;
    let prefix = unique_prefix("logkill");
    let config = test_config(&prefix);
    let broker = Broker::new(&config).await;
    let receiver = Receiver::start(|_, _| Reply::ok().after(Duration::from_millis(50))).await;
    const N: usize = 400;
    broker
        .publish_many((0..N).map(|i| event(&format!("k-{i}"), 104, &receiver.url("/"), "{}")))
        .await;
    let first = WorkerProcess::start(&prefix, &["--concurrency", "64"], &[]).await;
    receiver.wait_requests(N / 3, LONG).await;
    first.kill_9();
    let second = WorkerProcess::start(&prefix, &["--concurrency", "64"], &[]).await;
    wait_for("every event delivered", LONG, async || {
        let text = second.scrape().await;
        let delivered = sample(&text, r#"webhook_delivered_total{webhook="104"}"#);
        let ids: std::collections::HashSet<_> = receiver
            .requests()
            .iter()
            .map(|r| r.header("x-comm100-delivery-id").to_string())
            .collect();
        (ids.len() == N && delivered > 0.0 && broker.depth(broker.topology.deliveries()).await == 0)
            .then_some(())
    })
    .await;
    second.terminate();
    let mut second = second;
    assert_eq!(second.wait_exit(LONG).await.0, Some(0));
    // Every message was acked by one of the two; each ack came after its
    // attempt.succeeded was confirmed, so every id has one in the log.
    let events = log_json(&prefix, &["--kind", "attempt.succeeded", "--since", "10m"]);
    let logged: std::collections::HashSet<_> = events.iter().filter_map(|e| e.id.clone()).collect();
    let missing: Vec<_> = (0..N)
        .map(|i| format!("k-{i}"))
        .filter(|id| !logged.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "settled but not in the log: {missing:?}"
    );
    assert!(events.len() >= N, "duplicates allowed, losses not");
    drop(first);
    broker.cleanup().await;
}
