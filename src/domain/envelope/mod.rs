//! The event message: parsing and validating what producers publish
//! (contract section 3).
//!
//! The body is parsed once into an [`Envelope`] that borrows from it. `data`
//! is kept as a [`RawValue`]: the receiver gets the exact bytes the producer
//! wrote, never a re-serialisation. Validation is a pure function of the
//! bytes; every rejection says precisely what was wrong, because that text
//! becomes the parked message's `webhook-last-error`.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{
    catalog::{
        MAX_EVENT_CHARS, MAX_ID_CHARS, MAX_URL_CHARS, catalog_event, is_header_name,
        is_header_value, is_reserved_header, is_valid_webhook_number,
    },
    policy::DropReason,
    signing::SigningKey,
};

/// A validated event message, borrowing from the message body.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// The event's id, the same on every attempt.
    pub id: Cow<'a, str>,
    /// The webhook number.
    pub webhook: u16,
    /// The event name: from the catalog, or from the message for
    /// uncatalogued numbers.
    pub event: Cow<'a, str>,
    /// The receiver's absolute http(s) URL.
    pub url: url::Url,
    /// The exact bytes of `data`, a JSON object.
    pub data: &'a RawValue,
    /// Comm100 site id, when given.
    pub site_id: Option<i64>,
    /// When the event occurred, unix milliseconds, when given.
    pub created_at_ms: Option<i64>,
    /// Extra request headers for this receiver, validated.
    pub headers: Vec<Header<'a>>,
    /// This receiver's signing secret, when given.
    pub secret: Option<Cow<'a, str>>,
}

/// One extra request header: name and value, validated.
pub type Header<'a> = (Cow<'a, str>, Cow<'a, str>);

/// Why a message was refused; the text is what `webhook-last-error` says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Larger than `WEBHOOK_MAX_MESSAGE_BYTES`: reason `too_large`.
    #[error("message is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The body's size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Breaks a rule of section 3: reason `malformed`.
    #[error("{0}")]
    Malformed(String),
}

impl Rejection {
    /// The drop reason this rejection parks the message with.
    pub fn reason(&self) -> DropReason {
        match self {
            Rejection::TooLarge { .. } => DropReason::TooLarge,
            Rejection::Malformed(_) => DropReason::Malformed,
        }
    }
}

fn malformed(msg: impl Into<String>) -> Rejection {
    Rejection::Malformed(msg.into())
}

/// The raw shape of the JSON body, before the rules of section 3 are applied.
/// Fields are `RawValue`s so that a mistyped field is reported by name
/// rather than by serde's generic error. Unknown fields are ignored (forward
/// compatibility); a duplicated known field is malformed.
#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    webhook: Option<&'a RawValue>,
    #[serde(borrow)]
    url: Option<&'a RawValue>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    event: Option<&'a RawValue>,
    #[serde(borrow)]
    site_id: Option<&'a RawValue>,
    #[serde(borrow)]
    created_at: Option<&'a RawValue>,
    #[serde(borrow)]
    headers: Option<&'a RawValue>,
    #[serde(borrow)]
    secret: Option<&'a RawValue>,
}

/// Parses and validates a message body.
///
/// `max_bytes` is `WEBHOOK_MAX_MESSAGE_BYTES`; the size is checked before any
/// parsing so an oversized body costs nothing.
pub fn parse(body: &[u8], max_bytes: usize) -> Result<Envelope<'_>, Rejection> {
    let raw = parse_raw(body, max_bytes)?;
    let id = parse_id(raw.id)?;
    let webhook = parse_webhook(raw.webhook)?;
    let event = parse_event(raw.event, webhook)?;
    let url = parse_url(raw.url)?;
    let data = required(raw.data, "data")?;
    if !data.get().starts_with('{') {
        return Err(malformed("field 'data' must be a JSON object"));
    }
    let site_id = optional(raw.site_id)
        .map(|v| integer(v, "site_id"))
        .transpose()?;
    let created_at_ms = optional(raw.created_at).map(parse_created_at).transpose()?;
    let headers = match optional(raw.headers) {
        None => Vec::new(),
        Some(v) => parse_headers(v)?,
    };
    let secret = optional(raw.secret)
        .map(|v| string(v, "secret"))
        .transpose()?;
    if let Some(secret) = &secret {
        SigningKey::from_secret(secret).map_err(|e| malformed(format!("field 'secret': {e}")))?;
    }
    Ok(Envelope {
        id,
        webhook,
        event,
        url,
        data,
        site_id,
        created_at_ms,
        headers,
        secret,
    })
}

