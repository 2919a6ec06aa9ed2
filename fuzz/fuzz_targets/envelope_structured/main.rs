//! `envelope::parse` over envelopes built by `arbitrary`: every field
//! present, absent, `null`, of the wrong type or of an edge value; unknown
//! and duplicated keys; any whitespace and any escaping. Besides the
//! properties of `envelope_bytes`, the outcome is checked against the
//! contract model (the `contract-model` crate's rule for each field, and
//! here how the fields combine): a message the model accepts must be
//! accepted with exactly the model's values, one it refuses must be refused.
#![no_main]

mod input;
mod message;
mod values;
mod writer;

use libfuzzer_sys::fuzz_target;
use webhook_worker::domain::envelope::{self, Rejection};
use webhook_worker_fuzz::{KNOWN, MAX, check_accepted, check_rejection, check_reparse};

use input::Message;
use message::build;
use values::Verdict::{Accept, Reject, Unsure};
use writer::Writer;

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
