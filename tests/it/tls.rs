//! TLS with certificates the test makes (rcgen): to the broker — a real
//! RabbitMQ TLS listener (`scripts/tls-broker.sh`: AMQPS on 5691 with an
//! optional client certificate, 5692 requiring one) — and to receivers,
//! over HTTP/2 and HTTP/1.1, trusted through `WEBHOOK_CA_FILE`.

use std::time::Duration;

use hyper::Version;

use crate::harness::*;

const LONG: Duration = Duration::from_secs(60);
const PLAIN: &str = "amqp://guest:guest@127.0.0.1:5690/%2f";

/// The tests boot one TLS node with their own certificates: one at a time,
/// and alone ([`Alone`]: a node boot loads the two cores).
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The TLS node, booted with `server` signed by `pki`; stopped on drop.
struct TlsBroker {
    _dir: TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
    _alone: Alone,
}

impl TlsBroker {
    async fn boot(pki: &Pki, server: Issued) -> Self {
        let turn = TURN.lock().await;
        let alone = Alone::take().await;
        let dir = TempDir::new("ww-tls-broker");
        dir.file("ca.pem", &pki.ca_pem());
        dir.file("server.pem", &server.cert);
        dir.file("server-key.pem", &server.key);
        let path = dir.path().to_path_buf();
        let ok =
            tokio::task::spawn_blocking(move || tls_script(&["start", path.to_str().unwrap()]))
                .await
                .unwrap();
        assert!(ok, "scripts/tls-broker.sh start failed");
        Self {
            _dir: dir,
            _turn: turn,
            _alone: alone,
        }
    }
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        tls_script(&["stop"]);
    }
}

