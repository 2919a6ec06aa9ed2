//! What the body of a parked message says, read leniently (it may be the
//! malformed message that got it parked), and the only form of the body
//! that `dead show` prints: with its secrets redacted.

use std::fmt;

use serde::{
    Deserialize,
    de::{MapAccess, Visitor},
};
use serde_json::value::RawValue;

use super::{
    catalog::{MAX_ID_CHARS, catalog_event},
    envelope::identify,
};

/// What stands in for a value that is never shown.
pub const REDACTED: &str = "<redacted>";

/// The body's facts, each when present and readable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyFacts {
    /// `id`.
    pub id: Option<String>,
    /// `webhook`.
    pub webhook: Option<i64>,
    /// `event`, else the catalog's name for `webhook`.
    pub event: Option<String>,
    /// The host of `url`, lower case.
    pub host: Option<String>,
}

/// Reads what it can; never fails.
pub fn body_facts(body: &[u8]) -> BodyFacts {
    #[derive(Deserialize)]
    struct Loose {
        event: Option<serde_json::Value>,
        url: Option<serde_json::Value>,
    }
    let (id, webhook) = identify(body);
    let loose = serde_json::from_slice::<Loose>(body).ok();
    let event = loose
        .as_ref()
        .and_then(|l| l.event.as_ref()?.as_str().map(str::to_string))
        .or_else(|| {
            let n = u16::try_from(webhook?).ok()?;
            catalog_event(n).map(str::to_string)
        })
        .map(|e| e.chars().take(MAX_ID_CHARS).collect());
    let host = loose
        .as_ref()
        .and_then(|l| l.url.as_ref()?.as_str().map(str::to_string))
        .and_then(|u| url::Url::parse(&u).ok())
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    BodyFacts {
        id,
        webhook,
        event,
        host,
    }
}

/// The body as `dead show` prints it. A JSON object keeps its fields in
/// order, with `secret` and every value of `headers` (which may hold an
/// `Authorization`) replaced by [`REDACTED`]. Anything else is shown as
/// text, unless it mentions a secret or an authorization: a body that is
/// not JSON cannot be redacted field by field, so it is withheld whole.
pub fn redacted_body(body: &[u8]) -> String {
    match serde_json::from_slice::<OrderedObject>(body) {
        Ok(OrderedObject(fields)) => {
            let shown: Vec<String> = fields
                .iter()
                .map(|(k, v)| {
                    let key = serde_json::to_string(k).unwrap_or_default();
                    let value = match k.as_str() {
                        "secret" => format!("\"{REDACTED}\""),
                        "headers" => redacted_headers(v),
                        _ => v.get().to_string(),
                    };
                    format!("{key}:{value}")
                })
                .collect();
            format!("{{{}}}", shown.join(","))
        }
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let lower = text.to_ascii_lowercase();
            if ["secret", "authorization", "whsec_", "token", "password"]
                .iter()
                .any(|w| lower.contains(w))
            {
                format!(
                    "<withheld: {} bytes that are not a JSON object and may hold a secret>",
                    body.len()
                )
            } else {
                text.into_owned()
            }
        }
    }
}

/// `headers` with its names kept and every value redacted.
fn redacted_headers(v: &RawValue) -> String {
    match serde_json::from_str::<OrderedObject>(v.get()) {
        Ok(OrderedObject(fields)) => {
            let shown: Vec<String> = fields
                .iter()
                .map(|(k, _)| {
                    format!(
                        "{}:\"{REDACTED}\"",
                        serde_json::to_string(k).unwrap_or_default()
                    )
                })
                .collect();
            format!("{{{}}}", shown.join(","))
        }
        Err(_) => format!("\"{REDACTED}\""),
    }
}

/// A JSON object's fields in the order written.
struct OrderedObject(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for OrderedObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<OrderedObject, M::Error> {
                let mut fields = Vec::new();
                while let Some(pair) = m.next_entry::<String, Box<RawValue>>()? {
                    fields.push(pair);
                }
                Ok(OrderedObject(fields))
            }
        }
        d.deserialize_map(Fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_of_a_valid_and_of_a_broken_body() {
        let body =
            br#"{"id":"e1","webhook":104,"url":"https://Hooks.Example.com:8443/x","data":{}}"#;
        assert_eq!(
            body_facts(body),
            BodyFacts {
                id: Some("e1".into()),
                webhook: Some(104),
                event: Some("Chat.started".into()),
                host: Some("hooks.example.com".into()),
            }
        );
        let named = br#"{"id":"e2","webhook":150,"event":"Custom.thing","url":"nope"}"#;
        let f = body_facts(named);
        assert_eq!(f.event.as_deref(), Some("Custom.thing"));
        assert_eq!(f.host, None);
        assert_eq!(body_facts(b"garbage"), BodyFacts::default());
        assert_eq!(body_facts(br#"{"url":5,"event":[]}"#), BodyFacts::default());
    }

    #[test]
    fn secrets_and_header_values_are_redacted_in_order() {
        let body = br#"{"id":"e1","secret":"whsec_abc","headers":{"Authorization":"Bearer t0p","X-Trace":"1"},"data":{"secret":"payload"}}"#;
        let shown = redacted_body(body);
        assert_eq!(
            shown,
            r#"{"id":"e1","secret":"<redacted>","headers":{"Authorization":"<redacted>","X-Trace":"<redacted>"},"data":{"secret":"payload"}}"#
        );
        assert!(!shown.contains("whsec_abc") && !shown.contains("t0p"));
        let odd_headers = redacted_body(br#"{"headers":"Authorization: Bearer x"}"#);
        assert_eq!(odd_headers, r#"{"headers":"<redacted>"}"#);
    }

    #[test]
    fn a_body_that_cannot_be_redacted_is_withheld_when_it_may_hold_a_secret() {
        assert_eq!(redacted_body(b"not json"), "not json");
        let truncated = br#"{"id":"e1","secret":"whsec_abc""#;
        let shown = redacted_body(truncated);
        assert!(!shown.contains("whsec_abc"), "{shown}");
        assert!(shown.starts_with("<withheld: 31 bytes"), "{shown}");
        assert!(!redacted_body(b"[\"Authorization\"]").contains("Authorization"));
    }
}
