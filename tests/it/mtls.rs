//! Mutual TLS to receivers (`WEBHOOK_CLIENT_CERT`, `WEBHOOK_CLIENT_KEY`):
//! a loopback TLS receiver of a private CA that requires a client
//! certificate gets events from a worker that has one, and refuses the
//! handshake of a worker without one; a bad file is one line and exit 2.

use std::time::Duration;

use hyper::Version;

use crate::harness::*;

const LONG: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_requiring_a_client_certificate_gets_events_only_with_it() {
    let pki = Pki::new("ww-mtls-ca");
    let files = TempDir::new("ww-mtls");
    let client = pki.client();
    let ca_pem = pki.ca_pem();
    let receiver = TlsReceiver::start_with(
        &pki.server(ServerCert::Valid),
        Alpn::Http2,
        ClientAuth::Required(&ca_pem),
    )
    .await;
    let ca = files.file("ca.pem", &ca_pem);
    let cert = files.file("client.pem", &client.cert);
    let key = files.file("client-key.pem", &client.key);

    let prefix = unique_prefix("mtls");
    let mut with_cert = test_config(&prefix);
    with_cert.delivery.ca_file = Some(ca.clone());
    with_cert.delivery.client_cert = Some(cert);
    with_cert.delivery.client_key = Some(key);
    let broker = Broker::new(&with_cert).await;
    let worker = RunningWorker::start(with_cert).await;
    broker
        .publish(&event("m1", 101, &receiver.url("/a"), "{}"))
        .await;
    broker
        .publish(&event("m2", 101, &receiver.url("/a"), "{}"))
        .await;
    wait_for("both events through mutual TLS", LONG, async || {
        (receiver.seen().len() == 2).then_some(())
    })
    .await;
    let ids: Vec<String> = receiver.seen().into_iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), 2);
    assert!(receiver.seen().iter().all(|(v, _)| *v == Version::HTTP_2));
    worker.stop().await.unwrap();

    // The same worker without the certificate: the handshake is refused,
    // each attempt a connect_error, nothing reaches the receiver.
    let mut without = test_config(&prefix);
    without.delivery.ca_file = Some(ca);
    let worker = RunningWorker::start(without).await;
    broker
        .publish(&event("m3", 101, &receiver.url("/b"), "{}"))
        .await;
    wait_for("attempts without a certificate failing", LONG, async || {
        let text = worker.scrape().await;
        let failed = sample(
            &text,
            "webhook_attempts_total{outcome=\"connect_error\",webhook=\"101\"}",
        );
        (failed >= 2.0).then_some(())
    })
    .await;
    assert_eq!(receiver.seen().len(), 2, "no request without a certificate");
    worker.stop().await.unwrap();
    broker.cleanup().await;
}

/// A client certificate or key that cannot be used is one error line naming
/// the setting, and exit code 2, at start.
#[tokio::test]
async fn bad_client_certificate_files_are_configuration_errors() {
    let pki = Pki::new("ww-mtls-bad");
    let files = TempDir::new("ww-mtls-bad");
    let client = pki.client();
    let cert = files.file("client.pem", &client.cert);
    let key = files.file("client-key.pem", &client.key);
    let other_key = files.file("other-key.pem", &pki.client().key);
    let junk = files.file("junk.pem", "not PEM at all");
    let missing = files.path().join("missing.pem");
    let (cert, key, other_key, junk, missing) = (
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        other_key.to_str().unwrap(),
        junk.to_str().unwrap(),
        missing.to_str().unwrap(),
    );
    for (setting, env) in [
        (
            "WEBHOOK_CLIENT_CERT",
            vec![
                ("WEBHOOK_CLIENT_CERT", missing),
                ("WEBHOOK_CLIENT_KEY", key),
            ],
        ),
        (
            "WEBHOOK_CLIENT_CERT",
            vec![("WEBHOOK_CLIENT_CERT", junk), ("WEBHOOK_CLIENT_KEY", key)],
        ),
        (
            "WEBHOOK_CLIENT_KEY",
            vec![("WEBHOOK_CLIENT_CERT", cert), ("WEBHOOK_CLIENT_KEY", junk)],
        ),
        ("WEBHOOK_CLIENT_KEY", vec![("WEBHOOK_CLIENT_CERT", cert)]),
        (
            "WEBHOOK_CLIENT_KEY",
            vec![
                ("WEBHOOK_CLIENT_CERT", cert),
                ("WEBHOOK_CLIENT_KEY", other_key),
            ],
        ),
    ] {
        let mut w = WorkerProcess::spawn("mtls-bad", &[], &env);
        let (code, _) = w.wait_exit(LONG).await;
        let log = w.log_text();
        assert_eq!(code, Some(2), "{env:?}: {log}");
        let errors: Vec<&str> = log.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{log}");
        assert!(errors[0].contains(setting), "{log}");
        assert!(!log.contains("PRIVATE KEY"), "{log}");
    }
}
