//! Delivery against the real broker and real receivers: bodies, headers,
//! signatures, retries through the TTL tiers, drops.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use webhook_worker::domain::catalog::CATALOG;

use crate::harness::*;

const LONG: Duration = Duration::from_secs(30);

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

#[tokio::test]
async fn succeeds_after_failures_with_gaps_matching_the_tiers() {
    let rig = Harness::new("retry")
        .config(|c| c.topology.retry_schedule = "300ms,1s,300ms".parse().unwrap())
        // Fails twice (500, then a closed-early 503), succeeds on the third.
        .receiver(|_, seen| {
            if seen < 2 {
                Reply::status(500 + seen as u16 * 3)
            } else {
                Reply::ok()
            }
        })
        .start()
        .await;
    let (broker, receiver, worker) = (&rig.broker, rig.receiver(), rig.worker());

    broker
        .publish(&event("r-1", 109, &receiver.url("/r"), "{}"))
        .await;
    let got = receiver.wait_requests(3, LONG).await;
    let attempts: Vec<_> = got
        .iter()
        .map(|r| r.header("x-comm100-attempt").to_string())
        .collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    let gap1 = got[1].at - got[0].at;
    let gap2 = got[2].at - got[1].at;
    assert!(
        gap1 >= Duration::from_millis(300) && gap1 < Duration::from_millis(1000),
        "first gap {gap1:?} ~ 300ms"
    );
    assert!(
        gap2 >= Duration::from_millis(1000) && gap2 < Duration::from_millis(1700),
        "second gap {gap2:?} ~ 1s"
    );
    assert!(
        got.iter()
            .all(|r| r.header("x-comm100-delivery-id") == "r-1"),
        "same id on every attempt"
    );

    let text = worker.scrape().await;
    assert_eq!(sample(&text, r#"webhook_retried_total{tier="300ms"}"#), 1.0);
    assert_eq!(sample(&text, r#"webhook_retried_total{tier="1s"}"#), 1.0);
    assert_eq!(
        sample(
            &text,
            r#"webhook_attempts_total{outcome="http_error",webhook="109"}"#
        ),
        2.0
    );
    assert_eq!(
        sample(&text, r#"webhook_delivered_total{webhook="109"}"#),
        1.0
    );
    worker.stop().await.unwrap();
    assert_eq!(broker.depth(broker.topology.dead()).await, 0);
    rig.finish().await;
}

#[tokio::test]
async fn dropped_as_expired_when_the_schedule_is_exhausted() {
    // The test config's 200ms*2,500ms: 4 attempts in all.
    let rig = Harness::new("exhaust")
        .receiver(|_, _| Reply::status(500))
        .start()
        .await;
    let (broker, receiver, worker) = (&rig.broker, rig.receiver(), rig.worker());

    let body = event(
        "x-1",
        201,
        &receiver.url("/x"),
        r#"{"offline_message":{"id":1}}"#,
    );
    broker.publish(&body).await;
    let dead = broker.dead_messages(1, LONG).await;
    assert_eq!(receiver.requests().len(), 4, "1 attempt + 3 retries");
    let d = &dead[0];
    assert_eq!(d.data, body, "body unchanged");
    assert_eq!(
        header_str(d, "webhook-drop-reason").as_deref(),
        Some("expired")
    );
    assert_eq!(header_int(d, "webhook-attempts"), Some(4));
    assert_eq!(
        header_str(d, "webhook-last-error").as_deref(),
        Some("HTTP 500")
    );
    assert!(header_int(d, "webhook-first-attempt-ms").unwrap() > 1_700_000_000_000);
    let text = worker.scrape().await;
    assert_eq!(
        sample(&text, r#"webhook_dropped_total{reason="expired"}"#),
        1.0
    );
    assert_eq!(sample(&text, r#"webhook_retried_total{tier="200ms"}"#), 2.0);
    assert_eq!(sample(&text, r#"webhook_retried_total{tier="500ms"}"#), 1.0);
    rig.finish().await;
}

#[tokio::test]
async fn dropped_as_expired_when_the_next_retry_passes_max_age() {
    let rig = Harness::new("maxage")
        // Attempts at 0 and ~1 s; after the 2nd fails, the 3rd would come at
        // ~2 s + hops, past the 2.5 s max age only once hops pass 500 ms — so
        // use 1s*5 with max age 2.5 s: attempt 3 would be due at >= 3 s.
        .config(|c| {
            c.topology.retry_schedule = "1s*5".parse().unwrap();
            c.retry.max_age = Duration::from_millis(2500);
        })
        .receiver(|_, _| Reply::status(502))
        .start()
        .await;
    let (broker, receiver) = (&rig.broker, rig.receiver());

    broker
        .publish(&event("m-1", 101, &receiver.url("/m"), "{}"))
        .await;
    let dead = broker.dead_messages(1, LONG).await;
    // Attempt 1 at 0 (retry due 1 s <= 2.5 s), attempt 2 at ~1 s (due ~2 s
    // <= 2.5 s), attempt 3 at ~2 s (due ~3 s > 2.5 s): expired after 3.
    assert_eq!(receiver.requests().len(), 3);
    assert_eq!(header_int(&dead[0], "webhook-attempts"), Some(3));
    assert_eq!(
        header_str(&dead[0], "webhook-drop-reason").as_deref(),
        Some("expired")
    );
    rig.finish().await;
}

#[tokio::test]
async fn timeout_counts_as_a_failure() {
    let rig = Harness::new("timeout")
        .config(|c| {
            c.delivery.timeout = Duration::from_millis(300);
            c.topology.retry_schedule = "200ms".parse().unwrap();
        })
        .receiver(|_, _| Reply::ok().after(Duration::from_secs(3)))
        .start()
        .await;
    let (broker, receiver, worker) = (&rig.broker, rig.receiver(), rig.worker());

    broker
        .publish(&event("t-1", 105, &receiver.url("/slow"), "{}"))
        .await;
    let dead = broker.dead_messages(1, LONG).await;
    assert_eq!(receiver.requests().len(), 2);
    assert!(
        header_str(&dead[0], "webhook-last-error")
            .unwrap()
            .starts_with("timeout")
    );
    let text = worker.scrape().await;
    assert_eq!(
        sample(
            &text,
            r#"webhook_attempts_total{outcome="timeout",webhook="105"}"#
        ),
        2.0
    );
    rig.finish().await;
}

#[tokio::test]
async fn gone_drops_at_once() {
    let rig = Harness::new("gone")
        .receiver(|_, _| Reply::status(410))
        .start()
        .await;
    let (broker, receiver, worker) = (&rig.broker, rig.receiver(), rig.worker());

    broker
        .publish(&event("g-1", 106, &receiver.url("/g"), "{}"))
        .await;
    let dead = broker.dead_messages(1, LONG).await;
    assert_eq!(receiver.requests().len(), 1, "no retry after 410");
    assert_eq!(
        header_str(&dead[0], "webhook-drop-reason").as_deref(),
        Some("gone")
    );
    assert_eq!(header_int(&dead[0], "webhook-attempts"), Some(1));
    let text = worker.scrape().await;
    assert_eq!(
        sample(
            &text,
            r#"webhook_attempts_total{outcome="gone",webhook="106"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(&text, r#"webhook_dropped_total{reason="gone"}"#),
        1.0
    );
    rig.finish().await;
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let rig = Harness::new("redirect")
        .config(|c| c.topology.retry_schedule = "200ms".parse().unwrap())
        .receiver(|r, _| {
            if r.path == "/moved" {
                Reply::status(307).header("location", "/target")
            } else {
                Reply::ok()
            }
        })
        .start()
        .await;
    let (broker, receiver) = (&rig.broker, rig.receiver());

    broker
        .publish(&event("rd-1", 107, &receiver.url("/moved"), "{}"))
        .await;
    let dead = broker.dead_messages(1, LONG).await;
    assert!(
        receiver.requests_to("/target").is_empty(),
        "the redirect target is never called"
    );
    assert_eq!(receiver.requests_to("/moved").len(), 2);
    assert_eq!(
        header_str(&dead[0], "webhook-last-error").as_deref(),
        Some("HTTP 307")
    );
    rig.finish().await;
}

#[tokio::test]
async fn retry_after_chooses_the_tier() {
    let rig = Harness::new("retryafter")
        .config(|c| c.topology.retry_schedule = "200ms,1500ms".parse().unwrap())
        .receiver(|_, seen| {
            if seen == 0 {
                Reply::status(429).header("retry-after", "1")
            } else {
                Reply::ok()
            }
        })
        .start()
        .await;
    let (broker, receiver, worker) = (&rig.broker, rig.receiver(), rig.worker());

    broker
        .publish(&event("ra-1", 110, &receiver.url("/ra"), "{}"))
        .await;
    let got = receiver.wait_requests(2, LONG).await;
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(1500),
        "waited in the 1500ms tier, not 200ms: {gap:?}"
    );
    assert_eq!(got[1].header("x-comm100-attempt"), "2");
    let text = worker.scrape().await;
    assert_eq!(
        sample(&text, r#"webhook_retried_total{tier="1500ms"}"#),
        1.0
    );
    assert_eq!(sample(&text, r#"webhook_retried_total{tier="200ms"}"#), 0.0);
    rig.finish().await;
}

#[tokio::test]
async fn classic_queues_deliver_and_retry_too() {
    let rig = Harness::new("classic")
        .config(classic)
        .receiver(|_, seen| {
            if seen == 0 {
                Reply::status(500)
            } else {
                Reply::ok()
            }
        })
        .start()
        .await;
    let (broker, receiver) = (&rig.broker, rig.receiver());
    broker
        .publish(&event("c-1", 104, &receiver.url("/c"), "{}"))
        .await;
    let got = receiver.wait_requests(2, LONG).await;
    assert_eq!(got[1].header("x-comm100-attempt"), "2");
    rig.finish().await;
}

#[tokio::test]
async fn a_slow_receiver_does_not_hold_up_the_others() {
    let rig = Harness::new("isolation")
        .config(|c| c.delivery.timeout = Duration::from_secs(10))
        .receiver(|r, _| {
            if r.path == "/slow" {
                Reply::ok().after(Duration::from_secs(4))
            } else {
                Reply::ok()
            }
        })
        .start()
        .await;
    let (broker, receiver) = (&rig.broker, rig.receiver());
    broker
        .publish_many(
            (0..5).map(|i| event(&format!("slow-{i}"), 104, &receiver.url("/slow"), "{}")),
        )
        .await;
    broker
        .publish_many(
            (0..50).map(|i| event(&format!("fast-{i}"), 104, &receiver.url("/fast"), "{}")),
        )
        .await;
    wait_for("fast deliveries", Duration::from_secs(3), async || {
        (receiver.requests_to("/fast").len() == 50).then_some(())
    })
    .await;
    rig.finish().await;
}

#[tokio::test]
async fn a_stalled_receiver_is_capped_and_its_overflow_deferred() {
    let rig = Harness::new("hostcap")
        .config(|c| {
            c.delivery.host_concurrency = 2;
            c.delivery.timeout = Duration::from_secs(2);
        })
        .receiver(|_, _| Reply::ok().after(Duration::from_secs(5)))
        .ok_receiver()
        .start()
        .await;
    let (broker, worker) = (&rig.broker, rig.worker());
    let (stalled, healthy) = (&rig.receivers[0], &rig.receivers[1]);

    broker
        .publish_many(
            (0..10).map(|i| event(&format!("stalled-{i}"), 104, &stalled.url("/h"), "{}")),
        )
        .await;
    broker
        .publish_many(
            (0..50).map(|i| event(&format!("healthy-{i}"), 104, &healthy.url("/ok"), "{}")),
        )
        .await;
    healthy.wait_requests(50, LONG).await;
    assert_eq!(
        stalled.requests().len(),
        2,
        "two slots for the stalled receiver, no more"
    );
    // A receiver too new to judge is waited for (250 ms), then deferred.
    let text = wait_for("the other eight deferred", LONG, async || {
        let text = worker.scrape().await;
        (sample(&text, "webhook_deferred_total") >= 8.0).then_some(text)
    })
    .await;
    assert_eq!(stalled.requests().len(), 2, "still no more than two");
    // Deferred deliveries are not attempts.
    assert_eq!(
        sample(
            &text,
            r#"webhook_attempts_total{outcome="success",webhook="104"}"#
        ),
        50.0
    );
    rig.finish().await;
}

#[tokio::test]
async fn a_busy_answering_receiver_is_waited_for_not_deferred() {
    let mut rig = Harness::new("hostbusy")
        .alone()
        .config(|c| c.delivery.host_concurrency = 4)
        .receiver(|_, _| Reply::ok().after(Duration::from_millis(20)))
        .declare()
        .await;
    let (broker, receiver) = (&rig.broker, rig.receiver());
    // A backlog at start-up for a receiver the worker has never seen: 100
    // at once to a receiver that takes 4 at a time, 20 ms each. It answers,
    // so each delivery waits for its turn; none is deferred.
    broker
        .publish_many(
            (0..100).map(|i| event(&format!("burst-{i}"), 104, &receiver.url("/b"), "{}")),
        )
        .await;
    rig.start_worker().await;
    let (receiver, worker) = (rig.receiver(), rig.worker());
    let text = wait_for("100 delivered", LONG, async || {
        let text = worker.scrape().await;
        (sample(&text, r#"webhook_delivered_total{webhook="104"}"#) == 100.0).then_some(text)
    })
    .await;
    assert_eq!(sample(&text, "webhook_deferred_total"), 0.0);
    assert_eq!(receiver.requests().len(), 100, "each once");
    rig.finish().await;
}

#[tokio::test]
async fn a_large_response_body_does_not_fail_the_delivery() {
    let rig = Harness::new("bigbody")
        // 8 MiB answers: the status decides (the worker reads at most 64 KiB
        // of a body, then drops the connection).
        .receiver(|_, _| Reply::ok().body(vec![b'x'; 8 << 20]))
        .start()
        .await;
    let (broker, receiver, worker) = (&rig.broker, rig.receiver(), rig.worker());
    broker
        .publish_many((0..5).map(|i| event(&format!("big-{i}"), 104, &receiver.url("/big"), "{}")))
        .await;
    receiver.wait_requests(5, LONG).await;
    let text = wait_for("five successes", LONG, async || {
        let text = worker.scrape().await;
        (sample(&text, r#"webhook_delivered_total{webhook="104"}"#) == 5.0).then_some(text)
    })
    .await;
    assert_eq!(
        sample(
            &text,
            r#"webhook_attempts_total{outcome="success",webhook="104"}"#
        ),
        5.0
    );
    assert_eq!(receiver.requests().len(), 5, "no retries");
    rig.finish().await;
}

/// The worker asks for 16 KiB AMQP frames; a message near the 1 MiB limit
/// then crosses the broker in dozens of frames each way — delivered, failed,
/// published as a retry copy, redelivered — and arrives byte for byte.
#[tokio::test]
async fn a_message_near_the_size_limit_crosses_many_frames_intact() {
    let rig = Harness::new("bigmsg")
        .receiver(|_, seen| {
            if seen == 0 {
                Reply::status(500)
            } else {
                Reply::ok()
            }
        })
        .start()
        .await;
    let config = &rig.config;
    assert_eq!(
        config.delivery.max_message_bytes,
        1 << 20,
        "the contract's default"
    );
    let (broker, receiver, prefix) = (&rig.broker, rig.receiver(), rig.prefix());
    let data = format!(r#"{{"blob":"{}"}}"#, "x".repeat(1_000_000));
    let message = event("big-1", 105, &receiver.url("/big"), &data);
    assert!(message.len() < 1 << 20);
    broker.publish(&message).await;
    let got = receiver.wait_requests(2, LONG).await;
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.header("x-comm100-attempt"), (i + 1).to_string());
        assert!(r.body == data.as_bytes(), "attempt {} body intact", i + 1);
    }
    let connection = worker_connection(prefix).await;
    assert_eq!(connection["frame_max"].as_u64(), Some(16 * 1024));
    rig.finish().await;
}
