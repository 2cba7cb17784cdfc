//! `daemon`: PID file and shutdown.

use serde::Deserialize;
use std::path::PathBuf;

/// `daemon`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonSettings {
    /// PID file (default `./reportd.pid`).
    #[serde(deserialize_with = "crate::model::env::path")]
    pub pid_file: PathBuf,
    /// Seconds to wait for running executions at shutdown.
    pub shutdown_timeout: u64,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        Self {
            pid_file: PathBuf::from("./reportd.pid"),
            shutdown_timeout: 30,
        }
    }
}
