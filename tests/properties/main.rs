//! Hostile input at scale: property tests of the pure parts of the worker.
//!
//! * `message::parse` over arbitrary bytes, over JSON-ish token soup and over
//!   mutations of valid envelopes (wrong types for every field, huge numbers,
//!   deep nesting, invalid UTF-8, odd header names and values, duplicate and
//!   unknown keys). It never panics, every rejection says why, a message that
//!   parses obeys contract section 3, and `data` comes out byte for byte.
//! * The retry schedule grammar (`RetrySchedule::from_str`, `parse_duration`)
//!   over edge durations and counts, checked against a model.
//! * `RetryState::from_headers` over arbitrary AMQP values, against a model.
//! * `RetryPolicy::decide` over any attempt, clock and outcome, against a
//!   model: a retry is always one of the schedule's tiers.
//!
//! 148,000 generated cases over 11 properties. Strings are drawn from seeds
//! and the RNG is XorShift, which keeps the whole binary to about 15 s in a
//! debug build on 2 cores (25 s on a busy machine).

use std::{collections::BTreeMap, time::Duration};

use lapin::types::{
    AMQPValue, ByteArray, DecimalValue, FieldArray, FieldTable, LongString, ShortString,
};
use proptest::{collection::vec, prelude::*, sample::select, test_runner::TestCaseError};
use serde_json::value::RawValue;
use webhook_worker::{
    broker::retry_headers::{HEADER_ATTEMPTS, HEADER_FIRST_ATTEMPT_MS, read_retry_state},
    domain::{
        duration::{MAX_TTL, parse_duration, parse_positive_duration, parse_ttl},
        envelope::{self as message, Envelope, Rejection},
        outcome::AttemptOutcome,
        policy::{Decision, DropReason, RetryPolicy, RetryState},
        schedule::{MAX_RETRIES, RetrySchedule},
    },
};

/// A decision as the model states it: the retry's delay, not its tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Modelled {
    Retry(Duration),
    Drop(DropReason),
}

fn modelled(policy: &RetryPolicy, d: Decision) -> Modelled {
    match d {
        Decision::Retry(tier) => Modelled::Retry(policy.tiers().delay(tier)),
        Decision::Drop(reason) => Modelled::Drop(reason),
    }
}

/// The distinct delays of a schedule, ascending: the independent model of
/// its tiers.
fn model_tiers(delays: &[Duration]) -> Vec<Duration> {
    let mut t = delays.to_vec();
    t.sort();
    t.dedup();
    t
}

fn policy_tiers(policy: &RetryPolicy) -> Vec<Duration> {
    policy.tiers().iter().map(|(_, d)| d).collect()
}

/// `WEBHOOK_MAX_MESSAGE_BYTES` used where the size limit is not under test.
const MAX: usize = 1 << 20;

fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Keep a failing run's shrinking bounded so a regression reports fast.
        max_shrink_iters: 4096,
        // ChaCha, the default, is most of the run time in debug builds.
        rng_algorithm: proptest::test_runner::RngAlgorithm::XorShift,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// The contract, restated independently of src/ (section 3 and 4).
// ---------------------------------------------------------------------------

const CATALOG: [(i64, &str); 12] = [
    (101, "Chat.Request.start"),
    (102, "Chat.beforeAssigning"),
    (103, "Chat.afterAssigning"),
    (104, "Chat.started"),
    (105, "Chat.Message.received"),
    (106, "Chat.Message.sent"),
    (107, "Chat.Agent.joinChat"),
    (108, "Chat.Visitor.banned"),
    (109, "Chat.ended"),
    (110, "Chat.wrapup"),
    (201, "OfflineMessage.submitted"),
    (301, "App.installed"),
];

fn catalog(n: i64) -> Option<&'static str> {
    CATALOG.iter().find(|(k, _)| *k == n).map(|(_, e)| *e)
}

fn valid_number(n: i64) -> bool {
    matches!(n, 101..=199 | 201..=299 | 301..=399)
}

/// Headers `headers` may not set: section 4's, `Host`, `Content-Length` and
/// the hop-by-hop ones (RFC 7230 6.1, plus `Proxy-Connection`).
const RESERVED: [&str; 21] = [
    "content-type",
    "user-agent",
    "x-comm100-webhook-no",
    "x-comm100-event",
    "x-comm100-delivery-id",
    "x-comm100-attempt",
    "x-comm100-site-id",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name.to_ascii_lowercase().as_str())
}

/// RFC 7230 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A header value an HTTP client can send: no control bytes but tab.
fn is_header_value(v: &str) -> bool {
    v.bytes().all(|b| (b >= 0x20 && b != 0x7f) || b == b'\t')
}

const KNOWN: [&str; 9] = [
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
const F_ID: usize = 0;
const F_WEBHOOK: usize = 1;
const F_URL: usize = 2;
const F_DATA: usize = 3;
const F_EVENT: usize = 4;
const F_SITE_ID: usize = 5;
const F_CREATED_AT: usize = 6;
const F_HEADERS: usize = 7;
const F_SECRET: usize = 8;

// ---------------------------------------------------------------------------
// Checking any outcome of `parse`.
// ---------------------------------------------------------------------------

/// Parses `body` and checks what holds for every input: no panic (proptest
/// turns one into a failure), a rejection always says why, an accepted
/// message obeys section 3 and its `data` is a slice of the body.
fn parse_checked(
    body: &[u8],
    max: usize,
) -> Result<Result<Envelope<'_>, Rejection>, TestCaseError> {
    // `identify` reads the same hostile bytes for log lines: never panics.
    let _ = message::identify(body);
    let result = message::parse(body, max);
    match &result {
        Err(rejection) => {
            prop_assert!(
                !rejection.to_string().trim().is_empty(),
                "rejection without text: {:?}",
                rejection
            );
            match rejection {
                Rejection::Malformed(m) => {
                    prop_assert!(!m.trim().is_empty(), "Malformed with an empty reason");
                    prop_assert!(
                        body.len() <= max,
                        "an oversized body must be TooLarge, got Malformed({:?})",
                        m
                    );
                }
                Rejection::TooLarge { size, limit } => {
                    prop_assert_eq!(*size, body.len());
                    prop_assert_eq!(*limit, max);
                    prop_assert!(size > limit);
                }
            }
        }
        Ok(env) => check_envelope(env, body)?,
    }
    Ok(result)
}

fn check_envelope(env: &Envelope<'_>, body: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!(
        std::str::from_utf8(body).is_ok(),
        "accepted a body that is not UTF-8"
    );
    let webhook = i64::from(env.webhook);
    prop_assert!(valid_number(webhook), "accepted webhook {}", webhook);

    let id_len = env.id.chars().count();
    prop_assert!(
        (1..=200).contains(&id_len),
        "accepted id of {} chars",
        id_len
    );
    prop_assert!(
        env.id.bytes().all(|b| (0x20..=0x7e).contains(&b)),
        "accepted id {:?}",
        env.id
    );

    match catalog(webhook) {
        Some(known) => prop_assert_eq!(env.event.as_ref(), known),
        None => {
            let n = env.event.chars().count();
            prop_assert!(
                (1..=200).contains(&n) && env.event.bytes().all(|b| b.is_ascii_graphic()),
                "event {:?}",
                env.event
            );
        }
    }

    prop_assert!(
        matches!(env.url.scheme(), "http" | "https"),
        "accepted url {}",
        env.url
    );
    prop_assert!(
        env.url.host_str().is_some_and(|h| !h.is_empty()),
        "accepted url without host {}",
        env.url
    );

    // `data` is an object, and borrowed from the body: never re-serialised.
    let data = env.data.get();
    prop_assert!(
        data.starts_with('{') && data.ends_with('}'),
        "data {:?}",
        data
    );
    let start = (data.as_ptr() as usize).wrapping_sub(body.as_ptr() as usize);
    prop_assert!(
        start <= body.len() && start + data.len() <= body.len(),
        "data is not a slice of the body"
    );
    prop_assert_eq!(&body[start..start + data.len()], data.as_bytes());

    let mut seen: Vec<String> = Vec::new();
    for (name, value) in &env.headers {
        prop_assert!(
            !name.is_empty() && name.bytes().all(is_tchar),
            "header name {:?}",
            name
        );
        prop_assert!(!is_reserved(name), "reserved header {:?} accepted", name);
        prop_assert!(is_header_value(value), "header value {:?}", value);
        let lower = name.to_ascii_lowercase();
        prop_assert!(!seen.contains(&lower), "header {:?} twice", name);
        seen.push(lower);
    }
    if let Some(secret) = &env.secret {
        prop_assert!(!secret.is_empty());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Rendering JSON with arbitrary whitespace and escapes.
// ---------------------------------------------------------------------------

/// How one character of a JSON string is written.
#[derive(Debug, Clone, Copy)]
enum Esc {
    Raw,
    Short,
    ULower,
    UUpper,
}

fn esc() -> impl Strategy<Value = Esc> {
    prop_oneof![6 => Just(Esc::Raw), 1 => Just(Esc::Short), 1 => Just(Esc::ULower), 1 => Just(Esc::UUpper)]
}

/// Writes `c` inside a JSON string, escaped as `e` asks when that is possible
/// (and escaped anyway when it must be).
fn push_char(out: &mut String, c: char, e: Esc) {
    let short = match c {
        '"' => Some('"'),
        '\\' => Some('\\'),
        '/' => Some('/'),
        '\u{8}' => Some('b'),
        '\u{c}' => Some('f'),
        '\n' => Some('n'),
        '\r' => Some('r'),
        '\t' => Some('t'),
        _ => None,
    };
    let must = c == '"' || c == '\\' || (c as u32) < 0x20;
    match (e, short) {
        (Esc::Raw, _) if !must => out.push(c),
        (Esc::Short | Esc::Raw, Some(s)) => {
            out.push('\\');
            out.push(s);
        }
        _ => {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                if matches!(e, Esc::UUpper) {
                    out.push_str(&format!("\\u{u:04X}"));
                } else {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
}

/// A JSON string literal for `s`, escapes taken cyclically from `tape`.
fn jstr(s: &str, tape: &[Esc], pos: &mut usize) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        let e = if tape.is_empty() {
            Esc::Raw
        } else {
            tape[*pos % tape.len()]
        };
        *pos += 1;
        push_char(&mut out, c, e);
    }
    out.push('"');
    out
}

/// JSON whitespace, mostly none.
fn ws() -> impl Strategy<Value = String> {
    select(vec![
        "", "", "", "", "", "", " ", "  ", "\t", "\n", "\r\n", " \t\n\r ",
    ])
    .prop_map(String::from)
}

// Strings are drawn from a seed rather than character by character: a
// proptest value tree per character is what makes debug-mode runs slow.
// Shrinking then shortens the string and simplifies the seed.

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }
}

