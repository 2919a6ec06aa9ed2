//! The envelope of contract section 3: its fields, the rule of each, and
//! the checks every outcome of the worker's `parse` must pass.

use base64::{Engine as _, engine::general_purpose::STANDARD};

use crate::{
    catalog::{catalog, valid_number},
    headers::check_headers,
};

/// The envelope's known fields; the `F_*` constants index it.
pub const KNOWN: [&str; 9] = [
    "id",
    "webhook",
    "url",
    "data",
    "event",
    "site_id",
    "created_at",
    "headers",
    "secret",
];
/// `id`: required.
pub const F_ID: usize = 0;
/// `webhook`: required.
pub const F_WEBHOOK: usize = 1;
/// `url`: required.
pub const F_URL: usize = 2;
/// `data`: required; the last of the required fields.
pub const F_DATA: usize = 3;
/// `event`.
pub const F_EVENT: usize = 4;
/// `site_id`.
pub const F_SITE_ID: usize = 5;
/// `created_at`.
pub const F_CREATED_AT: usize = 6;
/// `headers`.
pub const F_HEADERS: usize = 7;
/// `secret`.
pub const F_SECRET: usize = 8;

/// Most characters of `id`.
pub const MAX_ID_CHARS: usize = 200;
/// Most characters of an uncatalogued `event`.
pub const MAX_EVENT_CHARS: usize = 200;
/// Most characters of `url`.
pub const MAX_URL_CHARS: usize = 2048;

/// `id`: 1-200 printable ASCII characters.
pub fn id_ok(id: &str) -> bool {
    (1..=MAX_ID_CHARS).contains(&id.chars().count())
        && id.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// The event name a message with `webhook` and `given` gets, or `None`
/// when refused: the catalog's name (a given one must equal it), else the
/// given one, 1-200 visible ASCII characters.
pub fn event_of(webhook: i64, given: Option<&str>) -> Option<String> {
    match (catalog(webhook), given) {
        (Some(known), None) => Some(known.to_string()),
        (Some(known), Some(g)) => (g == known).then(|| known.to_string()),
        (None, None) => None,
        (None, Some(g)) => uncatalogued_event_ok(g).then(|| g.to_string()),
    }
}

/// An uncatalogued number's event name: 1-200 visible ASCII characters.
pub fn uncatalogued_event_ok(event: &str) -> bool {
    (1..=MAX_EVENT_CHARS).contains(&event.chars().count())
        && event.bytes().all(|b| b.is_ascii_graphic())
}

/// `url`: at most 2048 characters, an absolute http(s) URL with a host.
pub fn url_ok(text: &str) -> bool {
    text.chars().count() <= MAX_URL_CHARS && url::Url::parse(text).is_ok_and(|u| parsed_url_ok(&u))
}

fn parsed_url_ok(u: &url::Url) -> bool {
    matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
}

/// `secret` (contract section 4): one secret or several separated by
/// spaces, at least one; each `whsec_` + the base64 of a non-empty key, or
/// any other non-empty text (the key's bytes).
pub fn secret_ok(secret: &str) -> bool {
    let mut secrets = secret.split(' ').filter(|s| !s.is_empty()).peekable();
    secrets.peek().is_some()
        && secrets.all(|s| match s.strip_prefix("whsec_") {
            Some(b64) => STANDARD.decode(b64).is_ok_and(|k| !k.is_empty()),
            None => true,
        })
}

/// What `parse` made of an accepted body, as plain values (the model does
/// not know the worker's types).
#[derive(Debug)]
pub struct Accepted<'a> {
    /// The body parsed.
    pub body: &'a [u8],
    /// `id`.
    pub id: &'a str,
    /// `webhook`.
    pub webhook: i64,
    /// The event name.
    pub event: &'a str,
    /// `url`, parsed.
    pub url: &'a url::Url,
    /// The text of `data`.
    pub data: &'a str,
    /// `headers`, in order.
    pub headers: Vec<(&'a str, &'a str)>,
    /// `secret`.
    pub secret: Option<&'a str>,
}

