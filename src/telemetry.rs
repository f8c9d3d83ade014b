//! Logging: one subscriber for the process, set up once at start. Lines go
//! to stderr; colours only when stderr is a terminal, so a file or a pipe
//! gets plain text (or JSON with LOG_FORMAT=json), never escape codes.
//!
//! Lines are written by a thread of their own (tracing-appender), through a
//! buffer it flushes each time it has emptied its queue: under load one
//! write carries many lines instead of one system call per request (6% of
//! /healthz's time in the profile), and when idle each line leaves at once.
//! When the queue is full a request waits for it rather than lose its line.

use std::io::{BufWriter, IsTerminal};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};

use crate::config::LogFormat;

/// Bytes of log lines gathered into one write.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Installs the subscriber (RUST_LOG filters; `info,sqlx=warn` by default).
/// Keep the guard while the process runs: dropping it writes out the lines
/// still queued. A second call installs nothing.
pub fn init(format: LogFormat) -> WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("accords-log")
        .finish(BufWriter::with_capacity(
            WRITE_BUFFER_BYTES,
            std::io::stderr(),
        ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    guard
}
