//! The envelope rules of contract section 3, one rule a test.

use super::*;
use crate::domain::catalog::CATALOG;

const MAX: usize = 1 << 20;

fn valid() -> serde_json::Value {
    serde_json::json!({
        "id": "evt-1",
        "webhook": 104,
        "url": "https://example.com/hook",
        "data": {"visitor": {"id": 1}}
    })
}

fn with(field: &str, value: serde_json::Value) -> Vec<u8> {
    let mut v = valid();
    v[field] = value;
    serde_json::to_vec(&v).unwrap()
}

fn without(field: &str) -> Vec<u8> {
    let mut v = valid();
    v.as_object_mut().unwrap().remove(field);
    serde_json::to_vec(&v).unwrap()
}

fn rejection(body: &[u8]) -> String {
    match parse(body, MAX) {
        Err(Rejection::Malformed(m)) => m,
        other => panic!("expected malformed, got {other:?}"),
    }
}

#[test]
fn data_bytes_are_kept_exactly() {
    let body =
        br#"{"id":"a","webhook":101,"url":"http://x.io/","data": { "b" : 1.50, "a":"\u00e9" } }"#;
    let e = parse(body, MAX).unwrap();
    assert_eq!(e.data.get(), r#"{ "b" : 1.50, "a":"\u00e9" }"#);
    assert_eq!(e.event, "Chat.Request.start");
}

#[test]
fn every_catalog_event_parses_with_and_without_event() {
    for (n, name) in CATALOG {
        let body = with("webhook", n.into());
        assert_eq!(parse(&body, MAX).unwrap().event, name);
        let mut v = valid();
        v["webhook"] = n.into();
        v["event"] = name.into();
        assert_eq!(
            parse(&serde_json::to_vec(&v).unwrap(), MAX).unwrap().event,
            name
        );
    }
}

#[test]
fn uncatalogued_number_needs_event() {
    assert!(rejection(&with("webhook", 150.into())).contains("required"));
    let mut v = valid();
    v["webhook"] = 150.into();
    v["event"] = "Chat.Custom".into();
    let body = serde_json::to_vec(&v).unwrap();
    let e = parse(&body, MAX).unwrap();
    assert_eq!((e.webhook, e.event.as_ref()), (150, "Chat.Custom"));
}

#[test]
fn event_must_match_catalog() {
    let mut v = valid();
    v["event"] = "Chat.ended".into();
    assert!(rejection(&serde_json::to_vec(&v).unwrap()).contains("does not match"));
}

#[test]
fn webhook_ranges() {
    for bad in [0, 100, 200, 300, 400, 999, -101] {
        assert!(rejection(&with("webhook", bad.into())).contains("not a valid webhook number"));
    }
    for bad in [
        serde_json::json!("104"),
        serde_json::json!(104.0),
        serde_json::json!(1e30),
    ] {
        assert!(rejection(&with("webhook", bad)).contains("integer"));
    }
}

#[test]
fn missing_fields_are_named() {
    for f in ["id", "webhook", "url", "data"] {
        assert_eq!(rejection(&without(f)), format!("field '{f}' is missing"));
    }
    assert_eq!(
        rejection(&with("id", serde_json::Value::Null)),
        "field 'id' is missing"
    );
}

#[test]
fn id_rules() {
    assert!(rejection(&with("id", "".into())).contains("1-200"));
    assert!(parse(&with("id", "x".repeat(200).into()), MAX).is_ok());
    assert!(rejection(&with("id", "x".repeat(201).into())).contains("1-200"));
    assert!(rejection(&with("id", "é".into())).contains("printable ASCII"));
    assert!(rejection(&with("id", "a\nb".into())).contains("printable ASCII"));
    assert!(rejection(&with("id", 5.into())).contains("string"));
}

#[test]
fn url_rules() {
    for bad in ["/relative", "ftp://x.io/", "not a url", "http://"] {
        rejection(&with("url", bad.into()));
    }
    let long = format!("https://x.io/{}", "a".repeat(2048));
    assert!(rejection(&with("url", long.into())).contains("more than 2048"));
    assert!(parse(&with("url", "http://[::1]:8080/a?b=c".into()), MAX).is_ok());
}

#[test]
fn data_must_be_an_object() {
    for bad in [
        serde_json::json!([1]),
        serde_json::json!("x"),
        serde_json::json!(1),
    ] {
        assert!(rejection(&with("data", bad)).contains("'data' must be a JSON object"));
    }
}

#[test]
fn optional_fields_are_typed() {
    assert!(rejection(&with("site_id", "10".into())).contains("site_id"));
    assert!(rejection(&with("created_at", "yesterday".into())).contains("RFC 3339"));
    assert!(rejection(&with("created_at", 5.into())).contains("string"));
    assert!(rejection(&with("secret", 5.into())).contains("secret"));
    assert!(rejection(&with("secret", "whsec_!!notbase64".into())).contains("secret"));
    let body = with("created_at", "2026-11-24T10:00:00.5+01:00".into());
    let e = parse(&body, MAX).unwrap();
    assert_eq!(e.created_at_ms, Some(1_795_510_800_500));
    assert_eq!(
        parse(&with("site_id", 1000.into()), MAX).unwrap().site_id,
        Some(1000)
    );
}

#[test]
fn headers_rules() {
    let body = with(
        "headers",
        serde_json::json!({"X-Tenant": "a", "Authorization": "Bearer t"}),
    );
    let ok = parse(&body, MAX).unwrap();
    assert_eq!(ok.headers.len(), 2);
    for name in [
        "Host",
        "content-length",
        "Connection",
        "Transfer-Encoding",
        "Upgrade",
        "TE",
        "Trailer",
        "Keep-Alive",
        "Proxy-Authorization",
        "User-Agent",
        "Content-Type",
        "X-Comm100-Attempt",
        "x-comm100-site-id",
        "Webhook-Signature",
    ] {
        let m = rejection(&with("headers", serde_json::json!({ name: "v" })));
        assert!(m.contains("may not be set"), "{name}: {m}");
    }
    assert!(
        rejection(&with("headers", serde_json::json!({"X-A": 1}))).contains("must be a string")
    );
    assert!(rejection(&with("headers", serde_json::json!(["a"]))).contains("object of string"));
    assert!(rejection(&with("headers", serde_json::json!({"bad name": "v"}))).contains("token"));
    assert!(
        rejection(&with("headers", serde_json::json!({"X-A": "a\r\nb"}))).contains("header value")
    );
    let dup = br#"{"id":"a","webhook":101,"url":"http://x.io/","data":{},"headers":{"X-A":"1","x-a":"2"}}"#;
    assert!(rejection(dup).contains("twice"));
}

#[test]
fn body_level_errors() {
    assert!(rejection(b"\xff\xfe").contains("UTF-8"));
    assert!(rejection(b"[1,2]").contains("JSON object"));
    assert!(rejection(b"{\"id\":").contains("valid JSON"));
    assert!(rejection(b"").contains("JSON object"));
    let dup = br#"{"id":"a","id":"b","webhook":101,"url":"http://x.io/","data":{}}"#;
    assert!(rejection(dup).contains("duplicate"));
}

#[test]
fn too_large_is_checked_first() {
    let body = vec![b'x'; 11];
    assert_eq!(
        parse(&body, 10).unwrap_err(),
        Rejection::TooLarge {
            size: 11,
            limit: 10
        }
    );
    assert!(parse(&with("id", "a".into()), 20).is_err());
}
