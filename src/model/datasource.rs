//! `DataSourceSpec`: how to reach one data source, as written in `config.yaml` (the seed's
//! `type/host/port/database/username/password/charset`, or `url`) or stored by
//! `reportd datasource add`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::model::env;
use crate::model::secret::Secret;

/// The MySQL connection character sets reportd accepts. Queries go out and results come back
/// as UTF-8; a multibyte set whose characters may end in `\` (gbk, big5, sjis) would also
/// let the server read a string differently from the SQL classifier.
pub const UTF8_CHARSETS: [&str; 3] = ["utf8mb4", "utf8", "utf8mb3"];

/// Which server's lexical rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// MySQL, MariaDB, AnalyticDB: `#` and `-- ` comments, `/*! */` executable comments,
    /// backslash escapes in strings (unless `NO_BACKSLASH_ESCAPES`), backtick names.
    MySql,
    /// PostgreSQL: `$tag$` strings, `E'...'` strings with escapes, `"names"`.
    Postgres,
    /// SQLite: `[names]`, backtick names, no backslash escapes.
    Sqlite,
}

/// The database family of a data source. `adb` (AnalyticDB for MySQL) speaks the MySQL protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// MySQL or MariaDB.
    #[serde(alias = "mariadb")]
    Mysql,
    /// Alibaba AnalyticDB for MySQL (MySQL protocol).
    Adb,
    /// PostgreSQL.
    #[serde(alias = "postgres", alias = "pg")]
    Postgresql,
    /// SQLite file; `database` is its path.
    Sqlite,
}

impl SourceKind {
    /// The name used in config files and listings.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Mysql => "mysql",
            SourceKind::Adb => "adb",
            SourceKind::Postgresql => "postgresql",
            SourceKind::Sqlite => "sqlite",
        }
    }

    /// The SQL family whose lexical rules the query classifier applies.
    pub fn dialect(self) -> Dialect {
        match self {
            SourceKind::Mysql | SourceKind::Adb => Dialect::MySql,
            SourceKind::Postgresql => Dialect::Postgres,
            SourceKind::Sqlite => Dialect::Sqlite,
        }
    }

    /// Port used when none is given.
    pub fn default_port(self) -> Option<u16> {
        match self {
            SourceKind::Mysql | SourceKind::Adb => Some(3306),
            SourceKind::Postgresql => Some(5432),
            SourceKind::Sqlite => None,
        }
    }
}

/// A data source type that is not one of mysql, adb, postgresql or sqlite.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown data source type {0:?} (use mysql, adb, postgresql or sqlite)")]
pub struct UnknownSourceKind(pub String);

impl std::str::FromStr for SourceKind {
    type Err = UnknownSourceKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mysql" | "mariadb" => Ok(SourceKind::Mysql),
            "adb" => Ok(SourceKind::Adb),
            "postgresql" | "postgres" | "pg" => Ok(SourceKind::Postgresql),
            "sqlite" => Ok(SourceKind::Sqlite),
            _ => Err(UnknownSourceKind(s.to_string())),
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a data source spec cannot describe a connection. The message names the field, not the
/// data source (the caller adds that).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// `max_connections` outside 1..=[`MAX_CONNECTIONS`].
    #[error("max_connections: {0} is out of range; give 1 to {MAX_CONNECTIONS}")]
    MaxConnections(u32),
    /// `idle_timeout` outside 1..=[`MAX_IDLE_TIMEOUT`] seconds.
    #[error("idle_timeout: {0} is out of range; give 1 to {MAX_IDLE_TIMEOUT} seconds")]
    IdleTimeout(u64),
    /// A character set other than UTF-8.
    #[error(
        "charset: {0:?} is not supported: reportd talks UTF-8 (utf8mb4) to the server, which converts the tables' own character set (gbk, latin1, ...) itself"
    )]
    Charset(String),
    /// Both `url` and `host`.
    #[error("give either `url` or `host`, not both")]
    UrlAndHost,
    /// A SQLite spec without a file.
    #[error("sqlite needs `database` (the file path) or `url`")]
    NoSqliteDatabase,
    /// A server spec without a host.
    #[error("{0} needs `host` or `url`")]
    NoHost(SourceKind),
    /// `demo_data` on a server.
    #[error("`demo_data` is only for sqlite data sources")]
    DemoDataNotSqlite,
}

