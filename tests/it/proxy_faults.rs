//! When the forward proxy itself fails — it is down, answers 407, answers
//! CONNECT with a 5xx, or a SOCKS5 proxy refuses the credentials — the message is deferred without
//! an attempt and `webhook_proxy_errors_total` counts it; the log has one
//! WARN line for the burst; and the proxy's password shows nowhere: not in
//! the log, the metrics, `/receivers`, `check` (text or JSON), or the
//! error of a bad proxy setting.

use std::time::Duration;

use webhook_worker::domain::outcome::AttemptOutcome;

use crate::harness::*;

const LONG: Duration = Duration::from_secs(60);

/// Every attempt counted for webhook 101, whatever its outcome.
fn attempts(text: &str) -> f64 {
    AttemptOutcome::LABELS
        .iter()
        .map(|o| {
            sample(
                text,
                &format!(r#"webhook_attempts_total{{outcome="{o}",webhook="101"}}"#),
            )
        })
        .sum()
}

#[tokio::test]
async fn a_failing_proxy_defers_without_an_attempt_and_is_counted() {
    let (_closed, port) = closed_port();
    let tinyproxy = ForwardProxy::start(ProxyKind::Tinyproxy, Some(("ww", "right"))).await;
    let microsocks = ForwardProxy::start(ProxyKind::Microsocks, Some(("ww", "right"))).await;
    let (_refusing, receiver_port) = closed_port();
    for (case, url, to_closed_receiver) in [
        ("down", format!("http://127.0.0.1:{port}"), false),
        ("407", tinyproxy.url_as("ww", "wrong"), false),
        ("socks refusal", microsocks.url_as("ww", "wrong"), false),
        // tinyproxy answers CONNECT with a 5xx when it cannot connect:
        // the proxy failed before any receiver answered.
        ("5xx", tinyproxy.url(), true),
    ] {
        let rig = Harness::new("proxy-fail")
            .config(move |c| c.delivery.proxy_url = Some(url.parse().unwrap()))
            .ok_receiver()
            .start()
            .await;
        let (broker, receiver) = (&rig.broker, rig.receiver());
        let target = match to_closed_receiver {
            true => format!("http://127.0.0.1:{receiver_port}/f"),
            false => receiver.url("/f"),
        };
        for i in 0..3 {
            broker
                .publish(&event(&format!("f{i}"), 101, &target, "{}"))
                .await;
        }
        // Deferred to the 200 ms tier and back, again and again: the count
        // passes the number of messages, and still no attempt is made.
        let text = wait_for(&format!("{case}: 6 proxy errors"), LONG, async || {
            let text = rig.worker().scrape().await;
            let deferred = sample(&text, "webhook_deferred_total");
            (sample(&text, "webhook_proxy_errors_total") >= 6.0 && deferred >= 6.0).then_some(text)
        })
        .await;
        assert_eq!(attempts(&text), 0.0, "{case}: {text}");
        assert_eq!(
            sample(&text, r#"webhook_dropped_total{reason="max_attempts"}"#),
            0.0
        );
        assert!(receiver.requests().is_empty(), "{case}");
        rig.finish().await;
    }
}

const PASSWORD: &str = "S3cret-Proxy-Pw";

#[tokio::test]
async fn the_proxy_password_never_shows() {
    let proxy = ForwardProxy::start(ProxyKind::Tinyproxy, Some(("ww", "the-right-one"))).await;
    let url = proxy.url_as("ww", PASSWORD);
    let prefix = unique_prefix("proxy-pw");
    let config = test_config(&prefix);
    let receiver = Receiver::ok().await;
    let worker = WorkerProcess::start(&prefix, &[], &[("WEBHOOK_PROXY_URL", &url)]).await;
    let broker = Broker::new(&config).await;
    for i in 0..20 {
        broker
            .publish(&event(&format!("p{i}"), 101, &receiver.url("/p"), "{}"))
            .await;
    }
    let metrics = wait_for("40 proxy errors", LONG, async || {
        let text = worker.scrape().await;
        (sample(&text, "webhook_proxy_errors_total") >= 40.0).then_some(text)
    })
    .await;
    let receivers = reqwest::get(format!("{}/receivers", worker.base_url().await))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let log = worker.log_text();
    // One WARN line for the burst, naming the proxy and why, not 40.
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("forward proxy"))
        .collect();
    let burst: Vec<&&str> = warnings.iter().filter(|l| l.contains("WARN")).collect();
    assert_eq!(burst.len(), 1, "{log}");
    assert!(burst[0].contains("refused the credentials"), "{log}");
    assert!(log.contains("ww:<redacted>@127.0.0.1"), "{log}");

    let env = [("WEBHOOK_PROXY_URL", url.as_str())];
    let check_text = checked(&prefix, &[], &env);
    assert!(
        check_text.contains("ww:<redacted>@127.0.0.1"),
        "{check_text}"
    );
    let check_json = checked(&prefix, &["--json"], &env);
    let flag = checked(&prefix, &["--proxy-url", &url], &[]);
    // A bad proxy URL: one line naming the setting, exit 2.
    let bad = bin()
        .args(["run", "--prefix", &prefix])
        .env(
            "WEBHOOK_PROXY_URL",
            format!("https://ww:{PASSWORD}@127.0.0.1:1"),
        )
        .output()
        .unwrap();
    let (out, err) = printed(&bad);
    assert_eq!(bad.status.code(), Some(2), "{out}{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("WEBHOOK_PROXY_URL"), "{err}");
    for (shown, text) in [
        ("log", log.as_str()),
        ("metrics", metrics.as_str()),
        ("/receivers", receivers.as_str()),
        ("check", check_text.as_str()),
        ("check --json", check_json.as_str()),
        ("check --proxy-url", flag.as_str()),
        ("a bad proxy URL's error", &(out + &err)),
    ] {
        assert!(
            !text.contains(PASSWORD),
            "{shown} shows the password:\n{text}"
        );
    }
    assert!(receiver.requests().is_empty());
    worker.terminate();
    broker.cleanup().await;
}

/// `check` for `prefix` with `args` and `env`: what it printed.
fn checked(prefix: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = bin();
    cmd.args(["check", "--prefix", prefix])
        .args(args)
        .env("AMQP_URL", amqp_url());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (out, err) = printed(&cmd.output().unwrap());
    out + &err
}
