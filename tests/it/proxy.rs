//! Deliveries through real forward proxies on loopback (tinyproxy for
//! HTTP CONNECT, microsocks for SOCKS5; see `harness::proxy`): http and
//! https receivers delivered through each, the proxy asked for the checked
//! IP and never the name, TLS verifying the name; a name that resolves to a
//! refused address refused before the proxy is asked; `WEBHOOK_NO_PROXY`
//! going direct; a hanging receiver behind the proxy held to its own slots.

use std::time::Duration;

use webhook_worker::config::Config;

use crate::harness::*;

const LONG: Duration = Duration::from_secs(60);

/// The same receiver, named: `http://localhost:port/path`.
fn by_name(url: &str) -> String {
    url.replacen("127.0.0.1", "localhost", 1)
}

fn through(proxy: &ForwardProxy) -> impl FnOnce(&mut Config) {
    let url = proxy.url();
    move |c| c.delivery.proxy_url = Some(url.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn http_and_https_receivers_are_delivered_through_each_proxy() {
    let pki = Pki::new("ww-proxy-ca");
    let files = TempDir::new("ww-proxy-tls");
    let ca = files.file("ca.pem", &pki.ca_pem());
    // Valid for the name `localhost` only: TLS must verify the name, not
    // the address the tunnel goes to.
    let https = TlsReceiver::start(&pki.server(ServerCert::LocalhostOnly), Alpn::Http2).await;
    for kind in [ProxyKind::Tinyproxy, ProxyKind::Microsocks] {
        let proxy = ForwardProxy::start(kind, Some(("ww", "proxy-pass"))).await;
        let set_proxy = through(&proxy);
        let ca = ca.clone();
        let rig = Harness::new("proxy-via")
            .config(move |c| {
                set_proxy(c);
                c.delivery.ca_file = Some(ca);
            })
            .ok_receiver()
            .start()
            .await;
        let (broker, receiver) = (&rig.broker, rig.receiver());
        let http_url = by_name(&receiver.url("/plain"));
        let https_url = format!("https://localhost:{}/tls", https.addr.port());
        let tag = format!("{kind:?}");
        broker
            .publish(&event(&format!("{tag}-http"), 101, &http_url, "{}"))
            .await;
        broker
            .publish(&event(&format!("{tag}-https"), 101, &https_url, "{}"))
            .await;
        let got = receiver.wait_requests(1, LONG).await;
        // The request is the receiver's: its name in Host, not the address.
        assert_eq!(
            got[0].header("host"),
            http_url[7..].split('/').next().unwrap()
        );
        wait_for("the https receiver served", LONG, async || {
            https
                .seen()
                .iter()
                .any(|(_, id)| *id == format!("{tag}-https"))
                .then_some(())
        })
        .await;
        // The proxy was asked for the checked addresses, never the name.
        let targets = proxy.targets();
        let plain = format!(
            "127.0.0.1:{}",
            http_url
                .rsplit(':')
                .next()
                .unwrap()
                .split('/')
                .next()
                .unwrap()
        );
        let tls = format!("127.0.0.1:{}", https.addr.port());
        assert!(targets.contains(&plain), "{kind:?} asked for {targets:?}");
        assert!(targets.contains(&tls), "{kind:?} asked for {targets:?}");
        assert!(
            targets.iter().all(|t| !t.contains("localhost")),
            "{targets:?}"
        );
        let text = rig.worker().scrape().await;
        assert_eq!(sample(&text, "webhook_proxy_errors_total"), 0.0);
        rig.finish().await;
    }
}

#[tokio::test]
async fn a_name_resolving_to_a_refused_address_is_refused_before_the_proxy_is_asked() {
    for kind in [ProxyKind::Tinyproxy, ProxyKind::Microsocks] {
        let proxy = ForwardProxy::start(kind, None).await;
        let set_proxy = through(&proxy);
        let rig = Harness::new("proxy-guard")
            .config(move |c| {
                set_proxy(c);
                c.delivery.allow_private_targets = false;
            })
            .ok_receiver()
            .start()
            .await;
        let (broker, receiver) = (&rig.broker, rig.receiver());
        // `localhost` resolves to 127.0.0.1: the guard refuses it.
        broker
            .publish(&event("guarded", 101, &by_name(&receiver.url("/x")), "{}"))
            .await;
        let dead = broker.dead_messages(1, LONG).await;
        assert_eq!(
            header_str(&dead[0], "webhook-drop-reason").as_deref(),
            Some("forbidden_target"),
            "{kind:?}"
        );
        let text = rig.worker().scrape().await;
        assert_eq!(
            sample(
                &text,
                r#"webhook_attempts_total{outcome="forbidden_target",webhook="101"}"#
            ),
            1.0
        );
        assert_eq!(sample(&text, "webhook_proxy_errors_total"), 0.0);
        assert!(receiver.requests().is_empty());
        assert!(
            proxy.targets().is_empty(),
            "{kind:?} was asked: {:?}",
            proxy.targets()
        );
        rig.finish().await;
    }
}

#[tokio::test]
async fn receivers_matching_no_proxy_go_direct() {
    // The proxy is down: only a receiver that bypasses it can be reached.
    let (_closed, port) = closed_port();
    let rig = Harness::new("proxy-bypass")
        .config(move |c| {
            c.delivery.proxy_url = Some(format!("http://127.0.0.1:{port}").parse().unwrap());
            c.delivery.no_proxy = Some("other.example, localhost".into());
        })
        .ok_receiver()
        .start()
        .await;
    let (broker, receiver) = (&rig.broker, rig.receiver());
    broker
        .publish(&event("direct", 101, &by_name(&receiver.url("/d")), "{}"))
        .await;
    broker
        .publish(&event("proxied", 101, &receiver.url("/p"), "{}"))
        .await;
    let got = receiver.wait_requests(1, LONG).await;
    assert_eq!(got[0].path, "/d");
    // The other went to the proxy, which is down: deferred, not attempted.
    let text = wait_for("the proxied one deferred", LONG, async || {
        let text = rig.worker().scrape().await;
        (sample(&text, "webhook_proxy_errors_total") >= 1.0).then_some(text)
    })
    .await;
    assert_eq!(
        sample(
            &text,
            r#"webhook_attempts_total{outcome="success",webhook="101"}"#
        ),
        1.0
    );
    assert!(receiver.requests_to("/p").is_empty());
    rig.finish().await;
}

/// The per-receiver limits key on the receiver, not on the proxy every
/// connection goes to: a hanging receiver behind the proxy is held to a
/// few slots while a healthy one, behind the same proxy, delivers.
#[tokio::test]
async fn a_hanging_receiver_behind_the_proxy_cannot_take_the_others_slots() {
    let proxy = ForwardProxy::start(ProxyKind::Microsocks, None).await;
    let rig = hanging_and_healthy(Harness::new("proxy-hang"))
        .config(through(&proxy))
        .start()
        .await;
    // The healthy receiver answers once first: a receiver that has never
    // answered gets 500 ms before its deliveries are deferred, and its
    // first connections, through the proxy on a loaded machine, may take
    // longer; from then on it is judged by its latency.
    let healthy = &rig.receivers[1];
    rig.broker
        .publish(&event("warm", 104, &healthy.url("/warm"), "{}"))
        .await;
    healthy.wait_requests(1, LONG).await;
    let text = publish_hang_mix(&rig, 500).await;
    assert_eq!(sample(&text, "webhook_proxy_errors_total"), 0.0);
    rig.finish().await;
}