/// Connection settings of one data source. In `config.yaml` every string may be `${ENV}`;
/// specs stored by `datasource add` keep `${ENV}` references and expand them at connect time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSourceSpec {
    /// Database family.
    #[serde(rename = "type")]
    pub kind: SourceKind,
    /// Server host name or address.
    #[serde(
        default,
        deserialize_with = "env::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub host: Option<String>,
    /// Server port; the family's default when absent.
    #[serde(
        default,
        deserialize_with = "env::opt_num",
        skip_serializing_if = "Option::is_none"
    )]
    pub port: Option<u16>,
    /// Database (schema) name; for SQLite, the file path.
    #[serde(
        default,
        alias = "path",
        deserialize_with = "env::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub database: Option<String>,
    /// Login user.
    #[serde(
        default,
        alias = "user",
        deserialize_with = "env::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub username: Option<String>,
    /// Login password.
    #[serde(
        default,
        deserialize_with = "env::secret",
        skip_serializing_if = "Secret::is_empty"
    )]
    pub password: Secret,
    /// Connection character set (MySQL family), e.g. `utf8mb4`.
    #[serde(
        default,
        deserialize_with = "env::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub charset: Option<String>,
    /// A full connection URL instead of host/port/...; may hold a password, so it is a secret.
    #[serde(
        default,
        deserialize_with = "env::secret",
        skip_serializing_if = "Secret::is_empty"
    )]
    pub url: Secret,
    /// Upper bound of the connection pool (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Seconds a pooled connection may sit unused before it is closed (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<u64>,
    /// SQLite only: create and fill an `orders` table with sample rows on first use.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub demo_data: bool,
}

/// Largest connection pool of a data source.
pub const MAX_CONNECTIONS: u32 = 1000;
/// A data source's `max_connections` when it gives none.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 4;
/// A data source's `idle_timeout` (seconds) when it gives none.
pub const DEFAULT_IDLE_TIMEOUT: u64 = 300;
/// Longest `idle_timeout` (seconds): one day.
pub const MAX_IDLE_TIMEOUT: u64 = 86_400;

impl DataSourceSpec {
    /// True when `self` sends its login to the same server as `other`: the same type, host,
    /// port, user and URL. A stored password follows only a change that keeps the server;
    /// one that moves it must give the password again (else it would go to the new server).
    pub fn same_server(&self, other: &DataSourceSpec) -> bool {
        self.kind == other.kind
            && self.host == other.host
            && self.port == other.port
            && self.username == other.username
            && self.url == other.url
    }

    /// An empty spec of the given family.
    pub fn new(kind: SourceKind) -> Self {
        Self {
            kind,
            host: None,
            port: None,
            database: None,
            username: None,
            password: Secret::default(),
            charset: None,
            url: Secret::default(),
            max_connections: None,
            idle_timeout: None,
            demo_data: false,
        }
    }

    /// The size of the data source's connection pool: `max_connections`, or
    /// [`DEFAULT_MAX_CONNECTIONS`].
    pub fn pool_size(&self) -> u32 {
        self.max_connections
            .unwrap_or(DEFAULT_MAX_CONNECTIONS)
            .max(1)
    }

