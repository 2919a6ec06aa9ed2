//! TLS to the broker (`amqps://`): lapin's rustls connector (the platform
//! verifier: the system's roots, the server name checked against the URL's
//! host), plus the private CA of `AMQP_CA_FILE` and the client identity of
//! `AMQP_CLIENT_CERT`/`AMQP_CLIENT_KEY` for mutual TLS.
//!
//! The PEM files of the TLS settings (`AMQP_CA_FILE`, `AMQP_CLIENT_CERT`,
//! `AMQP_CLIENT_KEY`, and `WEBHOOK_CA_FILE`, `WEBHOOK_CLIENT_CERT`,
//! `WEBHOOK_CLIENT_KEY` for receivers: this is the one PEM loader of the
//! process) are read and checked once at start, so an
//! unreadable file or bad PEM is one error line and exit code 2 instead of
//! a connect error repeated forever. Errors name the setting and the path,
//! never the file's content.

use std::{
    fmt,
    path::{Path, PathBuf},
};

use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

/// What lapin needs for `amqps://` beyond the system's roots.
#[derive(Clone, Default)]
pub struct BrokerTls {
    config: OwnedTLSConfig,
}

impl BrokerTls {
    /// `extra_roots`: PEM certificates trusted besides the system's roots;
    /// `identity`: the PEM client certificate chain and its PEM key.
    pub fn new(extra_roots: Option<String>, identity: Option<(Vec<u8>, Vec<u8>)>) -> Self {
        Self {
            config: OwnedTLSConfig {
                cert_chain: extra_roots,
                identity: identity.map(|(pem, key)| OwnedIdentity::PKCS8 { pem, key }),
            },
        }
    }

    /// Whether a private CA or a client identity is configured.
    pub fn is_configured(&self) -> bool {
        self.config.cert_chain.is_some() || self.config.identity.is_some()
    }

    /// The configuration lapin connects with.
    pub(crate) fn lapin_config(&self) -> OwnedTLSConfig {
        self.config.clone()
    }
}

/// Never the key: only what is configured.
impl fmt::Debug for BrokerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerTls")
            .field("private_ca", &self.config.cert_chain.is_some())
            .field("client_certificate", &self.config.identity.is_some())
            .finish()
    }
}

/// Why a TLS file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{setting} {}: {problem}", path.display())]
pub struct TlsFileError {
    /// The variable that names the file.
    pub setting: &'static str,
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub problem: TlsFileProblem,
}

/// What is wrong with a TLS file, in words that quote nothing of it.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileProblem {
    /// It cannot be read.
    #[error("cannot be read: {0}")]
    Unreadable(std::io::Error),
    /// It holds no certificate, or a section that is not PEM.
    #[error("holds no valid PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificate,
    /// A PEM certificate that is not an X.509 certificate.
    #[error("holds a PEM certificate that is not a valid X.509 certificate")]
    BadCertificate,
    /// No unencrypted private key.
    #[error("holds no unencrypted PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey,
    /// A key TLS cannot use, or one that is not the certificate's.
    #[error("is not the private key of the certificate of {0}")]
    KeyMismatch(&'static str),
    /// One of the pair is set without the other.
    #[error("is set, but {0} is not: mutual TLS needs both")]
    Unpaired(&'static str),
}

/// Validated PEM root certificates.
#[derive(Clone)]
pub struct PemRoots {
    /// The file's text.
    pub pem: String,
    /// How many certificates it holds.
    pub count: usize,
}

impl std::fmt::Debug for PemRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PemRoots({} certificates)", self.count)
    }
}

/// Reads a file of PEM root certificates; every one must be a
/// certificate webpki accepts as a trust anchor.
pub fn load_roots(setting: &'static str, path: &Path) -> Result<PemRoots, TlsFileError> {
    let fail = |problem| TlsFileError {
        setting,
        path: path.to_path_buf(),
        problem,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(TlsFileProblem::Unreadable(e)))?;
    let certs = certificates(&bytes).map_err(fail)?;
    for cert in &certs {
        webpki::anchor_from_trusted_cert(cert).map_err(|_| fail(TlsFileProblem::BadCertificate))?;
    }
    let pem = String::from_utf8(bytes).map_err(|_| fail(TlsFileProblem::NoCertificate))?;
    Ok(PemRoots {
        pem,
        count: certs.len(),
    })
}

