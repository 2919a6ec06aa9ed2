//! Malformed bodies: every kind the contract names, parked as `malformed` with a precise error.

use std::collections::HashMap;

use lapin::{
    BasicProperties,
    types::{AMQPValue, FieldTable},
};

use super::LONG;
use crate::harness::*;

/// (case name, body, expected reason, expected fragment of last-error)
fn malformed_cases(url: &str) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let ok_data = r#"{"visitor":{}}"#;
    let long_url = format!("http://127.0.0.1/{}", "a".repeat(2048));
    let mut cases: Vec<(&'static str, Vec<u8>, &'static str)> = vec![
        (
            "not-json",
            b"this is not json".to_vec(),
            "not a JSON object",
        ),
        (
            "truncated-json",
            br#"{"id":"x","webhook":101"#.to_vec(),
            "not valid JSON",
        ),
        ("not-utf8", b"{\"id\":\"\xff\xfe\"}".to_vec(), "not UTF-8"),
        ("array-body", b"[1,2,3]".to_vec(), "not a JSON object"),
        ("empty-body", b"".to_vec(), "not a JSON object"),
        (
            "missing-id",
            format!(r#"{{"webhook":101,"url":"{url}","data":{{}}}}"#).into_bytes(),
            "field 'id' is missing",
        ),
        (
            "missing-webhook",
            format!(r#"{{"id":"a","url":"{url}","data":{{}}}}"#).into_bytes(),
            "field 'webhook' is missing",
        ),
        (
            "missing-url",
            br#"{"id":"a","webhook":101,"data":{}}"#.to_vec(),
            "field 'url' is missing",
        ),
        (
            "missing-data",
            format!(r#"{{"id":"a","webhook":101,"url":"{url}"}}"#).into_bytes(),
            "field 'data' is missing",
        ),
        (
            "id-not-string",
            format!(r#"{{"id":7,"webhook":101,"url":"{url}","data":{{}}}}"#).into_bytes(),
            "'id' must be a string",
        ),
        (
            "id-empty",
            event("", 101, url, ok_data),
            "'id' must be 1-200",
        ),
        (
            "id-too-long",
            event(&"i".repeat(201), 101, url, ok_data),
            "'id' must be 1-200",
        ),
        (
            "id-not-printable",
            event("a\\tb", 101, url, ok_data),
            "printable ASCII",
        ),
        (
            "webhook-string",
            format!(r#"{{"id":"a","webhook":"101","url":"{url}","data":{{}}}}"#).into_bytes(),
            "'webhook' must be an integer",
        ),
        (
            "webhook-float",
            format!(r#"{{"id":"a","webhook":101.5,"url":"{url}","data":{{}}}}"#).into_bytes(),
            "'webhook' must be an integer",
        ),
        (
            "webhook-huge",
            format!(r#"{{"id":"a","webhook":1e400,"url":"{url}","data":{{}}}}"#).into_bytes(),
            "'webhook' must be an integer",
        ),
        (
            "webhook-100",
            event("a", 100, url, ok_data),
            "not a valid webhook number",
        ),
        (
            "webhook-200",
            event("a", 200, url, ok_data),
            "not a valid webhook number",
        ),
        (
            "webhook-300",
            event("a", 300, url, ok_data),
            "not a valid webhook number",
        ),
        (
            "webhook-400",
            event("a", 400, url, ok_data),
            "not a valid webhook number",
        ),
        (
            "uncatalogued-without-event",
            event("a", 150, url, ok_data),
            "'event' is required",
        ),
        (
            "event-mismatch",
            event_with("a", 104, url, ok_data, r#""event":"Chat.ended""#),
            "does not match",
        ),
        (
            "event-not-string",
            event_with("a", 150, url, ok_data, r#""event":5"#),
            "'event' must be a string",
        ),
        (
            "url-relative",
            event("a", 101, "/hook", ok_data),
            "not an absolute URL",
        ),
        (
            "url-ftp",
            event("a", 101, "ftp://example.com/x", ok_data),
            "not http or https",
        ),
        (
            "url-too-long",
            event("a", 101, &long_url, ok_data),
            "more than 2048",
        ),
        (
            "url-not-string",
            br#"{"id":"a","webhook":101,"url":5,"data":{}}"#.to_vec(),
            "'url' must be a string",
        ),
        (
            "data-array",
            event("a", 101, url, "[1]"),
            "'data' must be a JSON object",
        ),
        (
            "data-string",
            event("a", 101, url, r#""x""#),
            "'data' must be a JSON object",
        ),
        (
            "site-id-string",
            event_with("a", 101, url, ok_data, r#""site_id":"5""#),
            "'site_id' must be an integer",
        ),
        (
            "created-at-bad",
            event_with("a", 101, url, ok_data, r#""created_at":"24/11/2026""#),
            "RFC 3339",
        ),
        (
            "headers-not-object",
            event_with("a", 101, url, ok_data, r#""headers":["x"]"#),
            "object of string to string",
        ),
        (
            "header-value-number",
            event_with("a", 101, url, ok_data, r#""headers":{"X-A":1}"#),
            "must be a string",
        ),
        (
            "header-host",
            event_with("a", 101, url, ok_data, r#""headers":{"hOsT":"evil"}"#),
            "may not be set",
        ),
        (
            "header-content-length",
            event_with(
                "a",
                101,
                url,
                ok_data,
                r#""headers":{"Content-Length":"1"}"#,
            ),
            "may not be set",
        ),
        (
            "header-hop-by-hop",
            event_with(
                "a",
                101,
                url,
                ok_data,
                r#""headers":{"Transfer-Encoding":"chunked"}"#,
            ),
            "may not be set",
        ),
        (
            "header-connection",
            event_with(
                "a",
                101,
                url,
                ok_data,
                r#""headers":{"connection":"close"}"#,
            ),
            "may not be set",
        ),
        (
            "header-worker-own",
            event_with(
                "a",
                101,
                url,
                ok_data,
                r#""headers":{"X-Comm100-Attempt":"9"}"#,
            ),
            "may not be set",
        ),
        (
            "header-signature",
            event_with(
                "a",
                101,
                url,
                ok_data,
                r#""headers":{"webhook-signature":"v1,x"}"#,
            ),
            "may not be set",
        ),
        (
            "header-bad-name",
            event_with("a", 101, url, ok_data, r#""headers":{"a b":"x"}"#),
            "not a valid HTTP token",
        ),
        (
            "header-bad-value",
            event_with("a", 101, url, ok_data, r#""headers":{"X-A":"a\nb"}"#),
            "not a valid HTTP header value",
        ),
        (
            "secret-not-string",
            event_with("a", 101, url, ok_data, r#""secret":true"#),
            "'secret' must be a string",
        ),
        (
            "secret-bad-base64",
            event_with("a", 101, url, ok_data, r#""secret":"whsec_%%%""#),
            "base64",
        ),
        (
            "duplicate-field",
            format!(r#"{{"id":"a","id":"b","webhook":101,"url":"{url}","data":{{}}}}"#)
                .into_bytes(),
            "duplicate",
        ),
    ];
    cases.sort_by_key(|c| c.0);
    cases
}

#[tokio::test]
async fn every_kind_of_malformed_message_is_parked_with_its_reason() {
    let rig = Harness::new("malformed").ok_receiver().start().await;
    let (broker, receiver, worker) = (&rig.broker, rig.receiver(), rig.worker());

    let cases = malformed_cases(&receiver.url("/never"));
    for (name, body, _) in &cases {
        let mut h = FieldTable::default();
        h.insert(
            "case".into(),
            AMQPValue::LongString(name.to_string().into()),
        );
        broker
            .publish_with(body, BasicProperties::default().with_headers(h))
            .await;
    }
    // One good event after all of them: the worker is still alive.
    broker
        .publish(&event("good", 101, &receiver.url("/good"), "{}"))
        .await;

    let dead = broker.dead_messages(cases.len(), LONG).await;
    assert_eq!(dead.len(), cases.len());
    let by_case: HashMap<String, &lapin::message::Delivery> = dead
        .iter()
        .map(|d| (header_str(d, "case").unwrap(), d))
        .collect();
    for (name, body, fragment) in &cases {
        let d = by_case
            .get(*name)
            .unwrap_or_else(|| panic!("{name} not parked"));
        assert_eq!(&d.data, body, "{name}: body unchanged");
        assert_eq!(
            header_str(d, "webhook-drop-reason").as_deref(),
            Some("malformed"),
            "{name}"
        );
        let err = header_str(d, "webhook-last-error").unwrap();
        assert!(
            err.contains(fragment),
            "{name}: last-error {err:?} should mention {fragment:?}"
        );
        assert_eq!(
            header_int(d, "webhook-attempts"),
            Some(0),
            "{name}: no attempt made"
        );
    }
    receiver.wait_requests(1, LONG).await;
    assert!(
        receiver.requests_to("/never").is_empty(),
        "no malformed message reached a receiver"
    );
    let text = worker.scrape().await;
    assert_eq!(
        sample(&text, r#"webhook_dropped_total{reason="malformed"}"#),
        cases.len() as f64
    );
    worker.stop().await.unwrap();
    assert_eq!(
        broker.depth(broker.topology.deliveries()).await,
        0,
        "nothing loops back"
    );
    rig.finish().await;
}
