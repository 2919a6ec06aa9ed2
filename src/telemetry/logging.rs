//! Logs: text or JSON lines on stderr, level from `RUST_LOG`.

use clap::ValueEnum;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The filter without `RUST_LOG`: our `info`, and nothing of the AMQP
/// library's own lines (it logs every closed channel with its whole error
/// value at ERROR; the commands report the same failure in one line of
/// their own). `RUST_LOG=info` or `RUST_LOG=lapin=debug` shows them.
pub const DEFAULT_FILTER: &str = "info,lapin=off";

/// Installs the global log subscriber: text or JSON lines on stderr, level
/// from `RUST_LOG` (default [`DEFAULT_FILTER`]).
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::{EnvFilter, fmt};
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // Colours only on a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}
