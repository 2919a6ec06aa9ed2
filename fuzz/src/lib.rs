//! What the fuzz targets share: the contract model (the `contract-model`
//! crate, also the property tests' model, independent of `src/`), the
//! checks of every outcome of `parse` against it, and the re-parse check. A failed property panics, which libFuzzer reports as a
//! crash with the input that caused it.

use std::fmt::Write as _;

use contract_model::envelope::{Refused, check_accepted as check_accepted_by_model, check_refused};
use webhook_worker::domain::{
    envelope::{self, Envelope, Rejection},
    policy::DropReason,
};

/// `WEBHOOK_MAX_MESSAGE_BYTES` where the size limit is not under test.
pub const MAX: usize = 1 << 20;

pub use contract_model::{
    catalog::{CATALOG, catalog, valid_number},
    envelope::{KNOWN, id_ok, secret_ok, uncatalogued_event_ok, url_ok},
    headers::{RESERVED, check_headers, is_header_value, is_reserved, is_tchar},
};

/// Parses `body` with limit `max` and checks every property that holds for
/// any input; returns whether it was accepted.
pub fn check_parse(body: &[u8], max: usize) -> bool {
    // `identify` reads the same hostile bytes for log lines: never panics.
    let _ = envelope::identify(body);
    match envelope::parse(body, max) {
        Err(rejection) => {
            check_rejection(&rejection, body, max);
            false
        }
        Ok(env) => {
            check_accepted(&env, body);
            check_reparse(&env);
            true
        }
    }
}

/// A rejection always says why (contract model), and parks as
/// `too_large` or `malformed` accordingly.
pub fn check_rejection(rejection: &Rejection, body: &[u8], max: usize) {
    let refused = match rejection {
        Rejection::TooLarge { size, limit } => Refused::TooLarge {
            size: *size,
            limit: *limit,
        },
        Rejection::Malformed(m) => Refused::Malformed(m),
    };
    if let Err(why) = check_refused(refused, body.len(), max) {
        panic!("{why}: {rejection:?}");
    }
    let reason = rejection.reason();
    match rejection {
        Rejection::TooLarge { .. } => assert_eq!(reason, DropReason::TooLarge),
        Rejection::Malformed(_) => assert_eq!(reason, DropReason::Malformed),
    }
}

/// An accepted envelope obeys section 3 (contract model), and its `data`
/// is the producer's bytes: a slice of the body, not a copy.
pub fn check_accepted(env: &Envelope<'_>, body: &[u8]) {
    let accepted = contract_model::accepted!(env, body);
    if let Err(why) = check_accepted_by_model(&accepted) {
        panic!("{why}: {accepted:?}");
    }
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// A body built from the parsed fields: what a producer who sent exactly
/// these values would publish.
pub fn rebuild(env: &Envelope<'_>) -> String {
    let mut out = String::from("{");
    let _ = write!(
        out,
        r#""id":{},"webhook":{},"event":{},"url":{},"data":{}"#,
        json_string(&env.id),
        env.webhook,
        json_string(&env.event),
        json_string(env.url.as_str()),
        env.data.get()
    );
    if let Some(site) = env.site_id {
        let _ = write!(out, r#","site_id":{site}"#);
    }
    if let Some(ms) = env.created_at_ms {
        let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .expect("a parsed created_at is in range");
        let text = at
            .format(&time::format_description::well_known::Rfc3339)
            .expect("formats as RFC 3339");
        let _ = write!(out, r#","created_at":{}"#, json_string(&text));
    }
    if !env.headers.is_empty() {
        out.push_str(r#","headers":{"#);
        for (i, (name, value)) in env.headers.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{}:{}", json_string(name), json_string(value));
        }
        out.push('}');
    }
    if let Some(secret) = &env.secret {
        let _ = write!(out, r#","secret":{}"#, json_string(secret));
    }
    out.push('}');
    out
}

/// Re-parsing the envelope rebuilt from the parsed fields gives the same
/// envelope.
pub fn check_reparse(env: &Envelope<'_>) {
    let body = rebuild(env);
    // The URL is rebuilt in its normalised form, which can be longer than
    // the producer's text (percent-encoding, punycode): past 2048
    // characters the rebuilt message is rightly refused.
    let url_chars = env.url.as_str().chars().count();
    let again = envelope::parse(body.as_bytes(), usize::MAX);
    if url_chars > 2048 {
        assert!(
            matches!(&again, Err(Rejection::Malformed(m)) if m.contains("'url'")),
            "rebuilt {body:?}: {again:?}"
        );
        return;
    }
    let again = match again {
        Ok(e) => e,
        Err(e) => panic!("rebuilt envelope {body:?} refused: {e}"),
    };
    assert_eq!(again.id, env.id);
    assert_eq!(again.webhook, env.webhook);
    assert_eq!(again.event, env.event);
    assert_eq!(again.url, env.url, "url does not re-parse to itself");
    assert_eq!(again.data.get(), env.data.get());
    assert_eq!(again.site_id, env.site_id);
    assert_eq!(again.created_at_ms, env.created_at_ms);
    assert_eq!(again.headers, env.headers);
    assert_eq!(again.secret, env.secret);
}
