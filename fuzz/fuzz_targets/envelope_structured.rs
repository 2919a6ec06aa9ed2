//! `envelope::parse` over envelopes built by `arbitrary`: every field
//! present, absent, `null`, of the wrong type or of an edge value; unknown
//! and duplicated keys; any whitespace and any escaping. Besides the
//! properties of `envelope_bytes`, the outcome is checked against the
//! contract model (the `contract-model` crate's rule for each field, and
//! here how the fields combine): a message the model accepts must be
//! accepted with exactly the model's values, one it refuses must be refused.
#![no_main]

use std::fmt::Write as _;

use arbitrary::Arbitrary;
use base64::{Engine as _, engine::general_purpose::STANDARD};
use libfuzzer_sys::fuzz_target;
use webhook_worker::domain::envelope::{self, Rejection};
use webhook_worker_fuzz::{
    CATALOG, KNOWN, MAX, RESERVED, catalog, check_accepted, check_headers, check_rejection,
    check_reparse, id_ok, secret_ok, uncatalogued_event_ok, url_ok, valid_number,
};

/// What the model says of a field or a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Accept,
    /// An edge the model does not decide (left to the other properties).
    Unsure,
    Reject,
}

use Verdict::{Accept, Reject, Unsure};

/// A field's value as written.
#[derive(Arbitrary, Debug)]
enum Slot<T> {
    Absent,
    Null,
    Good(T),
    Other(Junk),
}

/// Any JSON value, often of the wrong type.
#[derive(Arbitrary, Debug)]
enum Junk {
    Int(i64),
    /// An integer of this many digits (beyond i64 from 20 on).
    Huge(u8),
    Float(f64),
    Bool(bool),
    Array(u8),
    Object,
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum Id {
    /// Printable ASCII, 1-200 characters.
    Printable(Vec<u8>),
    /// Exactly this many characters (the 200-character edge).
    Long(u8),
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum Webhook {
    Catalogued(u8),
    InRange(u8, u8),
    Any(i64),
}

#[derive(Arbitrary, Debug)]
enum Event {
    /// The catalogue name of the message's webhook.
    Matching,
    Catalogued(u8),
    Visible(Vec<u8>),
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum Url {
    Parts {
        scheme: u8,
        host: Host,
        port: Option<u16>,
        path: String,
    },
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum Host {
    Name(Vec<u8>),
    V4([u8; 4]),
    V6([u16; 8]),
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

#[derive(Arbitrary, Debug)]
struct Stamp {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    fraction: Option<(u32, u8)>,
    /// None: `Z`; else minutes east (any sign, any size).
    offset: Option<i16>,
    lower_case: bool,
}

#[derive(Arbitrary, Debug)]
enum HeaderName {
    Reserved(u8, u32),
    Token(Vec<u8>),
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum HeaderValue {
    Printable(Vec<u8>),
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum Secret {
    Whsec(Vec<u8>),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
struct Message {
    id: Slot<Id>,
    webhook: Slot<Webhook>,
    event: Slot<Event>,
    url: Slot<Url>,
    data: Slot<Vec<(String, Json)>>,
    site_id: Slot<i64>,
    created_at: Slot<Stamp>,
    headers: Slot<Vec<(HeaderName, HeaderValue)>>,
    secret: Slot<Secret>,
    unknown: Vec<(String, Junk)>,
    duplicate: Option<u8>,
    order: Vec<u8>,
    /// How strings are escaped and where whitespace goes.
    style: Vec<u8>,
    /// A size limit other than 1 MiB.
    max: Option<u16>,
}

/// Renders JSON with whitespace and escapes driven by a tape.
struct Writer<'a> {
    out: String,
    tape: &'a [u8],
    pos: usize,
}

impl Writer<'_> {
    fn next(&mut self) -> u8 {
        let b = self.tape.get(self.pos % self.tape.len().max(1)).copied();
        self.pos += 1;
        b.unwrap_or(0)
    }

    fn ws(&mut self) {
        let ws = [" ", "\t", "\n", "\r\n"];
        let b = self.next();
        if b >= 0xf0 {
            self.out.push_str(ws[(b & 3) as usize]);
        }
    }

    fn string(&mut self, s: &str) {
        self.out.push('"');
        for c in s.chars() {
            let b = self.next();
            let must = c == '"' || c == '\\' || (c as u32) < 0x20;
            if must || b >= 0xe0 {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    if b & 1 == 0 {
                        let _ = write!(self.out, "\\u{u:04x}");
                    } else {
                        let _ = write!(self.out, "\\u{u:04X}");
                    }
                }
            } else {
                self.out.push(c);
            }
        }
        self.out.push('"');
    }

    fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    fn junk(&mut self, j: &Junk) {
        match j {
            Junk::Int(n) => self.raw(&n.to_string()),
            Junk::Huge(n) => {
                let digits = 1 + usize::from(*n % 40);
                self.raw(&format!("9{}", "0".repeat(digits - 1)));
            }
            Junk::Float(f) if f.is_finite() => self.raw(&format!("{f:?}")),
            Junk::Float(_) => self.raw("1.5e300"),
            Junk::Bool(b) => self.raw(if *b { "true" } else { "false" }),
            Junk::Array(n) => {
                self.raw("[");
                for i in 0..(n % 4) {
                    if i > 0 {
                        self.raw(",");
                    }
                    self.raw(&i.to_string());
                }
                self.raw("]");
            }
            Junk::Object => self.raw("{}"),
            Junk::Text(s) => self.string(s),
        }
    }

    fn json(&mut self, j: &Json, depth: usize) {
        match j {
            Json::Null => self.raw("null"),
            Json::Bool(b) => self.raw(if *b { "true" } else { "false" }),
            Json::Int(n) => self.raw(&n.to_string()),
            Json::Float(f) if f.is_finite() => self.raw(&format!("{f:?}")),
            Json::Float(_) => self.raw("0.5"),
            Json::Text(s) => self.string(s),
            Json::Array(items) if depth < 64 => {
                self.raw("[");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.raw(",");
                    }
                    self.ws();
                    self.json(item, depth + 1);
                }
                self.raw("]");
            }
            Json::Object(pairs) if depth < 64 => self.object(pairs, depth),
            _ => self.raw("{}"),
        }
    }

    fn object(&mut self, pairs: &[(String, Json)], depth: usize) {
        self.raw("{");
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                self.raw(",");
            }
            self.ws();
            self.string(k);
            self.ws();
            self.raw(":");
            self.ws();
            self.json(v, depth + 1);
        }
        self.ws();
        self.raw("}");
    }
}

/// The model's expected values for an accepted message.
#[derive(Debug, Default)]
struct Expected {
    id: String,
    webhook: u16,
    event: String,
    data: String,
    site_id: Option<i64>,
    created_at_ms: Option<i64>,
    headers: Vec<(String, String)>,
    secret: Option<String>,
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Hinnant's
/// `days_from_civil`): the model's own calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: u16, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        _ => 28,
    }
}