const SPECIAL_CHARS: [char; 23] = [
    '"',
    '\\',
    '/',
    '\u{0}',
    '\u{8}',
    '\u{c}',
    '\n',
    '\r',
    '\t',
    '\u{1f}',
    '\u{7f}',
    '\u{80}',
    '\u{a0}',
    '\u{2028}',
    '\u{2029}',
    '\u{feff}',
    '\u{fffd}',
    '\u{ffff}',
    '\u{10000}',
    '\u{10ffff}',
    'é',
    '€',
    '😀',
];

/// Any character: mostly printable ASCII, often one that needs care, and
/// any code point of any UTF-8 length.
fn any_char_from(rng: &mut Rng) -> char {
    match rng.below(8) {
        0..=3 => char::from(0x20 + rng.below(0x5f) as u8),
        4 => rng.pick(&SPECIAL_CHARS),
        5 => char::from(rng.below(0x100) as u8),
        6 => char::from_u32(rng.below(0x1_0000) as u32).unwrap_or('\u{fffd}'),
        _ => char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('\u{d7ff}'),
    }
}

/// A string of `len` characters from a seed.
fn seeded(len: usize, seed: u64, mut gen_char: impl FnMut(&mut Rng) -> char) -> String {
    let mut rng = Rng(seed);
    (0..len).map(|_| gen_char(&mut rng)).collect()
}

fn any_string(max: usize) -> impl Strategy<Value = String> {
    (0..max, any::<u64>()).prop_map(|(n, seed)| seeded(n, seed, any_char_from))
}

/// A string of `len` characters taken from `palette`.
fn string_of(
    len: impl Strategy<Value = usize>,
    palette: &'static [u8],
) -> impl Strategy<Value = String> {
    (len, any::<u64>()).prop_map(move |(n, seed)| seeded(n, seed, |r| char::from(r.pick(palette))))
}

const DIGITS: &[u8] = b"0123456789";
const PRINTABLE: &[u8] = b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";
const TCHARS: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~";

/// A JSON number literal, any size.
fn json_number() -> impl Strategy<Value = String> {
    let digits = |r: std::ops::Range<usize>| string_of(r, DIGITS);
    (
        any::<bool>(),
        prop_oneof![
            Just("0".to_string()),
            (1u8..10, digits(0..30)).prop_map(|(d, r)| format!("{d}{r}"))
        ],
        proptest::option::of(digits(1..25)),
        proptest::option::of((
            select(vec!["e", "E"]),
            select(vec!["", "+", "-"]),
            digits(1..6),
        )),
    )
        .prop_map(|(neg, int, frac, exp)| {
            let mut s = String::new();
            if neg {
                s.push('-');
            }
            s.push_str(&int);
            if let Some(f) = frac {
                s.push('.');
                s.push_str(&f);
            }
            if let Some((e, sign, d)) = exp {
                s.push_str(e);
                s.push_str(sign);
                s.push_str(&d);
            }
            s
        })
}

/// A JSON value tree that remembers how it is written.
#[derive(Debug, Clone)]
enum J {
    Lit(&'static str),
    Num(String),
    Str(String, Vec<Esc>),
    Arr(Vec<(String, J, String)>, String),
    Obj(Vec<Member>, String),
}

#[derive(Debug, Clone)]
struct Member {
    ws: [String; 4],
    key: String,
    key_esc: Vec<Esc>,
    value: J,
}

fn render(j: &J, out: &mut String) {
    match j {
        J::Lit(s) => out.push_str(s),
        J::Num(n) => out.push_str(n),
        J::Str(s, e) => out.push_str(&jstr(s, e, &mut 0)),
        J::Arr(items, empty_ws) => {
            out.push('[');
            if items.is_empty() {
                out.push_str(empty_ws);
            }
            for (i, (a, v, b)) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(a);
                render(v, out);
                out.push_str(b);
            }
            out.push(']');
        }
        J::Obj(members, empty_ws) => {
            out.push('{');
            if members.is_empty() {
                out.push_str(empty_ws);
            }
            for (i, m) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&m.ws[0]);
                out.push_str(&jstr(&m.key, &m.key_esc, &mut 0));
                out.push_str(&m.ws[1]);
                out.push(':');
                out.push_str(&m.ws[2]);
                render(&m.value, out);
                out.push_str(&m.ws[3]);
            }
            out.push('}');
        }
    }
}

fn rendered(j: &J) -> String {
    let mut s = String::new();
    render(j, &mut s);
    s
}

fn member(value: impl Strategy<Value = J>) -> impl Strategy<Value = Member> {
    (
        (ws(), ws(), ws(), ws()),
        any_string(12),
        vec(esc(), 0..6),
        value,
    )
        .prop_map(|((a, b, c, d), key, key_esc, value)| Member {
            ws: [a, b, c, d],
            key,
            key_esc,
            value,
        })
}

fn json_value() -> impl Strategy<Value = J> {
    let leaf = prop_oneof![
        select(vec!["null", "true", "false"]).prop_map(J::Lit),
        json_number().prop_map(J::Num),
        (any_string(16), vec(esc(), 0..8)).prop_map(|(s, e)| J::Str(s, e)),
    ];
    leaf.prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            (vec((ws(), inner.clone(), ws()), 0..5), ws()).prop_map(|(v, w)| J::Arr(v, w)),
            (vec(member(inner), 0..5), ws()).prop_map(|(m, w)| J::Obj(m, w)),
        ]
    })
}

/// A JSON object, rendered: a tree with odd spacing and escapes, or deep.
fn json_object_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (vec(member(json_value()), 0..6), ws()).prop_map(|(m, w)| rendered(&J::Obj(m, w))),
        1 => deep_object(),
    ]
}

/// Nesting depths: mostly hundreds, sometimes tens of thousands.
fn depth() -> impl Strategy<Value = usize> {
    prop_oneof![9 => 1usize..600, 1 => 600usize..20_000]
}

/// An object nested thousands deep (arrays and objects mixed).
fn deep_object() -> impl Strategy<Value = String> {
    (depth(), any::<u64>()).prop_map(|(depth, bits)| {
        let (mut open, mut close) = (String::from("{\"k\":"), String::from("}"));
        for i in 0..depth {
            if bits >> (i % 64) & 1 == 1 {
                open.push_str("{\"a\":");
                close.push('}');
            } else {
                open.push('[');
                close.push(']');
            }
        }
        open.push('1');
        open.extend(close.chars().rev());
        open
    })
}

/// `depth` nested arrays or objects: hostile as any field's value.
fn deep_text(depth: usize, objects: bool) -> String {
    if objects {
        format!("{}null{}", "{\"a\":".repeat(depth), "}".repeat(depth))
    } else {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }
}

// ---------------------------------------------------------------------------
// Valid envelopes.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct ValidEnv {
    id: String,
    webhook: i64,
    event: Option<String>,
    url: String,
    data: String,
    site_id: Option<i64>,
    created_at: Option<String>,
    headers: Option<Vec<(String, String)>>,
    secret: Option<String>,
    unknown: Vec<(String, String)>,
    /// Order of the fields: a permutation of 0..9 (known) and 9.. (unknown).
    order: Vec<usize>,
    /// Escapes for every string, taken cyclically.
    tape: Vec<Esc>,
    /// Whitespace, taken cyclically.
    spaces: Vec<String>,
}