/// The body's size, encoding and JSON shape, before any field's rule.
fn parse_raw(body: &[u8], max_bytes: usize) -> Result<RawEnvelope<'_>, Rejection> {
    if body.len() > max_bytes {
        return Err(Rejection::TooLarge {
            size: body.len(),
            limit: max_bytes,
        });
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        malformed(format!(
            "body is not UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    if !text.trim_start().starts_with('{') {
        return Err(malformed("body is not a JSON object"));
    }
    serde_json::from_str(text).map_err(|e| malformed(format!("body is not valid JSON: {e}")))
}

fn parse_id(v: Option<&RawValue>) -> Result<Cow<'_, str>, Rejection> {
    let id = required_string(v, "id")?;
    let id_chars = id.chars().count();
    if id_chars == 0 || id_chars > MAX_ID_CHARS {
        return Err(malformed(format!(
            "field 'id' must be 1-{MAX_ID_CHARS} characters, got {id_chars}"
        )));
    }
    if !id.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(malformed("field 'id' must be printable ASCII"));
    }
    Ok(id)
}

fn parse_webhook(v: Option<&RawValue>) -> Result<u16, Rejection> {
    let webhook: i64 = integer(required(v, "webhook")?, "webhook")?;
    if !is_valid_webhook_number(webhook) {
        return Err(malformed(format!(
            "field 'webhook' {webhook} is not a valid webhook number (101-199, 201-299, 301-399)"
        )));
    }
    Ok(webhook as u16)
}

/// The event name: the catalog's, which a given one must match, or the
/// given one for an uncatalogued number.
fn parse_event(v: Option<&RawValue>, webhook: u16) -> Result<Cow<'_, str>, Rejection> {
    let event = optional(v).map(|v| string(v, "event")).transpose()?;
    match (catalog_event(webhook), event) {
        (Some(known), None) => Ok(Cow::Borrowed(known)),
        (Some(known), Some(given)) if given == known => Ok(Cow::Borrowed(known)),
        (Some(known), Some(given)) => Err(malformed(format!(
            "field 'event' '{}' does not match webhook {webhook} ('{known}')",
            truncate(&given, 64)
        ))),
        (None, None) => Err(malformed(format!(
            "field 'event' is required for uncatalogued webhook {webhook}"
        ))),
        (None, Some(given)) => {
            let n = given.chars().count();
            if n == 0 || n > MAX_EVENT_CHARS || !given.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(malformed(format!(
                    "field 'event' must be 1-{MAX_EVENT_CHARS} visible ASCII characters"
                )));
            }
            Ok(given)
        }
    }
}