/// The RFC 3339 text of a stamp, its verdict and its unix milliseconds.
fn stamp(s: &Stamp) -> (String, Verdict, Option<i64>) {
    let mut text = format!(
        "{:04}-{:02}-{:02}{}{:02}:{:02}:{:02}",
        s.year,
        s.month,
        s.day,
        if s.lower_case { 't' } else { 'T' },
        s.hour,
        s.minute,
        s.second
    );
    let mut verdict = if s.year <= 9999
        && (1..=12).contains(&s.month)
        && (1..=days_in_month(s.year, s.month)).contains(&s.day)
        && s.hour <= 23
        && s.minute <= 59
        && s.second <= 59
    {
        Accept
    } else if s.second == 60 {
        Unsure // a leap second
    } else {
        Reject
    };
    let mut nanos: i128 = 0;
    if let Some((digits, len)) = s.fraction {
        let len = usize::from(len % 12);
        let frac = format!("{digits:010}");
        let frac = &frac[frac.len() - len.min(10)..];
        let frac = format!("{frac}{}", "0".repeat(len.saturating_sub(10)));
        text.push('.');
        text.push_str(&frac);
        if len == 0 {
            verdict = Reject;
        } else if len > 9 {
            verdict = verdict.max(Unsure);
        } else {
            nanos = frac.parse::<i128>().unwrap() * 10i128.pow(9 - len as u32);
        }
    }
    let mut offset_minutes: i64 = 0;
    match s.offset {
        None if s.lower_case => text.push('z'),
        None => text.push('Z'),
        Some(m) => {
            let sign = if m < 0 { '-' } else { '+' };
            let (h, mm) = ((m.unsigned_abs() / 100), (m.unsigned_abs() % 100));
            let _ = write!(text, "{sign}{h:02}:{mm:02}");
            if h > 23 || mm > 59 {
                verdict = Reject;
            }
            offset_minutes = i64::from(h) * 60 + i64::from(mm);
            if m < 0 {
                offset_minutes = -offset_minutes;
            }
        }
    }
    if s.lower_case {
        verdict = verdict.max(Unsure);
    }
    let ms = (verdict == Accept).then(|| {
        let days = days_from_civil(s.year.into(), s.month.into(), s.day.into());
        let secs = days * 86_400
            + i64::from(s.hour) * 3600
            + i64::from(s.minute) * 60
            + i64::from(s.second)
            - offset_minutes * 60;
        let total = i128::from(secs) * 1_000_000_000 + nanos;
        (total / 1_000_000) as i64
    });
    (text, verdict, ms)
}

