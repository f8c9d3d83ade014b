//! Logging: one subscriber for the process, set up once at start. Lines go
//! to stderr; colours only when stderr is a terminal, so a file or a pipe
//! gets plain text (or JSON with LOG_FORMAT=json), never escape codes.

use std::io::IsTerminal;

use crate::config::LogFormat;

/// Installs the subscriber (RUST_LOG filters; `info,sqlx=warn` by default).
/// A second call does nothing.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
