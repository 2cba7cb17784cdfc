//! Over-privileged database accounts (issue 24, class 1), against a MariaDB source as `root`
//! and a PostgreSQL source as `postgres` with `dblink` installed: dangerous server functions
//! and password tables are refused by previews, export jobs, task saves and runs, naming
//! them, and nothing runs (a `dblink_exec` that would write a marker row leaves the table
//! empty, a session that `pg_terminate_backend` names lives on); `check`, `datasource test`,
//! the API's test and the console name the account's rights; with
//! `security.read_only_accounts: require` those sources are refused everywhere while
//! least-privilege accounts work.

use serde_json::{Value, json};
use sqlx::Connection;
use std::time::Duration;

use crate::api_daemon::Daemon;
use crate::api_exports::until_not;
use crate::browser::Browser;
use crate::helpers::{Backend, ScratchStore, Workdir, exec, mysql_url, pg_url};

/// A root MariaDB scratch database and a superuser PostgreSQL one, each with `t` (one row);
/// the PostgreSQL one has `dblink` and an empty `marker`.
struct RootSources {
    maria: ScratchStore,
    pg: ScratchStore,
}

impl RootSources {
    async fn new() -> RootSources {
        let maria = ScratchStore::new(Backend::Mysql);
        let url = maria.create_source().await;
        exec(&url, "CREATE TABLE t (id INT); INSERT INTO t VALUES (1);").await;
        let pg = ScratchStore::new(Backend::Postgres);
        let url = pg.create_source().await;
        exec(
            &url,
            "CREATE EXTENSION IF NOT EXISTS dblink; CREATE TABLE t (id INT); \
             INSERT INTO t VALUES (1); CREATE TABLE marker (id INT);",
        )
        .await;
        RootSources { maria, pg }
    }

    /// The PostgreSQL scratch database's name.
    fn pg_db(&self) -> &str {
        self.pg.url.rsplit_once('/').unwrap().1
    }

    async fn markers(&self) -> i64 {
        let mut c = sqlx::PgConnection::connect(&self.pg.url).await.unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM marker")
            .fetch_one(&mut c)
            .await
            .unwrap();
        n
    }
}

/// `data_sources` entries (continuing the map): (name, type, url).
fn sources(list: &[(&str, &str, &str)]) -> String {
    list.iter()
        .map(|(name, kind, url)| format!("  {name}:\n    type: {kind}\n    url: \"{url}\"\n"))
        .collect()
}

const REQUIRE: &str = "security:\n  read_only_accounts: require\n";

