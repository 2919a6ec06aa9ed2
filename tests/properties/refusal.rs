//! The model of which mutated envelopes `parse` must refuse, and how.

use crate::{contract::*, json::*, mutation::*, valid::*};

/// Whether a headers object built from `entries` is acceptable.
pub(crate) fn headers_ok(entries: &[HeaderEntry]) -> bool {
    let mut pairs = Vec::with_capacity(entries.len());
    for e in entries {
        match e.value.1 {
            Kind::Str(true) => pairs.push((e.name.as_str(), decoded(&e.value.0).unwrap())),
            _ => return false,
        }
    }
    check_headers(pairs.iter().map(|(n, v)| (*n, v.as_str()))).is_ok()
}

/// What the model says `parse` must do with a mutated envelope.
#[derive(Debug, PartialEq)]
pub(crate) enum Expect {
    Reject,
    Accept,
    /// The model does not decide (a hostile string whose content matters).
    Either,
}

pub(crate) fn apply(env: &ValidEnv, mutations: &[Mutation]) -> (Vec<Field>, Option<bool>) {
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

pub(crate) fn expect(
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

pub(crate) fn damage_body(mut body: Vec<u8>, d: &Damage) -> Vec<u8> {
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
