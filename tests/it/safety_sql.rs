//! Report SQL only reads (issue 11, class 1): writes, DDL, account statements and hidden
//! second statements are refused before they reach MariaDB, by `reportd export`, `task apply`
//! and `task run`, and the table is still there afterwards; reads of every shape still export
//! on MariaDB and PostgreSQL.

use sqlx::Connection;

use crate::helpers::{Backend, ScratchStore, StopAtEnd, Workdir, exec, free_port};

fn config(kind: &str, url: &str) -> String {
    format!("data_sources:\n  src:\n    type: {kind}\n    url: \"{url}\"\n")
}

/// Rows in `t` on the MariaDB source; panics when the table is gone.
async fn rows_in_t(url: &str) -> i64 {
    let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t")
        .fetch_one(&mut c)
        .await
        .expect("table t still exists");
    n
}

/// A MariaDB source with `t` holding one row, and a work directory using it.
async fn mariadb_source() -> (ScratchStore, String, Workdir) {
    let db = ScratchStore::new(Backend::Mysql);
    let url = db.create_source().await;
    exec(&url, "CREATE TABLE t (id INT); INSERT INTO t VALUES (1);").await;
    let w = Workdir::new(Backend::Sqlite, &config("mysql", &url));
    (db, url, w)
}

#[tokio::test]
async fn mariadb_writes_are_refused_by_export() {
    let (_db, url, w) = mariadb_source().await;
    let user = format!("reportd_evil_{}", std::process::id());
    let cases = [
        ("DROP TABLE t".to_string(), "found DROP"),
        ("TRUNCATE t".into(), "found TRUNCATE"),
        ("TRUNCATE TABLE t".into(), "found TRUNCATE"),
        ("ALTER TABLE t ADD COLUMN c INT".into(), "found ALTER"),
        ("RENAME TABLE t TO t_gone".into(), "found RENAME"),
        (format!("CREATE USER '{user}'@'%'"), "found CREATE"),
        (format!("GRANT ALL ON *.* TO '{user}'@'%'"), "found GRANT"),
        ("DELETE FROM t".into(), "found DELETE"),
        ("SELECT 1; DROP TABLE t".into(), "more than one statement"),
        ("SELECT 1;\nDROP TABLE t;".into(), "more than one statement"),
        ("/* monthly report */ DROP TABLE t".into(), "found DROP"),
        ("-- SELECT\nDROP TABLE t".into(), "found DROP"),
        (
            "SELECT 1 --1; DROP TABLE t".into(),
            "more than one statement",
        ),
        (
            "SELECT 1 /*! ; DROP TABLE t */".into(),
            "executable comment",
        ),
        ("SELECT 'a\\'; DROP TABLE t; -- '".into(), "backslash"),
        (
            "WITH x AS (SELECT 1) DELETE FROM t".into(),
            "found WITH ... DELETE",
        ),
        (
            "SELECT * FROM t FOR UPDATE".into(),
            "found SELECT ... FOR UPDATE",
        ),
        (
            "SELECT * FROM t INTO OUTFILE '/tmp/reportd_evil'".into(),
            "found SELECT ... INTO",
        ),
        // The server ends `#` and `-- ` comments only at LF: a lone CR must not end one.
        (
            "#\rSELECT '\nDROP TABLE t -- '".into(),
            "lone carriage return",
        ),
        (
            "-- x\rSELECT '\nTRUNCATE TABLE t -- '".into(),
            "lone carriage return",
        ),
        (
            format!("#\rSELECT '\nCREATE USER '{user}'@'%' -- '"),
            "lone carriage return",
        ),
        // `--` then DEL is a comment to the server.
        (
            "SELECT 1 --\u{7f} '\nINTO @x -- '".into(),
            "found SELECT ... INTO",
        ),
        ("SELECT 1 --\u{a0} '\nDROP TABLE t".into(), "non-ASCII"),
    ];
    for (sql, want) in &cases {
        let err = w.fails(
            &[
                "export",
                "--source",
                "src",
                &format!("--sql={sql}"),
                "-o",
                "x.csv",
            ],
            1,
        );
        assert!(
            err.contains("data source src: refused: ") && err.contains(want),
            "{sql:?}: {err}"
        );
        assert!(
            !err.contains('\n') || err.lines().count() <= 2,
            "one line: {err}"
        );
        assert_eq!(rows_in_t(&url).await, 1, "{sql:?} changed the table");
    }
    let mut c = sqlx::MySqlConnection::connect(&url).await.unwrap();
    let (users,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM mysql.user WHERE User = ?")
        .bind(&user)
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(users, 0, "no account was created");
    assert!(!w.path().join("x.csv").exists());
}

#[tokio::test]
async fn mariadb_writes_are_refused_by_task_apply_and_run() {
    let (_db, url, w) = mariadb_source().await;
    w.write(
        "bad.yaml",
        "tasks:\n  - name: dropper\n    data_source: src\n    cron: \"@daily\"\n    sql: DROP TABLE t\n  \
         - name: sheets\n    data_source: src\n    cron: \"@daily\"\n    sheets:\n      \
         - name: Fine\n        sql: SELECT 1\n      - name: Granter\n        sql: \"GRANT ALL ON *.* TO x\"\n",
    );
    let err = w.fails(&["task", "apply", "-f", "bad.yaml"], 1);
    assert!(
        err.contains("task \"dropper\": sql: refused: only read queries may run (found DROP)"),
        "{err}"
    );
    assert!(
        err.contains("task \"sheets\": sheets[2].sql: sheet \"Granter\": refused: only read queries may run (found GRANT)"),
        "{err}"
    );
    // Text that another family reads as one statement (PostgreSQL: `--1` is a comment) is
    // classified with the task's own source's rules (MySQL: `--1` is code) at apply too.
    w.write(
        "sneaky.yaml",
        "tasks:\n  - name: sneaky\n    data_source: src\n    cron: \"@daily\"\n    \
         sql: \"SELECT 1 --1; DROP TABLE t\"\n",
    );
    let err = w.fails(&["task", "apply", "-f", "sneaky.yaml"], 1);
    assert!(
        err.contains("task \"sneaky\": sql: refused: more than one statement"),
        "{err}"
    );
    assert_eq!(rows_in_t(&url).await, 1);
}

/// Exports `sql` to CSV and returns the file's text (without the BOM).
fn export_csv(w: &Workdir, sql: &str) -> String {
    w.ok(&[
        "export",
        "--source",
        "src",
        &format!("--sql={sql}"),
        "-o",
        "r.csv",
    ]);
    let text = std::fs::read_to_string(w.path().join("r.csv")).unwrap();
    std::fs::remove_file(w.path().join("r.csv")).unwrap();
    text.trim_start_matches('\u{feff}').replace("\r\n", "\n")
}

/// Read shapes every backend must run, with the CSV they give.
const COMMON_READS: [(&str, &str); 7] = [
    ("WITH x AS (SELECT id FROM t) SELECT id FROM x", "id\n1\n"),
    (
        "(SELECT id FROM t) UNION (SELECT 2) ORDER BY id",
        "id\n1\n2\n",
    ),
    (
        "-- daily orders\n/* owner: ops */ SELECT id FROM t",
        "id\n1\n",
    ),
    (
        "SELECT 'DROP TABLE t; --' AS note FROM t",
        "note\nDROP TABLE t; --\n",
    ),
    ("SELECT id FROM t;", "id\n1\n"),
    ("SELECT id FROM t ; -- done\n", "id\n1\n"),
    (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) SELECT i FROM n",
        "i\n1\n2\n3\n",
    ),
];

