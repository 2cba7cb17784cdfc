//! `Settings`: the typed contents of `config.yaml`. Every section is optional with defaults,
//! any string may be `${ENV}` / `${ENV:-default}`, unknown keys are refused with their line,
//! and relative paths are taken relative to the config file's directory.
//!
//! The seed system's file loads unchanged: its `flask:` section is accepted with a warning,
//! and `dingtalk.file_server_url` stands in for `http.file_server_url` when that is not set.

mod limits;

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::model::datasource::DataSourceSpec;
use crate::model::secret::Secret;
use crate::model::units::{ByteSize, LogLevel, TimeZone};

pub use limits::{CHUNK_SIZE_MAX, DAYS_MAX, TIMEOUT_MAX};

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

/// Backend of the system store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// A SQLite file (default).
    #[default]
    Sqlite,
    /// MySQL or MariaDB.
    #[serde(alias = "mariadb")]
    Mysql,
    /// PostgreSQL.
    #[serde(alias = "postgres")]
    Postgresql,
}

/// `system_database`: the store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SystemDatabase {
    /// `sqlite` (default), `mysql` or `postgresql`.
    #[serde(rename = "type")]
    pub kind: StoreKind,
    /// Server host (mysql, postgresql).
    #[serde(deserialize_with = "crate::model::env::opt_string")]
    pub host: Option<String>,
    /// Server port.
    #[serde(deserialize_with = "crate::model::env::opt_num")]
    pub port: Option<u16>,
    /// Database name; created when missing.
    #[serde(deserialize_with = "crate::model::env::opt_string")]
    pub database: Option<String>,
    /// Login user.
    #[serde(deserialize_with = "crate::model::env::opt_string")]
    pub username: Option<String>,
    /// Login password.
    #[serde(deserialize_with = "crate::model::env::secret")]
    pub password: Secret,
    /// A full URL instead of host/port/... (takes precedence).
    #[serde(deserialize_with = "crate::model::env::secret")]
    pub url: Secret,
    /// SQLite file, created on first use (default `./data/system.db`).
    #[serde(deserialize_with = "crate::model::env::path")]
    pub sqlite_path: PathBuf,
    /// Pool size (default 5).
    pub max_connections: u32,
}

impl Default for SystemDatabase {
    fn default() -> Self {
        Self {
            kind: StoreKind::Sqlite,
            host: None,
            port: None,
            database: None,
            username: None,
            password: Secret::default(),
            url: Secret::default(),
            sqlite_path: PathBuf::from("./data/system.db"),
            max_connections: 5,
        }
    }
}

impl SystemDatabase {
    /// The connection settings of a mysql or postgresql store, as a data source spec (the
    /// database defaults to `reportd`); `None` for SQLite.
    pub fn server_spec(&self) -> Option<DataSourceSpec> {
        let kind = match self.kind {
            StoreKind::Sqlite => return None,
            StoreKind::Mysql => crate::model::datasource::SourceKind::Mysql,
            StoreKind::Postgresql => crate::model::datasource::SourceKind::Postgresql,
        };
        let mut spec = DataSourceSpec::new(kind);
        spec.url = self.url.clone();
        if self.url.is_empty() {
            spec.host = self.host.clone();
            spec.port = self.port;
            spec.database = Some(self.database.clone().unwrap_or_else(|| "reportd".into()));
            spec.username = self.username.clone();
            spec.password = self.password.clone();
        }
        Some(spec)
    }

    /// Where the store is, for messages: `sqlite ./data/system.db`,
    /// `mysql root@127.0.0.1:3306/reportd`. Never contains a password.
    pub fn describe(&self) -> String {
        match self.server_spec() {
            Some(spec) => format!("{} {}", spec.kind, spec.location()),
            None if self.url.is_empty() => format!("sqlite {}", self.sqlite_path.display()),
            None => format!(
                "sqlite {}",
                crate::model::datasource::mask_url(self.url.expose())
            ),
        }
    }
}

