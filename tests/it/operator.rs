//! What an operator meets: each command's `--help` lists only its own
//! options; `check` compares the broker's topology without changing it
//! and never prints a password or secret; `dead purge` never deletes
//! without a confirmation; a lost connection with many deliveries in
//! flight is one WARN line, not one per message.

use std::time::Duration;

use lapin::{
    options::QueueDeclareOptions,
    types::{AMQPValue, FieldTable},
};

use crate::harness::*;

const LONG: Duration = Duration::from_secs(60);

fn help(command: &[&str]) -> String {
    let out = cli(&[command, &["--help"]].concat());
    assert!(out.status.success());
    printed(&out).0
}

#[test]
fn each_commands_help_lists_only_its_options() {
    let broker_and_names = ["--amqp-url", "--prefix"];
    let selection = [
        "--reason",
        "--webhook",
        "--host",
        "--id",
        "--since",
        "--until",
        "--limit",
    ];
    let run_only = [
        "--timeout",
        "--concurrency",
        "--retry-schedule",
        "--signing-secret",
        "--queue-type",
        "--metrics-addr",
        "--dead-ttl",
    ];
    let cases: [(&[&str], Vec<&str>, Vec<&str>); 6] = [
        (
            &["dead", "replay"],
            vec!["--rate", "--dry-run", "--json"],
            vec!["--yes", "--top"],
        ),
        (
            &["dead", "purge"],
            vec!["--yes", "--dry-run", "--json"],
            vec!["--rate", "--top"],
        ),
        (
            &["dead", "list"],
            vec!["--json"],
            vec!["--rate", "--yes", "--top"],
        ),
        (
            &["dead", "stats"],
            vec!["--json", "--top"],
            vec!["--rate", "--yes"],
        ),
        (
            &["dead", "show"],
            vec!["--json", "<ID>"],
            vec!["--rate", "--yes"],
        ),
        (
            &["check"],
            vec!["--json"],
            vec!["--rate", "--reason", "--yes"],
        ),
    ];
    for (command, has, lacks) in cases {
        let text = help(command);
        let mut want: Vec<&str> = has.clone();
        want.extend(broker_and_names);
        if command[0] == "dead" {
            want.extend(selection);
        } else {
            want.extend(run_only);
        }
        for flag in want {
            assert!(
                text.contains(flag),
                "{command:?} --help lacks {flag}:\n{text}"
            );
        }
        let mut unwanted = lacks;
        if command[0] == "dead" {
            unwanted.extend(run_only);
        }
        for flag in unwanted {
            assert!(
                !text.contains(flag),
                "{command:?} --help shows {flag}:\n{text}"
            );
        }
    }
}

const SECRET: &str = "whsec_Y2hlY2stc2VjcmV0LTQy";

#[tokio::test]
async fn check_agrees_with_a_matching_topology_and_hides_secrets() {
    let prefix = unique_prefix("checkok");
    let broker = Broker::new(&test_config(&prefix)).await;
    let (code, text) = check_as_tests(&prefix, &["--signing-secret", SECRET]);
    assert_eq!(code, Some(0), "{text}");
    for line in [
        format!("ok       queue {prefix}.dead"),
        format!("ok       queue {prefix}.log"),
        format!("ok       exchange {prefix}.outcomes"),
    ] {
        assert!(text.contains(&line), "{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("WEBHOOK_SIGNING_SECRET") && l.ends_with(" <set>")),
        "{text}"
    );
    assert!(
        !text.contains(SECRET) && !text.contains("guest:guest"),
        "{text}"
    );
    let (code, text) = check_as_tests(&prefix, &["--json"]);
    assert_eq!(code, Some(0));
    let json: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["config"]["WEBHOOK_SIGNING_SECRET"], "<unset>");
    assert_eq!(
        json["topology"].as_array().unwrap().len(),
        8,
        "two exchanges, four queues, the log stream and the shard count"
    );
    assert_eq!(json["config"]["WEBHOOK_LOG_RETENTION"], "7d");
    assert_eq!(json["config"]["WEBHOOK_OUTCOMES"], "all");

    // A wrong password: the error says so without the password, and it is
    // the setting's fault (exit 2).
    let bad = "amqp://guest:pw-9f3a1c@127.0.0.1:5672/%2f";
    let (code, text) = check_as_tests(&prefix, &["--amqp-url", bad]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("refused the login"), "{text}");
    assert!(!text.contains("pw-9f3a1c"), "{text}");
    broker.cleanup().await;
}

