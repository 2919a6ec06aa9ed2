//! The delivery log `P.log`: a stream bound to `P.outcomes`, declared with
//! the retention arguments as configured, compared by `check`.

use crate::harness::*;

#[tokio::test]
async fn the_log_stream_has_the_configured_retention() {
    let prefix = unique_prefix("logret");
    let broker = Broker::new(&{
        let mut c = test_config(&prefix);
        c.topology.log_retention = webhook_worker::broker::topology::LogRetention::Keep(
            std::time::Duration::from_secs(2 * 3600),
        );
        c.topology.log_max_bytes = 50_000_000;
        c
    })
    .await;
    let log = format!("{prefix}.log");
    let same = ["--log-retention", "2h", "--log-max-bytes", "50MB"];
    let (code, text) = check_as_tests(&prefix, &same);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(&format!("ok       queue {log}")), "{text}");
    // Each argument differs on its own, and is named.
    for (args, argument) in [
        (
            ["--log-retention", "1d", "--log-max-bytes", "50MB"],
            "x-max-age",
        ),
        (
            ["--log-retention", "2h", "--log-max-bytes", "60MB"],
            "x-max-length-bytes",
        ),
    ] {
        let (code, text) = check_as_tests(&prefix, &args);
        assert_eq!(code, Some(1), "{text}");
        assert!(
            text.contains(&format!("differs  queue {log}: {argument}")),
            "{argument}: {text}"
        );
    }
    // A stream, not a queue of another type.
    let ch = broker.conn.create_channel().await.unwrap();
    let as_classic = ch
        .queue_declare(
            log.as_str().into(),
            lapin::options::QueueDeclareOptions::durable(),
            Default::default(),
        )
        .await;
    assert!(
        as_classic.is_err(),
        "P.log is a stream, not a classic queue"
    );
    broker.cleanup().await;
}

#[tokio::test]
async fn no_log_when_retention_is_zero() {
    let prefix = unique_prefix("lognone");
    let broker = Broker::new(&{
        let mut c = test_config(&prefix);
        c.topology.log_retention = webhook_worker::broker::topology::LogRetention::Off;
        c
    })
    .await;
    let (code, text) = check_as_tests(&prefix, &["--log-retention", "0"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains(&format!("queue {prefix}.log")), "{text}");
    assert!(
        text.contains(&format!("ok       exchange {prefix}.outcomes")),
        "{text}"
    );
    let (code, text) = check_as_tests(&prefix, &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!("missing  queue {prefix}.log")),
        "{text}"
    );
    for bad in [["--log-retention", "1.5s"], ["--log-max-bytes", "lots"]] {
        let (code, text) = check_as_tests(&prefix, &bad);
        assert_eq!(code, Some(2), "{text}");
        assert!(text.contains(bad[0]), "{text}");
    }
    broker.cleanup().await;
}
