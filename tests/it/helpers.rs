//! Shared test helpers: scratch databases on the local MariaDB and PostgreSQL, and a
//! temporary working directory with a config file for driving the binary.

use assert_cmd::Command;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use reportd::config::{StoreKind, SystemDatabase};
use reportd::model::secret::Secret;

/// The MariaDB server tests use (`scripts/test.sh` exports it).
pub fn mysql_url() -> String {
    std::env::var("REPORTD_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// The PostgreSQL server tests use.
pub fn pg_url() -> String {
    std::env::var("REPORTD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A store backend under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Mysql,
    Postgres,
}

/// A fresh, uniquely named store: a SQLite file in a temp dir, or a database on the local
/// server that reportd creates on connect and this value drops at the end.
pub struct ScratchStore {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    /// The server URL of the scratch database (empty for SQLite).
    pub url: String,
    db_name: String,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn unique_name() -> String {
    format!(
        "reportd_t_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
            % 100_000
    )
}

fn with_database(base: &str, name: &str) -> String {
    let (prefix, _) = base.rsplit_once('/').expect("test URL has a database path");
    format!("{prefix}/{name}")
}

impl ScratchStore {
    pub fn new(backend: Backend) -> ScratchStore {
        let db_name = unique_name();
        let url = match backend {
            Backend::Sqlite => String::new(),
            Backend::Mysql => with_database(&mysql_url(), &db_name),
            Backend::Postgres => with_database(&pg_url(), &db_name),
        };
        ScratchStore {
            backend,
            dir: tempfile::tempdir().unwrap(),
            url,
            db_name,
        }
    }

    /// The `system_database` settings for this store.
    pub fn settings(&self) -> SystemDatabase {
        let mut s = SystemDatabase::default();
        match self.backend {
            Backend::Sqlite => s.sqlite_path = self.dir.path().join("system.db"),
            Backend::Mysql => {
                s.kind = StoreKind::Mysql;
                s.url = Secret::new(self.url.clone());
            }
            Backend::Postgres => {
                s.kind = StoreKind::Postgresql;
                s.url = Secret::new(self.url.clone());
            }
        }
        s
    }

    /// The `system_database:` section of a config file for this store.
    pub fn yaml(&self) -> String {
        match self.backend {
            Backend::Sqlite => {
                "system_database:\n  type: sqlite\n  sqlite_path: ./data/system.db\n".into()
            }
            Backend::Mysql => format!("system_database:\n  type: mysql\n  url: {}\n", self.url),
            Backend::Postgres => format!(
                "system_database:\n  type: postgresql\n  url: {}\n",
                self.url
            ),
        }
    }
}

impl ScratchStore {
    /// Creates the scratch database now (for use as a data source) and returns its URL; for
    /// SQLite a file in the temp directory.
    pub async fn create_source(&self) -> String {
        use sqlx::{AssertSqlSafe, Connection};
        match self.backend {
            Backend::Sqlite => {
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    self.dir.path().join("source.db").display()
                );
                sqlx::SqliteConnection::connect(&url)
                    .await
                    .unwrap()
                    .close()
                    .await
                    .unwrap();
                url
            }
            Backend::Mysql => {
                let mut c = sqlx::MySqlConnection::connect(&mysql_url()).await.unwrap();
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "CREATE DATABASE `{}` CHARACTER SET utf8mb4",
                    self.db_name
                )))
                .execute(&mut c)
                .await
                .unwrap();
                self.url.clone()
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&pg_url()).await.unwrap();
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "CREATE DATABASE \"{}\"",
                    self.db_name
                )))
                .execute(&mut c)
                .await
                .unwrap();
                self.url.clone()
            }
        }
    }
}

/// Runs SQL statements (separated by `;` lines) on a source URL.
pub async fn exec(url: &str, sql: &str) {
    use sqlx::{AssertSqlSafe, Connection};
    let sql = AssertSqlSafe(sql.to_string());
    if url.starts_with("mysql:") {
        let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    } else if url.starts_with("postgres:") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    }
}

impl Drop for ScratchStore {
    fn drop(&mut self) {
        if self.backend == Backend::Sqlite {
            return;
        }
        let (backend, name) = (self.backend, self.db_name.clone());
        // Our own runtime on our own thread: works whether or not the test runs in one.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(drop_database(backend, &name));
        })
        .join();
    }
}

