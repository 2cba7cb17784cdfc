//! `Settings`: the typed contents of `config.yaml`. Every section is optional with defaults,
//! any string may be `${ENV}` / `${ENV:-default}`, unknown keys are refused with their line,
//! and relative paths are taken relative to the config file's directory.
//!
//! The seed system's file loads unchanged: its `flask:` section is accepted with a warning,
//! and `dingtalk.file_server_url` stands in for `http.file_server_url` when that is not set.

mod daemon;
mod dingtalk;
mod email;
mod export;
mod feishu;
mod http;
mod limits;
mod logging;
mod outbound;
mod scheduler;
mod security;
mod storage;
mod store;
#[cfg(test)]
mod tests;
mod webhook;
mod wecom;

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::model::datasource::DataSourceSpec;

pub use daemon::DaemonSettings;
pub use dingtalk::DingTalkSettings;
pub use email::{EmailSettings, Security};
pub use export::{DEFAULT_FONT, ExportSettings, JobSettings};
pub use feishu::FeishuSettings;
pub use http::HttpSettings;
pub use limits::{CHUNK_SIZE_MAX, DAYS_MAX, TIMEOUT_MAX};
pub use logging::LoggingSettings;
pub use outbound::{AllowEntry, AllowError, OutboundAllow};
pub use scheduler::SchedulerSettings;
pub use security::{
    KeyError, ReadOnlyAccounts, SecuritySettings, read_key_file, sibling, write_key_file,
};
pub use storage::{LINK_EXPIRY_DEFAULT, StorageKind, StorageTarget};
pub use store::{StoreKind, SystemDatabase};
pub use webhook::WebhookSettings;
pub use wecom::WeComSettings;

/// Why a config file could not be used. Each variant displays as one line that starts with
/// `file:line:column` (or `file:line`) when the place is known.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable file, YAML syntax error, wrong type, unknown key or bad value.
    #[error(transparent)]
    Yaml(#[from] crate::yaml::YamlError),
    /// A value that parsed but does not make sense; `line` is where its key stands.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// Line of the offending key, when found.
        line: Option<usize>,
        /// What is wrong, naming the key.
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where tasks, data sources and executions are stored.
    #[serde(default, deserialize_with = "crate::model::env::section")]
    pub system_database: SystemDatabase,
    /// Named data sources (seed format).
    #[serde(default, deserialize_with = "crate::model::env::section")]
    pub data_sources: BTreeMap<String, DataSourceSpec>,
    /// Export directories, sizes and limits.
    #[serde(default, deserialize_with = "crate::model::env::section")]
    pub export: ExportSettings,
    /// Default DingTalk robot.
    #[serde(default, deserialize_with = "crate::model::env::section")]
    pub dingtalk: DingTalkSettings,
    /// Default WeCom group robot.
    #[serde(default, deserialize_with = "crate::model::env::section")]
    pub wecom: WeComSettings,
    /// Default Feishu custom bot.
    #[serde(default, deserialize_with = "crate::model::env::section")]
    pub feishu: FeishuSettings,
    /// Timeout and retries of generic webhooks.
    #[serde(default, deserialize_with = "crate::model::env::section")]
    pub webhook: WebhookSettings,
    /// SMTP account for e-mail.
    #[serde(default, deserialize_with = "crate::model::env::section")]
    pub email: EmailSettings,
    /// Log level and log file.
    #[serde(default, deserialize_with = "crate::model::env::section")]
    pub logging: LoggingSettings,
    /// Time zone, workers, timeouts, misfire grace.
    #[serde(default, deserialize_with = "crate::model::env::section")]
    pub scheduler: SchedulerSettings,
    /// Status, health, metrics and download server.
    #[serde(default, deserialize_with = "crate::model::env::section")]
    pub http: HttpSettings,
    /// PID file and shutdown.
    #[serde(default, deserialize_with = "crate::model::env::section")]
    pub daemon: DaemonSettings,
    /// Named storage targets tasks deliver their files to (`deliver: [name]`).
    #[serde(default, deserialize_with = "crate::model::env::section")]
    pub storage: BTreeMap<String, StorageTarget>,
    /// Key for secrets at rest; login lifetime.
    #[serde(default, deserialize_with = "crate::model::env::section")]
    pub security: SecuritySettings,
    /// Directory of message templates (default `./templates`).
    #[serde(
        default = "default_templates_dir",
        deserialize_with = "crate::model::env::path"
    )]
    pub templates_dir: PathBuf,
    /// The seed's web-application section: accepted, warned about, ignored.
    #[serde(default)]
    flask: Option<serde_yaml::Value>,
    /// The file these settings came from.
    #[serde(skip)]
    pub path: PathBuf,
    /// Things worth telling the operator that are not errors (logged once logging is up).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

