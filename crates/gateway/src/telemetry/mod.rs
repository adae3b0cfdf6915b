//! Logging set-up: human-readable text or one JSON object per line, filtered by `RUST_LOG` or
//! the configured level. Lines are handed to a background writer thread, so a request never
//! waits on a write to stderr; under a flood the writer drops lines rather than stall traffic.
//! Credentials never reach a log line: they are `Secret`s or sensitive header values, and only
//! masked forms are ever formatted.
//!
//! Metrics (names, label sets, the Prometheus exporter) live in [`metrics`].

pub mod live;
pub mod metrics;

use std::io::IsTerminal;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Lines waiting for the writer thread. The queue is allocated and touched in full at start
/// (32 bytes a line), so the library's default of 128,000 lines costs 4 MB of resident memory
/// for nothing: a writer that falls 8,192 lines behind is in a flood, and a flood drops lines.
const LOG_BUFFER_LINES: usize = 8_192;

/// Flushes the log writer when dropped: hold it until the process ends.
pub struct LogGuard(#[allow(dead_code)] WorkerGuard);

pub fn init(config: &LogConfig) -> LogGuard {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},sqlx=warn,hyper=warn", config.level)));
    let (writer, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_BUFFER_LINES)
        .lossy(true)
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    // A second init (several gateways in one test process) is harmless.
    let _ = match config.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.compact().try_init(),
    };
    LogGuard(guard)
}