fn printable_ascii(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = String> {
    prop_oneof![8 => string_of(len.clone(), PRINTABLE), 1 => Just("x".repeat(*len.end()))]
}

fn visible_ascii(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = String> {
    prop_oneof![8 => string_of(len.clone(), &PRINTABLE[1..]), 1 => Just("E".repeat(*len.end()))]
}

/// (webhook, event): a catalogued number with or without its name, or an
/// uncatalogued valid one with a name.
fn webhook_and_event() -> impl Strategy<Value = (i64, Option<String>)> {
    prop_oneof![
        (select(CATALOG.to_vec()), any::<bool>())
            .prop_map(|((n, e), give)| (n, give.then(|| e.to_string()))),
        (
            prop_oneof![101i64..=199, 201i64..=299, 301i64..=399],
            visible_ascii(1..=200)
        )
            .prop_filter("uncatalogued", |(n, _)| catalog(*n).is_none())
            .prop_map(|(n, e)| (n, Some(e))),
    ]
}

fn url() -> impl Strategy<Value = String> {
    // Labels start with a letter: an all-digit last label would be an IPv4.
    let label = (
        string_of(1usize..2, b"abcdefghijklmnopqrstuvwxyz"),
        string_of(0usize..11, b"abcdefghijklmnopqrstuvwxyz0123456789"),
    )
        .prop_map(|(first, rest)| format!("{first}{rest}"));
    let host = prop_oneof![
        4 => vec(label, 1..4).prop_map(|v| v.join(".")),
        1 => select(vec!["127.0.0.1", "[::1]", "[2001:db8::1]", "bücher.example", "xn--bcher-kva.example", "例え.jp", "LOCALHOST"])
            .prop_map(String::from),
    ];
    const PATH: &[&str] = &[
        "a",
        "b",
        "z",
        "A",
        "Z",
        "0",
        "9",
        "-",
        ".",
        "_",
        "~",
        "!",
        "$",
        "&",
        "'",
        "(",
        ")",
        "*",
        "+",
        ",",
        ";",
        "=",
        ":",
        "@",
        "seg",
        "index.html",
        "%20",
        "%2F",
        "é",
        " ",
        "\"",
        "<",
        "%",
    ];
    let segment = (0usize..10, any::<u64>()).prop_map(|(n, seed)| {
        let mut r = Rng(seed);
        (0..n).map(|_| r.pick(PATH)).collect::<String>()
    });
    (
        select(vec!["http", "https", "HTTP", "hTTps"]),
        host,
        proptest::option::of(1u16..),
        vec(segment, 0..4),
        proptest::option::of(string_of(0usize..20, b"abcxyz0189=&")),
    )
        .prop_map(|(scheme, host, port, path, query)| {
            let mut u = format!("{scheme}://{host}");
            if let Some(p) = port {
                u.push_str(&format!(":{p}"));
            }
            for s in path {
                u.push('/');
                u.push_str(&s);
            }
            if let Some(q) = query {
                u.push('?');
                u.push_str(&q);
            }
            u
        })
}

fn rfc3339() -> impl Strategy<Value = String> {
    (
        0u32..=9999,
        1u32..=12,
        1u32..=28,
        0u32..=23,
        0u32..=59,
        0u32..=59,
        proptest::option::of(vec(0u8..10, 1..10)),
        prop_oneof![
            Just(None),
            (select(vec!['+', '-']), 0u32..=23, 0u32..=59).prop_map(Some)
        ],
    )
        .prop_map(|(y, mo, d, h, mi, s, frac, off)| {
            let mut t = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
            if let Some(f) = frac {
                t.push('.');
                t.extend(f.iter().map(|d| char::from(b'0' + d)));
            }
            match off {
                None => t.push('Z'),
                Some((sign, oh, om)) => t.push_str(&format!("{sign}{oh:02}:{om:02}")),
            }
            t
        })
}

fn token_name() -> impl Strategy<Value = String> {
    string_of(1usize..20, TCHARS)
}

fn valid_headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let value = (0usize..40, any::<u64>()).prop_map(|(n, seed)| {
        seeded(n, seed, |r| {
            if r.below(10) == 0 {
                r.pick(&['\t', 'é', '€', '😀'])
            } else {
                char::from(r.pick(PRINTABLE))
            }
        })
    });
    vec((token_name(), value), 0..6).prop_map(|pairs| {
        let mut out: Vec<(String, String)> = Vec::new();
        for (n, v) in pairs {
            if !is_reserved(&n) && !out.iter().any(|(m, _)| m.eq_ignore_ascii_case(&n)) {
                out.push((n, v));
            }
        }
        out
    })
}

fn valid_secret() -> impl Strategy<Value = String> {
    use base64::Engine as _;
    prop_oneof![
        any_string(40).prop_filter("non-empty, not whsec_", |s| !s.is_empty()
            && !s.starts_with("whsec_")),
        vec(any::<u8>(), 1..48).prop_map(|k| format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(k)
        )),
    ]
}

fn unknown_key() -> impl Strategy<Value = String> {
    prop_oneof![
        string_of(
            1usize..12,
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
        ),
        any_string(10),
        select(vec![
            "ID",
            "Id",
            "Webhook",
            "URL",
            "Data",
            "id ",
            " id",
            "data\u{0}",
            "héaders",
            ""
        ])
        .prop_map(String::from),
    ]
    .prop_filter("not a known field", |k| !KNOWN.contains(&k.as_str()))
}

fn valid_env() -> impl Strategy<Value = ValidEnv> {
    (
        (
            printable_ascii(1..=200),
            webhook_and_event(),
            url(),
            json_object_text(),
        ),
        (
            proptest::option::of(any::<i64>()),
            proptest::option::of(rfc3339()),
            proptest::option::of(valid_headers()),
            proptest::option::of(valid_secret()),
        ),
        vec(
            (unknown_key(), json_value().prop_map(|j| rendered(&j))),
            0..3,
        ),
        vec(esc(), 1..16),
        vec(ws(), 1..8),
        any::<u64>(),
    )
        .prop_map(
            |(
                (id, (webhook, event), url, data),
                (site_id, created_at, headers, secret),
                unknown,
                tape,
                spaces,
                seed,
            )| {
                let mut order: Vec<usize> = (0..KNOWN.len() + unknown.len()).collect();
                // A cheap deterministic shuffle from the seed.
                let mut s = seed | 1;
                for i in (1..order.len()).rev() {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    order.swap(i, (s % (i as u64 + 1)) as usize);
                }
                ValidEnv {
                    id,
                    webhook,
                    event,
                    url,
                    data,
                    site_id,
                    created_at,
                    headers,
                    secret,
                    unknown,
                    order,
                    tape,
                    spaces,
                }
            },
        )
}

/// What a JSON value is, for the model of which mutations must be refused.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Null,
    Bool,
    /// An integer literal; `None` when it does not fit an i64.
    Int(Option<i64>),
    /// A number with a fraction or exponent.
    Float,
    /// A string literal; `true` when it decodes (no lone surrogate).
    Str(bool),
    Arr,
    Obj,
    /// Not JSON at all: the body cannot parse.
    Broken,
}

/// One member of the rendered envelope.
#[derive(Debug, Clone)]
struct Field {
    /// The decoded key.
    name: String,
    /// The key as written (with quotes and escapes).
    key: String,
    value: String,
    kind: Kind,
    /// The generated valid value, unmutated.
    original: bool,
}

impl ValidEnv {
    fn fields(&self) -> Vec<Field> {
        let mut pos = 0;
        let tape = &self.tape;
        let mut known: Vec<Option<(String, Kind)>> = vec![None; KNOWN.len()];
        known[F_ID] = Some((jstr(&self.id, tape, &mut pos), Kind::Str(true)));
        known[F_WEBHOOK] = Some((self.webhook.to_string(), Kind::Int(Some(self.webhook))));
        known[F_URL] = Some((jstr(&self.url, tape, &mut pos), Kind::Str(true)));
        known[F_DATA] = Some((self.data.clone(), Kind::Obj));
        known[F_EVENT] = self
            .event
            .as_ref()
            .map(|e| (jstr(e, tape, &mut pos), Kind::Str(true)));
        known[F_SITE_ID] = self.site_id.map(|n| (n.to_string(), Kind::Int(Some(n))));
        known[F_CREATED_AT] = self
            .created_at
            .as_ref()
            .map(|t| (jstr(t, tape, &mut pos), Kind::Str(true)));
        known[F_HEADERS] = self.headers.as_ref().map(|h| {
            let mut s = String::from("{");
            for (i, (n, v)) in h.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str(&self.space(i));
                s.push_str(&jstr(n, tape, &mut pos));
                s.push(':');
                s.push_str(&jstr(v, tape, &mut pos));
                s.push_str(&self.space(i + 1));
            }
            s.push('}');
            (s, Kind::Obj)
        });
        known[F_SECRET] = self
            .secret
            .as_ref()
            .map(|s| (jstr(s, tape, &mut pos), Kind::Str(true)));

