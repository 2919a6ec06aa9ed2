//! Generators of hostile text: JSON rendered with arbitrary whitespace and
//! escapes, strings drawn from seeds (a proptest value tree per character
//! is what makes debug-mode runs slow), number literals of any size, deep
//! nesting.

use proptest::{collection::vec, prelude::*, sample::select};

/// How one character of a JSON string is written.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Esc {
    Raw,
    Short,
    ULower,
    UUpper,
}

pub(crate) fn esc() -> impl Strategy<Value = Esc> {
    prop_oneof![6 => Just(Esc::Raw), 1 => Just(Esc::Short), 1 => Just(Esc::ULower), 1 => Just(Esc::UUpper)]
}

/// Writes `c` inside a JSON string, escaped as `e` asks when that is possible
/// (and escaped anyway when it must be).
pub(crate) fn push_char(out: &mut String, c: char, e: Esc) {
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
pub(crate) fn jstr(s: &str, tape: &[Esc], pos: &mut usize) -> String {
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
pub(crate) fn ws() -> impl Strategy<Value = String> {
    select(vec![
        "", "", "", "", "", "", " ", "  ", "\t", "\n", "\r\n", " \t\n\r ",
    ])
    .prop_map(String::from)
}

// Strings are drawn from a seed rather than character by character: a
// proptest value tree per character is what makes debug-mode runs slow.
// Shrinking then shortens the string and simplifies the seed.

/// splitmix64.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub(crate) fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }
}

pub(crate) const SPECIAL_CHARS: [char; 23] = [
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
pub(crate) fn any_char_from(rng: &mut Rng) -> char {
    match rng.below(8) {
        0..=3 => char::from(0x20 + rng.below(0x5f) as u8),
        4 => rng.pick(&SPECIAL_CHARS),
        5 => char::from(rng.below(0x100) as u8),
        6 => char::from_u32(rng.below(0x1_0000) as u32).unwrap_or('\u{fffd}'),
        _ => char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('\u{d7ff}'),
    }
}

/// A string of `len` characters from a seed.
pub(crate) fn seeded(len: usize, seed: u64, mut gen_char: impl FnMut(&mut Rng) -> char) -> String {
    let mut rng = Rng(seed);
    (0..len).map(|_| gen_char(&mut rng)).collect()
}

pub(crate) fn any_string(max: usize) -> impl Strategy<Value = String> {
    (0..max, any::<u64>()).prop_map(|(n, seed)| seeded(n, seed, any_char_from))
}

/// A string of `len` characters taken from `palette`.
pub(crate) fn string_of(
    len: impl Strategy<Value = usize>,
    palette: &'static [u8],
) -> impl Strategy<Value = String> {
    (len, any::<u64>()).prop_map(move |(n, seed)| seeded(n, seed, |r| char::from(r.pick(palette))))
}

pub(crate) const DIGITS: &[u8] = b"0123456789";
pub(crate) const PRINTABLE: &[u8] = b" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";
pub(crate) const TCHARS: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~";

/// A JSON number literal, any size.
pub(crate) fn json_number() -> impl Strategy<Value = String> {
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
pub(crate) enum J {
    Lit(&'static str),
    Num(String),
    Str(String, Vec<Esc>),
    Arr(Vec<(String, J, String)>, String),
    Obj(Vec<Member>, String),
}

#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub(crate) ws: [String; 4],
    pub(crate) key: String,
    pub(crate) key_esc: Vec<Esc>,
    pub(crate) value: J,
}

pub(crate) fn render(j: &J, out: &mut String) {
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

pub(crate) fn rendered(j: &J) -> String {
    let mut s = String::new();
    render(j, &mut s);
    s
}

pub(crate) fn member(value: impl Strategy<Value = J>) -> impl Strategy<Value = Member> {
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

pub(crate) fn json_value() -> impl Strategy<Value = J> {
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
pub(crate) fn json_object_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (vec(member(json_value()), 0..6), ws()).prop_map(|(m, w)| rendered(&J::Obj(m, w))),
        1 => deep_object(),
    ]
}

/// Nesting depths: mostly hundreds, sometimes tens of thousands.
pub(crate) fn depth() -> impl Strategy<Value = usize> {
    prop_oneof![9 => 1usize..600, 1 => 600usize..20_000]
}

/// An object nested thousands deep (arrays and objects mixed).
pub(crate) fn deep_object() -> impl Strategy<Value = String> {
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
pub(crate) fn deep_text(depth: usize, objects: bool) -> String {
    if objects {
        format!("{}null{}", "{\"a\":".repeat(depth), "}".repeat(depth))
    } else {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }
}