fn parse_url(v: Option<&RawValue>) -> Result<url::Url, Rejection> {
    let url_text = required_string(v, "url")?;
    let url_chars = url_text.chars().count();
    if url_chars > MAX_URL_CHARS {
        return Err(malformed(format!(
            "field 'url' is {url_chars} characters, more than {MAX_URL_CHARS}"
        )));
    }
    let url = url::Url::parse(&url_text)
        .map_err(|e| malformed(format!("field 'url' is not an absolute URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(malformed(format!(
            "field 'url' scheme '{}' is not http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(malformed("field 'url' has no host"));
    }
    Ok(url)
}

/// `created_at` as unix milliseconds.
fn parse_created_at(v: &RawValue) -> Result<i64, Rejection> {
    let s = string(v, "created_at")?;
    let t = time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| malformed("field 'created_at' is not an RFC 3339 timestamp"))?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

fn parse_headers(v: &RawValue) -> Result<Vec<Header<'_>>, Rejection> {
    if !v.get().starts_with('{') {
        return Err(malformed(
            "field 'headers' must be an object of string to string",
        ));
    }
    // A Vec of pairs, not a map: a duplicated name must be seen, not merged.
    let pairs: Vec<(Cow<'_, str>, &RawValue)> = serde_json::from_str::<OrderedPairs<'_>>(v.get())
        .map_err(|_| malformed("field 'headers' must be an object of string to string"))?
        .0;
    let mut headers: Vec<Header<'_>> = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        let value = string(value, "headers").map_err(|_| {
            malformed(format!(
                "header '{}' value must be a string",
                truncate(&name, 64)
            ))
        })?;
        if !is_header_name(&name) {
            return Err(malformed(format!(
                "header name '{}' is not a valid HTTP token",
                truncate(&name, 64)
            )));
        }
        if is_reserved_header(&name) {
            return Err(malformed(format!(
                "header '{name}' may not be set by the message"
            )));
        }
        if !is_header_value(&value) {
            return Err(malformed(format!(
                "header '{name}' value is not a valid HTTP header value"
            )));
        }
        if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            return Err(malformed(format!("header '{name}' is given twice")));
        }
        headers.push((name, value));
    }
    Ok(headers)
}

/// A JSON object read as its (key, raw value) pairs in order.
struct OrderedPairs<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for OrderedPairs<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = OrderedPairs<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<Self::Value, M::Error> {
                let mut pairs = Vec::new();
                while let Some((k, v)) = m.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    pairs.push((k, v));
                }
                Ok(OrderedPairs(pairs))
            }
        }
        d.deserialize_map(Visitor(std::marker::PhantomData))
    }
}

/// Best-effort `id` and `webhook` of a message that may be malformed, for
/// log lines and `dead list`. Never fails; reads nothing else.
pub fn identify(body: &[u8]) -> (Option<String>, Option<i64>) {
    #[derive(Deserialize)]
    struct Ids {
        id: Option<serde_json::Value>,
        webhook: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Ids>(body) {
        Ok(ids) => (
            ids.id
                .and_then(|v| v.as_str().map(|s| truncate(s, MAX_ID_CHARS))),
            ids.webhook.and_then(|v| v.as_i64()),
        ),
        Err(_) => (None, None),
    }
}

/// A field given as JSON `null` counts as absent.
fn optional(v: Option<&RawValue>) -> Option<&RawValue> {
    v.filter(|v| v.get() != "null")
}

fn required<'a>(v: Option<&'a RawValue>, name: &str) -> Result<&'a RawValue, Rejection> {
    optional(v).ok_or_else(|| malformed(format!("field '{name}' is missing")))
}

fn required_string<'a>(v: Option<&'a RawValue>, name: &str) -> Result<Cow<'a, str>, Rejection> {
    string(required(v, name)?, name)
}

/// Reads a JSON string, borrowing when it has no escapes.
fn string<'a>(v: &'a RawValue, name: &str) -> Result<Cow<'a, str>, Rejection> {
    if let Ok(s) = serde_json::from_str::<&'a str>(v.get()) {
        return Ok(Cow::Borrowed(s));
    }
    serde_json::from_str::<String>(v.get())
        .map(Cow::Owned)
        .map_err(|_| malformed(format!("field '{name}' must be a string")))
}

fn integer(v: &RawValue, name: &str) -> Result<i64, Rejection> {
    serde_json::from_str::<i64>(v.get())
        .map_err(|_| malformed(format!("field '{name}' must be an integer")))
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests;