        let mut fields = Vec::new();
        for &i in &self.order {
            if i < KNOWN.len() {
                if let Some((value, kind)) = known[i].take() {
                    let key = jstr(KNOWN[i], tape, &mut pos);
                    fields.push(Field {
                        name: KNOWN[i].into(),
                        key,
                        value,
                        kind,
                        original: true,
                    });
                }
            } else {
                let (k, v) = &self.unknown[i - KNOWN.len()];
                let key = jstr(k, tape, &mut pos);
                fields.push(Field {
                    name: k.clone(),
                    key,
                    value: v.clone(),
                    kind: Kind::Obj,
                    original: true,
                });
            }
        }
        fields
    }

    fn space(&self, i: usize) -> String {
        self.spaces[i % self.spaces.len()].clone()
    }

    fn assemble(&self, fields: &[Field]) -> String {
        let mut s = self.space(7);
        s.push('{');
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(&self.space(i));
            s.push_str(&f.key);
            s.push_str(&self.space(i + 1));
            s.push(':');
            s.push_str(&self.space(i + 2));
            s.push_str(&f.value);
            s.push_str(&self.space(i + 3));
        }
        if fields.is_empty() {
            s.push_str(&self.space(3));
        }
        s.push('}');
        s.push_str(&self.space(5));
        s
    }

    fn expected_event(&self) -> String {
        self.event
            .clone()
            .or_else(|| catalog(self.webhook).map(String::from))
            .unwrap()
    }
}

// ---------------------------------------------------------------------------
// Mutations.
// ---------------------------------------------------------------------------

/// A hostile JSON value and what it is.
fn hostile_value() -> impl Strategy<Value = (String, Kind)> {
    let int = |s: &str| {
        let v = s.parse::<i64>().ok();
        (s.to_string(), Kind::Int(v))
    };
    prop_oneof![
        select(vec!["null", "true", "false"]).prop_map(|s| (
            s.to_string(),
            if s == "null" { Kind::Null } else { Kind::Bool }
        )),
        select(vec![
            "0",
            "-0",
            "-1",
            "1",
            "100",
            "101",
            "104",
            "150",
            "199",
            "200",
            "300",
            "399",
            "400",
            "65637",
            "-101",
            "2147483648",
            "4294967297",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551615",
            "18446744073709551616",
        ])
        .prop_map(int),
        any::<i64>().prop_map(|n| (n.to_string(), Kind::Int(Some(n)))),
        (1u8..10, string_of(19usize..400, DIGITS)).prop_map(|(d, r)| {
            let s = format!("{d}{r}");
            // 19 digits can still fit an i64.
            let kind = Kind::Int(s.parse().ok());
            (s, kind)
        }),
        json_number().prop_map(|n| {
            let kind = if n.contains(['.', 'e', 'E']) {
                Kind::Float
            } else {
                Kind::Int(n.parse().ok())
            };
            (n, kind)
        }),
        select(vec![
            "1.5", "101.0", "1e2", "1E+2", "1e400", "-1e-400", "0.0", "1.0e0"
        ])
        .prop_map(|s| (s.to_string(), Kind::Float)),
        (any_string(40), vec(esc(), 1..8))
            .prop_map(|(s, e)| (jstr(&s, &e, &mut 0), Kind::Str(true))),
        select(vec![
            r#""""#,
            r#""101""#,
            r#""http://""#,
            r#""https://x.io/\u0000""#,
            r#""javascript:alert(1)""#,
            r#""file:///etc/passwd""#,
            r#""\u00e9""#,
            r#""\ud83d\ude00""#,
            r#""whsec_""#,
            r#""whsec_!!""#,
            r#""2026-11-24T10:00:00Z""#,
            r#""2026-02-30T10:00:00Z""#,
            r#""2026-11-24t10:00:00z""#,
            r#""2026-11-24T24:00:00Z""#,
        ])
        .prop_map(|s| (s.to_string(), Kind::Str(true))),
        select(vec![r#""\ud800""#, r#""\udfff""#, r#""a\ud800b""#])
            .prop_map(|s| (s.to_string(), Kind::Str(false))),
        (1usize..5000).prop_map(|n| (format!("\"{}\"", "x".repeat(n)), Kind::Str(true))),
        // Lengths at the limits (id and event 200, url 2048), in characters.
        (
            select(vec![0usize, 1, 199, 200, 201, 2030, 2047, 2048, 2049]),
            select(vec!["x", "é", "~", " ", "😀"])
        )
            .prop_map(|(n, c)| (format!("\"{}\"", c.repeat(n)), Kind::Str(true))),
        (
            select(vec![2030usize, 2047, 2048, 2049]),
            select(vec!["http://a.io/", "https://x.y/", "http://é.io/"])
        )
            .prop_map(|(n, p)| (
                format!("\"{p}{}\"", "a".repeat(n - p.chars().count())),
                Kind::Str(true)
            )),
        select(vec!["[]", "[101]", "[\"a\"]", "[null]"]).prop_map(|s| (s.to_string(), Kind::Arr)),
        select(vec![
            "{}",
            "{\"a\":1}",
            "{\"a\":1,\"a\":2}",
            "{\"\":\"\"}",
            "{\"id\":\"x\"}"
        ])
        .prop_map(|s| (s.to_string(), Kind::Obj)),
        (depth(), any::<bool>())
            .prop_map(|(d, o)| (deep_text(d, o), if o { Kind::Obj } else { Kind::Arr })),
        select(vec![
            "",
            "{",
            "[",
            "nul",
            "tru",
            "01",
            "-",
            "+1",
            ".5",
            "1.",
            "1e",
            "NaN",
            "Infinity",
            "-Infinity",
            "'x'",
            "\"unterminated",
            "\"a\u{1}b\"",
            "\"a\nb\"",
            "\"\\x41\"",
            "\"\\u12\"",
            "[1,]",
            "{\"a\"}",
            "{,}",
            "1 2",
            "undefined",
            "0x10",
        ])
        .prop_map(|s| (s.to_string(), Kind::Broken)),
    ]
}

/// Header names worth trying: tokens, reserved names in any case, control
/// characters, unicode, empty.
fn hostile_header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => token_name(),
        // A small pool, so names repeat (in another case) within one object.
        2 => select(vec!["X-A", "x-a", "X-a", "X-Tenant", "x-TENANT", "Authorization"]).prop_map(String::from),
        2 => (select(RESERVED.to_vec()), any::<u64>()).prop_map(|(n, bits)| n
            .chars()
            .enumerate()
            .map(|(i, c)| if bits >> (i % 64) & 1 == 1 { c.to_ascii_uppercase() } else { c })
            .collect()),
        2 => any_string(12),
        1 => select(vec!["", " ", "X-A ", "X A", "X:A", "X-\u{0}", "X-\r\n", "Ⅹ-Tenant", "X-Ünïcödé", "\u{feff}X", "Authorization"])
            .prop_map(String::from),
    ]
}

#[derive(Debug, Clone)]
struct HeaderEntry {
    name: String,
    value: (String, Kind),
}

fn hostile_header_value() -> impl Strategy<Value = (String, Kind)> {
    prop_oneof![
        4 => (any_string(30), vec(esc(), 1..6)).prop_map(|(s, e)| (jstr(&s, &e, &mut 0), Kind::Str(true))),
        1 => hostile_value(),
    ]
}

/// The decoded string of a JSON string literal this file produced.
fn decoded(lit: &str) -> Option<String> {
    serde_json::from_str::<String>(lit).ok()
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace known field `.0`'s value (adding the field when absent).
    Replace(usize, (String, Kind)),
    /// Remove known field `.0`.
    Remove(usize),
    /// Repeat known field `.0`, with its own value or another.
    Duplicate(usize, Option<(String, Kind)>),
    /// Add a field the contract does not know.
    Unknown(String, (String, Kind)),
    /// Replace `headers` with these entries.
    Headers(Vec<HeaderEntry>, Vec<Esc>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let field = 0..KNOWN.len();
    prop_oneof![
        6 => (field.clone(), hostile_value()).prop_map(|(f, v)| Mutation::Replace(f, v)),
        2 => field.clone().prop_map(Mutation::Remove),
        2 => (field, proptest::option::of(hostile_value())).prop_map(|(f, v)| Mutation::Duplicate(f, v)),
        2 => (unknown_key(), hostile_value()).prop_map(|(k, v)| Mutation::Unknown(k, v)),
        3 => (
            vec((hostile_header_name(), hostile_header_value()).prop_map(|(name, value)| HeaderEntry { name, value }), 0..5),
            vec(esc(), 1..6)
        )
            .prop_map(|(h, e)| Mutation::Headers(h, e)),
    ]
}

/// Byte-level damage after rendering.
#[derive(Debug, Clone)]
enum Damage {
    /// Bytes that are never valid UTF-8, spliced in at a fraction of the body.
    InvalidUtf8(f64, Vec<u8>),
    /// The body cut before its closing brace.
    Truncate(f64),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (
            0.0f64..1.0,
            select(vec![
                vec![0xff],
                vec![0xfe, 0xff],
                vec![0xc0, 0x80],
                vec![0xc3],
                vec![0xe2, 0x82],
                vec![0xed, 0xa0, 0x80],
                vec![0xf4, 0x90, 0x80, 0x80],
                vec![0xf8, 0x88, 0x80, 0x80, 0x80],
                vec![0x80],
            ])
        )
            .prop_map(|(f, b)| Damage::InvalidUtf8(f, b)),
        (0.0f64..1.0).prop_map(Damage::Truncate),
    ]
}

