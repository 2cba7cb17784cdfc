//! What a data source's account can do beyond reading, asked of the server itself: text rules
//! cannot see what the account's own functions and views do, and operators do connect as
//! root. `check`, `datasource test`, the API's test and the console report the rights by
//! name; `security.read_only_accounts: require` refuses such a source for runs, previews and
//! jobs ([`enforce`], from [`Source::open`]).
//!
//! - MySQL, MariaDB, ADB: `SHOW GRANTS` (for the current user, then for each role granted to
//!   it) parsed; every privilege beyond `SELECT`, `SHOW VIEW` and `USAGE` is named, and
//!   `GRANT OPTION`; a role whose grants cannot be read is named as `role NAME`.
//! - PostgreSQL: superuser and the other role attributes (`createrole`, `createdb`,
//!   `replication`, `bypassrls`) of any role the account is a member of; membership of
//!   `pg_read_server_files`, `pg_write_server_files`, `pg_execute_server_program`,
//!   `pg_signal_backend` and the other predefined roles that write or run things; `CREATE` on
//!   the database or in a schema; `INSERT`/`UPDATE`/`DELETE`/`TRUNCATE` on any table or view;
//!   owning tables; `dblink` (or `adminpack`, ...) installed with functions the account may
//!   run, and `postgres_fdw`/`file_fdw` installed with a wrapper or server it may use.
//! - SQLite: nothing (a file opened read-only).
//!
//! Answers are cached per connection settings for [`CACHE_FOR`], so a run does not pay a
//! `SHOW GRANTS` every time; a connection test always asks again (and refreshes the cache).

use sqlx::{AssertSqlSafe, MySqlConnection, PgConnection, Row};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use super::sqllex::{self, Kind};
use super::{Source, SourceError};
use crate::config::ReadOnlyAccounts;
use crate::model::datasource::{DataSourceSpec, Dialect, SourceKind};

/// How long an answer is reused for runs, previews and jobs: a grant revoked (or given) is
/// seen within this time.
pub const CACHE_FOR: Duration = Duration::from_secs(300);

/// MySQL privileges that only read.
const MYSQL_READS: [&str; 3] = ["SELECT", "SHOW VIEW", "USAGE"];
/// Most roles followed through `SHOW GRANTS FOR role`.
const MAX_ROLES: usize = 32;

/// PostgreSQL's predefined roles that reach beyond reading, in report order.
const PG_ROLES: [&str; 8] = [
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
    "pg_signal_backend",
    "pg_write_all_data",
    "pg_checkpoint",
    "pg_create_subscription",
    "pg_maintain",
];
/// Extensions whose functions reach other servers, files or run SQL from text.
const PG_FUNCTION_EXTENSIONS: [&str; 5] = [
    "dblink",
    "adminpack",
    "pg_background",
    "aws_s3",
    "aws_lambda",
];
/// Foreign data wrappers: usable through the wrapper or one of its servers.
const PG_WRAPPERS: [&str; 6] = [
    "postgres_fdw",
    "file_fdw",
    "mysql_fdw",
    "oracle_fdw",
    "tds_fdw",
    "odbc_fdw",
];

/// The one-line warning for `rights` (not empty).
pub fn describe(rights: &[String]) -> String {
    format!("account can do more than read: {}", rights.join(", "))
}

/// What the account of an open source can do beyond reading, in a stable order (empty: it
/// only reads). Asks the server every time.
///
/// # Errors
/// The server's error, naming the data source.
pub async fn of_source(source: &Source, name: &str) -> Result<Vec<String>, SourceError> {
    let db = |cause| SourceError::Database {
        name: name.to_string(),
        action: "reading the account's rights",
        cause,
    };
    match source {
        Source::MySql(pool) => {
            let mut conn = pool.acquire().await.map_err(db)?;
            mysql(&mut conn).await.map_err(db)
        }
        Source::Postgres(pool) => {
            let mut conn = pool.acquire().await.map_err(db)?;
            postgres(&mut conn).await.map_err(db)
        }
        Source::Sqlite(_) => Ok(Vec::new()),
    }
}

