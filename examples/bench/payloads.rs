//! The messages the harness publishes: event envelopes (contract section 3)
//! and the request bodies the baselines POST.

use lapin::BasicProperties;

/// The `data` object of event `i`: a realistic chat message event, ~450 bytes.
pub(crate) fn data_json(i: usize) -> String {
    format!(
        concat!(
            r#"{{"chat":{{"id":"c-{i:08}","site_id":10001,"campaign_id":42,"started_at":"2025-01-15T10:20:30Z","#,
            r#""visitor":{{"id":"v-{i:08}","name":"Visitor {i}","email":"visitor{i}@example.com","ip":"203.0.113.7","#,
            r#""browser":"Firefox 134","country":"CA"}},"agent":{{"id":17,"name":"Agent Smith","email":"smith@example.com"}}}},"#,
            r#""message":{{"id":"m-{i:08}","type":"text","content":"Hello, I have a question about my order #{i}: "#,
            r#"it shipped last week but the tracking page still shows nothing.","sent_at":"2025-01-15T10:21:05Z"}}}}"#
        ),
        i = i
    )
}

/// A full event message (contract section 3), webhook 105.
pub(crate) fn envelope(id: &str, url: &str, i: usize) -> Vec<u8> {
    format!(
        r#"{{"id":"{id}","webhook":105,"url":"{url}","site_id":10001,"created_at":"2025-01-15T10:21:05Z","data":{}}}"#,
        data_json(i)
    )
    .into_bytes()
}

/// A latency probe: the envelope of event `i` whose `data` starts with its
/// publish time (`"lat_ns":<unix ns>`), so the receiver can time any worker,
/// the naive one included, from the request body alone.
pub(crate) fn latency_envelope(i: usize, url: &str, sent_ns: u64) -> Vec<u8> {
    format!(
        r#"{{"id":"lat-{i:08}","webhook":105,"url":"{url}","site_id":10001,"created_at":"2025-01-15T10:21:05Z","data":{{"lat_ns":{sent_ns},{}}}"#,
        &data_json(i)[1..]
    )
    .into_bytes()
}

pub(crate) fn props() -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
}