    /// How long a pooled connection may sit unused: `idle_timeout`, or
    /// [`DEFAULT_IDLE_TIMEOUT`] seconds.
    pub fn idle_after(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT))
    }

    /// Checks that the spec can describe a connection; the message names the missing field.
    ///
    /// # Errors
    /// A message for the operator, without the data source name (the caller adds it).
    pub fn validate(&self) -> Result<(), SpecError> {
        // The pool allocates a slot per connection up front.
        if let Some(n) = self.max_connections
            && !(1..=MAX_CONNECTIONS).contains(&n)
        {
            return Err(SpecError::MaxConnections(n));
        }
        if let Some(n) = self.idle_timeout
            && !(1..=MAX_IDLE_TIMEOUT).contains(&n)
        {
            return Err(SpecError::IdleTimeout(n));
        }
        if let Some(charset) = &self.charset
            && !UTF8_CHARSETS.contains(&charset.to_ascii_lowercase().as_str())
        {
            return Err(SpecError::Charset(charset.clone()));
        }
        if !self.url.is_empty() {
            if self.host.is_some() {
                return Err(SpecError::UrlAndHost);
            }
            return Ok(());
        }
        match self.kind {
            SourceKind::Sqlite => {
                if self.database.as_deref().unwrap_or("").is_empty() {
                    return Err(SpecError::NoSqliteDatabase);
                }
            }
            _ => {
                if self.host.as_deref().unwrap_or("").is_empty() {
                    return Err(SpecError::NoHost(self.kind));
                }
            }
        }
        if self.demo_data && self.kind != SourceKind::Sqlite {
            return Err(SpecError::DemoDataNotSqlite);
        }
        Ok(())
    }

    /// Makes a relative SQLite path relative to `base` (the config file's directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        if self.kind == SourceKind::Sqlite
            && let Some(db) = &self.database
        {
            let resolved = crate::model::path::resolve(base, Path::new(db));
            self.database = Some(resolved.to_string_lossy().into_owned());
        }
    }

    /// Expands `${ENV}` references in every string (used for specs read from the store).
    ///
    /// # Errors
    /// The first variable that is not set.
    pub fn expand_env(&self) -> Result<Self, env::EnvError> {
        let opt = |v: &Option<String>| v.as_deref().map(env::expand).transpose();
        Ok(Self {
            kind: self.kind,
            host: opt(&self.host)?,
            port: self.port,
            database: opt(&self.database)?,
            username: opt(&self.username)?,
            password: Secret::new(env::expand(self.password.expose())?),
            charset: opt(&self.charset)?,
            url: Secret::new(env::expand(self.url.expose())?),
            max_connections: self.max_connections,
            idle_timeout: self.idle_timeout,
            demo_data: self.demo_data,
        })
    }

    /// The SQLite file path, when this is a SQLite spec given by path.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        (self.kind == SourceKind::Sqlite && self.url.is_empty())
            .then(|| self.database.as_ref().map(PathBuf::from))
            .flatten()
    }

    /// Where it points, for listings: `user@host:port/db`, a URL with its password masked, or
    /// the SQLite path. Never contains a password.
    pub fn location(&self) -> String {
        if !self.url.is_empty() {
            return mask_url(self.url.expose());
        }
        if self.kind == SourceKind::Sqlite {
            return self.database.clone().unwrap_or_default();
        }
        let user = self
            .username
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let port = self.port.or(self.kind.default_port()).unwrap_or_default();
        format!(
            "{user}{}:{port}/{}",
            self.host.as_deref().unwrap_or(""),
            self.database.as_deref().unwrap_or("")
        )
    }
}