#[tokio::test]
async fn check_reports_a_conflicting_queue_and_missing_ones_and_creates_nothing() {
    let prefix = unique_prefix("checkbad");
    let config = test_config(&prefix);
    let broker = Broker::new(&config).await;
    let dead = broker.topology.dead().to_string();
    // P.dead with another TTL, and one retry tier deleted.
    broker
        .channel
        .queue_delete(dead.as_str().into(), Default::default())
        .await
        .unwrap();
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args.insert("x-message-ttl".into(), AMQPValue::LongLongInt(1000));
    broker
        .channel
        .queue_declare(dead.as_str().into(), QueueDeclareOptions::durable(), args)
        .await
        .unwrap();
    let tier = format!("{prefix}.retry.500ms");
    broker
        .channel
        .queue_delete(tier.as_str().into(), Default::default())
        .await
        .unwrap();

    let (code, text) = check_as_tests(&prefix, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("differs  queue {dead}: x-message-ttl")),
        "{text}"
    );
    assert!(text.contains(&format!("missing  queue {tier}")), "{text}");
    assert!(
        text.contains(&format!("ok       queue {prefix}.deliveries")),
        "{text}"
    );
    assert!(text.contains("2 problem(s)"), "{text}");
    assert_eq!(
        management_queue(&dead).await["arguments"]["x-message-ttl"],
        1000,
        "unchanged"
    );
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/api/queues/%2f/{}",
            management_url(),
            urlencode(&tier)
        ))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404, "check created the missing queue");

    // Nothing declared at all: everything missing, exit 1.
    let (code, text) = check_as_tests(&unique_prefix("checknone"), &["--json"]);
    assert_eq!(code, Some(1));
    let json: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(
        json["topology"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "missing")
    );
    broker.cleanup().await;
}

#[tokio::test]
async fn purge_without_a_terminal_or_yes_refuses_and_deletes_nothing() {
    let prefix = unique_prefix("purgeask");
    let broker = Broker::new(&test_config(&prefix)).await;
    let dead = broker.topology.dead().to_string();
    broker.publish_to(&dead, b"{}", Default::default()).await;
    let out = cli(&["dead", "purge", "--prefix", &prefix]);
    let (_, stderr) = printed(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--yes"), "{stderr}");
    assert_eq!(broker.depth(&dead).await, 1);
    broker.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_connection_with_many_deliveries_in_flight_is_one_warn_line() {
    const N: usize = 50;
    // Longer than the management API may take to list the connection.
    const SLOW: Duration = Duration::from_secs(8);
    // Timed (every delivery in flight when the connection goes): no
    // other rig may take the cores meanwhile.
    let _alone = Alone::take().await;
    let prefix = unique_prefix("burst");
    let broker = Broker::new(&test_config(&prefix)).await;
    // The first delivery finishes last, so the others are acked one by
    // one behind it (one frame each): one line per frame would be 50.
    // Spread over receivers, so each receiver's (adaptive) limit lets all
    // of its deliveries in at once.
    let mut receivers = Vec::new();
    for _ in 0..5 {
        receivers.push(
            Receiver::start(|r, _| {
                let extra = if r.path == "/first" {
                    SLOW / 2
                } else {
                    Duration::ZERO
                };
                Reply::ok().after(SLOW + extra)
            })
            .await,
        );
    }
    let in_flight = async |n: usize| {
        wait_for(&format!("{n} requests"), LONG, async || {
            let all: Vec<Received> = receivers.iter().flat_map(|r| r.requests()).collect();
            (all.len() >= n).then(|| all.iter().map(|r| r.at).min().unwrap())
        })
        .await
    };
    // Outcome events off: with them, a delivery finishing on the dead
    // channel cannot have its event confirmed either, so it is nacked
    // (returned) instead of acked — one line all the same, of nacks.
    let mut worker = WorkerProcess::start(
        &prefix,
        &[
            "--concurrency",
            "64",
            "--timeout",
            "30s",
            "--outcomes",
            "off",
        ],
        &[],
    )
    .await;
    worker_connection(&prefix, Role::Consuming).await; // listed: the close below is quick
    broker
        .publish_many((0..N).map(|i| {
            let path = if i == 0 { "/first" } else { "/slow" };
            event(&format!("b{i}"), 104, &receivers[i % 5].url(path), "{}")
        }))
        .await;
    let started = in_flight(N).await;
    close_worker_connection(&prefix, Role::Consuming).await;
    assert!(
        started.elapsed() < SLOW,
        "closed while all {N} were in flight"
    );
    // The deliveries finish on a dead channel: their settlements cannot be sent.
    wait_for("the WARN line", LONG, async || {
        let log = worker.log_text();
        log.contains("could not reach the broker").then_some(())
    })
    .await;
    // Redelivered after the reconnect and delivered again: nothing lost.
    in_flight(2 * N).await;
    worker.terminate();
    let (code, _) = worker.wait_exit(LONG).await;
    assert_eq!(code, Some(0));
    let log = worker.log_text();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("could not reach the broker"))
        .collect();
    assert_eq!(lines.len(), 1, "one line for the burst:\n{log}");
    // Each delivery's settlement is lost on the dead channel: an ack, or a
    // nack when its outcome event could not be confirmed first (section 8:
    // no ack before the outcome is durable). Together, all N.
    let count_before = |word: &str| -> usize {
        let at = lines[0].find(word).expect(word);
        let digits: String = lines[0][..at]
            .trim_end()
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.chars().rev().collect::<String>().parse().unwrap()
    };
    assert!(lines[0].contains("WARN"), "{}", lines[0]);
    assert_eq!(
        count_before(" ack(s)") + count_before(" nack(s)"),
        N,
        "{}",
        lines[0]
    );
    broker.cleanup().await;
}
