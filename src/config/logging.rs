//! `logging`: log level and log file.

use serde::Deserialize;
use std::path::PathBuf;

use crate::model::units::{ByteSize, LogLevel};

/// `logging`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingSettings {
    /// `DEBUG`, `INFO`, `WARNING`, `ERROR` (`RUST_LOG` overrides).
    pub level: LogLevel,
    /// Log file of the daemon; none when absent.
    #[serde(deserialize_with = "crate::model::env::opt_path")]
    pub file: Option<PathBuf>,
    /// Rotate when the file reaches this size.
    pub max_size: ByteSize,
    /// Rotated files kept (`app.log.1` …).
    pub backup_count: usize,
}

impl Default for LoggingSettings {
    fn default() -> Self {
        Self {
            level: LogLevel::default(),
            file: None,
            max_size: ByteSize(10 << 20),
            backup_count: 5,
        }
    }
}
