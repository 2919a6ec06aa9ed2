//! Signing-key rotation (contract section 4): a secret value holding two
//! secrets gives two `v1,` signatures, and the Standard Webhooks reference
//! library (PyPI `standardwebhooks`, run by `python3`; `scripts/egress.sh
//! deps` installs it) verifies the request with either secret alone.

use std::{io::Write, process::Stdio, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD};

use crate::harness::*;

const LONG: Duration = Duration::from_secs(30);

/// Verifies one recorded request with the reference library and `secret`;
/// the library's verdict (`Ok`, or its error text).
fn reference_verify(secret: &str, request: &Received) -> Result<(), String> {
    const SCRIPT: &str = "import sys, os, standardwebhooks\n\
        hook = standardwebhooks.Webhook(os.environ['SECRET'])\n\
        hook.verify(sys.stdin.buffer.read(), {k: os.environ[k.upper().replace('-', '_')] \
        for k in ('webhook-id', 'webhook-timestamp', 'webhook-signature')}, json_parse=False)\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .env("SECRET", secret)
        .env("WEBHOOK_ID", request.header("webhook-id"))
        .env("WEBHOOK_TIMESTAMP", request.header("webhook-timestamp"))
        .env("WEBHOOK_SIGNATURE", request.header("webhook-signature"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (with `pip install standardwebhooks`) is needed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&request.body)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "the reference library is missing: pip install standardwebhooks ({stderr})"
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(stderr.lines().last().unwrap_or_default().to_string())
    }
}

fn whsec(key: &[u8]) -> String {
    format!("whsec_{}", STANDARD.encode(key))
}

#[tokio::test]
async fn the_reference_library_verifies_a_rotated_signature_with_either_secret() {
    let (old, new, other) = (whsec(b"old-key"), whsec(b"new-key"), whsec(b"other-key"));
    let default_value = format!("{old} {new}");
    let rig = Harness::new("rotate")
        .config(|c| c.delivery.signing_secret = Some(default_value))
        .ok_receiver()
        .start()
        .await;
    let (broker, receiver) = (&rig.broker, rig.receiver());
    broker
        .publish(&event(
            "r-default",
            104,
            &receiver.url("/default"),
            r#"{"a":1}"#,
        ))
        .await;
    let own = format!(r#""secret":"{new} {other}""#);
    broker
        .publish(&event_with(
            "r-own",
            104,
            &receiver.url("/own"),
            r#"{"b":2}"#,
            &own,
        ))
        .await;
    receiver.wait_requests(2, LONG).await;

    let default = &receiver.requests_to("/default")[0];
    let signatures: Vec<&str> = default.header("webhook-signature").split(' ').collect();
    assert_eq!(signatures.len(), 2, "one signature per secret");
    assert!(signatures.iter().all(|s| s.starts_with("v1,")));
    assert_eq!(reference_verify(&old, default), Ok(()), "old secret alone");
    assert_eq!(reference_verify(&new, default), Ok(()), "new secret alone");
    let refused = reference_verify(&other, default).expect_err("a third secret must not verify");
    assert!(refused.contains("No matching signature"), "{refused}");

    // The message's own secret value rotates the same way, instead of the default.
    let own = &receiver.requests_to("/own")[0];
    assert_eq!(reference_verify(&new, own), Ok(()));
    assert_eq!(reference_verify(&other, own), Ok(()));
    assert!(
        reference_verify(&old, own).is_err(),
        "the default is not used"
    );
    rig.finish().await;
}