fn tls_script(args: &[&str]) -> bool {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/tls-broker.sh");
    std::process::Command::new(path)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn amqps(host: &str, port: u16) -> String {
    format!("amqps://guest:guest@{host}:{port}/%2f")
}

/// A worker process on `url` with the given TLS files; not waited for.
fn worker(prefix: &str, url: &str, files: &[(&str, &std::path::Path)]) -> WorkerProcess {
    let files: Vec<(&str, String)> = files
        .iter()
        .map(|(k, p)| (*k, p.display().to_string()))
        .collect();
    let mut env: Vec<(&str, &str)> = vec![("AMQP_URL", url)];
    env.extend(files.iter().map(|(k, v)| (*k, v.as_str())));
    WorkerProcess::spawn(prefix, &[], &env)
}

async fn wait_ready(w: &WorkerProcess) {
    wait_for("worker ready over TLS", LONG, async || {
        (w.readyz().await == Some(200)).then_some(())
    })
    .await;
}

/// Waits until the worker has logged a failed connect with one of
/// `texts` (lower case) twice; it must still be running and not ready.
async fn wait_refused(w: &mut WorkerProcess, texts: &[&str]) {
    wait_for(&format!("a logged {texts:?}, twice"), LONG, async || {
        let log = w.log_text().to_lowercase();
        let failures = log
            .lines()
            .filter(|l| l.contains("cannot connect to the broker node"))
            .filter(|l| texts.iter().any(|t| l.contains(t)))
            .count();
        (failures >= 2).then_some(())
    })
    .await;
    assert_eq!(w.readyz().await, Some(503));
    assert!(w.is_running(), "it keeps retrying");
}

/// A private CA, the server name checked, a wrong CA refused, and mutual
/// TLS with and without a client certificate.
#[tokio::test(flavor = "multi_thread")]
async fn broker_over_tls_with_a_private_ca_and_mutual_tls() {
    let pki = Pki::new("ww-test-ca");
    let other = Pki::new("ww-other-ca");
    let files = TempDir::new("ww-tls-client");
    let ca = files.file("ca.pem", &pki.ca_pem());
    let wrong_ca = files.file("wrong-ca.pem", &other.ca_pem());
    let client = pki.client();
    let cert = files.file("client.pem", &client.cert);
    let key = files.file("client-key.pem", &client.key);
    let _broker = TlsBroker::boot(&pki, pki.server(ServerCert::LocalhostOnly)).await;

    let prefix = unique_prefix("tls");
    let receiver = Receiver::ok().await;
    // The private CA: consumes over TLS and delivers.
    let w = worker(&prefix, &amqps("localhost", 5691), &[("AMQP_CA_FILE", &ca)]);
    wait_ready(&w).await;
    let broker = Broker::on(PLAIN, &test_config(&prefix)).await;
    broker
        .publish(&event("tls-1", 101, &receiver.url("/t"), "{}"))
        .await;
    receiver.wait_requests(1, LONG).await;
    assert!(w.log_text().contains("amqps://guest@localhost:5691"));
    drop(w);

    // The certificate names localhost only: 127.0.0.1 is refused.
    let mut w = worker(&prefix, &amqps("127.0.0.1", 5691), &[("AMQP_CA_FILE", &ca)]);
    wait_refused(&mut w, &["notvalidforname", "not valid for name"]).await;
    drop(w);

    // Another CA: refused, logged, retried.
    let mut w = worker(
        &prefix,
        &amqps("localhost", 5691),
        &[("AMQP_CA_FILE", &wrong_ca)],
    );
    wait_refused(&mut w, &["unknownissuer", "unknown issuer"]).await;
    drop(w);

    // Mutual TLS on 5692: without a client certificate the broker closes
    // the connection (with TLS 1.3, at the first read after the handshake).
    let mut w = worker(&prefix, &amqps("localhost", 5692), &[("AMQP_CA_FILE", &ca)]);
    wait_refused(&mut w, &["cannot connect"]).await;
    drop(w);
    let w = worker(
        &prefix,
        &amqps("localhost", 5692),
        &[
            ("AMQP_CA_FILE", &ca),
            ("AMQP_CLIENT_CERT", &cert),
            ("AMQP_CLIENT_KEY", &key),
        ],
    );
    wait_ready(&w).await;
    broker
        .publish(&event("tls-2", 101, &receiver.url("/t"), "{}"))
        .await;
    receiver.wait_requests(2, LONG).await;
    let log = w.log_text();
    assert!(!log.contains("guest:guest"), "{log}");
    drop(w);
    broker.cleanup().await;
}

/// An expired server certificate: refused with a clear error, retried,
/// never ready.
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_broker_certificate_is_refused() {
    let pki = Pki::new("ww-test-ca");
    let files = TempDir::new("ww-tls-client");
    let ca = files.file("ca.pem", &pki.ca_pem());
    let _broker = TlsBroker::boot(&pki, pki.server(ServerCert::Expired)).await;
    let mut w = worker(
        &unique_prefix("tls-exp"),
        &amqps("localhost", 5691),
        &[("AMQP_CA_FILE", &ca)],
    );
    wait_refused(&mut w, &["expired"]).await;
    let metrics = w.scrape().await;
    assert!(
        sample(
            &metrics,
            "webhook_broker_connect_failures_total{node=\"1\"}"
        ) >= 2.0,
        "{metrics}"
    );
}

/// Bad TLS files are one line and exit code 2, before any connect.
#[tokio::test]
async fn unreadable_or_bad_tls_files_are_configuration_errors() {
    let files = TempDir::new("ww-tls-bad");
    let junk = files.file("junk.pem", "not PEM at all");
    let missing = files.path().join("missing.pem");
    for (setting, path) in [
        ("AMQP_CA_FILE", &missing),
        ("AMQP_CA_FILE", &junk),
        ("WEBHOOK_CA_FILE", &junk),
        ("AMQP_CLIENT_CERT", &junk),
    ] {
        let mut w = worker("tls-bad", &amqps("localhost", 5691), &[(setting, path)]);
        let (code, _) = w.wait_exit(LONG).await;
        assert_eq!(code, Some(2), "{setting}");
        let log = w.log_text();
        let errors: Vec<&str> = log.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{log}");
        assert!(errors[0].contains(setting), "{log}");
    }
}

/// A receiver whose certificate a private CA signed, trusted through
/// `WEBHOOK_CA_FILE`: delivered over HTTP/2 when it offers h2 by ALPN,
/// else over HTTP/1.1; a certificate of another CA is a `connect_error`.
#[tokio::test(flavor = "multi_thread")]
async fn receivers_with_a_private_ca_over_http2_and_http1() {
    let pki = Pki::new("ww-receiver-ca");
    let stranger = Pki::new("ww-stranger-ca");
    let files = TempDir::new("ww-tls-receiver");
    let h2 = TlsReceiver::start(&pki.server(ServerCert::Valid), Alpn::Http2).await;
    let h1 = TlsReceiver::start(&pki.server(ServerCert::Valid), Alpn::Http1).await;
    let untrusted = TlsReceiver::start(&stranger.server(ServerCert::Valid), Alpn::Http2).await;

    let prefix = unique_prefix("tls-recv");
    let mut config = test_config(&prefix);
    config.delivery.ca_file = Some(files.file("ca.pem", &pki.ca_pem()));
    config.retry.max_age = Duration::from_secs(1);
    let broker = Broker::new(&config).await;
    let worker = RunningWorker::start(config).await;
    broker.publish(&event("h2", 101, &h2.url("/a"), "{}")).await;
    broker.publish(&event("h1", 101, &h1.url("/b"), "{}")).await;
    broker
        .publish(&event("bad", 101, &untrusted.url("/c"), "{}"))
        .await;

    wait_for("both trusted receivers served", LONG, async || {
        (!h2.seen().is_empty() && !h1.seen().is_empty()).then_some(())
    })
    .await;
    assert_eq!(h2.seen(), vec![(Version::HTTP_2, "h2".to_string())]);
    assert_eq!(h1.seen(), vec![(Version::HTTP_11, "h1".to_string())]);
    wait_for(
        "the untrusted one failing as connect_error",
        LONG,
        async || {
            let text = worker.scrape().await;
            let n = sample(
                &text,
                "webhook_attempts_total{outcome=\"connect_error\",webhook=\"101\"}",
            );
            (n >= 1.0).then_some(())
        },
    )
    .await;
    assert!(untrusted.seen().is_empty());
    worker.stop().await.unwrap();
    broker.cleanup().await;
}
