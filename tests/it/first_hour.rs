//! What a new user meets in the first hour: every mistake is one line that
//! names the address, broker, prefix or flag at fault (no AMQP library
//! dump), with exit code 2 when it is the user's setting; selections that
//! could only select nothing are refused; `replay` and `purge` report in
//! JSON and dry-run; `check` shows the configuration with the broker down.

use std::time::Duration;

use lapin::BasicProperties;

use crate::harness::*;

/// The one `error:` line a failed command printed, after checking that it
/// is the only line and carries none of the AMQP library's internals.
fn one_error_line(out: &std::process::Output) -> String {
    let (_, stderr) = printed(out);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    for internal in [
        "ShortString",
        "io_loop",
        "lapin::",
        "AMQPError",
        "reply_code",
    ] {
        assert!(!stderr.contains(internal), "{internal} in: {stderr}");
    }
    assert_eq!(lines.len(), 1, "one line expected: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0].to_string()
}

#[test]
fn a_metrics_address_in_use_names_the_address_and_the_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let prefix = unique_prefix("inuse");
    let out = cli(&["run", "--prefix", &prefix, "--metrics-addr", &addr]);
    assert_eq!(out.status.code(), Some(2), "{:?}", printed(&out));
    let line = one_error_line(&out);
    for part in [addr.as_str(), "METRICS_ADDR", "--metrics-addr", "in use"] {
        assert!(line.contains(part), "{part} not in: {line}");
    }
}

#[test]
fn a_wrong_prefix_is_named_in_one_line_by_every_dead_command() {
    let prefix = unique_prefix("noprefix");
    let want = format!("error: no queue '{prefix}.dead' — is --prefix right?");
    let commands: [&[&str]; 6] = [
        &["dead", "list"],
        &["dead", "stats", "--json"],
        &["dead", "show", "some-id"],
        &["dead", "replay"],
        &["dead", "replay", "--dry-run", "--json"],
        &["dead", "purge", "--yes"],
    ];
    for command in commands {
        let out = cli(&[command, &["--prefix", &prefix]].concat());
        assert_eq!(
            out.status.code(),
            Some(1),
            "{command:?}: {:?}",
            printed(&out)
        );
        let line = one_error_line(&out);
        assert!(line.starts_with(&want), "{command:?}: {line}");
    }
}

#[test]
fn a_refused_login_names_the_broker_and_the_setting_but_not_the_password() {
    let bad = "amqp://guest:pw-5e1d77@127.0.0.1:5672/%2f";
    let out = cli(&["dead", "list", "--amqp-url", bad]);
    assert_eq!(out.status.code(), Some(2), "{:?}", printed(&out));
    let line = one_error_line(&out);
    for part in [
        "refused the login",
        "AMQP_URL",
        "--amqp-url",
        "127.0.0.1:5672",
    ] {
        assert!(line.contains(part), "{part} not in: {line}");
    }
    assert!(!line.contains("pw-5e1d77"), "{line}");
}

#[test]
fn selections_refuse_unknown_reasons_hosts_with_ports_and_empty_windows() {
    let cases: [(&[&str], &str); 5] = [
        (&["--reason", "expird"], "one of: expired, gone"),
        (
            &["--host", "a.example:8443"],
            "--host takes the host alone, e.g. 'a.example'",
        ),
        (
            &["--host", "https://a.example/x"],
            "not a host name or IP address",
        ),
        (&["--host", "a b"], "not a host name or IP address"),
        (
            &["--since", "1h", "--until", "2h"],
            "the window selects nothing",
        ),
    ];
    for command in [
        &["dead", "list"][..],
        &["dead", "stats"],
        &["dead", "replay"],
        &["dead", "purge", "--yes"],
    ] {
        for (selection, want) in cases {
            // The prefix does not exist: a command that went on to the
            // broker would fail differently.
            let args = [command, selection, &["--prefix", "first-hour-none"]].concat();
            let out = cli(&args);
            let (_, stderr) = printed(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains(want), "{args:?}: {stderr}");
            assert!(!stderr.contains("no queue"), "{args:?}: {stderr}");
        }
    }
}

#[test]
fn check_prints_the_configuration_even_when_the_broker_is_down() {
    let (_socket, port) = closed_port();
    let url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let out = cli(&["check", "--amqp-url", &url]);
    assert_eq!(out.status.code(), Some(1));
    let (stdout, _) = printed(&out);
    let line = one_error_line(&out);
    assert!(
        line.contains(&format!("127.0.0.1:{port}")) && line.contains("AMQP_URL"),
        "{line}"
    );
    let setting = |name: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .map(|l| l.split_whitespace().last().unwrap_or("").to_string())
    };
    assert_eq!(
        setting("WEBHOOK_MAX_AGE").as_deref(),
        Some("48h"),
        "{stdout}"
    );
    assert_eq!(
        setting("WEBHOOK_DEAD_TTL").as_deref(),
        Some("7d"),
        "{stdout}"
    );
    assert_eq!(
        setting("WEBHOOK_TIMEOUT").as_deref(),
        Some("10s"),
        "{stdout}"
    );

    let out = cli(&["check", "--json", "--amqp-url", &url]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["config"]["WEBHOOK_MAX_AGE"], "48h");
    assert!(
        json["error"].as_str().unwrap().contains("cannot connect"),
        "{json}"
    );
}