/// The URL with its secrets replaced by `***`: the password in `scheme://user:password@host`
/// and the value of every query parameter whose name looks like a credential (`password=`,
/// `pwd=`, `sslpassword=`, `token=`, `api_key=`, `secret=`, `auth=`, ...; any case, `&` or `;`
/// separated). A password holding `/`, `?` or `@` unescaped is masked whole.
pub fn mask_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let query_start = rest.find('?').unwrap_or(rest.len());
    let at = rest[..query_start].rfind('@').or_else(|| rest.rfind('@'));
    let mut out = String::with_capacity(url.len() + 8);
    out.push_str(&url[..start]);
    let host_start = match at {
        Some(at) => {
            match rest[..at].find(':') {
                Some(colon) => {
                    out.push_str(&rest[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(&rest[..at]),
            }
            at
        }
        None => 0,
    };
    let tail = &rest[host_start..];
    match tail.find('?') {
        Some(q) => {
            out.push_str(&tail[..=q]);
            for pair in tail[q + 1..].split_inclusive(['&', ';']) {
                match pair.split_once('=') {
                    Some((name, value)) if is_secret_param(name) => {
                        out.push_str(name);
                        out.push_str("=***");
                        if let Some(sep) = value.chars().last().filter(|c| matches!(c, '&' | ';')) {
                            out.push(sep);
                        }
                    }
                    _ => out.push_str(pair),
                }
            }
        }
        None => out.push_str(tail),
    }
    out
}

/// True for query parameter names that carry credentials (`Password`, `ssl-password`,
/// `access_token`, `apiKey`, `pass%77ord`, ...).
fn is_secret_param(name: &str) -> bool {
    let name = percent_decode(name).to_ascii_lowercase();
    [
        "pass",
        "pwd",
        "secret",
        "token",
        "key",
        "auth",
        "credential",
        "sig",
    ]
    .iter()
    .any(|m| name.contains(m))
}

/// `%XX` escapes decoded (invalid ones kept as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|&c| hex(c)),
                b.get(i + 2).and_then(|&c| hex(c)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_url_passwords() {
        assert_eq!(
            mask_url("mysql://u:p@ss@h:3306/db"),
            "mysql://u:***@h:3306/db"
        );
        assert_eq!(mask_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(mask_url("sqlite://./x.db"), "sqlite://./x.db");
    }

    #[test]
    fn masks_query_string_credentials() {
        for (url, want) in [
            (
                "postgres://u@h/db?password=SEKRET&sslmode=disable",
                "postgres://u@h/db?password=***&sslmode=disable",
            ),
            (
                "postgres://u@h/db?sslmode=disable&PassWord=SEKRET",
                "postgres://u@h/db?sslmode=disable&PassWord=***",
            ),
            (
                "mysql://h/db?pwd=SEKRET;charset=utf8",
                "mysql://h/db?pwd=***;charset=utf8",
            ),
            ("mysql://u:p@h?pass=SEKRET", "mysql://u:***@h?pass=***"),
            (
                "postgres://h/db?sslpassword=SEKRET",
                "postgres://h/db?sslpassword=***",
            ),
            (
                "x://h/?token=S&access_token=S&api_key=S&apiKey=S&secret=S&auth=S&key=S",
                "x://h/?token=***&access_token=***&api_key=***&apiKey=***&secret=***&auth=***&key=***",
            ),
            (
                "postgres://h/db?pass%77ord=SEKRET",
                "postgres://h/db?pass%77ord=***",
            ),
            (
                "postgres://h/db?password=SEK#RET",
                "postgres://h/db?password=***",
            ),
            (
                "sqlite:data.db?password=SEKRET",
                "sqlite:data.db?password=***",
            ),
            ("mysql://u:pa/ss?w@rd@h/db", "mysql://u:***@h/db"),
            (
                "postgres://h/db?application_name=reportd",
                "postgres://h/db?application_name=reportd",
            ),
        ] {
            assert_eq!(mask_url(url), want, "{url}");
            assert!(!mask_url(url).contains("SEK"), "{url}");
        }
    }

    #[test]
    fn validates_required_fields() {
        let mut s = DataSourceSpec::new(SourceKind::Mysql);
        assert!(s.validate().unwrap_err().to_string().contains("host"));
        s.host = Some("db".into());
        assert!(s.validate().is_ok());
        assert_eq!(s.location(), "db:3306/");
        let s = DataSourceSpec::new(SourceKind::Sqlite);
        assert!(s.validate().unwrap_err().to_string().contains("database"));
    }
}
