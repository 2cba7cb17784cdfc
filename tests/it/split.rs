//! Split reads (issue 28) on MariaDB and PostgreSQL, driven through the binary and the API as
//! a user would: `reportd export --split-column` writes the same file as the single reader of
//! the same ordered query (CSV byte for byte, xlsx cell for cell) for even, skewed and
//! nullable keys, also when the first range finishes last; PostgreSQL readers share one
//! snapshot (rows deleted during the export are all in the file); a cancelled export job
//! leaves no reader on the server and no file; a dropped reader connection fails the run
//! naming the range; bad settings are refused with one clear line; the execution record
//! keeps ranges, readers and rows per reader.

use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::api_daemon::Daemon;
use crate::export::read_xlsx;
use crate::helpers::{Backend, ScratchStore, Workdir, exec, files_under};

const DELAY_ENV: &str = "REPORTD_DEBUG_SPLIT_DELAY_MS";

/// A scratch source database with tables `t_even` (ids 1..4000), `t_skew` (ids 1..10 and
/// 10^9+1..10^9+4000) and `t_null` (ids 1..4000 and 300 NULL ids), each with a name, an
/// amount, a time and (`t_even`) a text column.
async fn source(backend: Backend) -> (ScratchStore, String, &'static str) {
    let store = ScratchStore::new(backend);
    let url = store.create_source().await;
    let (kind, sql) = match backend {
        Backend::Mysql => (
            "mysql",
            "CREATE TABLE t_even (id BIGINT NULL, name VARCHAR(40) NOT NULL, amount DECIMAL(12,2), created DATETIME, KEY (id));
             CREATE TABLE t_skew LIKE t_even; CREATE TABLE t_null LIKE t_even;
             INSERT INTO t_even SELECT seq, CONCAT('n,\"', seq), seq * 1.5, '2024-01-01' + INTERVAL seq MINUTE FROM seq_1_to_4000;
             INSERT INTO t_skew SELECT seq, CONCAT('s', seq), seq, '2024-01-01' FROM seq_1_to_10;
             INSERT INTO t_skew SELECT 1000000000 + seq, CONCAT('s', seq), seq, '2024-01-01' FROM seq_1_to_4000;
             INSERT INTO t_null SELECT * FROM t_even;
             INSERT INTO t_null SELECT NULL, CONCAT('z', seq), seq, NULL FROM seq_1_to_300;",
        ),
        _ => (
            "postgresql",
            "CREATE TABLE t_even (id BIGINT NULL, name VARCHAR(40) NOT NULL, amount NUMERIC(12,2), created TIMESTAMP);
             CREATE INDEX ON t_even (id);
             CREATE TABLE t_skew (LIKE t_even INCLUDING ALL); CREATE TABLE t_null (LIKE t_even INCLUDING ALL);
             INSERT INTO t_even SELECT g, 'n,\"' || g, g * 1.5, TIMESTAMP '2024-01-01' + g * INTERVAL '1 minute' FROM generate_series(1, 4000) g;
             INSERT INTO t_skew SELECT g, 's' || g, g, TIMESTAMP '2024-01-01' FROM generate_series(1, 10) g;
             INSERT INTO t_skew SELECT 1000000000 + g, 's' || g, g, TIMESTAMP '2024-01-01' FROM generate_series(1, 4000) g;
             INSERT INTO t_null SELECT * FROM t_even;
             INSERT INTO t_null SELECT NULL, 'z' || g, g, NULL FROM generate_series(1, 300) g;",
        ),
    };
    exec(&url, sql).await;
    (store, url, kind)
}

fn workdir(url: &str, kind: &str) -> Workdir {
    Workdir::new(
        Backend::Sqlite,
        &format!(
            "data_sources:\n  db:\n    type: {kind}\n    url: \"{url}\"\n    max_connections: 8\n"
        ),
    )
}

