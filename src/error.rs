//! The program's one error type: what ended a command, and whether
//! retrying can help.

use crate::{
    broker::{publisher::PublishError, tls::TlsFileError, topology::TopologyError, url::UrlError},
    domain::{proxy::ProxySettingError, signing::SecretError},
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
    #[error("broker: {}", broker_reply(.0))]
    Broker(#[from] lapin::Error),
    /// A one-shot command could not connect to any node of `AMQP_URL`.
    #[error("cannot connect to the broker {broker} (AMQP_URL, --amqp-url): {reason}")]
    Connect {
        /// The nodes tried, passwords redacted.
        broker: String,
        /// What the last node answered, in one line.
        reason: String,
    },
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
    /// `METRICS_ADDR` cannot be listened on (taken, or not an address of
    /// this machine).
    #[error("cannot listen on {addr} (METRICS_ADDR, --metrics-addr): {source}")]
    MetricsAddr {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why the bind failed.
        source: std::io::Error,
    },
    /// The broker refused the credentials or the vhost of `AMQP_URL`.
    #[error("the broker {broker} refused the login (AMQP_URL, --amqp-url): {reply}")]
    Login {
        /// The node, password redacted.
        broker: String,
        /// The broker's words.
        reply: String,
    },
    /// A proxy setting that cannot be used (quotes no password).
    #[error(transparent)]
    Proxy(#[from] ProxySettingError),
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

impl Error {
    /// A failed connection of a one-shot command to `broker` (the redacted
    /// node list): a refused login is the configuration's fault (exit 2),
    /// anything else the broker's or the network's.
    pub fn connect(broker: String, e: &lapin::Error) -> Self {
        let reply = broker_reply(e);
        if reply.starts_with("ACCESS_REFUSED") || reply.starts_with("NOT_ALLOWED") {
            ConfigError::Login { broker, reply }.into()
        } else {
            Error::Connect {
                broker,
                reason: reply,
            }
        }
    }
}

/// What the broker said, in its own words (`NOT_FOUND - no queue 'x.dead'
/// in vhost '/'`), rather than the AMQP library's whole error value;
/// otherwise the library's one-line text.
pub(crate) fn broker_reply(e: &lapin::Error) -> String {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(amqp) => amqp.get_message().to_string(),
        _ => e.to_string(),
    }
}

/// Whether the broker answered that `queue` does not exist.
pub(crate) fn is_missing_queue(e: &lapin::Error, queue: &str) -> bool {
    broker_reply(e).contains(&format!("no queue '{queue}'"))
}

impl From<UrlError> for Error {
    fn from(e: UrlError) -> Self {
        Error::Config(e.into())
    }
}
