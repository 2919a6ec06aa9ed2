//! A message rendered field by field, with the model's verdict on each and the values it expects.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use webhook_worker_fuzz::{
    CATALOG, RESERVED, catalog, check_headers, id_ok, secret_ok, uncatalogued_event_ok,
    valid_number,
};

use super::input::{Event, HeaderName, HeaderValue, Id, Junk, Message, Secret, Slot, Webhook};
use super::values::Verdict::{self, Accept, Reject, Unsure};
use super::values::{junk_is_integer, printable, stamp, url_text, url_verdict};
use super::writer::Writer;

/// The model's expected values for an accepted message.
#[derive(Debug, Default)]
pub(crate) struct Expected {
    pub(crate) id: String,
    pub(crate) webhook: u16,
    pub(crate) event: String,
    pub(crate) data: String,
    pub(crate) site_id: Option<i64>,
    pub(crate) created_at_ms: Option<i64>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) secret: Option<String>,
}

/// One key and its rendered value, with the model's verdict.
pub(crate) struct Field {
    pub(crate) key: &'static str,
    pub(crate) text: String,
    pub(crate) verdict: Verdict,
}

pub(crate) fn build(m: &Message) -> (Vec<Field>, Verdict, Expected) {
    let mut w = Writer {
        out: String::new(),
        tape: &m.style,
        pos: 0,
    };
    let mut exp = Expected::default();
    let mut fields: Vec<Field> = Vec::new();
    let push = |fields: &mut Vec<Field>, key, text: String, verdict| {
        fields.push(Field { key, text, verdict });
    };
    let take = |w: &mut Writer<'_>| std::mem::take(&mut w.out);

    // id
    match &m.id {
        Slot::Absent => exp.id.clear(),
        Slot::Null => push(&mut fields, "id", "null".into(), Reject),
        Slot::Good(id) => {
            let s = match id {
                Id::Printable(b) => printable(b, 1, 200, 0x20, 0x5f),
                Id::Long(n) => "x".repeat(190 + usize::from(*n % 20)),
                Id::Any(s) => s.clone(),
            };
            w.string(&s);
            push(
                &mut fields,
                "id",
                take(&mut w),
                if id_ok(&s) { Accept } else { Reject },
            );
            exp.id = s;
        }
        Slot::Other(j) => {
            w.junk(j);
            let v = match j {
                Junk::Text(s) => {
                    exp.id = s.clone();
                    if id_ok(s) { Accept } else { Reject }
                }
                _ => Reject,
            };
            push(&mut fields, "id", take(&mut w), v);
        }
    }
    if matches!(m.id, Slot::Absent) {
        push(&mut fields, "", String::new(), Reject);
    }

    // webhook
    let number: Option<i64> = match &m.webhook {
        Slot::Absent | Slot::Null => None,
        Slot::Good(Webhook::Catalogued(i)) => {
            Some(i64::from(CATALOG[usize::from(*i) % CATALOG.len()].0))
        }
        Slot::Good(Webhook::InRange(h, n)) => Some(i64::from(h % 4) * 100 + i64::from(*n % 100)),
        Slot::Good(Webhook::Any(n)) => Some(*n),
        Slot::Other(j) => junk_is_integer(j).flatten(),
    };
    let webhook_verdict = match (&m.webhook, number) {
        (Slot::Absent, _) | (Slot::Null, _) => Reject,
        (_, Some(n)) if valid_number(n) => Accept,
        _ => Reject,
    };
    match &m.webhook {
        Slot::Absent => {}
        Slot::Null => push(&mut fields, "webhook", "null".into(), Reject),
        Slot::Good(_) => push(
            &mut fields,
            "webhook",
            number.unwrap().to_string(),
            webhook_verdict,
        ),
        Slot::Other(j) => {
            w.junk(j);
            push(&mut fields, "webhook", take(&mut w), webhook_verdict);
        }
    }
    if matches!(m.webhook, Slot::Absent) {
        push(&mut fields, "", String::new(), Reject);
    }
    if let Some(n) = number.filter(|n| valid_number(*n)) {
        exp.webhook = n as u16;
    }

    // event: decided with the webhook number.
    let known = number.and_then(catalog);
    let given: Option<Option<String>> = match &m.event {
        Slot::Absent | Slot::Null => Some(None),
        Slot::Good(Event::Matching) => Some(Some(known.unwrap_or("Chat.Custom").to_string())),
        Slot::Good(Event::Catalogued(i)) => {
            Some(Some(CATALOG[usize::from(*i) % CATALOG.len()].1.to_string()))
        }
        Slot::Good(Event::Visible(b)) => Some(Some(printable(b, 1, 200, 0x21, 0x5e))),
        Slot::Good(Event::Any(s)) => Some(Some(s.clone())),
        Slot::Other(Junk::Text(s)) => Some(Some(s.clone())),
        Slot::Other(_) => None,
    };
    let event_verdict = match (&given, known) {
        (None, _) => Reject,
        (Some(None), Some(_)) => Accept,
        (Some(Some(g)), Some(k)) if g == k => Accept,
        (Some(Some(_)), Some(_)) => Reject,
        (Some(None), None) => Reject,
        (Some(Some(g)), None) if uncatalogued_event_ok(g) => Accept,
        (Some(Some(_)), None) => Reject,
    };
    // Without a valid number the event's verdict does not matter.
    let event_verdict = if webhook_verdict == Accept {
        event_verdict
    } else {
        Unsure.min(event_verdict)
    };
    match &m.event {
        Slot::Absent => {}
        Slot::Null => push(&mut fields, "event", "null".into(), event_verdict),
        Slot::Good(_) => {
            w.string(given.as_ref().unwrap().as_ref().unwrap());
            push(&mut fields, "event", take(&mut w), event_verdict);
        }
        Slot::Other(j) => {
            w.junk(j);
            push(&mut fields, "event", take(&mut w), event_verdict);
        }
    }
    if matches!(m.event, Slot::Absent) {
        push(&mut fields, "", String::new(), event_verdict);
    }
    exp.event = match (known, &given) {
        (Some(k), _) => k.to_string(),
        (None, Some(Some(g))) => g.clone(),
        _ => String::new(),
    };

    // url
    match &m.url {
        Slot::Absent => push(&mut fields, "", String::new(), Reject),
        Slot::Null => push(&mut fields, "url", "null".into(), Reject),
        Slot::Good(u) => {
            let text = url_text(u);
            w.string(&text);
            push(&mut fields, "url", take(&mut w), url_verdict(&text));
        }
        Slot::Other(j) => {
            w.junk(j);
            let v = match j {
                Junk::Text(s) => url_verdict(s),
                _ => Reject,
            };
            push(&mut fields, "url", take(&mut w), v);
        }
    }

    // data
    match &m.data {
        Slot::Absent => push(&mut fields, "", String::new(), Reject),
        Slot::Null => push(&mut fields, "data", "null".into(), Reject),
        Slot::Good(pairs) => {
            w.object(pairs, 1);
            exp.data = w.out.clone();
            push(&mut fields, "data", take(&mut w), Accept);
        }
        Slot::Other(j) => {
            w.junk(j);
            exp.data = w.out.clone();
            let v = if matches!(j, Junk::Object) {
                Accept
            } else {
                Reject
            };
            push(&mut fields, "data", take(&mut w), v);
        }
    }

    // site_id
    match &m.site_id {
        Slot::Absent => {}
        Slot::Null => push(&mut fields, "site_id", "null".into(), Accept),
        Slot::Good(n) => {
            exp.site_id = Some(*n);
            push(&mut fields, "site_id", n.to_string(), Accept);
        }
        Slot::Other(j) => {
            w.junk(j);
            let v = match junk_is_integer(j) {
                Some(Some(n)) => {
                    exp.site_id = Some(n);
                    Accept
                }
                _ => Reject,
            };
            push(&mut fields, "site_id", take(&mut w), v);
        }
    }

    // created_at
    match &m.created_at {
        Slot::Absent => {}
        Slot::Null => push(&mut fields, "created_at", "null".into(), Accept),
        Slot::Good(s) => {
            let (text, v, ms) = stamp(s);
            exp.created_at_ms = ms;
            w.string(&text);
            push(&mut fields, "created_at", take(&mut w), v);
        }
        Slot::Other(j) => {
            w.junk(j);
            // Arbitrary text is rarely RFC 3339; leave it to the parser.
            let v = if matches!(j, Junk::Text(_)) {
                Unsure
            } else {
                Reject
            };
            push(&mut fields, "created_at", take(&mut w), v);
        }
    }

    // headers
    match &m.headers {
        Slot::Absent => {}
        Slot::Null => push(&mut fields, "headers", "null".into(), Accept),
        Slot::Good(pairs) => {
            w.raw("{");
            for (i, (name, value)) in pairs.iter().enumerate() {
                let name = match name {
                    HeaderName::Reserved(i, case) => RESERVED[usize::from(*i) % RESERVED.len()]
                        .chars()
                        .enumerate()
                        .map(|(k, c)| {
                            if case >> (k % 32) & 1 == 1 {
                                c.to_ascii_uppercase()
                            } else {
                                c
                            }
                        })
                        .collect(),
                    HeaderName::Token(b) => printable(b, 0, 64, 0, 0xff)
                        .chars()
                        .map(|c| {
                            let t = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~";
                            char::from(t[c as usize % t.len()])
                        })
                        .collect(),
                    HeaderName::Any(s) => s.clone(),
                };
                let value = match value {
                    HeaderValue::Printable(b) => printable(b, 0, 256, 0x20, 0x5f),
                    HeaderValue::Any(s) => s.clone(),
                };
                if i > 0 {
                    w.raw(",");
                }
                w.ws();
                w.string(&name);
                w.raw(":");
                w.string(&value);
                exp.headers.push((name, value));
            }
            w.raw("}");
            let pairs = exp.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
            let v = if check_headers(pairs).is_ok() {
                Accept
            } else {
                Reject
            };
            push(&mut fields, "headers", take(&mut w), v);
        }
        Slot::Other(j) => {
            w.junk(j);
            let v = if matches!(j, Junk::Object) {
                Accept
            } else {
                Reject
            };
            push(&mut fields, "headers", take(&mut w), v);
        }
    }

    // secret
    let secret_verdict = |s: &str| if secret_ok(s) { Accept } else { Reject };
    match &m.secret {
        Slot::Absent => {}
        Slot::Null => push(&mut fields, "secret", "null".into(), Accept),
        Slot::Good(s) => {
            let s = match s {
                Secret::Whsec(key) => format!("whsec_{}", STANDARD.encode(key)),
                Secret::Raw(s) => s.clone(),
            };
            let v = secret_verdict(&s);
            w.string(&s);
            exp.secret = Some(s);
            push(&mut fields, "secret", take(&mut w), v);
        }
        Slot::Other(j) => {
            w.junk(j);
            let v = match j {
                Junk::Text(s) => {
                    exp.secret = Some(s.clone());
                    secret_verdict(s)
                }
                _ => Reject,
            };
            push(&mut fields, "secret", take(&mut w), v);
        }
    }

    let verdict = fields.iter().map(|f| f.verdict).max().unwrap_or(Accept);
    (fields, verdict, exp)
}
