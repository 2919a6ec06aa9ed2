//! The broker URL list (`AMQP_URL`) as operators write it:
//! `broker::url::parse_urls`, `BrokerUrls::redacted`, `redact` and
//! `UrlError`'s text, over URLs built with a password and over any string. Never panics; an error always has a text;
//! and neither the redacted form nor the error text ever contains the
//! password (raw or percent-decoded), unless the rest of the URL itself
//! spells it (a password `5672` and the default port, say).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use webhook_worker::broker::url::{Reason, parse_urls, redact};

#[derive(Arbitrary, Debug)]
enum Input {
    Built {
        scheme: u8,
        user: String,
        password: String,
        /// host[:port][/vhost][?query], or anything.
        rest: String,
    },
    Any(String),
}

/// A password that no fixed text of an error spells.
const BASELINE: &str = "Zq7Xw3Jk";

/// What the worker would show for this URL: its redacted form, or the
/// error's text.
fn shown(url: &str) -> String {
    // The form logged for any input, parsed or not, must hide it too.
    let any = redact(url);
    match parse_urls(url) {
        Ok(urls) => format!("{} {any}", urls.redacted()),
        Err(e) => {
            let text = e.to_string();
            assert!(!text.trim().is_empty(), "{url:?}: an error without text");
            format!("{text} {any}")
        }
    }
}

fn decoded(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Whether `text` spells `needle`, in any case, raw or percent-decoded.
fn spells(text: &str, needle: &str) -> bool {
    let needle = needle.to_lowercase();
    text.to_lowercase().contains(&needle) || decoded(text).to_lowercase().contains(&needle)
}

/// Whether a fixed text of an error (words that quote nothing of the URL)
/// spells `pw`: a "password" like `'?'` is spelled by the advice to
/// percent-encode '/', '?' and '#', which is not a leak.
fn fixed_text_spells(pw: &str) -> bool {
    [
        Reason::Empty,
        Reason::Scheme,
        Reason::NotHierarchical,
        Reason::Options,
        Reason::ControlCharacter,
        Reason::VhostCharacters,
        Reason::AtAfterHost,
    ]
    .iter()
    .any(|r| spells(&format!("invalid AMQP_URL: the URL {r}"), pw))
}

/// The password must not be shown, unless what is shown without it (the
/// same URL with another password), the URL's other parts or a fixed text
/// of an error spell it too.
fn check(url: &str, password: &str, baseline: &str, outside: &str) {
    let out = shown(url);
    for pw in [password.to_string(), decoded(password)] {
        if pw.chars().count() < 3 || fixed_text_spells(&pw) {
            continue;
        }
        if spells(&out, &pw) && !spells(baseline, &pw) && !spells(outside, &pw) {
            panic!("{url:?} shows its password {pw:?}: {out:?} (baseline {baseline:?})");
        }
    }
}

fuzz_target!(|input: Input| {
    match &input {
        Input::Built {
            scheme,
            user,
            password,
            rest,
        } => {
            let scheme = ["amqp", "amqps", "AMQP", "http", ""][usize::from(scheme % 5)];
            let url = format!("{scheme}://{user}:{password}@{rest}");
            // The other password is one no error text spells (the worker
            // masks every occurrence of the password in an error's text).
            let baseline = shown(&format!("{scheme}://{user}:{BASELINE}@{rest}"));
            check(
                &url,
                password,
                &baseline,
                &format!("{scheme}://{user}@{rest}"),
            );
        }
        Input::Any(s) => {
            // Where the url crate finds a password, it must not be shown.
            match url::Url::parse(s) {
                Ok(mut parsed) if parsed.password().is_some() => {
                    let pw = parsed.password().unwrap_or_default().to_string();
                    let outside = s.replacen(&pw, "", 1);
                    let _ = parsed.set_password(Some(BASELINE));
                    let baseline = shown(parsed.as_str());
                    check(s, &pw, &baseline, &outside);
                }
                _ => {
                    shown(s);
                }
            }
        }
    }
});
