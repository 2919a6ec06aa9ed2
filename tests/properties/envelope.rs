//! Properties of message parsing: arbitrary bytes, JSON token soup, valid
//! envelopes (kept byte for byte) and mutated ones (refused with a reason).

use proptest::{collection::vec, prelude::*, sample::select, test_runner::TestCaseError};
use serde_json::value::RawValue;
use webhook_worker::domain::envelope::{self as message, Envelope, Rejection};

use crate::{MAX, cfg, contract::*, json::*, mutation::*, refusal::*, valid::*};

// ---------------------------------------------------------------------------
// Checking any outcome of `parse`.
// ---------------------------------------------------------------------------

/// Parses `body` and checks what holds for every input: no panic (proptest
/// turns one into a failure), a rejection always says why, an accepted
/// message obeys section 3 and its `data` is a slice of the body.
pub(crate) fn parse_checked(
    body: &[u8],
    max: usize,
) -> Result<Result<Envelope<'_>, Rejection>, TestCaseError> {
    // `identify` reads the same hostile bytes for log lines: never panics.
    let _ = message::identify(body);
    let result = message::parse(body, max);
    let verdict = match &result {
        Err(Rejection::TooLarge { size, limit }) => check_refused(
            Refused::TooLarge {
                size: *size,
                limit: *limit,
            },
            body.len(),
            max,
        ),
        Err(Rejection::Malformed(m)) => check_refused(Refused::Malformed(m), body.len(), max),
        Ok(env) => check_accepted(&contract_model::accepted!(env, body)),
    };
    verdict.map_err(TestCaseError::fail)?;
    Ok(result)
}

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

/// `RawValue` is what `data` is kept as; make sure the deep-nesting data
/// the generators produce is still one JSON value to serde_json.
#[test]
fn deep_data_is_one_json_value() {
    let deep = format!("{{\"k\":{}}}", deep_text(50_000, false));
    assert!(serde_json::from_str::<&RawValue>(&deep).is_ok());
}
