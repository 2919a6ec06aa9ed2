//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>).
//!
//! `webhook-signature: v1,<base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>"))>`.
//! A secret that begins `whsec_` is the base64 of the key; any other secret
//! is the key's own bytes. A secret value may hold several secrets separated
//! by spaces (key rotation): each gives one `v1,` signature, space-separated,
//! in the order given, so a receiver that knows either secret verifies the
//! request. The keys never leave this module: they have no `Display`, and
//! their `Debug` is redacted, so they cannot reach a log line.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The decoded key or keys of one secret value: one key, or several while
/// a receiver's secret is rotated.
#[derive(Clone)]
pub struct SigningKey(Vec<Vec<u8>>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({} keys, <redacted>)", self.0.len())
    }
}

/// Why a secret cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// `whsec_` followed by something that is not base64.
    #[error("a secret beginning 'whsec_' must be base64 after the prefix")]
    NotBase64,
    /// An empty secret (or `whsec_` alone).
    #[error("the secret is empty")]
    Empty,
}

impl SigningKey {
    /// Decodes a secret value as the contract describes: one secret, or
    /// several separated by spaces, each of which must be valid.
    pub fn from_secret(secret: &str) -> Result<Self, SecretError> {
        let keys = secret
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(decode_one)
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Self(keys))
    }

    /// The `webhook-signature` header value for one delivery: one `v1,`
    /// signature per key, space-separated, in the order of the secrets.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut out = String::with_capacity(48 * self.0.len());
        for key in &self.0 {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str("v1,");
            STANDARD.encode_string(mac(key, id, timestamp, body), &mut out);
        }
        out
    }

    /// Whether a `webhook-signature` header value holds a `v1,` signature
    /// made with any of these keys (what a receiver checks).
    pub fn verify(&self, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        let expected: Vec<String> = self
            .0
            .iter()
            .map(|key| STANDARD.encode(mac(key, id, timestamp, body)))
            .collect();
        header
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .any(|given| expected.iter().any(|e| e == given))
    }
}

/// One secret of a secret value, decoded.
fn decode_one(secret: &str) -> Result<Vec<u8>, SecretError> {
    let key = match secret.strip_prefix("whsec_") {
        Some(b64) => STANDARD.decode(b64).map_err(|_| SecretError::NotBase64)?,
        None => secret.as_bytes().to_vec(),
    };
    if key.is_empty() {
        return Err(SecretError::Empty);
    }
    Ok(key)
}

/// HMAC-SHA256 of `"<id>.<timestamp>.<body>"`.
fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector published with the Standard Webhooks specification
    /// (and used by its reference libraries' test suites).
    #[test]
    fn standard_webhooks_test_vector() {
        let key = SigningKey::from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = key.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn plain_secret_is_the_key_bytes() {
        let plain = SigningKey::from_secret("s3cret").unwrap();
        let encoded =
            SigningKey::from_secret(&format!("whsec_{}", STANDARD.encode("s3cret"))).unwrap();
        assert_eq!(plain.sign("a", 1, b"{}"), encoded.sign("a", 1, b"{}"));
    }

    #[test]
    fn bad_secrets() {
        assert_eq!(
            SigningKey::from_secret("whsec_***").unwrap_err(),
            SecretError::NotBase64
        );
        assert_eq!(SigningKey::from_secret("").unwrap_err(), SecretError::Empty);
        assert_eq!(
            SigningKey::from_secret("whsec_").unwrap_err(),
            SecretError::Empty
        );
    }

    #[test]
    fn several_secrets_give_one_signature_each_in_order() {
        let (old, new) = ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "n3w-secret");
        let both = SigningKey::from_secret(&format!("{old} {new}")).unwrap();
        let one = |s| SigningKey::from_secret(s).unwrap().sign("m", 7, b"{}");
        assert_eq!(
            both.sign("m", 7, b"{}"),
            format!("{} {}", one(old), one(new))
        );
        // Doubled spaces are one separator; a bad one spoils the value.
        let spaced = SigningKey::from_secret(&format!(" {old}  {new} ")).unwrap();
        assert_eq!(spaced.sign("m", 7, b"{}"), both.sign("m", 7, b"{}"));
        assert_eq!(
            SigningKey::from_secret(&format!("{old} whsec_***")).unwrap_err(),
            SecretError::NotBase64
        );
        assert_eq!(
            SigningKey::from_secret("   ").unwrap_err(),
            SecretError::Empty
        );
    }

    #[test]
    fn either_key_verifies_a_rotated_signature() {
        let header = SigningKey::from_secret("old new")
            .unwrap()
            .sign("m", 7, b"{}");
        for secret in ["old", "new", "new old"] {
            let key = SigningKey::from_secret(secret).unwrap();
            assert!(key.verify("m", 7, b"{}", &header), "{secret}");
            assert!(!key.verify("m", 8, b"{}", &header), "{secret}: timestamp");
        }
        let other = SigningKey::from_secret("other").unwrap();
        assert!(!other.verify("m", 7, b"{}", &header));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = SigningKey::from_secret("topsecret").unwrap();
        assert!(!format!("{key:?}").contains("topsecret"));
    }
}