/// `export`: where files go and how big they get.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExportSettings {
    /// Files are written here first, then renamed into `output_dir`.
    #[serde(deserialize_with = "crate::model::env::path")]
    pub temp_dir: PathBuf,
    /// Finished files, under `YYYY-MM-DD/` sub-directories.
    #[serde(deserialize_with = "crate::model::env::path")]
    pub output_dir: PathBuf,
    /// Rows per batch handed from the reader to the writer.
    pub chunk_size: usize,
    /// Past this size an export continues in a new file (`_part2`).
    pub max_file_size: ByteSize,
    /// Seed key, kept: an upper bound for buffers.
    pub memory_limit: ByteSize,
    /// Default statement timeout, seconds.
    pub query_timeout: u64,
    /// Seed key, kept: statement timeout for tasks marked long, seconds.
    pub long_query_timeout: u64,
    /// Exported files older than this many days are removed by cleanup.
    pub retention_days: u32,
    /// Deflate level of xlsx files, 1 (fastest) to 9 (smallest). Compression is most of the
    /// time an xlsx takes. Measured on 1M rows: level 3 in 4.8 s, level 6 in 7.8 s, files
    /// about 8 % larger at 3.
    pub compression_level: u8,
    /// CSV: text starting with `=`, `+`, `-`, `@`, tab or CR (a formula to a spreadsheet) is
    /// written with a leading `'`. Numbers are never changed.
    pub csv_escape_formulas: bool,
}

impl Default for ExportSettings {
    fn default() -> Self {
        Self {
            temp_dir: PathBuf::from("./temp"),
            output_dir: PathBuf::from("./exports"),
            chunk_size: 10_000,
            max_file_size: ByteSize(100 << 20),
            memory_limit: ByteSize(512 << 20),
            query_timeout: 3600,
            long_query_timeout: 7200,
            retention_days: 30,
            compression_level: 3,
            csv_escape_formulas: true,
        }
    }
}

/// `dingtalk`: the default robot; tasks may name their own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DingTalkSettings {
    /// Robot webhook (its `access_token` is a secret).
    #[serde(deserialize_with = "crate::model::env::secret")]
    pub webhook_url: Secret,
    /// Signing secret (`SEC…`), optional.
    #[serde(deserialize_with = "crate::model::env::secret")]
    pub secret: Secret,
    /// Seed key: base URL for download links; `http.file_server_url` takes precedence.
    #[serde(deserialize_with = "crate::model::env::opt_string")]
    pub file_server_url: Option<String>,
    /// Request timeout, seconds.
    pub timeout: u64,
}

impl Default for DingTalkSettings {
    fn default() -> Self {
        Self {
            webhook_url: Secret::default(),
            secret: Secret::default(),
            file_server_url: None,
            timeout: 10,
        }
    }
}

/// `email.security`: how the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Implicit TLS (SMTPS, port 465).
    Tls,
    /// Plain connection upgraded with STARTTLS (port 587).
    Starttls,
    /// No encryption (a local relay).
    None,
}

/// `email`: the SMTP account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailSettings {
    /// SMTP server host.
    #[serde(deserialize_with = "crate::model::env::opt_string")]
    pub smtp_server: Option<String>,
    /// SMTP port (default 465).
    #[serde(deserialize_with = "crate::model::env::opt_num")]
    pub smtp_port: Option<u16>,
    /// Login user; no login when absent.
    #[serde(deserialize_with = "crate::model::env::opt_string")]
    pub username: Option<String>,
    /// Login password.
    #[serde(deserialize_with = "crate::model::env::secret")]
    pub password: Secret,
    /// Display name of the sender.
    #[serde(deserialize_with = "crate::model::env::opt_string")]
    pub from_name: Option<String>,
    /// Sender address (default: `username`).
    #[serde(deserialize_with = "crate::model::env::opt_string")]
    pub from_address: Option<String>,
    /// `tls`, `starttls` or `none`; default by port.
    pub security: Option<Security>,
    /// Timeout of one send, seconds.
    pub smtp_timeout: u64,
    /// Attachments larger than this once encoded are replaced by a link.
    pub max_attachment_size: ByteSize,
    /// Attempts per message.
    pub retry_attempts: u32,
    /// Seconds between attempts.
    pub retry_delay: u64,
    /// Extra CA certificate (PEM) to trust, for private mail servers.
    #[serde(deserialize_with = "crate::model::env::opt_path")]
    pub ca_file: Option<PathBuf>,
}