/// Under `require`, refuses a source whose account can do more than read (asking the server
/// at most once per [`CACHE_FOR`] for the same settings); under `warn`, does nothing.
///
/// # Errors
/// [`SourceError::NotReadOnly`] naming the rights, or the error of asking.
pub async fn enforce(
    name: &str,
    spec: &DataSourceSpec,
    source: &Source,
    policy: ReadOnlyAccounts,
) -> Result<(), SourceError> {
    if policy == ReadOnlyAccounts::Warn || spec.kind == SourceKind::Sqlite {
        return Ok(());
    }
    let key = fingerprint(spec);
    let rights = match cached(key) {
        Some(r) => r,
        None => {
            let r = of_source(source, name).await?;
            remember(spec, &r);
            r
        }
    };
    refuse_unless_read_only(name, rights)
}

/// [`SourceError::NotReadOnly`] unless `rights` is empty.
///
/// # Errors
/// The refusal, naming the rights.
pub fn refuse_unless_read_only(name: &str, rights: Vec<String>) -> Result<(), SourceError> {
    if rights.is_empty() {
        return Ok(());
    }
    Err(SourceError::NotReadOnly {
        name: name.to_string(),
        rights,
    })
}

/// Keeps a fresh answer for the spec.
pub fn remember(spec: &DataSourceSpec, rights: &[String]) {
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.retain(|_, (at, _)| at.elapsed() < CACHE_FOR);
    cache.insert(fingerprint(spec), (Instant::now(), rights.to_vec()));
}

type Cache = HashMap<u64, (Instant, Vec<String>)>;
static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Default::default);
/// Random per process: the keys (which cover the password) mean nothing outside it.
static HASHER: LazyLock<std::collections::hash_map::RandomState> = LazyLock::new(Default::default);

fn cached(key: u64) -> Option<Vec<String>> {
    let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .get(&key)
        .filter(|(at, _)| at.elapsed() < CACHE_FOR)
        .map(|(_, r)| r.clone())
}

/// Everything that decides which account on which server a spec logs in as.
fn fingerprint(spec: &DataSourceSpec) -> u64 {
    HASHER.hash_one((
        spec.kind.as_str(),
        spec.url.expose(),
        &spec.host,
        spec.port,
        &spec.database,
        &spec.username,
        spec.password.expose(),
    ))
}

/// MySQL/MariaDB: `SHOW GRANTS`, then `SHOW GRANTS FOR` each role it names.
///
/// # Errors
/// The server's error for the first `SHOW GRANTS`.
pub async fn mysql(conn: &mut MySqlConnection) -> Result<Vec<String>, sqlx::Error> {
    let mut grants = Grants::default();
    for line in grant_lines(conn, "SHOW GRANTS".into()).await? {
        grants.read(&line);
    }
    let mut followed = 0;
    while let Some(role) = grants.pending.pop() {
        followed += 1;
        let lines = if followed <= MAX_ROLES {
            grant_lines(conn, format!("SHOW GRANTS FOR {}", role.quoted())).await
        } else {
            Err(sqlx::Error::RowNotFound)
        };
        match lines {
            Ok(lines) => lines.iter().for_each(|l| grants.read(l)),
            Err(_) => grants.unread_roles.push(role.shown()),
        }
    }
    Ok(grants.rights())
}

/// The lines of a `SHOW GRANTS` (text protocol: not every server prepares it).
async fn grant_lines(conn: &mut MySqlConnection, sql: String) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::raw_sql(AssertSqlSafe(sql)).fetch_all(conn).await?;
    rows.iter()
        .map(|row| {
            row.try_get::<String, _>(0).or_else(|_| {
                row.try_get::<Vec<u8>, _>(0)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            })
        })
        .collect()
}

/// An account or role named in a grant: `name` or `name@host`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Account {
    name: String,
    host: Option<String>,
}

impl Account {
    /// As SQL: backquoted, with any backquote doubled.
    fn quoted(&self) -> String {
        let q = |s: &str| format!("`{}`", s.replace('`', "``"));
        match &self.host {
            Some(h) => format!("{}@{}", q(&self.name), q(h)),
            None => q(&self.name),
        }
    }

    /// As shown in a report.
    fn shown(&self) -> String {
        format!("role {}", self.name)
    }
}

/// What the grant lines read so far give.
#[derive(Debug, Default)]
struct Grants {
    privileges: Vec<String>,
    grant_option: bool,
    admin_option: bool,
    unreadable: bool,
    /// Roles seen, and those still to follow.
    roles: Vec<Account>,
    pending: Vec<Account>,
    unread_roles: Vec<String>,
}