/// Whether a headers object built from `entries` is acceptable.
fn headers_ok(entries: &[HeaderEntry]) -> bool {
    let mut seen: Vec<String> = Vec::new();
    for e in entries {
        let value = match e.value.1 {
            Kind::Str(true) => decoded(&e.value.0).unwrap(),
            _ => return false,
        };
        if e.name.is_empty()
            || !e.name.bytes().all(is_tchar)
            || is_reserved(&e.name)
            || !is_header_value(&value)
        {
            return false;
        }
        let lower = e.name.to_ascii_lowercase();
        if seen.contains(&lower) {
            return false;
        }
        seen.push(lower);
    }
    true
}

/// What the model says `parse` must do with a mutated envelope.
#[derive(Debug, PartialEq)]
enum Expect {
    Reject,
    Accept,
    /// The model does not decide (a hostile string whose content matters).
    Either,
}

fn apply(env: &ValidEnv, mutations: &[Mutation]) -> (Vec<Field>, Option<bool>) {
    let mut fields = env.fields();
    let mut pos = 0;
    // `Some(ok)` when `headers` was replaced by a hostile object.
    let mut hostile_headers: Option<bool> = None;
    let key_of = |f: usize, pos: &mut usize| jstr(KNOWN[f], &env.tape, pos);
    for m in mutations {
        match m {
            Mutation::Replace(f, (value, kind)) => {
                if *f == F_HEADERS {
                    hostile_headers = None;
                }
                match fields.iter_mut().find(|x| x.name == KNOWN[*f]) {
                    Some(x) => {
                        x.value = value.clone();
                        x.kind = *kind;
                        x.original = false;
                    }
                    None => fields.push(Field {
                        name: KNOWN[*f].into(),
                        key: key_of(*f, &mut pos),
                        value: value.clone(),
                        kind: *kind,
                        original: false,
                    }),
                }
            }
            Mutation::Remove(f) => {
                if *f == F_HEADERS {
                    hostile_headers = None;
                }
                fields.retain(|x| x.name != KNOWN[*f]);
            }
            Mutation::Duplicate(f, v) => {
                let copy = match (fields.iter().find(|x| x.name == KNOWN[*f]), v) {
                    (_, Some((value, kind))) => Field {
                        name: KNOWN[*f].into(),
                        key: key_of(*f, &mut pos),
                        value: value.clone(),
                        kind: *kind,
                        original: false,
                    },
                    (Some(x), None) => x.clone(),
                    (None, None) => continue,
                };
                let at = (pos * 7) % (fields.len() + 1);
                fields.insert(at, copy);
            }
            Mutation::Unknown(k, (value, kind)) => fields.push(Field {
                name: k.clone(),
                key: jstr(k, &env.tape, &mut pos),
                value: value.clone(),
                kind: *kind,
                original: true,
            }),
            Mutation::Headers(entries, tape) => {
                let mut s = String::from("{");
                let mut p = 0;
                for (i, e) in entries.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    s.push_str(&jstr(&e.name, tape, &mut p));
                    s.push(':');
                    s.push_str(&e.value.0);
                }
                s.push('}');
                let broken = entries.iter().any(|e| e.value.1 == Kind::Broken);
                let kind = if broken { Kind::Broken } else { Kind::Obj };
                match fields.iter_mut().find(|x| x.name == "headers") {
                    Some(x) => {
                        x.value = s;
                        x.kind = kind;
                        x.original = false;
                    }
                    None => fields.push(Field {
                        name: "headers".into(),
                        key: key_of(F_HEADERS, &mut pos),
                        value: s,
                        kind,
                        original: false,
                    }),
                }
                hostile_headers = Some(headers_ok(entries));
            }
        }
    }
    (fields, hostile_headers)
}

fn expect(
    env: &ValidEnv,
    fields: &[Field],
    hostile_headers: Option<bool>,
    damaged: bool,
) -> Expect {
    if damaged || fields.iter().any(|f| f.kind == Kind::Broken) {
        return Expect::Reject;
    }
    // serde_json may or may not check lone surrogates in ignored fields.
    let mut either = fields
        .iter()
        .any(|f| !KNOWN.contains(&f.name.as_str()) && f.kind == Kind::Str(false));
    for (i, name) in KNOWN.iter().enumerate() {
        let found: Vec<&Field> = fields.iter().filter(|f| f.name == *name).collect();
        if found.len() > 1 {
            return Expect::Reject;
        }
        let kind = found.first().map_or(Kind::Null, |f| f.kind);
        let original = found.first().is_some_and(|f| f.original);
        let required = i <= F_DATA;
        let type_ok = match i {
            F_ID | F_URL => matches!(kind, Kind::Str(_)),
            F_WEBHOOK => matches!(kind, Kind::Int(Some(n)) if valid_number(n)),
            F_DATA => kind == Kind::Obj,
            F_EVENT | F_CREATED_AT | F_SECRET => matches!(kind, Kind::Null | Kind::Str(_)),
            F_SITE_ID => matches!(kind, Kind::Null | Kind::Int(Some(_))),
            F_HEADERS => matches!(kind, Kind::Null | Kind::Obj),
            _ => unreachable!(),
        };
        if (required && kind == Kind::Null) || !type_ok || kind == Kind::Str(false) {
            return Expect::Reject;
        }
        if i == F_HEADERS && hostile_headers == Some(false) {
            return Expect::Reject;
        }
        if i == F_HEADERS && hostile_headers == Some(true) {
            continue;
        }
        // Absent or null optional fields are fine, except `event` when the
        // webhook is not catalogued; anything else changed is up to content.
        let absent_ok =
            !required && kind == Kind::Null && !(i == F_EVENT && catalog(env.webhook).is_none());
        if !original && !absent_ok {
            either = true;
        }
    }
    if either {
        Expect::Either
    } else {
        Expect::Accept
    }
}

fn damage_body(mut body: Vec<u8>, d: &Damage) -> Vec<u8> {
    match d {
        Damage::InvalidUtf8(f, bytes) => {
            // Splice at a char boundary so the damage is exactly `bytes`.
            let text = String::from_utf8(body.clone()).unwrap();
            let mut at = ((body.len() as f64) * f) as usize;
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            body.splice(at..at, bytes.iter().copied());
            body
        }
        Damage::Truncate(f) => {
            let close = body.iter().rposition(|&b| b == b'}').unwrap();
            body.truncate(((close as f64) * f) as usize);
            body
        }
    }
}

// ---------------------------------------------------------------------------
// Properties: message parsing.
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(cfg(30_000))]

    /// Arbitrary bytes, under arbitrary size limits.
    #[test]
    fn parse_survives_arbitrary_bytes(
        body in prop_oneof![
            vec(any::<u8>(), 0..512),
            // Bytes after a brace, to get past the first check.
            vec(any::<u8>(), 0..512).prop_map(|mut v| { v.insert(0, b'{'); v }),
        ],
        max in prop_oneof![Just(MAX), 0usize..600],
    ) {
        let _ = parse_checked(&body, max)?;
    }
}

proptest! {
    #![proptest_config(cfg(20_000))]

    /// Token soup: JSON-ish fragments (and invalid UTF-8) in any order, so
    /// the parser is reached in every state.
    #[test]
    fn parse_survives_json_token_soup(tokens in vec(select(soup_tokens()), 0..48)) {
        let mut body = b"{".to_vec();
        for t in tokens { body.extend_from_slice(t); }
        let _ = parse_checked(&body, MAX)?;
    }
}

fn soup_tokens() -> Vec<&'static [u8]> {
    vec![
        &b"{"[..],
        b"}",
        b"[",
        b"]",
        b":",
        b",",
        b" ",
        b"\n",
        b"\"id\"",
        b"\"webhook\"",
        b"\"url\"",
        b"\"data\"",
        b"\"event\"",
        b"\"headers\"",
        b"\"secret\"",
        b"\"site_id\"",
        b"\"created_at\"",
        b"\"\\u0069d\"",
        b"\"x\"",
        b"\"\"",
        b"\"http://a.io/\"",
        b"\"https://[::1]:0/\"",
        b"\"Host\"",
        b"\"X-A\"",
        b"\"whsec_AA==\"",
        b"\"2026-11-24T10:00:00Z\"",
        b"101",
        b"104",
        b"150",
        b"-1",
        b"0",
        b"1e999",
        b"1.5",
        b"99999999999999999999",
        b"null",
        b"true",
        b"false",
        b"\"\\u0000\"",
        b"\"\\ud800\"",
        b"\"\\\"",
        b"\xef\xbb\xbf",
        b"\xff",
        b"\xc3",
        b"\xe2\x82\xac",
        b"\"\xf0\x9f\x98\x80\"",
    ]
}

