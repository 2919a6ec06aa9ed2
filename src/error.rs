//! The program's one error type: what ended a command, and whether
//! retrying can help.

use crate::{
    broker::{publisher::PublishError, tls::TlsFileError, topology::TopologyError, url::UrlError},
    domain::signing::SecretError,
};

/// Anything that ends a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting that parsed but cannot be used (exit code 2).
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The topology conflicts with what the broker has (or the broker
    /// failed while declaring it).
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// A broker operation failed.
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    /// A publish was not confirmed.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    /// Binding a socket or other I/O failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A command used in a way it refuses (exit code 2), e.g. `dead purge`
    /// with no terminal to confirm on and no `--yes`.
    #[error("{0}")]
    Usage(String),
    /// What a command was asked to find is not there.
    #[error("{0}")]
    NotFound(String),
    /// `check` found the broker's topology different from the
    /// configuration (it printed what differs).
    #[error("the broker's topology does not match the configuration ({0} problem(s))")]
    TopologyMismatch(usize),
}

/// A setting that parsed but cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `AMQP_URL` is not a usable broker URL.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// A TLS file that cannot be used.
    #[error(transparent)]
    TlsFile(#[from] TlsFileError),
    /// A signing secret that cannot be decoded.
    #[error("{setting}: {source}")]
    Secret {
        /// The flag or variable that holds it.
        setting: &'static str,
        /// What is wrong with it.
        source: SecretError,
    },
}

impl Error {
    /// Whether the worker should stop rather than reconnect.
    pub fn is_fatal(&self) -> bool {
        match self {
            Error::Topology(t) => t.is_fatal(),
            Error::Broker(_) | Error::Publish(_) => false,
            _ => true,
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) | Error::Usage(_) => 2,
            _ => 1,
        }
    }
}

impl From<UrlError> for Error {
    fn from(e: UrlError) -> Self {
        Error::Config(e.into())
    }
}