impl Default for EmailSettings {
    fn default() -> Self {
        Self {
            smtp_server: None,
            smtp_port: None,
            username: None,
            password: Secret::default(),
            from_name: None,
            from_address: None,
            security: None,
            smtp_timeout: 60,
            max_attachment_size: ByteSize(25 << 20),
            retry_attempts: 3,
            retry_delay: 30,
            ca_file: None,
        }
    }
}

impl EmailSettings {
    /// The port in use: `smtp_port`, or 465.
    pub fn port(&self) -> u16 {
        self.smtp_port.unwrap_or(465)
    }

    /// The security in use: as configured, else `tls` on 465, `starttls` on 587, `none` otherwise.
    pub fn security(&self) -> Security {
        self.security.unwrap_or(match self.port() {
            465 => Security::Tls,
            587 => Security::Starttls,
            _ => Security::None,
        })
    }

    /// The sender address: `from_address`, else `username`.
    pub fn from_address(&self) -> Option<&str> {
        self.from_address.as_deref().or(self.username.as_deref())
    }
}

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

/// `scheduler`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerSettings {
    /// Zone of tasks that name none.
    pub timezone: TimeZone,
    /// Executions running at once.
    pub max_workers: usize,
    /// Default task timeout, seconds.
    pub task_timeout: u64,
    /// Seed key, kept: timeout for tasks marked long, seconds.
    pub long_task_timeout: u64,
    /// A missed fire younger than this many seconds still runs (once) at start.
    pub misfire_grace_time: u64,
    /// Execution rows older than this many days are removed.
    pub log_retention_days: u32,
    /// First retry delay in seconds; doubles per attempt.
    pub retry_backoff: u64,
    /// Seconds a daemon holds a fire it runs without renewing it (it renews every third of
    /// that). When the holder dies, another instance re-runs the fire once the lease is over.
    pub lease_time: u64,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        Self {
            timezone: TimeZone::default(),
            max_workers: 10,
            task_timeout: 14_400,
            long_task_timeout: 28_800,
            misfire_grace_time: 1800,
            log_retention_days: 90,
            retry_backoff: 60,
            lease_time: 60,
        }
    }
}

/// `http`: the daemon's status and download server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Listen address (default `127.0.0.1:5002`).
    #[serde(deserialize_with = "socket_addr")]
    pub bind: SocketAddr,
    /// Bearer token for write endpoints.
    #[serde(deserialize_with = "crate::model::env::secret")]
    pub token: Secret,
    /// Public base URL for download links.
    #[serde(deserialize_with = "crate::model::env::opt_string")]
    pub file_server_url: Option<String>,
    /// Lifetime of a download link, seconds (default 7 days).
    pub link_expiry: u64,
    /// Seconds a client has to send a request's headers, idle keep-alive included (1-30,
    /// default 10): slower connections are closed.
    pub header_timeout: u64,
    /// Seconds a request may take, reading its body included (1-3600, default 60);
    /// `POST /tasks/{id}/run?wait=true` waits for the run instead; also the longest a client
    /// may leave its answer unread.
    pub request_timeout: u64,
    /// Connections served at once (1-65536, default 256); more wait to be accepted.
    pub max_connections: u64,
    /// Largest request body (1KB-16MB, default 64KB); larger ones get 413.
    pub max_body_size: ByteSize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 5002)),
            token: Secret::default(),
            file_server_url: None,
            link_expiry: 7 * 86_400,
            header_timeout: 10,
            request_timeout: 60,
            max_connections: 256,
            max_body_size: ByteSize(64 << 10),
        }
    }
}