proptest! {
    #![proptest_config(cfg(10_000))]

    /// A valid envelope, written with any spacing, escapes, field order and
    /// unknown fields, parses; `data` comes out byte for byte.
    #[test]
    fn valid_envelopes_parse_and_keep_data_exactly(env in valid_env()) {
        let body = env.assemble(&env.fields());
        let parsed = parse_checked(body.as_bytes(), MAX)?;
        let e = match parsed {
            Ok(e) => e,
            Err(r) => return Err(TestCaseError::fail(format!("valid envelope refused: {r}\nbody: {body}"))),
        };
        prop_assert_eq!(e.data.get(), env.data.as_str());
        prop_assert_eq!(e.id.as_ref(), env.id.as_str());
        prop_assert_eq!(i64::from(e.webhook), env.webhook);
        let event = env.expected_event();
        prop_assert_eq!(e.event.as_ref(), event.as_str());
        prop_assert_eq!(e.site_id, env.site_id);
        prop_assert_eq!(e.created_at_ms.is_some(), env.created_at.is_some());
        prop_assert_eq!(e.secret.as_deref(), env.secret.as_deref());
        let headers: Vec<(String, String)> = e.headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        prop_assert_eq!(headers, env.headers.clone().unwrap_or_default());
    }
}

proptest! {
    #![proptest_config(cfg(20_000))]

    /// Mutated envelopes: wrong types for each field, huge numbers, deep
    /// nesting, duplicate and unknown keys, hostile headers, invalid UTF-8,
    /// truncation. Never a panic; refused exactly when the model says so.
    #[test]
    fn mutated_envelopes_are_refused_with_a_reason(
        env in valid_env(),
        mutations in vec(mutation(), 1..4),
        damage in proptest::option::weighted(0.15, damage()),
    ) {
        let (fields, hostile_headers) = apply(&env, &mutations);
        let mut body = env.assemble(&fields).into_bytes();
        if let Some(d) = &damage {
            body = damage_body(body, d);
        }
        let expected = expect(&env, &fields, hostile_headers, damage.is_some());
        let parsed = parse_checked(&body, MAX)?;
        let shown = String::from_utf8_lossy(&body);
        match (&expected, &parsed) {
            (Expect::Reject, Ok(_)) => {
                return Err(TestCaseError::fail(format!("accepted what must be refused: {shown}")));
            }
            (Expect::Accept, Err(r)) => {
                return Err(TestCaseError::fail(format!("refused what must be accepted ({r}): {shown}")));
            }
            _ => {}
        }
        if let Ok(e) = &parsed
            && fields.iter().any(|f| f.name == "data" && f.original)
        {
            prop_assert_eq!(e.data.get(), env.data.as_str());
        }
        if let (Some(Damage::InvalidUtf8(..)), Err(Rejection::Malformed(m))) = (&damage, &parsed) {
            prop_assert!(m.contains("UTF-8"), "invalid UTF-8 reported as {:?}", m);
        }
    }
}

/// A value at one of section 3's limits, and whether it must be accepted.
#[derive(Debug, Clone)]
enum Limit {
    Id(usize, char),
    Event(usize, char),
    Url(usize, &'static str),
    Webhook(i64),
}

fn limit() -> impl Strategy<Value = Limit> {
    let lengths = || select(vec![0usize, 1, 2, 199, 200, 201, 202]);
    prop_oneof![
        (
            lengths(),
            select(vec!['x', '~', ' ', '!', 'é', '\u{7f}', '\u{1f}', '😀'])
        )
            .prop_map(|(n, c)| Limit::Id(n, c)),
        (
            lengths(),
            select(vec!['x', '~', '!', ' ', 'é', '\u{7f}', '\t'])
        )
            .prop_map(|(n, c)| Limit::Event(n, c)),
        (
            select(vec![2040usize, 2046, 2047, 2048, 2049, 2050]),
            select(vec!["http://a.io/", "https://x.y/", "http://a.io/é"])
        )
            .prop_map(|(n, p)| Limit::Url(n, p)),
        prop_oneof![
            select(vec![
                i64::MIN,
                -101,
                -1,
                0,
                1,
                99,
                100,
                101,
                110,
                111,
                199,
                200,
                201,
                299,
                300,
                301,
                399,
                400,
                401,
                65536 + 101
            ]),
            -500i64..1000,
        ]
        .prop_map(Limit::Webhook),
    ]
}

impl Limit {
    /// The mutations that put this value in, and whether it is valid.
    fn apply(&self) -> (Vec<Mutation>, bool) {
        let string = |s: &str| (serde_json::to_string(s).unwrap(), Kind::Str(true));
        let custom = || Mutation::Replace(F_EVENT, string("Custom.Event"));
        match self {
            Limit::Id(n, c) => {
                let ok = (1..=200).contains(n) && (' '..='~').contains(c);
                (
                    vec![Mutation::Replace(F_ID, string(&c.to_string().repeat(*n)))],
                    ok,
                )
            }
            Limit::Event(n, c) => {
                let ok = (1..=200).contains(n) && c.is_ascii_graphic();
                let webhook = Mutation::Replace(F_WEBHOOK, ("150".into(), Kind::Int(Some(150))));
                (
                    vec![
                        webhook,
                        Mutation::Replace(F_EVENT, string(&c.to_string().repeat(*n))),
                    ],
                    ok,
                )
            }
            Limit::Url(n, prefix) => {
                let url = format!("{prefix}{}", "a".repeat(n - prefix.chars().count()));
                (vec![Mutation::Replace(F_URL, string(&url))], *n <= 2048)
            }
            Limit::Webhook(n) => {
                let event = if catalog(*n).is_some() {
                    Mutation::Remove(F_EVENT)
                } else {
                    custom()
                };
                (
                    vec![
                        Mutation::Replace(F_WEBHOOK, (n.to_string(), Kind::Int(Some(*n)))),
                        event,
                    ],
                    valid_number(*n),
                )
            }
        }
    }
}

proptest! {
    #![proptest_config(cfg(5_000))]

    /// Values at the limits of section 3 (lengths in characters, the webhook
    /// ranges), inside otherwise valid envelopes: accepted exactly when the
    /// contract says so.
    #[test]
    fn limits_are_exact(env in valid_env(), limit in limit()) {
        let (mutations, ok) = limit.apply();
        let (fields, _) = apply(&env, &mutations);
        let body = env.assemble(&fields);
        let parsed = parse_checked(body.as_bytes(), MAX)?;
        prop_assert_eq!(parsed.is_ok(), ok, "{:?}: {:?}", limit, parsed.as_ref().err());
    }
}

// ---------------------------------------------------------------------------
// Properties: the schedule grammar.
// ---------------------------------------------------------------------------

fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => string_of(1usize..5, DIGITS),
        1 => string_of(15usize..31, DIGITS),
        2 => select(vec![
            "0", "00", "1", "60", "-1", "-0", "+5", "1.5", ".5", "1_000", "1,5", "9223372036854775807",
            "18446744073709551615", "18446744073709551616", "584542046091", "584554049253", "213503982334601",
            "9007199254740993", "١٢", "６０", "²", "٣", "0x10", "1e3", "", " 1 ", "\u{a0}1", "1\u{3000}",
        ])
        .prop_map(String::from),
    ]
}

fn unit_text() -> impl Strategy<Value = String> {
    select(vec![
        "", "ms", "msec", "millis", "s", "sec", "secs", "second", "seconds", "m", "min", "mins",
        "minute", "h", "hr", "hrs", "hour", "hours", "d", "day", "days", "w", "week", "weeks", "M",
        "month", "months", "y", "year", "years", "ns", "nsec", "us", "usec", "µs", "μs", " s", "S",
        "H", "MS", "分", "\u{0}",
    ])
    .prop_map(String::from)
}

fn duration_text() -> impl Strategy<Value = String> {
    vec(
        (
            (number_text(), unit_text()),
            select(vec!["", " ", "  ", "\t", "\n"]),
        ),
        1..4,
    )
    .prop_map(|parts| {
        let mut s = String::new();
        for (i, ((n, u), sep)) in parts.iter().enumerate() {
            if i > 0 {
                s.push_str(sep);
            }
            s.push_str(n);
            s.push_str(u);
        }
        s
    })
}