#[test]
fn help_shows_the_command_as_optional() {
    let out = cli(&["--help"]);
    let (stdout, _) = printed(&out);
    assert!(
        stdout.contains("Usage: webhook-worker [COMMAND] [OPTIONS]   (no COMMAND: run)"),
        "{stdout}"
    );
}

/// One JSON object from a command's stdout.
fn json_of(args: &[&str]) -> serde_json::Value {
    let out = cli(args);
    let (stdout, stderr) = printed(&out);
    assert!(out.status.success(), "{args:?}: {stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test]
async fn replay_and_purge_report_in_json_and_purge_dry_runs() {
    let prefix = unique_prefix("jsonops");
    let broker = Broker::new(&test_config(&prefix)).await;
    let dead = broker.topology.dead().to_string();
    for body in [
        r#"{"id":"j0","webhook":104,"url":"http://a.test/h","data":{}}"#,
        r#"{"id":"j1","webhook":104,"url":"http://a.test/h","data":{}}"#,
        r#"{"id":"j2"}"#,
    ] {
        broker
            .publish_to(&dead, body.as_bytes(), BasicProperties::default())
            .await;
    }
    let p = ["--prefix", prefix.as_str()];

    // stats --json: the message without a webhook or host is counted apart,
    // never as "?".
    let stats = json_of(&[&["dead", "stats", "--json"][..], &p].concat());
    assert_eq!(stats["total"], 3, "{stats}");
    assert_eq!(
        stats["by_host"],
        serde_json::json!({"a.test": 2}),
        "{stats}"
    );
    assert_eq!(
        (
            stats["without_host"].clone(),
            stats["without_webhook"].clone()
        ),
        (1.into(), 1.into())
    );
    assert!(!stats.to_string().contains('?'), "{stats}");

    let dry = json_of(&[&["dead", "purge", "--dry-run", "--json"][..], &p].concat());
    assert_eq!(
        (dry["dry_run"].clone(), dry["count"].clone()),
        (true.into(), 3.into()),
        "{dry}"
    );
    assert_eq!(dry["ids"], serde_json::json!(["j0", "j1", "j2"]));
    assert_eq!(broker.depth(&dead).await, 3, "a dry run deletes nothing");

    let replayed = json_of(
        &[
            &["dead", "replay", "--json", "--rate", "0", "--id", "j0"][..],
            &p,
        ]
        .concat(),
    );
    assert_eq!(replayed["command"], "dead replay");
    assert_eq!(
        (replayed["count"].clone(), replayed["left_parked"].clone()),
        (1.into(), 2.into())
    );
    assert_eq!(broker.depth(broker.topology.deliveries()).await, 1);

    let purged = json_of(&[&["dead", "purge", "--yes", "--json"][..], &p].concat());
    assert_eq!(
        (purged["dry_run"].clone(), purged["count"].clone()),
        (false.into(), 2.into())
    );
    wait_for("P.dead empty", Duration::from_secs(10), async || {
        (broker.depth(&dead).await == 0).then_some(())
    })
    .await;
    broker.cleanup().await;
}

#[test]
fn a_shard_count_out_of_range_names_the_flag_and_exits_2() {
    let prefix = unique_prefix("badshards");
    for bad in ["0", "1025", "four"] {
        let out = cli(&["declare", "--prefix", &prefix, "--shards", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {:?}", printed(&out));
        let (_, stderr) = printed(&out);
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: ") && first.contains("--shards") && first.contains(bad),
            "{bad}: {stderr}"
        );
    }
}

/// A management URL that is not http(s) is one line naming the setting,
/// exit 2, and never shows its password.
#[test]
fn a_bad_management_url_names_the_setting_and_hides_the_password() {
    for bad in ["ftp://guest:s3cret@127.0.0.1:1", "not a url"] {
        let out = cli(&["check", "--prefix", "t-badmgmt", "--management-url", bad]);
        let (stdout, stderr) = printed(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains("RABBITMQ_MANAGEMENT_URL"),
            "{bad}: {stderr}"
        );
        assert!(!format!("{stdout}{stderr}").contains("s3cret"), "{bad}");
    }
}
