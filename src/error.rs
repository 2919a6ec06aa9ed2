//! The program's errors, as one enum: what went wrong, and whether retrying
//! can help.

use crate::{broker::PublishError, topology::TopologyError};

/// Anything that ends a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting that parsed but cannot be used (exit code 2).
    #[error("configuration: {0}")]
    Config(String),
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
            Error::Config(_) => 2,
            _ => 1,
        }
    }
}