fn socket_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = crate::model::env::string(d)?;
    s.parse().map_err(|_| {
        serde::de::Error::custom(format!("{s:?} is not an address such as 127.0.0.1:5002"))
    })
}

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
        if s.flask.take().is_some() {
            s.warnings.push(format!(
                "{}: the `flask` section belongs to the old web application and is ignored",
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
        let sd = &self.system_database;
        if sd.kind != StoreKind::Sqlite && sd.url.is_empty() && sd.host.is_none() {
            return Err(invalid(
                "system_database",
                "system_database: a mysql or postgresql store needs `host` or `url`".into(),
            ));
        }
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
        if let Some(f) = &mut self.logging.file {
            fix(f);
        }
        if let Some(f) = &mut self.email.ca_file {
            fix(f);
        }
        for spec in self.data_sources.values_mut() {
            spec.resolve_paths(&base);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, ConfigError> {
        Settings::parse(text, Path::new("conf/config.yaml"))
    }

    #[test]
    fn empty_file_gives_defaults() {
        let s = parse("# nothing\n").unwrap();
        assert_eq!(s.system_database.kind, StoreKind::Sqlite);
        assert_eq!(
            s.system_database.sqlite_path,
            PathBuf::from("conf/data/system.db")
        );
        assert_eq!(s.scheduler.timezone.to_string(), "Asia/Shanghai");
        assert_eq!(s.http.bind.to_string(), "127.0.0.1:5002");
        assert_eq!(s.email.security(), Security::Tls);
    }

    #[test]
    fn empty_sections_are_defaults() {
        let s = parse("dingtalk:\nemail:\n  smtp_port: 587\n").unwrap();
        assert_eq!(s.dingtalk.timeout, 10);
        assert_eq!(s.email.security(), Security::Starttls);
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = parse("export:\n  chunk_size: 10\n  chunk_sise: 5\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("conf/config.yaml:3:"), "{msg}");
        assert!(msg.contains("chunk_sise"), "{msg}");
        assert!(!msg.contains(" at line "), "{msg}");
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let msg = parse("export:\n  chunk_size: [1,\n")
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("conf/config.yaml:"), "{msg}");
        assert!(matches!(
            parse("a: b: c").unwrap_err(),
            ConfigError::Yaml(crate::yaml::YamlError::Parse { line: 1, .. })
        ));
    }

    #[test]
    fn bad_values_are_located() {
        let msg = parse("scheduler:\n  timezone: Mars/Base\n")
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("conf/config.yaml:2:"), "{msg}");
        assert!(msg.contains("Mars/Base"), "{msg}");
        let msg = parse("data_sources:\n  wh:\n    type: mysql\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            "conf/config.yaml:2: data_sources.wh: mysql needs `host` or `url`"
        );
    }

    #[test]
    fn env_values_and_missing_env() {
        // SAFETY: test-only variable names unique to this test.
        unsafe { std::env::set_var("REPORTD_T_PW", "p:w #1") };
        let s = parse(
            "data_sources:\n  wh:\n    type: mysql\n    host: h\n    port: ${REPORTD_T_PORT:-3307}\n    password: ${REPORTD_T_PW}\n",
        )
        .unwrap();
        let wh = &s.data_sources["wh"];
        assert_eq!(wh.port, Some(3307));
        assert_eq!(wh.password.expose(), "p:w #1");
        assert!(!format!("{s:?}").contains("p:w #1"));
        let msg = parse("email:\n  password: ${REPORTD_T_UNSET}\n")
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("conf/config.yaml:2:"), "{msg}");
        assert!(msg.contains("REPORTD_T_UNSET is not set"), "{msg}");
    }

    #[test]
    fn line_of_key_finds_first() {
        assert_eq!(line_of_key("a:\n  b: 1\n  bb: 2\n", "bb"), Some(3));
        assert_eq!(line_of_key("a: 1", "z"), None);
    }
}