#[tokio::test]
async fn reads_of_every_shape_export_on_mariadb() {
    let (_db, url, w) = mariadb_source().await;
    for (sql, want) in COMMON_READS {
        assert_eq!(export_csv(&w, sql), want, "{sql}");
    }
    assert_eq!(
        export_csv(&w, "SHOW TABLES"),
        format!("Tables_in_{}\nt\n", url.rsplit('/').next().unwrap())
    );
    assert!(export_csv(&w, "EXPLAIN SELECT * FROM t").starts_with("id,select_type,table"));
    assert_eq!(export_csv(&w, "VALUES (7)"), "7\n7\n");
    assert_eq!(
        export_csv(&w, "DESC t")
            .lines()
            .nth(1)
            .unwrap()
            .split(',')
            .next(),
        Some("id")
    );
    assert_eq!(export_csv(&w, "# note\nSELECT id FROM t"), "id\n1\n");
    assert_eq!(export_csv(&w, "SELECT 'it''s' AS s"), "s\nit's\n");
    assert_eq!(rows_in_t(&url).await, 1);
}

#[tokio::test]
async fn reads_of_every_shape_export_on_postgres() {
    let db = ScratchStore::new(Backend::Postgres);
    let url = db.create_source().await;
    exec(&url, "CREATE TABLE t (id INT); INSERT INTO t VALUES (1);").await;
    let w = Workdir::new(Backend::Sqlite, &config("postgresql", &url));
    for (sql, want) in COMMON_READS {
        assert_eq!(export_csv(&w, sql), want, "{sql}");
    }
    assert_eq!(export_csv(&w, "TABLE t"), "id\n1\n");
    assert_eq!(export_csv(&w, "VALUES (7)"), "column1\n7\n");
    assert!(export_csv(&w, "EXPLAIN SELECT * FROM t").starts_with("QUERY PLAN\n"));
    assert_eq!(
        export_csv(&w, "SHOW transaction_read_only"),
        "transaction_read_only\non\n"
    );
    assert_eq!(
        export_csv(&w, "SELECT $$DROP TABLE t; $$ AS s"),
        "s\nDROP TABLE t; \n"
    );
    let err = w.fails(
        &[
            "export",
            "--source",
            "src",
            "--sql",
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            "-o",
            "x.csv",
        ],
        1,
    );
    assert!(
        err.contains("refused: only read queries may run (found WITH ... DELETE)"),
        "{err}"
    );
    let err = w.fails(
        &[
            "export",
            "--source",
            "src",
            "--sql",
            "SELECT * INTO t2 FROM t",
            "-o",
            "x.csv",
        ],
        1,
    );
    assert!(err.contains("(found SELECT ... INTO)"), "{err}");
}

