//! Mutations of valid envelopes: hostile values for any field (wrong
//! types, huge numbers, deep nesting, invalid UTF-8), odd header names and
//! values, duplicate and unknown keys, byte-level damage after rendering.

use proptest::{collection::vec, prelude::*, sample::select};

use crate::{contract::*, json::*, valid::*};

/// A hostile JSON value and what it is.
pub(crate) fn hostile_value() -> impl Strategy<Value = (String, Kind)> {
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
pub(crate) fn hostile_header_name() -> impl Strategy<Value = String> {
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
pub(crate) struct HeaderEntry {
    pub(crate) name: String,
    pub(crate) value: (String, Kind),
}

pub(crate) fn hostile_header_value() -> impl Strategy<Value = (String, Kind)> {
    prop_oneof![
        4 => (any_string(30), vec(esc(), 1..6)).prop_map(|(s, e)| (jstr(&s, &e, &mut 0), Kind::Str(true))),
        1 => hostile_value(),
    ]
}

/// The decoded string of a JSON string literal this file produced.
pub(crate) fn decoded(lit: &str) -> Option<String> {
    serde_json::from_str::<String>(lit).ok()
}

#[derive(Debug, Clone)]
pub(crate) enum Mutation {
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

pub(crate) fn mutation() -> impl Strategy<Value = Mutation> {
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
pub(crate) enum Damage {
    /// Bytes that are never valid UTF-8, spliced in at a fraction of the body.
    InvalidUtf8(f64, Vec<u8>),
    /// The body cut before its closing brace.
    Truncate(f64),
}

pub(crate) fn damage() -> impl Strategy<Value = Damage> {
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