fn printable(bytes: &[u8], min: usize, max: usize, lo: u8, span: u8) -> String {
    let mut s: String = bytes
        .iter()
        .take(max)
        .map(|b| char::from(lo + b % span))
        .collect();
    while s.len() < min {
        s.push('a');
    }
    s
}

fn url_text(u: &Url) -> String {
    match u {
        Url::Any(s) => s.clone(),
        Url::Parts {
            scheme,
            host,
            port,
            path,
        } => {
            let scheme =
                ["http", "https", "HTTP", "ftp", "mailto", "file", "ws"][usize::from(*scheme % 7)];
            let host = match host {
                Host::Name(b) => printable(b, 1, 63, b'a', 26),
                Host::V4(o) => format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3]),
                Host::V6(s) => format!(
                    "[{}]",
                    std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7])
                ),
                Host::Any(s) => s.clone(),
            };
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            format!("{scheme}://{host}{port}/{path}")
        }
    }
}

/// The model of the `url` field.
fn url_verdict(text: &str) -> Verdict {
    if url_ok(text) { Accept } else { Reject }
}

fn junk_is_integer(j: &Junk) -> Option<Option<i64>> {
    match j {
        Junk::Int(n) => Some(Some(*n)),
        Junk::Huge(n) => {
            let digits = 1 + usize::from(*n % 40);
            Some(format!("9{}", "0".repeat(digits - 1)).parse().ok())
        }
        _ => None,
    }
}

/// One key and its rendered value, with the model's verdict.
struct Field {
    key: &'static str,
    text: String,
    verdict: Verdict,
}

fn build(m: &Message) -> (Vec<Field>, Verdict, Expected) {
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

fuzz_target!(|m: Message| {
    let (mut fields, mut verdict, exp) = build(&m);
    // Missing required fields were recorded as keyless verdicts.
    fields.retain(|f| !f.key.is_empty());
    let mut w = Writer {
        out: String::new(),
        tape: &m.style,
        pos: 7,
    };
    let mut entries: Vec<String> = Vec::new();
    for f in &fields {
        let mut e = std::mem::take(&mut w.out);
        w.string(f.key);
        e.push_str(&std::mem::take(&mut w.out));
        w.ws();
        e.push(':');
        e.push_str(&f.text);
        entries.push(e);
    }
    for (k, j) in &m.unknown {
        if KNOWN.contains(&k.as_str()) {
            verdict = verdict.max(Unsure);
        }
        w.string(k);
        w.raw(":");
        w.junk(j);
        entries.push(std::mem::take(&mut w.out));
    }
    if let Some(d) = m.duplicate
        && !fields.is_empty()
    {
        let i = usize::from(d) % fields.len();
        entries.push(entries[i].clone());
        verdict = Reject;
    }
    // Any key order.
    for (i, b) in m.order.iter().enumerate() {
        if entries.len() > 1 {
            let a = i % entries.len();
            let b = usize::from(*b) % entries.len();
            entries.swap(a, b);
        }
    }
    let mut body = String::from("{");
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        w.ws();
        body.push_str(&std::mem::take(&mut w.out));
        body.push_str(e);
    }
    w.ws();
    body.push_str(&w.out);
    body.push('}');

    let max = m.max.map_or(MAX, usize::from);
    let body = body.as_bytes();
    if body.len() > max {
        verdict = Reject;
    }
    match envelope::parse(body, max) {
        Err(r) => {
            check_rejection(&r, body, max);
            assert!(
                verdict != Accept,
                "the model accepts {:?}, the parser refused it: {r}",
                String::from_utf8_lossy(body)
            );
            if body.len() > max {
                assert!(matches!(r, Rejection::TooLarge { .. }));
            }
        }
        Ok(env) => {
            let shown = String::from_utf8_lossy(body);
            assert!(
                verdict != Reject,
                "the model refuses {shown:?}, the parser accepted it"
            );
            check_accepted(&env, body);
            check_reparse(&env);
            if verdict == Accept {
                assert_eq!(env.id, exp.id, "{shown}");
                assert_eq!(env.webhook, exp.webhook, "{shown}");
                assert_eq!(env.event, exp.event, "{shown}");
                assert_eq!(env.data.get(), exp.data, "{shown}");
                assert_eq!(env.site_id, exp.site_id, "{shown}");
                assert_eq!(env.created_at_ms, exp.created_at_ms, "{shown}");
                let headers: Vec<(String, String)> = env
                    .headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect();
                assert_eq!(headers, exp.headers, "{shown}");
                assert_eq!(env.secret.as_deref(), exp.secret.as_deref(), "{shown}");
            }
        }
    }
});
