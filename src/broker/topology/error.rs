//! Why declaring the topology failed, and reading the broker's refusal of
//! a declaration.

use lapin::protocol::{AMQPErrorKind, AMQPSoftError};

/// Why declaring the topology failed.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// A queue or exchange exists with other arguments or type. Never
    /// deleted or redeclared: an operator decides.
    #[error("{kind} '{name}' already exists with a different '{argument}': {detail}")]
    Conflict {
        /// `queue` or `exchange`.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The differing argument, as the broker names it.
        argument: String,
        /// The broker's own words.
        detail: String,
    },
    /// A RabbitMQ plugin the configured topology needs is not enabled.
    #[error(
        "the RabbitMQ plugin '{plugin}' is not enabled ({detail}); enable it with `rabbitmq-plugins enable {plugin}`"
    )]
    MissingPlugin {
        /// The plugin's name.
        plugin: &'static str,
        /// The broker's own words.
        detail: String,
    },
    /// The broker could not be asked (connection trouble): try again.
    #[error("declaring the topology failed: {0}")]
    Broker(#[from] lapin::Error),
}

impl TopologyError {
    /// Whether retrying cannot help (a conflict needs an operator).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            TopologyError::Conflict { .. } | TopologyError::MissingPlugin { .. }
        )
    }
}

/// Turns a `PRECONDITION_FAILED` into a [`TopologyError::Conflict`] naming
/// the argument ("inequivalent arg 'x-message-ttl' for queue ...").
pub(in crate::broker) fn conflict_or_broker(
    kind: &'static str,
    name: &str,
    e: lapin::Error,
) -> TopologyError {
    match inequivalence(e) {
        Ok((argument, detail)) => TopologyError::Conflict {
            kind,
            name: name.to_string(),
            argument,
            detail,
        },
        Err(e) => TopologyError::Broker(e),
    }
}

/// The differing argument and the broker's words of a
/// `PRECONDITION_FAILED`; any other error back as it was.
pub(in crate::broker) fn inequivalence(e: lapin::Error) -> Result<(String, String), lapin::Error> {
    if let lapin::ErrorKind::ProtocolError(amqp) = e.kind()
        && *amqp.kind() == AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED)
    {
        let detail = amqp.get_message().to_string();
        let argument = detail
            .split_once("inequivalent arg '")
            .and_then(|(_, rest)| rest.split_once('\''))
            .map_or_else(|| "type".to_string(), |(arg, _)| arg.to_string());
        return Ok((argument, detail));
    }
    Err(e)
}