fn default_templates_dir() -> PathBuf {
    PathBuf::from("./templates")
}

impl Settings {
    /// Reads and validates `path`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, and the line and column or key at fault.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let (parsed, text) = crate::yaml::read::<Settings>(path)?;
        Self::finish(parsed, &text, path)
    }

    /// Parses config text; `path` is used for messages and as the base of relative paths.
    ///
    /// # Errors
    /// As [`Settings::load`].
    pub fn parse(text: &str, path: &Path) -> Result<Settings, ConfigError> {
        let parsed = crate::yaml::parse::<Settings>(text, path)?;
        Self::finish(parsed, text, path)
    }

    fn finish(parsed: Option<Settings>, text: &str, path: &Path) -> Result<Settings, ConfigError> {
        let mut s = parsed.unwrap_or_default();
        s.path = path.to_path_buf();
        if let Some(flask) = s.flask.take() {
            // The seed's login lifetime is honoured; the rest of the section is not.
            let hours = flask
                .get("jwt_access_token_expires_hours")
                .and_then(serde_yaml::Value::as_f64);
            if let Some(h) = hours.filter(|h| h.is_finite() && *h > 0.0) {
                s.security.session_ttl = (h * 3600.0).round().clamp(60.0, 30.0 * 86_400.0) as u64;
            }
            s.warnings.push(format!(
                "{}: the `flask` section belongs to the old web application and is ignored \
                 (but for jwt_access_token_expires_hours, the login lifetime)",
                path.display()
            ));
        }
        if s.http.file_server_url.is_none() {
            s.http.file_server_url = s.dingtalk.file_server_url.clone();
        }
        s.validate(text)?;
        s.resolve_paths();
        Ok(s)
    }

    fn validate(&self, text: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: self.path.clone(),
            line: line_of_key(text, key),
            message,
        };
        for (name, spec) in &self.data_sources {
            spec.validate()
                .map_err(|m| invalid(name, format!("data_sources.{name}: {m}")))?;
        }
        for (name, target) in &self.storage {
            if name.is_empty()
                || name.len() > 64
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(invalid(
                    name,
                    format!("storage.{name}: a target's name is 1-64 letters, digits, `_` or `-`"),
                ));
            }
            target
                .validate()
                .map_err(|m| invalid(name, format!("storage.{name}: {m}")))?;
        }
        let sd = &self.system_database;
        if sd.kind != StoreKind::Sqlite && sd.url.is_empty() && sd.host.is_none() {
            return Err(invalid(
                "system_database",
                "system_database: a mysql or postgresql store needs `host` or `url`".into(),
            ));
        }
        self.export
            .check_font()
            .map_err(|m| invalid("font", format!("export.font: {m}")))?;
        limits::check(self, text)
    }

    /// The directory relative paths are taken from.
    pub fn base_dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    fn resolve_paths(&mut self) {
        let base = self.base_dir();
        let fix = |p: &mut PathBuf| *p = crate::model::path::resolve(&base, p);
        fix(&mut self.system_database.sqlite_path);
        fix(&mut self.export.temp_dir);
        fix(&mut self.export.output_dir);
        fix(&mut self.templates_dir);
        fix(&mut self.daemon.pid_file);
        fix(&mut self.security.secret_key_file);
        if let Some(f) = &mut self.logging.file {
            fix(f);
        }
        if let Some(f) = &mut self.email.ca_file {
            fix(f);
        }
        for spec in self.data_sources.values_mut() {
            spec.resolve_paths(&base);
        }
        for target in self.storage.values_mut() {
            target.resolve_paths(&base);
        }
    }
}

/// The 1-based line where `key:` first stands, for messages about values that parsed.
pub fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let t = l.trim_start();
            t.strip_prefix(key)
                .or_else(|| t.strip_prefix(&format!("\"{key}\"")))
                .is_some_and(|r| r.trim_start().starts_with(':'))
        })
        .map(|i| i + 1)
}