impl Grants {
    /// Reads one line of `SHOW GRANTS`: `GRANT privs ON what TO who [WITH GRANT OPTION]` or
    /// `GRANT role, ... TO who [WITH ADMIN OPTION]`; other lines (`SET DEFAULT ROLE`,
    /// MySQL's partial `REVOKE`) add nothing.
    fn read(&mut self, line: &str) {
        let Ok(t) = sqllex::tokens(line, Dialect::MySql, false) else {
            self.unreadable = true;
            return;
        };
        let word = |i: usize| {
            t.get(i)
                .filter(|k| k.kind == Kind::Word)
                .map(|k| line[k.start..k.end].to_ascii_uppercase())
                .unwrap_or_default()
        };
        if word(0) != "GRANT" {
            return;
        }
        let (mut depth, mut on, mut to) = (0usize, None, None);
        for (i, tok) in t.iter().enumerate().skip(1) {
            match tok.kind {
                Kind::Punct(b'(') => depth += 1,
                Kind::Punct(b')') => depth = depth.saturating_sub(1),
                Kind::Word if depth == 0 => match word(i).as_str() {
                    "ON" if on.is_none() => on = Some(i),
                    "TO" => {
                        to = Some(i);
                        break;
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        let Some(to) = to else {
            self.unreadable = true;
            return;
        };
        let items = split_list(&t[1..on.unwrap_or(to)]);
        for item in items {
            match on {
                Some(_) => {
                    // `SELECT (col, ...)`: the column list is not part of the name.
                    let words: Vec<String> = item
                        .iter()
                        .take_while(|k| k.kind != Kind::Punct(b'('))
                        .map(|k| line[k.start..k.end].to_ascii_uppercase())
                        .collect();
                    let privilege = words.join(" ");
                    if !privilege.is_empty()
                        && !MYSQL_READS.contains(&privilege.as_str())
                        && !self.privileges.contains(&privilege)
                    {
                        self.privileges.push(privilege);
                    }
                }
                None => {
                    if let Some(role) = account(line, item)
                        && !self.roles.contains(&role)
                    {
                        self.roles.push(role.clone());
                        self.pending.push(role);
                    }
                }
            }
        }
        for i in to..t.len() {
            if word(i) == "WITH" && word(i + 2) == "OPTION" {
                match word(i + 1).as_str() {
                    "GRANT" => self.grant_option = true,
                    "ADMIN" => self.admin_option = true,
                    _ => {}
                }
            }
        }
    }

    /// The rights in report order: `ALL PRIVILEGES` first, the other privileges sorted,
    /// `GRANT OPTION`, `ADMIN OPTION`, roles whose grants could not be read.
    fn rights(mut self) -> Vec<String> {
        self.privileges
            .sort_by_key(|p| (!p.starts_with("ALL"), p.clone()));
        let mut out = self.privileges;
        if self.grant_option {
            out.push("GRANT OPTION".into());
        }
        if self.admin_option {
            out.push("ADMIN OPTION".into());
        }
        self.unread_roles.sort();
        out.extend(self.unread_roles);
        if self.unreadable {
            out.push("grants that could not be read".into());
        }
        out
    }
}

/// Splits tokens at the commas outside parentheses.
fn split_list(t: &[sqllex::Token]) -> Vec<&[sqllex::Token]> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, tok) in t.iter().enumerate() {
        match tok.kind {
            Kind::Punct(b'(') => depth += 1,
            Kind::Punct(b')') => depth = depth.saturating_sub(1),
            Kind::Punct(b',') if depth == 0 => {
                out.push(&t[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&t[start..]);
    out
}

/// `` `name` `` or `` `name`@`host` `` (quoted or not).
fn account(line: &str, t: &[sqllex::Token]) -> Option<Account> {
    let part = |tok: &sqllex::Token| {
        let text = &line[tok.start..tok.end];
        match tok.kind {
            Kind::Quoted => {
                let q = &text[..1];
                Some(text[1..text.len() - 1].replace(&q.repeat(2), q))
            }
            Kind::Word => Some(text.to_string()),
            _ => None,
        }
    };
    match t {
        [name] => Some(Account {
            name: part(name)?,
            host: None,
        }),
        [name, at, host] if at.kind == Kind::Punct(b'@') => Some(Account {
            name: part(name)?,
            host: Some(part(host)?),
        }),
        _ => None,
    }
}

/// PostgreSQL: role attributes, predefined roles, database and schema `CREATE`, table
/// writes, ownership and usable extensions.
///
/// # Errors
/// The server's error.
pub async fn postgres(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    let mut out = Vec::new();
    type Attributes = (
        Option<bool>,
        Option<bool>,
        Option<bool>,
        Option<bool>,
        Option<bool>,
    );
    let (sup, createrole, createdb, replication, bypassrls): Attributes = sqlx::query_as(
        "SELECT bool_or(rolsuper), bool_or(rolcreaterole), bool_or(rolcreatedb), \
         bool_or(rolreplication), bool_or(rolbypassrls) \
         FROM pg_catalog.pg_roles WHERE pg_catalog.pg_has_role(current_user, oid, 'MEMBER')",
    )
    .fetch_one(&mut *conn)
    .await?;
    for (has, what) in [
        (sup, "superuser"),
        (createrole, "createrole"),
        (createdb, "createdb"),
        (replication, "replication"),
        (bypassrls, "bypassrls"),
    ] {
        if has == Some(true) {
            out.push(what.to_string());
        }
    }
    let roles: Vec<(String,)> = sqlx::query_as(
        "SELECT rolname::text FROM pg_catalog.pg_roles WHERE rolname = ANY($1) \
         AND pg_catalog.pg_has_role(current_user, oid, 'MEMBER')",
    )
    .bind(PG_ROLES.to_vec())
    .fetch_all(&mut *conn)
    .await?;
    for r in PG_ROLES {
        if roles.iter().any(|(name,)| name == r) {
            out.push(r.to_string());
        }
    }
    let (create_db,): (bool,) =
        sqlx::query_as("SELECT pg_catalog.has_database_privilege(current_database(), 'CREATE')")
            .fetch_one(&mut *conn)
            .await?;
    if create_db {
        out.push("CREATE on the database".into());
    }
    let schemas: Vec<(String,)> = sqlx::query_as(
        "SELECT nspname::text FROM pg_catalog.pg_namespace \
         WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' \
         AND pg_catalog.has_schema_privilege(oid, 'CREATE') ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    match schemas.as_slice() {
        [] => {}
        [(one,)] => out.push(format!("CREATE in schema {one}")),
        [(first,), rest @ ..] => out.push(format!(
            "CREATE in schema {first} (and {} more)",
            rest.len()
        )),
    }
    let writes: Vec<(String,)> = sqlx::query_as(
        "SELECT x.p FROM unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) \
         WITH ORDINALITY AS x(p, o) \
         WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class c \
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
           WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') \
           AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' \
           AND CASE WHEN x.p IN ('INSERT', 'UPDATE') \
             THEN pg_catalog.has_any_column_privilege(c.oid, x.p) \
             ELSE pg_catalog.has_table_privilege(c.oid, x.p) END) \
         ORDER BY x.o",
    )
    .fetch_all(&mut *conn)
    .await?;
    out.extend(writes.into_iter().map(|(p,)| format!("{p} on tables")));
    let (owns,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c \
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
           WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') \
           AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' \
           AND pg_catalog.pg_has_role(c.relowner, 'USAGE'))",
    )
    .fetch_one(&mut *conn)
    .await?;
    if owns {
        out.push("owns tables".into());
    }
    let extensions: Vec<(String,)> = sqlx::query_as(
        "SELECT e.extname::text FROM pg_catalog.pg_extension e \
         WHERE (e.extname = ANY($1) AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d \
             JOIN pg_catalog.pg_proc p ON p.oid = d.objid \
             WHERE d.classid = 'pg_catalog.pg_proc'::regclass \
             AND d.refclassid = 'pg_catalog.pg_extension'::regclass \
             AND d.refobjid = e.oid AND d.deptype = 'e' \
             AND pg_catalog.has_function_privilege(p.oid, 'EXECUTE'))) \
         OR (e.extname = ANY($2) AND EXISTS (SELECT 1 FROM pg_catalog.pg_foreign_data_wrapper w \
             WHERE w.fdwname = e.extname \
             AND (pg_catalog.has_foreign_data_wrapper_privilege(w.oid, 'USAGE') \
               OR EXISTS (SELECT 1 FROM pg_catalog.pg_foreign_server s \
                 WHERE s.srvfdw = w.oid AND pg_catalog.has_server_privilege(s.oid, 'USAGE')))))",
    )
    .bind(PG_FUNCTION_EXTENSIONS.to_vec())
    .bind(PG_WRAPPERS.to_vec())
    .fetch_all(&mut *conn)
    .await?;
    for e in PG_FUNCTION_EXTENSIONS.iter().chain(PG_WRAPPERS.iter()) {
        if extensions.iter().any(|(name,)| name == e) {
            out.push(format!("{e} installed"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rights(lines: &[&str]) -> Vec<String> {
        let mut g = Grants::default();
        for l in lines {
            g.read(l);
        }
        g.pending.clear();
        g.rights()
    }

    #[test]
    fn mariadb_root_and_a_reader() {
        assert_eq!(
            rights(&[
                "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` IDENTIFIED VIA mysql_native_password USING '*81F5E21E35407D884A6CD4A731AEBFB6AF209E1B' OR unix_socket WITH GRANT OPTION",
                "GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION",
            ]),
            ["ALL PRIVILEGES", "PROXY", "GRANT OPTION"]
        );
        assert!(
            rights(&[
                "GRANT USAGE ON *.* TO `ro`@`%` IDENTIFIED BY PASSWORD '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19'",
                "GRANT SELECT, SHOW VIEW ON `shop`.* TO `ro`@`%`",
                "GRANT SELECT (`id`, `name`) ON `shop`.`users` TO `ro`@`%`",
            ])
            .is_empty()
        );
    }

    #[test]
    fn writes_file_and_dynamic_privileges_are_named_once() {
        assert_eq!(
            rights(&[
                "GRANT FILE, PROCESS, SUPER ON *.* TO `u`@`%`",
                "GRANT SELECT, INSERT, UPDATE (`note`), DELETE, CREATE TEMPORARY TABLES, LOCK TABLES ON `shop`.* TO `u`@`%`",
                "GRANT INSERT ON `other`.* TO `u`@`%`",
                "GRANT BACKUP_ADMIN,BINLOG_ADMIN ON *.* TO `u`@`%`",
                "REVOKE INSERT ON `mysql`.* FROM `u`@`%`",
                "SET DEFAULT ROLE `r` FOR `u`@`%`",
            ]),
            [
                "BACKUP_ADMIN",
                "BINLOG_ADMIN",
                "CREATE TEMPORARY TABLES",
                "DELETE",
                "FILE",
                "INSERT",
                "LOCK TABLES",
                "PROCESS",
                "SUPER",
                "UPDATE"
            ]
        );
    }

    #[test]
    fn roles_are_followed_or_named() {
        let mut g = Grants::default();
        g.read("GRANT `reporting`, `ops`@`%` TO `u`@`%` WITH ADMIN OPTION");
        assert_eq!(
            g.pending,
            [
                Account {
                    name: "reporting".into(),
                    host: None
                },
                Account {
                    name: "ops".into(),
                    host: Some("%".into())
                }
            ]
        );
        assert_eq!(g.pending[1].quoted(), "`ops`@`%`");
        let odd = Account {
            name: "a`b".into(),
            host: None,
        };
        assert_eq!(odd.quoted(), "`a``b`");
        g.pending.clear();
        g.unread_roles.push("role ops".into());
        g.read("GRANT SELECT ON `shop`.* TO `reporting`");
        assert_eq!(g.rights(), ["ADMIN OPTION", "role ops"]);
        assert_eq!(
            rights(&["GRANT nonsense"]),
            ["grants that could not be read"]
        );
    }

    #[test]
    fn the_cache_is_keyed_by_the_whole_login() {
        let mut a = DataSourceSpec::new(SourceKind::Mysql);
        a.host = Some("db".into());
        a.username = Some("ro".into());
        let mut b = a.clone();
        b.username = Some("root".into());
        remember(&a, &[]);
        remember(&b, &["SUPER".into()]);
        assert_eq!(cached(fingerprint(&a)), Some(vec![]));
        assert_eq!(cached(fingerprint(&b)), Some(vec!["SUPER".to_string()]));
        let mut c = a.clone();
        c.url = crate::model::secret::Secret::new("mysql://root@db/x");
        assert_eq!(cached(fingerprint(&c)), None);
    }
}
