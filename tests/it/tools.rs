//! The demo helpers: `publish` (samples, files, stdin) and `demo-receiver`.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    time::Duration,
};

use webhook_worker::domain::catalog::CATALOG;

use crate::harness::*;

const LONG: Duration = Duration::from_secs(30);

#[tokio::test]
async fn publish_samples_of_every_catalog_event_and_lines_from_stdin() {
    let rig = Harness::new("publish").ok_receiver().start().await;
    let (broker, receiver, prefix) = (&rig.broker, rig.receiver(), rig.prefix());

    let out = bin()
        .args([
            "publish",
            "--prefix",
            prefix,
            "--url",
            &receiver.url("/s"),
            "--count",
            "24",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("published 24 event(s)"));

    let mut child = bin()
        .args(["publish", "--prefix", prefix, "--file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..3 {
        stdin
            .write_all(&event(
                &format!("line-{i}"),
                201,
                &receiver.url("/l"),
                r#"{"n":1}"#,
            ))
            .unwrap();
        stdin.write_all(b"\n\n").unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());

    receiver.wait_requests(27, LONG).await;
    let samples = receiver.requests_to("/s");
    for (n, name) in CATALOG {
        let of_n: Vec<_> = samples
            .iter()
            .filter(|r| r.header("x-comm100-webhook-no") == n.to_string())
            .collect();
        assert_eq!(of_n.len(), 2, "two samples of {n}");
        assert!(of_n.iter().all(|r| r.header("x-comm100-event") == name));
        assert!(of_n.iter().all(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.body)
                .unwrap()
                .is_object()
        }));
    }
    let lines = receiver.requests_to("/l");
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|r| r.body == r#"{"n":1}"#.as_bytes()));
    assert_eq!(
        broker.depth(broker.topology.dead()).await,
        0,
        "every sample is valid"
    );
    rig.finish().await;
}

#[tokio::test]
async fn demo_receiver_prints_fails_and_verifies() {
    let mut child = bin()
        .args([
            "demo-receiver",
            "--listen",
            "127.0.0.1:0",
            "--fail-rate",
            "1",
            "--fail-status",
            "503",
        ])
        .args(["--secret", "s3cret", "--latency", "10ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The address it bound, from `demo receiver listening on http://ADDR/ ...`
    // (the pipe stays open to the end: the receiver may write more).
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut listening = String::new();
    while !listening.contains("listening on http://") {
        listening.clear();
        assert!(stderr.read_line(&mut listening).unwrap() > 0, "no address");
    }
    let addr = listening
        .split_once("listening on http://")
        .and_then(|(_, rest)| rest.split_once('/'))
        .unwrap()
        .0;
    let url = format!("http://{addr}/hook");
    let client = reqwest::Client::new();
    let key = webhook_worker::domain::signing::SigningKey::from_secret("s3cret").unwrap();
    let status = wait_for("receiver up", LONG, async || {
        let sig = key.sign("d-1", 1_700_000_000, b"{}");
        let r = client
            .post(&url)
            .header("x-comm100-delivery-id", "d-1")
            .header("x-comm100-attempt", "2")
            .header("webhook-id", "d-1")
            .header("webhook-timestamp", "1700000000")
            .header("webhook-signature", sig)
            .body("{}")
            .send()
            .await
            .ok()?;
        Some(r.status().as_u16())
    })
    .await;
    assert_eq!(status, 503, "fail rate 1 fails every request");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.contains("id=d-1") && line.contains("attempt=2"),
        "{line}"
    );
    assert!(
        line.contains("signature=ok") && line.trim_end().ends_with("-> 503"),
        "{line}"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    drop(stderr);
}