#[tokio::test]
async fn dangerous_functions_are_refused_everywhere_and_nothing_runs() {
    let db = RootSources::new().await;
    let d = Daemon::start(
        Backend::Sqlite,
        &sources(&[
            ("maria", "mysql", &db.maria.url),
            ("pg", "postgresql", &db.pg.url),
        ]),
    )
    .await;
    let editor = d.login("ed", "editor").await;
    // Another session on the server, which pg_terminate_backend would end.
    let mut victim = sqlx::PgConnection::connect(&db.pg.url).await.unwrap();
    let (pid,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
        .fetch_one(&mut victim)
        .await
        .unwrap();
    let dsn = format!("dbname={} host=127.0.0.1 user=postgres", db.pg_db());
    let marker = format!("select \"dblink_exec\"('{dsn}', 'INSERT INTO marker VALUES (1)')");
    let cases = [
        (
            "maria",
            "SELECT LOAD_FILE('/etc/passwd') AS f".to_string(),
            "LOAD_FILE() reads server files",
        ),
        (
            "maria",
            "SELECT * FROM mysql.user".into(),
            "mysql.user holds password hashes",
        ),
        (
            "maria",
            "SELECT GET_LOCK('reportd_t', 1)".into(),
            "GET_LOCK()",
        ),
        (
            "pg",
            "select PG_CATALOG.pg_read_file('/etc/passwd')".into(),
            "pg_read_file() reads server files",
        ),
        ("pg", marker.clone(), "dblink_exec() reaches other servers"),
        // Attribute notation: PostgreSQL calls pg_read_file('/etc/passwd').
        (
            "pg",
            "SELECT ('/etc/passwd'::text).pg_read_file".into(),
            "pg_read_file() reads server files",
        ),
        (
            "pg",
            format!("SELECT pg_terminate_backend({pid})"),
            "pg_terminate_backend() disturbs other sessions",
        ),
        (
            "pg",
            "SELECT rolname, rolpassword FROM pg_authid".into(),
            "pg_authid holds password hashes",
        ),
        ("pg", "SELECT * FROM pg_ls_dir('/')".into(), "pg_ls_dir()"),
    ];
    for (i, (src, sql, want)) in cases.iter().enumerate() {
        let (s, b) = d
            .call_as(
                &editor,
                "POST",
                "/api/preview",
                Some(json!({"data_source": src, "sql": sql})),
            )
            .await;
        let error = b["error"].as_str().unwrap_or_default();
        assert_eq!(s, 422, "preview {sql}: {b}");
        assert!(
            error.contains(&format!("data source {src}: refused: ")) && error.contains(want),
            "preview {sql}: {b}"
        );
        let (s, b) = d
            .call_as(
                &editor,
                "POST",
                "/api/exports",
                Some(json!({"data_source": src, "sql": sql, "format": "csv"})),
            )
            .await;
        assert_eq!(s, 422, "job {sql}: {b}");
        assert!(
            b["error"].as_str().unwrap().contains(want),
            "job {sql}: {b}"
        );
        let (s, b) = d
            .call_as(
                &editor,
                "POST",
                "/api/tasks",
                Some(json!({"name": format!("evil_{i}"), "data_source": src,
                            "cron": "0 9 * * *", "sql": sql})),
            )
            .await;
        assert_eq!(s, 422, "task {sql}: {b}");
        assert!(
            b["error"].as_str().unwrap().contains(want),
            "task {sql}: {b}"
        );
    }

    // A task saved against a MySQL source, whose source then becomes PostgreSQL: the run
    // checks the text again for its own server and sends nothing.
    let (s, b) = d
        .call(
            "POST",
            "/api/data-sources",
            Some(json!({"name": "flip", "type": "mysql", "url": db.maria.url})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, task) = d
        .call_as(
            &editor,
            "POST",
            "/api/tasks",
            Some(
                json!({"name": "flipped", "data_source": "flip", "cron": "0 9 * * *",
                        "sql": marker}),
            ),
        )
        .await;
    assert_eq!(s, 201, "a plain call on MySQL: {task}");
    let (s, b) = d
        .call(
            "PUT",
            "/api/data-sources/flip",
            Some(json!({"type": "postgresql", "url": db.pg.url})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, ran) = d
        .call_as(
            &editor,
            "POST",
            &format!("/api/tasks/{}/run", task["id"]),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 202, "{ran}");
    let run = d
        .until_not(
            &format!("/api/logs/{}", ran["execution_id"]),
            &["queued", "running"],
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(run["status"], "failed", "{run:#}");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("refused: dblink_exec() reaches other servers"),
        "{run:#}"
    );

    // Nothing ran: no marker row, the other session is alive.
    assert_eq!(db.markers().await, 0, "dblink_exec wrote");
    sqlx::query("SELECT 1")
        .execute(&mut victim)
        .await
        .expect("the other session was not terminated");
    // Ordinary reads still work on both.
    for src in ["maria", "pg"] {
        let (s, b) = d
            .call_as(
                &editor,
                "POST",
                "/api/preview",
                Some(json!({"data_source": src,
                            "sql": "SELECT id, COUNT(*) OVER () AS n, NOW() AS at FROM t"})),
            )
            .await;
        assert_eq!(s, 200, "{src}: {b}");
    }

    // The API's test names the rights (warn: the test passes).
    let (s, b) = d
        .call_as(&editor, "POST", "/api/data-sources/maria/test", None)
        .await;
    assert_eq!((s, &b["ok"]), (200, &json!(true)), "{b}");
    let rights: Vec<&str> = b["rights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        rights.contains(&"ALL PRIVILEGES") && rights.contains(&"GRANT OPTION"),
        "{b}"
    );
    assert!(
        b["warning"]
            .as_str()
            .unwrap()
            .starts_with("account can do more than read: ALL PRIVILEGES"),
        "{b}"
    );
    let (_, b) = d
        .call_as(&editor, "POST", "/api/data-sources/pg/test", None)
        .await;
    assert_eq!(b["ok"], true, "{b}");
    for right in ["superuser", "pg_execute_server_program", "dblink installed"] {
        assert!(
            b["rights"].as_array().unwrap().contains(&json!(right)),
            "{right}: {b}"
        );
    }
    let (_, b) = d
        .call_as(&editor, "POST", "/api/data-sources/demo/test", None)
        .await;
    assert_eq!(
        (&b["ok"], &b["rights"], &b["warning"]),
        (&json!(true), &json!([]), &Value::Null),
        "{b}"
    );
    // No password hash left the server.
    let seen = d.seen.lock().unwrap().clone();
    assert!(!seen.contains("authentication_string") && !seen.contains("SCRAM-SHA-256$"));
}

#[test]
fn check_and_datasource_test_name_the_rights() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(RootSources::new());
    let w = Workdir::new(
        Backend::Sqlite,
        &format!(
            "data_sources:\n{}",
            sources(&[
                ("maria", "mysql", &db.maria.url),
                ("pg", "postgresql", &db.pg.url)
            ])
        ),
    );
    let out = w.ok(&["check"]);
    assert!(out.contains("ok    data source maria ("), "{out}");
    assert!(
        out.contains(
            "warn  data source maria: account can do more than read: ALL PRIVILEGES, PROXY, GRANT OPTION"
        ) || out.contains("warn  data source maria: account can do more than read: ALL PRIVILEGES, GRANT OPTION"),
        "{out}"
    );
    let pg_line = out
        .lines()
        .find(|l| l.starts_with("warn  data source pg: account can do more than read: superuser"))
        .unwrap_or_else(|| panic!("{out}"));
    for right in [
        "pg_read_server_files",
        "pg_execute_server_program",
        "pg_signal_backend",
        "CREATE on the database",
        "INSERT on tables",
        "dblink installed",
    ] {
        assert!(pg_line.contains(right), "{right}: {pg_line}");
    }
    let out = w.ok(&["datasource", "test", "pg"]);
    assert!(out.starts_with("ok  pg ("), "{out}");
    assert!(
        out.contains("\nwarn  pg: account can do more than read: superuser"),
        "{out}"
    );
}

/// A MariaDB user and a PostgreSQL role that may only read the scratch databases; dropped at
/// the end (before the databases).
struct ReaderAccounts {
    name: String,
    pg_url: String,
}

impl ReaderAccounts {
    async fn new(db: &RootSources) -> ReaderAccounts {
        let name = format!(
            "reportd_ro_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
                % 100_000
        );
        let maria_db = db.maria.url.rsplit_once('/').unwrap().1;
        exec(
            &mysql_url(),
            &format!(
                "CREATE USER '{name}'@'%' IDENTIFIED BY 'ro-pw-1'; \
                 GRANT SELECT ON `{maria_db}`.* TO '{name}'@'%';"
            ),
        )
        .await;
        exec(
            &pg_url(),
            &format!(
                "CREATE ROLE {name} LOGIN PASSWORD 'ro-pw-1'; \
                 GRANT CONNECT ON DATABASE \"{}\" TO {name};",
                db.pg_db()
            ),
        )
        .await;
        exec(
            &db.pg.url,
            &format!("GRANT USAGE ON SCHEMA public TO {name}; GRANT SELECT ON t TO {name};"),
        )
        .await;
        ReaderAccounts {
            name,
            pg_url: db.pg.url.clone(),
        }
    }

    fn url(&self, base: &str) -> String {
        let (scheme, rest) = base.split_once("://").unwrap();
        let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
        format!("{scheme}://{}:ro-pw-1@{rest}", self.name)
    }
}

impl Drop for ReaderAccounts {
    fn drop(&mut self) {
        let (name, pg) = (self.name.clone(), self.pg_url.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                use sqlx::AssertSqlSafe;
                if let Ok(mut c) = sqlx::MySqlConnection::connect(&mysql_url()).await {
                    let _ =
                        sqlx::raw_sql(AssertSqlSafe(format!("DROP USER IF EXISTS '{name}'@'%'")))
                            .execute(&mut c)
                            .await;
                }
                if let Ok(mut c) = sqlx::PgConnection::connect(&pg).await {
                    let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                        "DROP OWNED BY {name}; DROP ROLE IF EXISTS {name}"
                    )))
                    .execute(&mut c)
                    .await;
                }
            });
        })
        .join();
    }
}

