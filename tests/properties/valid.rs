//! Valid envelopes: every field the contract allows, rendered with odd
//! spacing and escapes, as a list of fields the mutations can work on.

use proptest::{collection::vec, prelude::*, sample::select};

use crate::{contract::*, json::*};

#[derive(Debug, Clone)]
pub(crate) struct ValidEnv {
    pub(crate) id: String,
    pub(crate) webhook: i64,
    pub(crate) event: Option<String>,
    pub(crate) url: String,
    pub(crate) data: String,
    pub(crate) site_id: Option<i64>,
    pub(crate) created_at: Option<String>,
    pub(crate) headers: Option<Vec<(String, String)>>,
    pub(crate) secret: Option<String>,
    pub(crate) unknown: Vec<(String, String)>,
    /// Order of the fields: a permutation of 0..9 (known) and 9.. (unknown).
    pub(crate) order: Vec<usize>,
    /// Escapes for every string, taken cyclically.
    pub(crate) tape: Vec<Esc>,
    /// Whitespace, taken cyclically.
    pub(crate) spaces: Vec<String>,
}

pub(crate) fn printable_ascii(
    len: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = String> {
    prop_oneof![8 => string_of(len.clone(), PRINTABLE), 1 => Just("x".repeat(*len.end()))]
}

pub(crate) fn visible_ascii(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = String> {
    prop_oneof![8 => string_of(len.clone(), &PRINTABLE[1..]), 1 => Just("E".repeat(*len.end()))]
}

/// (webhook, event): a catalogued number with or without its name, or an
/// uncatalogued valid one with a name.
pub(crate) fn webhook_and_event() -> impl Strategy<Value = (i64, Option<String>)> {
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

pub(crate) fn url() -> impl Strategy<Value = String> {
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

pub(crate) fn rfc3339() -> impl Strategy<Value = String> {
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

pub(crate) fn token_name() -> impl Strategy<Value = String> {
    string_of(1usize..20, TCHARS)
}

pub(crate) fn valid_headers() -> impl Strategy<Value = Vec<(String, String)>> {
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

pub(crate) fn valid_secret() -> impl Strategy<Value = String> {
    use base64::Engine as _;
    prop_oneof![
        any_string(40).prop_filter("a valid secret, not whsec_", |s| secret_ok(s)
            && !s.starts_with("whsec_")),
        vec(any::<u8>(), 1..48).prop_map(|k| format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(k)
        )),
    ]
}

pub(crate) fn unknown_key() -> impl Strategy<Value = String> {
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

pub(crate) fn valid_env() -> impl Strategy<Value = ValidEnv> {
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
pub(crate) enum Kind {
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
pub(crate) struct Field {
    /// The decoded key.
    pub(crate) name: String,
    /// The key as written (with quotes and escapes).
    pub(crate) key: String,
    pub(crate) value: String,
    pub(crate) kind: Kind,
    /// The generated valid value, unmutated.
    pub(crate) original: bool,
}

impl ValidEnv {
    pub(crate) fn fields(&self) -> Vec<Field> {
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

    pub(crate) fn space(&self, i: usize) -> String {
        self.spaces[i % self.spaces.len()].clone()
    }

    pub(crate) fn assemble(&self, fields: &[Field]) -> String {
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

    pub(crate) fn expected_event(&self) -> String {
        self.event
            .clone()
            .or_else(|| catalog(self.webhook).map(String::from))
            .unwrap()
    }
}