/// A client certificate chain and its key, both PEM, both checked.
#[derive(Clone)]
pub struct PemIdentity {
    /// The certificate chain's PEM.
    pub cert_pem: Vec<u8>,
    /// The key's PEM (never shown).
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for PemIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PemIdentity(<key redacted>)")
    }
}

/// The two settings that name a client certificate and its key.
#[derive(Debug, Clone, Copy)]
pub struct IdentitySettings {
    /// The certificate chain's variable.
    pub cert: &'static str,
    /// The key's variable.
    pub key: &'static str,
}

/// The client identity presented to the broker.
pub const BROKER_IDENTITY: IdentitySettings = IdentitySettings {
    cert: "AMQP_CLIENT_CERT",
    key: "AMQP_CLIENT_KEY",
};

/// The client identity presented to receivers that ask for one.
pub const RECEIVER_IDENTITY: IdentitySettings = IdentitySettings {
    cert: "WEBHOOK_CLIENT_CERT",
    key: "WEBHOOK_CLIENT_KEY",
};

/// Reads the client certificate and key of mutual TLS: both or neither;
/// errors name the settings of `names`.
pub fn load_identity(
    names: IdentitySettings,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<Option<PemIdentity>, TlsFileError> {
    let unpaired = |setting, path: &Path, other| TlsFileError {
        setting,
        path: path.to_path_buf(),
        problem: TlsFileProblem::Unpaired(other),
    };
    let (cert, key) = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(c), None) => return Err(unpaired(names.cert, c, names.key)),
        (None, Some(k)) => return Err(unpaired(names.key, k, names.cert)),
        (Some(c), Some(k)) => (c, k),
    };
    let read = |setting, path: &Path| {
        std::fs::read(path).map_err(|e| TlsFileError {
            setting,
            path: path.to_path_buf(),
            problem: TlsFileProblem::Unreadable(e),
        })
    };
    let cert_pem = read(names.cert, cert)?;
    certificates(&cert_pem).map_err(|problem| TlsFileError {
        setting: names.cert,
        path: cert.to_path_buf(),
        problem,
    })?;
    let key_pem = read(names.key, key)?;
    let key_fail = |problem| TlsFileError {
        setting: names.key,
        path: key.to_path_buf(),
        problem,
    };
    let private_key =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| key_fail(TlsFileProblem::NoKey))?;
    let chain = certificates(&cert_pem).expect("checked above");
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    rustls::sign::CertifiedKey::from_der(chain, private_key, &provider)
        .map_err(|_| key_fail(TlsFileProblem::KeyMismatch(names.cert)))?;
    Ok(Some(PemIdentity { cert_pem, key_pem }))
}

/// The certificates of a PEM file: at least one, every section readable.
fn certificates(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsFileProblem> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsFileProblem::NoCertificate)?;
    if certs.is_empty() {
        return Err(TlsFileProblem::NoCertificate);
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, content: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ww-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn bad_files_are_one_clear_line_without_their_content() {
        let missing = Path::new("/nonexistent/ca.pem");
        let e = load_roots("AMQP_CA_FILE", missing).unwrap_err().to_string();
        assert!(
            e.starts_with("AMQP_CA_FILE /nonexistent/ca.pem: cannot be read"),
            "{e}"
        );

        let junk = file("junk.pem", b"not a certificate SECRET-CONTENT");
        let e = load_roots("WEBHOOK_CA_FILE", &junk)
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds no valid PEM certificate"), "{e}");
        assert!(!e.contains("SECRET-CONTENT"), "{e}");

        let bad_der = file(
            "bad.pem",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let e = load_roots("AMQP_CA_FILE", &bad_der)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a valid X.509"), "{e}");

        let e = load_identity(BROKER_IDENTITY, Some(&junk), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("AMQP_CLIENT_KEY is not"), "{e}");
        let key = file(
            "key.pem",
            b"-----BEGIN PRIVATE KEY-----\nSECRETKEY\n-----END PRIVATE KEY-----\n",
        );
        assert!(load_identity(RECEIVER_IDENTITY, None, Some(&key)).is_err());
        assert!(
            load_identity(BROKER_IDENTITY, None, None)
                .unwrap()
                .is_none()
        );
    }
}