#[tokio::test]
async fn require_refuses_powerful_accounts_and_least_privilege_works() {
    let db = RootSources::new().await;
    let ro = ReaderAccounts::new(&db).await;
    let list = sources(&[
        ("maria", "mysql", &db.maria.url),
        ("pg", "postgresql", &db.pg.url),
        ("maria_ro", "mysql", &ro.url(&db.maria.url)),
        ("pg_ro", "postgresql", &ro.url(&db.pg.url)),
    ]);
    let w = Workdir::new(Backend::Sqlite, &format!("data_sources:\n{list}{REQUIRE}"));

    // dblink's functions are PUBLIC: the read-only role could reach other servers with them.
    let err = w.fails(&["datasource", "test", "pg_ro"], 1);
    assert!(
        err.contains("data source pg_ro: account can do more than read (dblink installed); security.read_only_accounts is require"),
        "{err}"
    );
    exec(
        &db.pg.url,
        "REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;",
    )
    .await;

    let out = w.cmd(&["check"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL  data source maria: account can do more than read (ALL PRIVILEGES")
            && stdout.contains("FAIL  data source pg: account can do more than read (superuser"),
        "{stdout}"
    );
    assert!(
        stdout.contains("; security.read_only_accounts is require"),
        "{stdout}"
    );
    for name in ["maria_ro", "pg_ro"] {
        assert!(
            stdout.contains(&format!("ok    data source {name} (")),
            "{stdout}"
        );
        assert!(
            !stdout.contains(&format!("data source {name}: ")),
            "{name} is read-only: {stdout}"
        );
    }
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: check found 2 problems"
    );
    let err = w.fails(&["datasource", "test", "maria"], 1);
    assert!(
        err.contains("data source maria: account can do more than read (ALL PRIVILEGES")
            && err.contains("security.read_only_accounts is require"),
        "{err}"
    );
    for name in ["maria_ro", "pg_ro"] {
        let out = w.ok(&["datasource", "test", name]);
        assert!(
            out.starts_with(&format!("ok  {name} (")) && !out.contains("warn"),
            "{out}"
        );
    }

    // Exports and task runs: refused on the powerful accounts, fine on the read-only ones.
    for src in ["maria", "pg"] {
        let err = w.fails(
            &[
                "export",
                "--source",
                src,
                "--sql=SELECT id FROM t",
                "-o",
                "x.csv",
            ],
            1,
        );
        assert!(
            err.contains(&format!(
                "data source {src}: account can do more than read ("
            )) && err.contains("security.read_only_accounts is require"),
            "{err}"
        );
        assert!(!w.path().join("x.csv").exists());
    }
    for src in ["maria_ro", "pg_ro"] {
        w.ok(&[
            "export",
            "--source",
            src,
            "--sql=SELECT id FROM t",
            "-o",
            "r.csv",
        ]);
        let text = std::fs::read_to_string(w.path().join("r.csv")).unwrap();
        assert_eq!(
            text.trim_start_matches('\u{feff}').replace("\r\n", "\n"),
            "id\n1\n"
        );
        std::fs::remove_file(w.path().join("r.csv")).unwrap();
    }
    w.write(
        "t.yaml",
        "tasks:\n  - name: as_root\n    data_source: maria\n    cron: \"@daily\"\n    sql: SELECT id FROM t\n  \
         - name: as_reader\n    data_source: pg_ro\n    cron: \"@daily\"\n    sql: SELECT id FROM t\n",
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let err = w.fails(&["task", "run", "as_root", "--no-notify"], 1);
    assert!(
        err.contains("data source maria: account can do more than read (ALL PRIVILEGES")
            && err.contains("security.read_only_accounts is require"),
        "{err}"
    );
    w.ok(&["task", "run", "as_reader", "--no-notify"]);

    // The daemon: the API's test fails, previews and jobs are refused with the message.
    let d = Daemon::start(Backend::Sqlite, &format!("{list}{REQUIRE}")).await;
    let editor = d.login("ed", "editor").await;
    let (s, b) = d
        .call_as(&editor, "POST", "/api/data-sources/pg/test", None)
        .await;
    assert_eq!((s, &b["ok"]), (200, &json!(false)), "{b}");
    let error = b["error"].as_str().unwrap();
    assert!(
        error.starts_with("data source pg: account can do more than read (superuser")
            && error.ends_with("; security.read_only_accounts is require"),
        "{b}"
    );
    assert!(
        b["rights"]
            .as_array()
            .unwrap()
            .contains(&json!("superuser"))
    );
    let (_, b) = d
        .call_as(&editor, "POST", "/api/data-sources/pg_ro/test", None)
        .await;
    assert_eq!(
        (&b["ok"], &b["rights"], &b["warning"]),
        (&json!(true), &json!([]), &Value::Null),
        "{b}"
    );
    let (s, b) = d
        .call_as(
            &editor,
            "POST",
            "/api/preview",
            Some(json!({"data_source": "maria", "sql": "SELECT id FROM t"})),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .contains("data source maria: account can do more than read (ALL PRIVILEGES"),
        "{b}"
    );
    let (s, b) = d
        .call_as(
            &editor,
            "POST",
            "/api/preview",
            Some(json!({"data_source": "maria_ro", "sql": "SELECT id FROM t"})),
        )
        .await;
    assert_eq!((s, &b["rows"]), (200, &json!([[1]])), "{b}");
    let (s, job) = d
        .call_as(
            &editor,
            "POST",
            "/api/exports",
            Some(json!({"data_source": "pg", "sql": "SELECT id FROM t", "format": "csv"})),
        )
        .await;
    assert_eq!(s, 202, "{job}");
    let job = until_not(
        &d,
        job["id"].as_i64().unwrap(),
        &["queued", "running"],
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(job["status"], "failed", "{job:#}");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("data source pg: account can do more than read (superuser"),
        "{job:#}"
    );
}

#[tokio::test]
async fn the_console_shows_the_rights_of_a_tested_source() {
    let db = RootSources::new().await;
    let d = Daemon::start(
        Backend::Sqlite,
        &sources(&[("maria", "mysql", &db.maria.url)]),
    )
    .await;
    d.login("ed", "editor").await;
    let b = Browser::start(&d.base).await;
    b.login(&d.base, "ed", "password123", "/data-sources").await;
    b.click("tr[data-source=maria] .test-source").await;
    b.until(
        "the connection test's warning",
        "return document.getElementById('flash').className === 'warn';",
    )
    .await;
    let text = b.text("#flash").await;
    assert!(
        text.contains("account can do more than read: ALL PRIVILEGES"),
        "{text}"
    );
    b.click("tr[data-source=demo] .test-source").await;
    b.until(
        "the plain connection test",
        "return document.getElementById('flash').className === 'good';",
    )
    .await;
    b.check().await;
}
