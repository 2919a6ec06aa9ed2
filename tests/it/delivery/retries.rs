//! Failed attempts: retries through the TTL tiers, Retry-After, timeouts, drops (expired, gone).

use std::time::Duration;

use super::LONG;
use crate::harness::*;

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
