use super::*;

const A: &str = "amqp://guest:guest@127.0.0.1:5681/%2f";
const B: &str = "amqp://guest:guest@127.0.0.1:5682/%2f";

#[test]
fn one_url_gets_the_defaults_and_is_redacted() {
    let urls = parse_urls("amqp://user:pw@broker:5673/vh").unwrap();
    assert_eq!(urls.len(), 1);
    let uri = urls.node(0).uri();
    assert_eq!(uri.query.heartbeat, Some(DEFAULT_HEARTBEAT_SECS));
    assert_eq!(uri.query.frame_max, Some(DEFAULT_FRAME_MAX));
    assert_eq!(
        uri.query.connection_timeout,
        Some(DEFAULT_CONNECTION_TIMEOUT_MS)
    );
    assert_eq!(urls.redacted(), "amqp://user@broker:5673/vh");
    let heartbeat = parse_urls("amqp://h/%2f?heartbeat=3").unwrap();
    assert_eq!(heartbeat.node(0).uri().query.heartbeat, Some(3));
    assert!(parse_urls("http://nope").is_err());
}

#[test]
fn a_list_keeps_its_order_and_allows_spaces_around_commas() {
    let urls = parse_urls(&format!("{A}, {B} ,{A}")).unwrap();
    assert_eq!(urls.len(), 3);
    assert_eq!(urls.node(1).uri().authority.port, 5682);
    assert_eq!(urls.node(3).uri().authority.port, 5681, "wraps around");
    assert_eq!(
        urls.redacted(),
        "amqp://guest@127.0.0.1:5681/%2F,amqp://guest@127.0.0.1:5682/%2F,amqp://guest@127.0.0.1:5681/%2F"
    );
    assert_eq!(urls.node(0).uri().vhost, "/");
}

#[test]
fn the_issue_s_two_urls_are_two_nodes_not_one_vhost() {
    let urls = parse_urls(&format!("{A},{B}")).unwrap();
    assert_eq!(urls.len(), 2);
    assert!(urls.iter().all(|u| u.uri().vhost == "/"));
}

#[test]
fn refused_lists_name_the_url_by_position() {
    let err = |s: &str| parse_urls(s).unwrap_err().to_string();
    assert_eq!(
        err(&format!("{A},")),
        "invalid AMQP_URL: URL 2 of 2 is empty (a stray comma?)"
    );
    assert_eq!(
        err(""),
        "invalid AMQP_URL: the URL is empty (a stray comma?)"
    );
    assert!(err("amqp://h/a%2Cb").contains("vhost holding a comma"));
    assert!(err("amqp://h/a%20b").contains("vhost holding a comma or whitespace"));
    assert!(err("amqp://h/a b").contains("whitespace"));
    assert!(err("amqp://h/a\nb").contains("line break"));
    assert!(
        err(&format!("{A},amqp://guest:guest@h/other")).contains("URL 2 of 2 has another vhost")
    );
    assert!(err(&format!("{A},amqps://guest:guest@h/%2f")).contains("another scheme"));
    assert!(err(&format!("{A},amqp://other:guest@h/%2f")).contains("another user, password"));
    assert!(err(&format!("{A},amqp://guest:other@h/%2f")).contains("another user, password"));
    assert!(
        err(&format!(
            "{A},amqp://guest:guest@h/%2f?auth_mechanism=external"
        ))
        .contains("auth_mechanism")
    );
    assert!(err("amqp:user:pw@h").contains("must have the form"));
    assert!(err("redis://h").contains("amqp://"));
    assert!(err("amqp://u:pw@h:99999/").contains("invalid port number"));
    assert!(err("amqp://u:pw@h/?heartbeat=x").contains("query option"));
}

#[test]
fn ipv6_literals_are_kept() {
    let urls = parse_urls("amqp://u:p@[::1]:5672/%2f").unwrap();
    assert_eq!(urls.node(0).uri().authority.host, "::1");
    assert_eq!(urls.redacted(), "amqp://u@[::1]:5672/%2F");
}