fn count_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => string_of(1usize..4, DIGITS),
        2 => select(vec![
            "0", "1", "3", "999", "1000", "1001", "-1", "-0", "+3", "٣", "３", "1e3", "1.0", "", " ", "3 ", " 3",
            "4294967296", "9223372036854775807", "18446744073709551615", "18446744073709551616", "*", "3*2",
        ])
        .prop_map(String::from),
    ]
}

fn space() -> impl Strategy<Value = &'static str> {
    prop_oneof![6 => Just(""), 1 => Just(" "), 1 => Just("\t"), 1 => Just("\u{3000}"), 1 => Just("\u{a0}"), 1 => Just("\n")]
}

fn schedule_text() -> impl Strategy<Value = String> {
    let entry = (
        space(),
        duration_text(),
        space(),
        proptest::option::of((space(), count_text())),
        space(),
    )
        .prop_map(|(a, d, b, c, e)| match c {
            Some((s, c)) => format!("{a}{d}{b}*{s}{c}{e}"),
            None => format!("{a}{d}{b}{e}"),
        });
    (
        vec(entry, 1..6),
        select(vec!["", ",", " ,", "**", ",,"]),
        any::<bool>(),
    )
        .prop_map(|(entries, junk, front)| {
            let s = entries.join(",");
            if front {
                format!("{junk}{s}")
            } else {
                format!("{s}{junk}")
            }
        })
}

/// The grammar's model: `Ok(n)` retries, or `Err` for a refused schedule.
fn schedule_model(s: &str) -> Result<u128, ()> {
    let mut total: u128 = 0;
    for entry in s.split(',') {
        let entry = entry.trim();
        if entry.is_empty() {
            return Err(());
        }
        let (d, count) = match entry.split_once('*') {
            Some((d, c)) => (d, c.trim().parse::<u64>().map_err(|_| ())?),
            None => (entry, 1),
        };
        if count == 0 || parse_ttl(d).is_err() {
            return Err(());
        }
        total += u128::from(count);
        if total > u128::from(MAX_RETRIES) {
            return Err(());
        }
    }
    Ok(total)
}

fn check_schedule(s: &str) -> Result<(), TestCaseError> {
    let parsed = s.parse::<RetrySchedule>();
    match (&parsed, schedule_model(s)) {
        (Ok(sch), Ok(n)) => {
            let delays = sch.delays();
            prop_assert_eq!(delays.len() as u128, n);
            prop_assert!(!delays.is_empty() && delays.len() as u64 <= MAX_RETRIES);
            for d in delays {
                prop_assert!(!d.is_zero(), "zero delay from {:?}", s);
                prop_assert_eq!(d.subsec_nanos() % 1_000_000, 0, "sub-ms delay from {:?}", s);
                prop_assert!(*d <= MAX_TTL, "delay {:?} from {:?}", d, s);
            }
            let tiers: Vec<Duration> = sch.tiers().iter().map(|(_, d)| d).collect();
            prop_assert!(tiers.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(delays.iter().all(|d| tiers.contains(d)));
            // What the worker logs reads back as the same schedule, when
            // humantime can read it: it refuses a term of more than u64::MAX
            // ns (`18446744073710ms`), and the display writes ms whole.
            let shown = sch.to_string();
            let again = shown.parse::<RetrySchedule>();
            let readable = delays
                .iter()
                .all(|d| d.as_nanos() <= u128::from(u64::MAX) || d.subsec_millis() == 0);
            if readable {
                prop_assert!(
                    again.as_ref() == Ok(sch),
                    "{:?} shows as {:?}, which reads back as {:?}",
                    s,
                    shown,
                    again
                );
            }
        }
        (Err(e), Err(())) => prop_assert!(!e.to_string().trim().is_empty()),
        (got, model) => {
            return Err(TestCaseError::fail(format!(
                "schedule {s:?}: got {got:?}, model says {model:?}"
            )));
        }
    }
    Ok(())
}

fn check_duration(s: &str) -> Result<(), TestCaseError> {
    match parse_duration(s) {
        Ok(d) => {
            prop_assert_eq!(d.subsec_nanos() % 1_000_000, 0);
            prop_assert!(d.as_millis() <= i64::MAX as u128);
            prop_assert_eq!(Ok(d), humantime::parse_duration(s.trim()).map_err(|_| ()));
            prop_assert_eq!(parse_positive_duration(s).is_ok(), !d.is_zero());
        }
        Err(e) => {
            prop_assert!(!e.to_string().trim().is_empty());
            prop_assert!(parse_positive_duration(s).is_err());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cfg(15_000))]

    /// Schedules from the grammar's edges: huge, zero and negative counts,
    /// unicode digits, odd whitespace, overflowing durations.
    #[test]
    fn schedule_grammar_matches_its_model(s in schedule_text()) {
        check_schedule(&s)?;
    }

    /// `parse_duration` on the same edge durations.
    #[test]
    fn durations_are_whole_milliseconds_or_refused(s in duration_text()) {
        check_duration(&s)?;
    }
}

proptest! {
    #![proptest_config(cfg(6_000))]

    /// Any string at all.
    #[test]
    fn schedule_and_duration_survive_any_string(s in prop_oneof![
        any_string(24),
        vec(select(vec!['0', '1', '9', ' ', ',', '*', 'm', 's', 'h', 'd', 'y', '.', '-', '+', '\t', '٣', '６']), 0..24)
            .prop_map(|v| v.into_iter().collect::<String>()),
    ]) {
        check_schedule(&s)?;
        check_duration(&s)?;
    }
}

// ---------------------------------------------------------------------------
// Properties: retry headers.
// ---------------------------------------------------------------------------

fn amqp_int() -> impl Strategy<Value = AMQPValue> {
    prop_oneof![
        any::<i8>().prop_map(AMQPValue::ShortShortInt),
        any::<u8>().prop_map(AMQPValue::ShortShortUInt),
        any::<i16>().prop_map(AMQPValue::ShortInt),
        any::<u16>().prop_map(AMQPValue::ShortUInt),
        any::<i32>().prop_map(AMQPValue::LongInt),
        any::<u32>().prop_map(AMQPValue::LongUInt),
        any::<i64>().prop_map(AMQPValue::LongLongInt),
        any::<u64>().prop_map(AMQPValue::Timestamp),
        select(vec![
            0i64,
            1,
            -1,
            u32::MAX as i64,
            u32::MAX as i64 + 1,
            i64::MAX,
            i64::MIN
        ])
        .prop_map(AMQPValue::LongLongInt),
        (-10i8..10).prop_map(AMQPValue::ShortShortInt),
        (-10i16..10).prop_map(AMQPValue::ShortInt),
        (-10i32..10).prop_map(AMQPValue::LongInt),
        (-10i64..10).prop_map(AMQPValue::LongLongInt),
        select(vec![
            0u64,
            u32::MAX as u64,
            i64::MAX as u64,
            i64::MAX as u64 + 1,
            u64::MAX
        ])
        .prop_map(AMQPValue::Timestamp),
    ]
}

fn amqp_value() -> impl Strategy<Value = AMQPValue> {
    let leaf = prop_oneof![
        3 => amqp_int(),
        1 => any::<bool>().prop_map(AMQPValue::Boolean),
        1 => any::<f32>().prop_map(AMQPValue::Float),
        1 => any::<f64>().prop_map(AMQPValue::Double),
        1 => (any::<u8>(), any::<u32>()).prop_map(|(scale, value)| AMQPValue::DecimalValue(DecimalValue { scale, value })),
        1 => any_string(12).prop_map(|s| AMQPValue::ShortString(ShortString::from(s))),
        1 => vec(any::<u8>(), 0..16).prop_map(|b| AMQPValue::LongString(LongString::from(b))),
        1 => select(vec!["1", "-1", "3", ""]).prop_map(|s| AMQPValue::LongString(LongString::from(s))),
        1 => vec(any::<u8>(), 0..16).prop_map(|b| AMQPValue::ByteArray(ByteArray::from(b))),
        1 => Just(AMQPValue::Void),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(|v| AMQPValue::FieldArray(FieldArray::from(v))),
            vec((any_string(6), inner), 0..4).prop_map(|kv| {
                let map: BTreeMap<ShortString, AMQPValue> = kv
                    .into_iter()
                    .map(|(k, v)| (ShortString::from(k), v))
                    .collect();
                AMQPValue::FieldTable(FieldTable::from(map))
            }),
        ]
    })
}

/// The model: any AMQP integer, widened to i128.
fn widen(v: &AMQPValue) -> Option<i128> {
    Some(match v {
        AMQPValue::ShortShortInt(n) => (*n).into(),
        AMQPValue::ShortShortUInt(n) => (*n).into(),
        AMQPValue::ShortInt(n) => (*n).into(),
        AMQPValue::ShortUInt(n) => (*n).into(),
        AMQPValue::LongInt(n) => (*n).into(),
        AMQPValue::LongUInt(n) => (*n).into(),
        AMQPValue::LongLongInt(n) => (*n).into(),
        AMQPValue::Timestamp(n) => (*n).into(),
        _ => return None,
    })
}

