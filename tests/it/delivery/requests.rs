//! What a receiver gets: each catalog event's exact bytes and headers; signatures that verify.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use webhook_worker::domain::catalog::CATALOG;

use super::LONG;
use crate::harness::*;

#[tokio::test]
async fn all_catalog_events_arrive_with_exact_bytes_and_headers() {
    let rig = Harness::new("catalog").ok_receiver().start().await;
    let (broker, receiver, worker) = (&rig.broker, rig.receiver(), rig.worker());

    // Odd spacing, escapes and number forms: a re-serialisation would change them.
    let data = |n: u16| {
        format!(r#"{{ "visitor" : {{"id":{n},"name":"\u00e9l\"a","score":1.50e2}} ,"chat":[ ] }}"#)
    };
    for (n, _) in CATALOG {
        let body = event_with(
            &format!("evt-{n}"),
            n,
            &receiver.url(&format!("/hook/{n}")),
            &data(n),
            r#""site_id":4200"#,
        );
        broker.publish(&body).await;
    }
    let got = receiver.wait_requests(CATALOG.len(), LONG).await;
    assert_eq!(got.len(), CATALOG.len());
    for (n, name) in CATALOG {
        let r = receiver.requests_to(&format!("/hook/{n}"));
        assert_eq!(r.len(), 1, "webhook {n} delivered once");
        let r = &r[0];
        assert_eq!(r.body, data(n).as_bytes(), "exact data bytes for {n}");
        assert_eq!(r.header("content-type"), "application/json");
        assert_eq!(
            r.header("user-agent"),
            format!("webhook-worker/{}", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(r.header("x-comm100-webhook-no"), n.to_string());
        assert_eq!(r.header("x-comm100-event"), name);
        assert_eq!(r.header("x-comm100-delivery-id"), format!("evt-{n}"));
        assert_eq!(r.header("x-comm100-attempt"), "1");
        assert_eq!(r.header("x-comm100-site-id"), "4200");
        assert!(
            r.headers.get("webhook-signature").is_none(),
            "no secret configured"
        );
    }
    let text = worker.scrape().await;
    assert_eq!(
        sample(&text, r#"webhook_delivered_total{webhook="104"}"#),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            r#"webhook_attempts_total{outcome="success",webhook="301"}"#
        ),
        1.0
    );
    worker.stop().await.unwrap();
    assert_eq!(
        broker.depth(broker.topology.deliveries()).await,
        0,
        "everything acked"
    );
    rig.finish().await;
}

fn verify(secret_key: &[u8], r: &Received) -> bool {
    let id = r.header("webhook-id");
    let ts = r.header("webhook-timestamp");
    let sig = r
        .header("webhook-signature")
        .strip_prefix("v1,")
        .expect("v1 prefix");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret_key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&r.body);
    mac.verify_slice(&STANDARD.decode(sig).unwrap()).is_ok()
}

#[tokio::test]
async fn signatures_verify_with_default_and_message_secrets() {
    let default_key = b"default-key-bytes";
    let rig = Harness::new("sign")
        .config(|c| {
            c.delivery.signing_secret = Some(format!("whsec_{}", STANDARD.encode(default_key)))
        })
        .ok_receiver()
        .start()
        .await;
    let (broker, receiver) = (&rig.broker, rig.receiver());

    broker
        .publish(&event(
            "s-default",
            104,
            &receiver.url("/default"),
            r#"{"a":1}"#,
        ))
        .await;
    broker
        .publish(&event_with(
            "s-own",
            104,
            &receiver.url("/own"),
            r#"{"a":2}"#,
            r#""secret":"plain-secret""#,
        ))
        .await;
    receiver.wait_requests(2, LONG).await;

    let d = &receiver.requests_to("/default")[0];
    assert_eq!(d.header("webhook-id"), "s-default");
    let ts: i64 = d.header("webhook-timestamp").parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - ts).abs() < 60, "timestamp is current");
    assert!(verify(default_key, d), "default secret signature verifies");
    assert!(!verify(b"plain-secret", d));

    let o = &receiver.requests_to("/own")[0];
    assert!(
        verify(b"plain-secret", o),
        "message secret overrides the default"
    );
    assert!(!verify(default_key, o));
    rig.finish().await;
}
