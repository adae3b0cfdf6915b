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

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Flushes the log writer when dropped: hold it until the process ends.
pub struct LogGuard(#[allow(dead_code)] WorkerGuard);

pub fn init(config: &LogConfig) -> LogGuard {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},sqlx=warn,hyper=warn", config.level)));
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
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