/// The [`Accepted`] view of a parsed envelope: any value with the fields
/// `id`, `webhook`, `event`, `url`, `data` (a `RawValue`), `headers` (name
/// and value pairs) and `secret` (the worker's `Envelope`), taken by name so
/// that the model depends on nothing of the worker.
#[macro_export]
macro_rules! accepted {
    ($env:expr, $body:expr) => {
        $crate::envelope::Accepted {
            body: $body,
            id: &$env.id,
            webhook: i64::from($env.webhook),
            event: &$env.event,
            url: &$env.url,
            data: $env.data.get(),
            headers: $env.headers.iter().map(|(n, v)| (&**n, &**v)).collect(),
            secret: $env.secret.as_deref(),
        }
    };
}

/// Why an accepted envelope breaks section 3, or `Ok`. Holds for any input:
/// the body is UTF-8, every field obeys its rule, and `data` is a slice of
/// the body (the producer's bytes, never a re-serialisation).
pub fn check_accepted(a: &Accepted<'_>) -> Result<(), String> {
    if std::str::from_utf8(a.body).is_err() {
        return Err("accepted a body that is not UTF-8".into());
    }
    if !valid_number(a.webhook) {
        return Err(format!("accepted webhook {}", a.webhook));
    }
    if !id_ok(a.id) {
        return Err(format!("accepted id {:?}", a.id));
    }
    let event_ok = match catalog(a.webhook) {
        Some(known) => a.event == known,
        None => uncatalogued_event_ok(a.event),
    };
    if !event_ok {
        return Err(format!("accepted event {:?} for {}", a.event, a.webhook));
    }
    if !parsed_url_ok(a.url) {
        return Err(format!("accepted url {}", a.url));
    }
    if !(a.data.starts_with('{') && a.data.ends_with('}')) {
        return Err(format!("data {:?}", a.data));
    }
    let body = a.body.as_ptr_range();
    let data = a.data.as_bytes().as_ptr_range();
    if !(body.start <= data.start && data.end <= body.end) {
        return Err("data is not a slice of the body".into());
    }
    check_headers(a.headers.iter().copied())?;
    if a.secret.is_some_and(|s| !secret_ok(s)) {
        return Err(format!("accepted secret {:?}", a.secret));
    }
    Ok(())
}

/// How `parse` refused a body.
#[derive(Debug, Clone, Copy)]
pub enum Refused<'a> {
    /// Over the size limit: the size and the limit it reports.
    TooLarge {
        /// The size it reports.
        size: usize,
        /// The limit it reports.
        limit: usize,
    },
    /// Breaks a rule: the reason it gives.
    Malformed(&'a str),
}

/// Why a refusal of a `body_len`-byte body under the limit `max` is wrong,
/// or `Ok`: an oversized body is `TooLarge` with the true figures, any
/// other refusal is `Malformed` with a reason.
pub fn check_refused(refused: Refused<'_>, body_len: usize, max: usize) -> Result<(), String> {
    match refused {
        Refused::TooLarge { size, limit } => {
            if size != body_len || limit != max || size <= limit {
                return Err(format!(
                    "TooLarge {{ size: {size}, limit: {limit} }} for {body_len} bytes under {max}"
                ));
            }
        }
        Refused::Malformed(reason) => {
            if reason.trim().is_empty() {
                return Err("Malformed with an empty reason".into());
            }
            if body_len > max {
                return Err(format!(
                    "an oversized body must be TooLarge, got Malformed({reason:?})"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_follow_section_4() {
        assert!(secret_ok("s3cret"));
        assert!(secret_ok("whsec_AQID"));
        assert!(secret_ok("old whsec_AQID"));
        assert!(secret_ok(" a  b "));
        assert!(!secret_ok(""));
        assert!(!secret_ok("   "));
        assert!(!secret_ok("whsec_"));
        assert!(!secret_ok("ok whsec_!!"));
    }

    #[test]
    fn events_follow_the_catalog() {
        assert_eq!(event_of(104, None).as_deref(), Some("Chat.started"));
        assert_eq!(
            event_of(104, Some("Chat.started")).as_deref(),
            Some("Chat.started")
        );
        assert_eq!(event_of(104, Some("Chat.ended")), None);
        assert_eq!(event_of(150, None), None);
        assert_eq!(event_of(150, Some("Custom.x")).as_deref(), Some("Custom.x"));
        assert_eq!(event_of(150, Some("has space")), None);
    }

    #[test]
    fn urls_are_absolute_http_with_a_host() {
        assert!(url_ok("https://example.com/x"));
        assert!(!url_ok("ftp://example.com/"));
        assert!(!url_ok("/relative"));
        assert!(!url_ok(&format!("http://e.com/{}", "a".repeat(2048))));
    }
}