async fn drop_database(backend: Backend, name: &str) {
    use sqlx::{AssertSqlSafe, Connection};
    match backend {
        Backend::Mysql => {
            if let Ok(mut c) = sqlx::MySqlConnection::connect(&mysql_url()).await {
                let _ = sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS `{name}`")))
                    .execute(&mut c)
                    .await;
            }
        }
        Backend::Postgres => {
            if let Ok(mut c) = sqlx::PgConnection::connect(&pg_url()).await {
                let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut c)
                .await;
            }
        }
        Backend::Sqlite => {}
    }
}

/// A working directory with a `config.yaml`, for running the binary.
pub struct Workdir {
    pub dir: tempfile::TempDir,
    /// Keeps a server store alive (and drops it at the end).
    _store: ScratchStore,
}

impl Workdir {
    /// A directory whose config has `body` plus a store section for `backend`, and a copy
    /// of the repository's templates.
    pub fn new(backend: Backend, body: &str) -> Workdir {
        let store = ScratchStore::new(backend);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.yaml"),
            format!("{}{}", store.yaml(), allow_loopback(&any_port(body))),
        )
        .unwrap();
        let templates = dir.path().join("templates");
        std::fs::create_dir_all(&templates).unwrap();
        for entry in std::fs::read_dir(repo().join("templates")).unwrap() {
            let p = entry.unwrap().path();
            std::fs::copy(&p, templates.join(p.file_name().unwrap())).unwrap();
        }
        Workdir { dir, _store: store }
    }

    /// A directory with a SQLite store and the demo data source.
    pub fn sqlite_with_demo() -> Workdir {
        Workdir::new(Backend::Sqlite, DEMO_SOURCE)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `reportd --config config.yaml ARGS...`, run in this directory.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = reportd_cmd();
        c.current_dir(self.path())
            .arg("--config")
            .arg("config.yaml")
            .args(args);
        c
    }

    /// Writes a file in this directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Runs the command, expects success, and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "reportd {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs the command, expects exit code `code`, and returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.cmd(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "reportd {args:?}: stdout {}\nstderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(!err.contains("panicked"), "panic: {err}");
        err
    }
}

/// `body` with `http.bind` on port 0 unless it sets a bind: daemons of tests running at the
/// same time must not all listen on the default 127.0.0.1:5002.
fn any_port(body: &str) -> String {
    let any = "  bind: 127.0.0.1:0\n";
    if body.contains("  bind:") {
        body.to_string()
    } else if body.starts_with("http:\n") || body.contains("\nhttp:\n") {
        body.replacen("http:\n", &format!("http:\n{any}"), 1)
    } else {
        format!("{body}http:\n{any}")
    }
}

/// `body` with `security.outbound_allow: [127.0.0.1]` unless it sets `outbound_allow`: the
/// stand-ins that tasks, jobs and test messages reach listen on loopback, which the outbound
/// policy refuses unless allowed (tests of the policy itself set their own list).
pub fn allow_loopback(body: &str) -> String {
    let allow = "  outbound_allow: [127.0.0.1]\n";
    if body.contains("outbound_allow:") {
        body.to_string()
    } else if body.starts_with("security:\n") || body.contains("\nsecurity:\n") {
        body.replacen("security:\n", &format!("security:\n{allow}"), 1)
    } else {
        format!("{body}security:\n{allow}")
    }
}

/// The `reportd` binary with a clean environment for config lookup.
pub fn reportd_cmd() -> Command {
    let mut c = Command::cargo_bin("reportd").unwrap();
    c.env_remove("REPORTD_CONFIG").env_remove("RUST_LOG");
    c
}

/// The name of the OS user running the tests (`id -un`): the CLI's audit actor.
pub fn os_user() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `scheduler` lines that let tasks fire every second (`scheduler.min_interval: 1`; the
/// default is 60 s), for a config's `scheduler:` section.
pub const FAST_CRON: &str = "  min_interval: 1\n";

/// A config snippet with the demo SQLite data source.
pub const DEMO_SOURCE: &str =
    "data_sources:\n  demo:\n    type: sqlite\n    database: ./data/demo.db\n    demo_data: true\n";

/// Every file below `dir`, recursively (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p))
            } else {
                out.push(p)
            }
        }
    }
    out
}

/// A TCP port free on 127.0.0.1 right now (for a daemon's `http.bind`).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Stops the daemon of a directory at the end, even when the test failed half-way.
pub struct StopAtEnd<'a>(pub &'a Workdir);

impl Drop for StopAtEnd<'_> {
    fn drop(&mut self) {
        let _ = self.0.cmd(&["stop"]).output();
    }
}
