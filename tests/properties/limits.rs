//! Properties at the contract's limits (section 3): a value exactly at a
//! limit is accepted, one past it refused.

use proptest::{prelude::*, sample::select};

use crate::{MAX, cfg, contract::*, envelope::*, mutation::*, refusal::*, valid::*};

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