/// `reportd export` of `sql` to `file`, split over `column` when given.
fn export(
    w: &Workdir,
    sql: &str,
    file: &str,
    split: Option<(&str, u32, u64)>,
    delay: Option<u64>,
) -> Output {
    let mut args = vec!["export", "-s", "db", "--sql", sql, "-o", file];
    let (readers, chunk);
    if let Some((column, r, c)) = split {
        readers = r.to_string();
        chunk = c.to_string();
        args.extend([
            "--split-column",
            column,
            "--readers",
            &readers,
            "--chunk-rows",
            &chunk,
        ]);
    }
    let mut cmd = w.cmd(&args);
    if let Some(ms) = delay {
        cmd.env(DELAY_ENV, ms.to_string());
    }
    cmd.output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The split export of `SELECT ... WHERE {split} ORDER BY order` equals the single reader's
/// of the same query with `1=1`, in CSV (bytes) and xlsx (cells).
fn same_as_single(
    w: &Workdir,
    table: &str,
    column: &str,
    order: &str,
    chunk: u64,
    delay: Option<u64>,
) {
    let single = format!("SELECT * FROM {table} WHERE 1=1 ORDER BY {order}");
    let split = format!("SELECT * FROM {table} WHERE {{split}} ORDER BY {order}");
    for ext in ["csv", "xlsx"] {
        let (one, many) = (format!("{table}_1.{ext}"), format!("{table}_n.{ext}"));
        ok(export(w, &single, &one, None, None));
        ok(export(w, &split, &many, Some((column, 4, chunk)), delay));
        let (a, b) = (w.path().join(&one), w.path().join(&many));
        if ext == "csv" {
            let (a, b) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
            assert!(a.len() > 1000, "{table}: the single export has rows");
            assert!(
                a == b,
                "{table} {column}: the split CSV differs from the single reader's"
            );
        } else {
            // Sheet names follow the file names; the cells must be the same.
            let cells = |p: &std::path::Path| {
                read_xlsx(p)
                    .into_iter()
                    .map(|(_, rows)| rows)
                    .collect::<Vec<_>>()
            };
            assert!(
                cells(&a) == cells(&b),
                "{table} {column}: xlsx cells differ"
            );
        }
    }
}

async fn same_files(backend: Backend) {
    let (_store, url, kind) = source(backend).await;
    let w = workdir(&url, kind);
    // The first range finishes last: the merge holds the others back.
    same_as_single(&w, "t_even", "id", "id", 500, Some(300));
    // Almost every row in the last range: it is cut again while read.
    same_as_single(&w, "t_skew", "id", "id", 500, None);
    // NULL keys: first on MariaDB, last on PostgreSQL, like ORDER BY puts them.
    same_as_single(&w, "t_null", "t_null.id", "id, name", 700, None);
    // A date/time key.
    same_as_single(&w, "t_even", "created", "created", 1000, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_export_is_the_single_readers_file_on_mariadb() {
    same_files(Backend::Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_export_is_the_single_readers_file_on_postgres() {
    same_files(Backend::Postgres).await;
}

/// Sessions on `database`: on PostgreSQL those inside a transaction (a reader holds one from
/// its start to its end; an idle pooled connection does not); on MariaDB all of them.
async fn connections(url: &str, database: &str) -> i64 {
    if url.starts_with("mysql:") {
        let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
        sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '{database}' AND ID <> CONNECTION_ID()"
        )))
        .fetch_one(&mut c)
        .await
        .unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 \
             AND state IN ('active', 'idle in transaction') AND pid <> pg_backend_pid()",
        )
        .bind(database)
        .fetch_one(&mut c)
        .await
        .unwrap()
    }
}

fn database(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_string()
}

/// Waits until `child` has at least `n` readers on `url`'s database (its output if it ended).
async fn until_readers_of(url: &str, n: i64, child: &mut std::process::Child) {
    let started = Instant::now();
    while connections(url, &database(url)).await < n {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut err).unwrap();
            panic!("the export ended ({status}) before its readers were seen: {err}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the readers never connected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until at least `n` readers are on `url`'s database.
async fn until_connections(url: &str, n: i64) {
    let started = Instant::now();
    while connections(url, &database(url)).await < n {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the readers never connected ({} of {n})",
            connections(url, &database(url)).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_readers_share_one_snapshot() {
    let (_store, url, kind) = source(Backend::Postgres).await;
    let w = workdir(&url, kind);
    ok(export(
        &w,
        "SELECT * FROM t_even WHERE 1=1 ORDER BY id",
        "before.csv",
        None,
        None,
    ));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reportd"))
        .current_dir(w.path())
        .args([
            "--config",
            "config.yaml",
            "export",
            "-s",
            "db",
            "--sql",
            "SELECT * FROM t_even WHERE {split} ORDER BY id",
            "-o",
            "during.csv",
            "--split-column",
            "id",
            "--readers",
            "4",
            "--chunk-rows",
            "500",
        ])
        .env(DELAY_ENV, "3000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Every reader joined the snapshot (and waits): now most rows go.
    until_readers_of(&url, 4, &mut child).await;
    exec(&url, "DELETE FROM t_even WHERE id > 1000").await;
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = std::fs::read(w.path().join("before.csv")).unwrap();
    let during = std::fs::read(w.path().join("during.csv")).unwrap();
    assert!(
        before == during,
        "rows deleted during the export are all in its file"
    );
}

async fn cancel_stops_every_reader(backend: Backend) {
    let (store, url, kind) = source(backend).await;
    // Readers wait 30 s before their first range: the job is cancelled while they hold
    // their connections.
    // SAFETY: this test runs in a process of its own (nextest); the daemon inherits it.
    unsafe { std::env::set_var(DELAY_ENV, "30000") };
    // The daemon's config lists its own sources: this one joins them.
    let d = Daemon::start(
        Backend::Sqlite,
        // Idle pooled connections (the job's row estimate) close after a second.
        &format!("  db:\n    type: {kind}\n    url: \"{url}\"\n    max_connections: 8\n    idle_timeout: 1\n"),
    )
    .await;
    let body = json!({
        "data_source": "db", "format": "csv",
        "sql": "SELECT * FROM t_even WHERE {split} ORDER BY id",
        "split": {"column": "id", "readers": 4, "chunk_rows": 500},
    });
    let (s, b) = d.call("POST", "/api/exports", Some(body)).await;
    assert_eq!(s, 202, "{b}");
    let id = b["id"].as_i64().unwrap();
    until_connections(&url, 4).await;
    let (s, b) = d
        .call("POST", &format!("/api/exports/{id}/cancel"), None)
        .await;
    assert!(s < 300, "{s} {b}");
    let job = d
        .until_not(
            &format!("/api/exports/{id}"),
            &["queued", "running"],
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(job["status"], "cancelled", "{job:#}");
    // The daemon lives on; none of the readers does.
    let gone = Instant::now();
    while connections(&url, &database(&url)).await > 0 {
        assert!(
            gone.elapsed() < Duration::from_secs(5),
            "a reader still runs on the server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        files_under(&d.dir.path().join("exports")).is_empty(),
        "no file kept"
    );
    drop(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_every_mariadb_reader() {
    cancel_stops_every_reader(Backend::Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_every_postgres_reader() {
    cancel_stops_every_reader(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_reader_fails_the_run_naming_its_range() {
    let (_store, url, kind) = source(Backend::Mysql).await;
    let w = workdir(&url, kind);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_reportd"))
        .current_dir(w.path())
        .args([
            "--config",
            "config.yaml",
            "export",
            "-s",
            "db",
            "--sql",
            "SELECT * FROM t_even WHERE {split} ORDER BY id",
            "-o",
            "dropped.csv",
            "--split-column",
            "id",
            "--readers",
            "3",
            "--chunk-rows",
            "500",
        ])
        .env(DELAY_ENV, "3000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    until_readers_of(&url, 3, &mut child).await;
    // The server drops every connection of the export.
    let mut c = sqlx::MySqlConnection::connect(&url).await.unwrap();
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()",
    )
    .bind(database(&url))
    .fetch_all(&mut c)
    .await
    .unwrap();
    for id in ids {
        let _ = sqlx::query(AssertSqlSafe(format!("KILL CONNECTION {id}")))
            .execute(&mut c)
            .await;
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the run fails");
    assert!(err.contains("split range id >= "), "names the range: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!w.path().join("dropped.csv").exists(), "no file");
    assert!(
        files_under(&w.path().join("tmp")).is_empty(),
        "no temp file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_are_refused_naming_what_is_wrong() {
    let (_store, url, kind) = source(Backend::Mysql).await;
    exec(&url, "CREATE TABLE t_empty LIKE t_even").await;
    let w = workdir(&url, kind);
    let split_sql = "SELECT * FROM t_even WHERE {split} ORDER BY id";
    let fails = |column: &str, readers: u32, chunk: u64| {
        let out = export(
            &w,
            split_sql,
            "bad.csv",
            Some((column, readers, chunk)),
            None,
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(!w.path().join("bad.csv").exists());
        String::from_utf8(out.stderr).unwrap()
    };
    let e = fails("name", 4, 100);
    assert!(e.contains("column name is of type VARCHAR"), "{e}");
    let e = fails("nope", 4, 100);
    assert!(e.contains("the query returns no column nope"), "{e}");
    let e = fails("id", 0, 100);
    assert!(e.contains("readers is 0"), "{e}");
    let e = fails("id", 4, 0);
    assert!(e.contains("chunk_rows is 0"), "{e}");
    let e = fails("id", 9, 100);
    assert!(e.contains("max_connections 8"), "{e}");
    let e = fails("id; DROP TABLE t_even", 4, 100);
    assert!(e.contains("not a plain column name"), "{e}");
    let out = export(
        &w,
        "SELECT * FROM t_even WHERE 1=1",
        "bad.csv",
        Some(("id", 4, 100)),
        None,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("must hold {split} once"));
    // An empty table: one file with the header, as the single reader writes it.
    ok(export(
        &w,
        "SELECT * FROM t_empty WHERE 1=1 ORDER BY id",
        "e1.csv",
        None,
        None,
    ));
    ok(export(
        &w,
        "SELECT * FROM t_empty WHERE {split} ORDER BY id",
        "e2.csv",
        Some(("id", 4, 100)),
        None,
    ));
    assert_eq!(
        std::fs::read(w.path().join("e1.csv")).unwrap(),
        std::fs::read(w.path().join("e2.csv")).unwrap()
    );

    // Checked at apply: {split} twice, readers beyond max_connections, split with sheets.
    w.write(
        "t.yaml",
        "tasks:\n  - name: a\n    data_source: db\n    cron: \"0 9 * * *\"\n    sql: SELECT * FROM t_even WHERE {split} AND {split}\n    split: { column: id, readers: 2, chunk_rows: 10 }\n  - name: b\n    data_source: db\n    cron: \"0 9 * * *\"\n    sql: SELECT * FROM t_even WHERE {split}\n    split: { column: id, readers: 20, chunk_rows: 10 }\n  - name: c\n    data_source: db\n    cron: \"0 9 * * *\"\n    sql: SELECT * FROM t_even WHERE {split}\n",
    );
    let e = w.fails(&["task", "apply", "-f", "t.yaml"], 1);
    assert!(e.contains("holds {split} 2 times"), "{e}");
    assert!(
        e.contains("readers is 20 but data source db has max_connections 8"),
        "{e}"
    );
    assert!(e.contains("{split} needs `split:`"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_execution_records_ranges_readers_and_rows_per_reader() {
    let (_store, url, kind) = source(Backend::Postgres).await;
    let w = workdir(&url, kind);
    w.write(
        "t.yaml",
        "tasks:\n  - name: split\n    data_source: db\n    cron: \"0 9 * * *\"\n    output: { format: csv }\n    sql: SELECT * FROM t_null WHERE {split} ORDER BY id, name\n    split: { column: id, readers: 3, chunk_rows: 1000 }\n",
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let shown = w.ok(&["task", "show", "split"]);
    assert!(shown.contains("chunk_rows: 1000"), "{shown}");
    w.ok(&["task", "run", "split", "--no-notify"]);
    let runs: Vec<Value> = serde_json::from_str(&w.ok(&["logs", "--json"])).unwrap();
    let run = &runs[0];
    assert_eq!(run["status"], "success", "{run:#}");
    assert_eq!(run["rows"], 4300);
    let split = &run["split"][0];
    assert_eq!(split["column"], "id");
    // Ranges of keys (sized by the planner's estimate) and the NULL range.
    assert!(split["ranges"].as_u64().unwrap() >= 2, "{split:#}");
    let per: Vec<u64> = split["rows_per_reader"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(per.len(), 3);
    assert_eq!(per.iter().sum::<u64>(), 4300);
}