proptest! {
    #![proptest_config(cfg(10_000))]

    /// Any AMQP values under the retry headers' names (and near them): read
    /// exactly when they are in range, otherwise an error that says which.
    #[test]
    fn retry_headers_read_any_amqp_value(
        attempts in proptest::option::of(prop_oneof![3 => amqp_int(), 1 => amqp_value()]),
        first in proptest::option::of(prop_oneof![3 => amqp_int(), 1 => amqp_value()]),
        others in vec((select(vec!["x-death", "Webhook-Attempts", "webhook-attempts ", "webhook-last-error", "trace"]), amqp_value()), 0..4),
        absent_table in proptest::bool::weighted(0.05),
    ) {
        let mut table = FieldTable::default();
        for (k, v) in &others {
            table.insert((*k).into(), v.clone());
        }
        if let Some(v) = &attempts {
            table.insert(HEADER_ATTEMPTS.into(), v.clone());
        }
        if let Some(v) = &first {
            table.insert(HEADER_FIRST_ATTEMPT_MS.into(), v.clone());
        }
        let got = read_retry_state((!absent_table).then_some(&table)).map_err(|e| e.to_string());
        if absent_table {
            prop_assert_eq!(got, Ok(RetryState::default()));
            return Ok(());
        }
        let want_attempts = match &attempts {
            None => Some(0u32),
            Some(v) => widen(v).and_then(|n| u32::try_from(n).ok()),
        };
        let want_first = match &first {
            None => Some(None),
            Some(v) => widen(v).filter(|n| (0..=i128::from(i64::MAX)).contains(n)).map(|n| Some(n as i64)),
        };
        match (want_attempts, want_first) {
            (Some(a), Some(f)) => {
                let state = got.map_err(|e| TestCaseError::fail(format!("refused in-range headers: {e}")))?;
                prop_assert_eq!(state, RetryState { attempts: a, first_attempt_ms: f });
                prop_assert_eq!(state.this_attempt(), a.saturating_add(1));
            }
            _ => match got {
                Ok(s) => return Err(TestCaseError::fail(format!("accepted out-of-range headers as {s:?}"))),
                Err(e) => prop_assert!(e.contains("webhook-"), "error does not name the header: {:?}", e),
            },
        }
    }
}

// ---------------------------------------------------------------------------
// Properties: the retry decision.
// ---------------------------------------------------------------------------

/// Delays a parsed schedule can hold: whole ms, 1 ms ..= the 10-year TTL
/// limit.
fn schedule_delay() -> impl Strategy<Value = Duration> {
    const MAX_MS: u64 = MAX_TTL.as_millis() as u64;
    prop_oneof![
        1u64..=1000,
        1u64..=100_000_000,
        1u64..=MAX_MS,
        select(vec![1u64, 60_000, 3_600_000, 86_400_000, MAX_MS]),
    ]
    .prop_map(Duration::from_millis)
}

fn parsed_schedule() -> impl Strategy<Value = RetrySchedule> {
    prop_oneof![
        vec(schedule_delay(), 1..20).prop_map(RetrySchedule::new),
        vec((schedule_delay(), 1u64..5), 1..5).prop_map(|entries| {
            // humantime reads at most u64::MAX ns per unit term: write the
            // seconds and the milliseconds apart.
            let text: Vec<String> = entries
                .iter()
                .map(|(d, n)| format!("{}s {}ms*{n}", d.as_secs(), d.subsec_millis()))
                .collect();
            text.join(",")
                .parse()
                .expect("a schedule of whole positive ms")
        }),
        select(vec![
            "60s*3,1h*3,24h*3",
            "1ms",
            "200ms*2,500ms",
            "24h,1s,1h,1s"
        ])
        .prop_map(|s| s.parse().unwrap()),
    ]
}

fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        schedule_delay(),
        select(vec![
            Duration::ZERO,
            Duration::MAX,
            Duration::from_nanos(1),
            Duration::from_millis(i64::MAX as u64 + 1)
        ]),
    ]
}

fn failure() -> impl Strategy<Value = AttemptOutcome> {
    prop_oneof![
        Just(AttemptOutcome::Timeout),
        ".{0,8}".prop_map(AttemptOutcome::ConnectError),
        (any::<u16>(), proptest::option::of(any_duration())).prop_map(|(status, retry_after)| {
            AttemptOutcome::HttpError {
                status,
                retry_after,
            }
        }),
        Just(AttemptOutcome::Gone),
        ".{0,8}".prop_map(AttemptOutcome::ForbiddenTarget),
    ]
}

fn any_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        select(vec![0, -1, 1, i64::MIN, i64::MAX, 1_700_000_000_000]),
        -1_000_000i64..1_000_000
    ]
}

fn any_attempt() -> impl Strategy<Value = u32> {
    prop_oneof![any::<u32>(), 0u32..25, Just(u32::MAX)]
}

fn clamp(n: i128) -> i128 {
    n.clamp(i128::from(i64::MIN), i128::from(i64::MAX))
}

proptest! {
    #![proptest_config(cfg(12_000))]

    /// Against the model of contract section 5, for schedules the grammar
    /// can produce: any attempt number, any clock, any failure.
    #[test]
    fn decide_matches_the_model(
        schedule in parsed_schedule(),
        max_age in any_duration(),
        attempt in any_attempt(),
        first in any_i64(),
        now in any_i64(),
        outcome in failure(),
    ) {
        let policy = RetryPolicy::new(&schedule, max_age);
        let got = modelled(&policy, policy.decide(attempt, first, now, &outcome));
        let delays = schedule.delays();
        let tiers = model_tiers(delays);
        prop_assert_eq!(policy_tiers(&policy), tiers.clone());
        let retry_after = match &outcome {
            AttemptOutcome::Gone => { prop_assert_eq!(got, Modelled::Drop(DropReason::Gone)); return Ok(()); }
            AttemptOutcome::ForbiddenTarget(_) => {
                prop_assert_eq!(got, Modelled::Drop(DropReason::ForbiddenTarget));
                return Ok(());
            }
            AttemptOutcome::HttpError { retry_after, .. } => *retry_after,
            _ => None,
        };
        let want = match delays.get(attempt.saturating_sub(1) as usize) {
            None => Modelled::Drop(DropReason::Expired),
            Some(&nth) => {
                let delay = match retry_after {
                    None => nth,
                    Some(w) => tiers.iter().copied().find(|t| *t >= w).unwrap_or(*tiers.last().unwrap()),
                };
                let max_age_ms = max_age.as_millis().min(i64::MAX as u128) as i128;
                let due = clamp(i128::from(now) + delay.as_millis() as i128);
                let limit = clamp(i128::from(first) + max_age_ms);
                if due > limit { Modelled::Drop(DropReason::Expired) } else { Modelled::Retry(delay) }
            }
        };
        prop_assert_eq!(got, want);
        if let Modelled::Retry(d) = got {
            prop_assert!(tiers.contains(&d), "retry delay {:?} is not a tier of {:?}", d, tiers);
        }
    }
}

proptest! {
    #![proptest_config(cfg(5_000))]

    /// Any schedule at all (including ones the grammar refuses: empty, zero,
    /// sub-millisecond, longer than i64 ms): never a panic, and a retry is
    /// always one of the tiers.
    #[test]
    fn decide_never_panics_for_any_schedule(
        delays in vec(any_duration(), 0..12),
        max_age in any_duration(),
        attempt in any_attempt(),
        first in any_i64(),
        now in any_i64(),
        outcome in failure(),
    ) {
        let policy = RetryPolicy::new(&RetrySchedule::new(delays.clone()), max_age);
        if let Modelled::Retry(d) = modelled(&policy, policy.decide(attempt, first, now, &outcome)) {
            prop_assert!(policy_tiers(&policy).contains(&d));
            prop_assert!(!delays.is_empty());
        }
        if !delays.is_empty() {
            let w = policy.tiers().delay(policy.tiers().at_least(max_age));
            prop_assert!(policy_tiers(&policy).contains(&w));
        }
    }
}

/// `RawValue` is what `data` is kept as; make sure the deep-nesting data
/// the generators produce is still one JSON value to serde_json.
#[test]
fn deep_data_is_one_json_value() {
    let deep = format!("{{\"k\":{}}}", deep_text(50_000, false));
    assert!(serde_json::from_str::<&RawValue>(&deep).is_ok());
}

/// Found by `schedule_grammar_matches_its_model`: a count near `u64::MAX`
/// after an earlier entry overflowed the running total (a panic in debug
/// builds; in release the total wrapped and the expansion tried to allocate
/// `u64::MAX` delays).
#[test]
fn schedule_count_overflow_is_refused() {
    for s in [
        "1ms,1ms*18446744073709551615",
        "60s*3,1h*18446744073709551614",
        "1s*1000,1s*18446744073709551615",
    ] {
        assert!(s.parse::<RetrySchedule>().is_err(), "{s:?} must be refused");
    }
}
