//! Logging: `tracing` to stderr (colour only on a terminal) and, when asked, to
//! `logging.file` with size-based rotation (`max_size`, `backup_count`). `RUST_LOG` overrides
//! the configured level.

use file_rotate::compression::Compression;
use file_rotate::suffix::AppendCount;
use file_rotate::{ContentLimit, FileRotate};
use std::io::IsTerminal;
use tracing::Level;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use crate::config::LoggingSettings;

/// Keeps the file writer flushing; drop it last (at exit).
#[must_use = "dropping the guard stops file logging"]
pub struct LogGuard {
    _worker: Option<WorkerGuard>,
}

/// Sets up the global subscriber. `stderr_level` is the level on stderr; the file (when
/// `to_file` and `logging.file` is set) gets `logging.level`.
///
/// # Errors
/// The log file's directory cannot be created or the file cannot be opened for appending.
pub fn init(
    settings: &LoggingSettings,
    stderr_level: Level,
    to_file: bool,
) -> anyhow::Result<LogGuard> {
    let env_or = |level: Level| {
        EnvFilter::builder()
            .with_default_directive(LevelFilter::from_level(level).into())
            .from_env_lossy()
    };
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_filter(env_or(stderr_level));

    let (file_layer, guard) = match (&settings.file, to_file) {
        (Some(path), true) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    anyhow::anyhow!("log file {}: cannot create directory: {e}", path.display())
                })?;
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("log file {}: cannot open: {e}", path.display()))?;
            let rotating = FileRotate::new(
                path,
                AppendCount::new(settings.backup_count),
                ContentLimit::BytesSurpassed(settings.max_size.0 as usize),
                Compression::None,
                None,
            );
            let (writer, guard) = tracing_appender::non_blocking(rotating);
            let layer = fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .with_filter(env_or(settings.level.0));
            (Some(layer), Some(guard))
        }
        _ => (None, None),
    };
    tracing_subscriber::registry()
        .with(stderr)
        .with(file_layer)
        .try_init()
        .map_err(|e| anyhow::anyhow!("logging: {e}"))?;
    Ok(LogGuard { _worker: guard })
}