/// Odd passwords: none of them reaches the shown form or an error.
#[test]
fn no_password_is_ever_shown() {
    let cases = [
        // (input, password as written, password decoded)
        ("amqp://u:p%40ss-1@h/%2f", "p%40ss-1", "p@ss-1"),
        ("amqp://u:s3cr@t-2@h/%2f", "s3cr@t-2", "s3cr@t-2"),
        ("amqp://u:a:b:c-3@h/%2f", "a:b:c-3", "a:b:c-3"),
        ("amqp://u:s%2Cecret-4@h/%2f", "s%2Cecret-4", "s,ecret-4"),
        ("amqp://u:pässwörd-5@h/%2f", "pässwörd-5", "pässwörd-5"),
        ("amqp://:only-pw-6@h/%2f", "only-pw-6", "only-pw-6"),
        (
            "amqps://u:tls-pw-7@h:5671/v?auth_mechanism=plain",
            "tls-pw-7",
            "tls-pw-7",
        ),
        // Unparsable: the comma splits the password; the port is not one.
        ("amqp://u:sec,ret-8@h/%2f", "sec,ret-8", "sec"),
        ("amqp://u:pw-9@h:99999/", "pw-9", "pw-9"),
        ("amqp:u:pw-10@h", "pw-10", "pw-10"),
        ("user:pw-11@h", "pw-11", "pw-11"),
        ("amqp://u:pw-12@h/?heartbeat=pw-12", "pw-12", "pw-12"),
        (
            "amqp://u:pw-13@h/%2f?auth_mechanism=pw-13",
            "pw-13",
            "pw-13",
        ),
        ("amqp://u:pw%FF-14@h/", "pw%FF-14", "pw-14"),
    ];
    for (input, written, decoded) in cases {
        let list = format!("{input},{input}");
        for text in [redact(input), redact(&list)] {
            assert!(!text.contains(written), "{input}: {text}");
            assert!(!text.contains(decoded), "{input}: {text}");
        }
        if let Ok(urls) = parse_urls(input) {
            let debug = format!("{urls:?} {:?}", urls.node(0));
            assert!(
                !debug.contains(written) && !debug.contains(decoded),
                "{debug}"
            );
        }
    }
}

#[test]
fn user_without_password_and_empty_user_parse() {
    assert_eq!(
        parse_urls("amqp://u@h/%2f").unwrap().redacted(),
        "amqp://u@h:5672/%2F"
    );
    assert_eq!(
        parse_urls("amqps://h").unwrap().redacted(),
        "amqps://guest@h:5671/%2F"
    );
}

mod property {
    use proptest::prelude::*;

    use super::super::{parse_urls, redact};

    /// Percent-encodes every byte but letters and digits.
    fn pct(s: &str) -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    proptest! {
        /// Any password, written raw or percent-encoded, in a list of any
        /// length: neither form reaches the redacted text. (The password
        /// carries a marker the user, host and vhost never hold.)
        #[test]
        fn the_redacted_form_never_holds_the_password(
            secret in "[^\u{0}-\u{1f}]{0,24}",
            raw in any::<bool>(),
            nodes in 1usize..4,
            user in "[a-z]{0,8}",
        ) {
            let password = format!("Zq9{secret}");
            let written = if raw { password.clone() } else { pct(&password) };
            let list: Vec<String> = (0..nodes)
                .map(|i| format!("amqp://{user}:{written}@node-{i}.example:5672/%2f"))
                .collect();
            let input = list.join(",");
            let shown = redact(&input);
            prop_assert!(!shown.contains(&password), "{shown}");
            prop_assert!(!shown.contains(&written), "{shown}");
            if let Ok(urls) = parse_urls(&input) {
                let debug = format!("{urls:?}");
                prop_assert!(!debug.contains(&password), "{}", debug);
            }
        }

        /// Arbitrary text around a URL never panics the parser, and the
        /// redacted form never holds the URL's password (a marker no fixed
        /// word holds). The text before it holds no `/`, which could make
        /// the marker part of a vhost instead.
        #[test]
        fn arbitrary_input_is_redacted(prefix in "[^/]{0,40}", suffix in ".{0,40}") {
            let input = format!("{prefix}amqp://u:Zq9Pw@h{suffix}");
            let shown = redact(&input);
            prop_assert!(!shown.contains("Zq9Pw"), "{input:?} -> {shown}");
        }
    }
}

/// Found by `fuzz/` (target `broker_url`): a `/` in the user info made the
/// rest of it, password included, the vhost of the redacted form.
#[test]
fn an_at_after_the_host_is_refused_without_showing_the_password() {
    for url in [
        "amqp:///:secret99@",
        "amqp://user:12/3secret99@host/",
        "amqp://us/er:secret99@host",
        "amqp://us?er:secret99@host",
        "amqp://us#er:secret99@host",
        "amqp://a@b/x:secret99@y",
    ] {
        let err = parse_urls(url).unwrap_err().to_string();
        assert!(!err.contains("secret99"), "{url}: {err}");
        assert!(err.contains("'@' after the host"), "{url}: {err}");
    }
    assert_eq!(
        parse_urls("amqp://user:p%2F%40ss@host/v%40h")
            .unwrap()
            .node(0)
            .uri()
            .vhost,
        "v@h"
    );
}
