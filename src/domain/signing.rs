//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>).
//!
//! `webhook-signature: v1,<base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>"))>`.
//! A secret that begins `whsec_` is the base64 of the key; any other secret
//! is the key's own bytes. The key never leaves this module: it has no
//! `Display`, and its `Debug` is redacted, so it cannot reach a log line.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A decoded signing key.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
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
    /// Decodes a secret as the contract describes.
    pub fn from_secret(secret: &str) -> Result<Self, SecretError> {
        let key = match secret.strip_prefix("whsec_") {
            Some(b64) => STANDARD.decode(b64).map_err(|_| SecretError::NotBase64)?,
            None => secret.as_bytes().to_vec(),
        };
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Self(key))
    }

    /// The `webhook-signature` header value for one delivery.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        let mut out = String::with_capacity(47);
        out.push_str("v1,");
        STANDARD.encode_string(mac.finalize().into_bytes(), &mut out);
        out
    }
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
    fn debug_never_shows_the_key() {
        let key = SigningKey::from_secret("topsecret").unwrap();
        assert!(!format!("{key:?}").contains("topsecret"));
    }
}