/// The daemon's runs (an HTTP run here; scheduled fires take the same runner) refuse too.
#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_refuses_writes_too() {
    let db = ScratchStore::new(Backend::Mysql);
    let url = db.create_source().await;
    exec(&url, "CREATE TABLE t (id INT); INSERT INTO t VALUES (1);").await;
    let port = free_port();
    let w = Workdir::new(
        Backend::Sqlite,
        &format!(
            "{}http:\n  bind: 127.0.0.1:{port}\n  token: tok\nlogging:\n  file: logs/reportd.log\ndaemon:\n  shutdown_timeout: 2\n",
            config("mysql", &url)
        ),
    );
    w.write(
        "t.yaml",
        "tasks:\n  - name: sneaky\n    data_source: src\n    cron: \"0 0 1 1 *\"\n    \
         sql: \"SELECT 1 --1; DROP TABLE t\"\n",
    );
    // Applied while `src` was a PostgreSQL source (where `--1` starts a comment); the
    // operator then points `src` at MariaDB, where the same text is two statements: the run
    // classifies with the rules of the server it reaches.
    let config_path = w.path().join("config.yaml");
    let mysql_config = std::fs::read_to_string(&config_path).unwrap();
    let pg_config = mysql_config.replace(
        &config("mysql", &url),
        &config("postgresql", "postgres://nobody@127.0.0.1:1/none"),
    );
    assert_ne!(pg_config, mysql_config);
    std::fs::write(&config_path, pg_config).unwrap();
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    std::fs::write(&config_path, mysql_config).unwrap();
    w.ok(&["start"]);
    let stop = StopAtEnd(&w);
    let ran = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{port}/tasks/sneaky/run?wait=true"
        ))
        .bearer_auth("tok")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    drop(stop);
    assert!(ran.contains("refused: more than one statement"), "{ran}");
    assert_eq!(rows_in_t(&url).await, 1);
    let log = std::fs::read_to_string(w.path().join("logs/reportd.log")).unwrap();
    assert!(
        log.contains("task sneaky: data source src: refused: more than one statement"),
        "{log}"
    );
}

/// A multibyte connection character set (gbk: `中\` is one character there) would let the
/// server read a string differently from the classifier: a `charset` other than UTF-8 is
/// refused, and a URL's is replaced by utf8mb4, so the server reads what the classifier read.
#[tokio::test]
async fn the_connection_always_talks_utf8() {
    let (_db, url, _) = mariadb_source().await;
    let w = Workdir::new(
        Backend::Sqlite,
        "data_sources:\n  src:\n    type: mysql\n    host: 127.0.0.1\n    charset: gbk\n",
    );
    let err = w.fails(&["check", "--no-connect"], 1);
    assert!(
        err.contains("data_sources.src: charset: \"gbk\" is not supported"),
        "{err}"
    );

    let w = Workdir::new(
        Backend::Sqlite,
        &config("mysql", &format!("{url}?charset=gbk")),
    );
    let out_file = w.path().join("gbk_out.txt");
    let sql = format!(
        "SELECT '中\\\\', ' FROM t INTO OUTFILE \"{}\" -- ' AS b",
        out_file.display()
    );
    let text = export_csv(&w, &sql);
    assert!(
        text.starts_with("中\\,b\n中\\,\" FROM t INTO OUTFILE"),
        "{text}"
    );
    assert!(!out_file.exists(), "the server wrote a file");
    assert_eq!(rows_in_t(&url).await, 1);
}

/// PostgreSQL `infinity` dates and timestamps are data, not a crash: written as PostgreSQL
/// prints them; values sqlx cannot decode fail the export with the column named (exit 1).
#[tokio::test]
async fn postgres_infinity_is_written_and_undecodable_values_fail_cleanly() {
    let db = ScratchStore::new(Backend::Postgres);
    let url = db.create_source().await;
    let w = Workdir::new(Backend::Sqlite, &config("postgresql", &url));
    let text = export_csv(
        &w,
        "SELECT 'infinity'::timestamp a, '-infinity'::timestamptz b, 'infinity'::date c, \
         '2026-11-30 09:00'::timestamp d, '262142-12-31 23:00'::timestamptz e",
    );
    assert_eq!(
        text,
        // Text that starts with `-` or `+` gets the CSV formula escape.
        "a,b,c,d,e\ninfinity,'-infinity,infinity,2026-11-30 09:00:00,'+262142-12-31 23:00:00 UTC\n"
    );
    let err = w.fails(
        &[
            "export",
            "--source",
            "src",
            "--sql=SELECT ARRAY['infinity'::timestamp] AS a",
            "-o",
            "a.csv",
        ],
        1,
    );
    assert!(err.contains("column 1: cannot read the value"), "{err}");
    assert!(!w.path().join("a.csv").exists());
}

/// `task apply` classifies a task's SQL with its own data source's rules: SQL that every run
/// on that server would refuse is refused up front, not accepted because another server
/// family would read it.
#[tokio::test]
async fn apply_classifies_with_the_task_sources_rules() {
    let (_db, _url, w) = mariadb_source().await;
    w.write(
        "gap.yaml",
        "tasks:\n  - name: gap\n    data_source: src\n    cron: \"@daily\"\n    sql: \"SELECT 1 /*!99999 AS x */\"\n",
    );
    let err = w.fails(&["task", "apply", "-f", "gap.yaml"], 1);
    assert!(
        err.contains("task \"gap\": sql: refused: a MySQL executable comment"),
        "{err}"
    );
}
