//! The export engine through the binary (`reportd export`, `reportd task run`), files read
//! back with calamine and compared cell by cell with what the databases hold: every column
//! type from MariaDB, PostgreSQL and SQLite, sheet overflow, parts, cleanup after failures
//! and interruptions, the read-only transaction and the task timeout.

use calamine::{Data, DataType, Reader, Xlsx, open_workbook};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::helpers::{Backend, ScratchStore, Workdir, exec, files_under};
use reportd::model::execution::{ExecutionStatus, Trigger};
use reportd::store::Store;

/// What a cell must hold.
#[derive(Debug, Clone)]
enum Want {
    Num(f64),
    Text(String),
    Bool(bool),
    Date(&'static str),
    DateTime(&'static str),
    Time(&'static str),
    Empty,
}

fn text(s: &str) -> Want {
    Want::Text(s.to_string())
}

fn check(cell: &Data, want: &Want, at: &str) {
    let ok = match (want, cell) {
        (Want::Num(n), Data::Float(f)) => (f - n).abs() < 1e-9 * n.abs().max(1.0),
        (Want::Num(n), Data::Int(i)) => (*i as f64 - n).abs() < 1e-9,
        (Want::Text(s), Data::String(t)) => s == t,
        (Want::Bool(b), Data::Bool(c)) => b == c,
        (Want::Date(d), c @ Data::DateTime(_)) => {
            c.as_date() == Some(NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap())
        }
        (Want::DateTime(d), c @ Data::DateTime(_)) => {
            c.as_datetime() == Some(NaiveDateTime::parse_from_str(d, "%Y-%m-%d %H:%M:%S").unwrap())
        }
        (Want::Time(t), c @ Data::DateTime(_)) => {
            c.as_time() == Some(NaiveTime::parse_from_str(t, "%H:%M:%S").unwrap())
        }
        (Want::Empty, Data::Empty) => true,
        _ => false,
    };
    assert!(ok, "{at}: want {want:?}, found {cell:?}");
}

/// Every sheet of a workbook: name and rows (header first).
pub(crate) fn read_xlsx(path: &Path) -> Vec<(String, Vec<Vec<Data>>)> {
    let mut wb: Xlsx<_> = open_workbook(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let names = wb.sheet_names();
    names
        .into_iter()
        .map(|name| {
            let formulas = wb.worksheet_formula(&name).unwrap();
            assert!(
                formulas.used_cells().all(|(_, _, f)| f.is_empty()),
                "no cell may be a formula"
            );
            let range = wb.worksheet_range(&name).unwrap();
            let rows = range.rows().map(<[Data]>::to_vec).collect();
            (name, rows)
        })
        .collect()
}

fn config_with_source(kind: &str, url: &str, extra: &str) -> String {
    format!("data_sources:\n  src:\n    type: {kind}\n    url: \"{url}\"\n{extra}")
}

async fn types_case(backend: Backend, kind: &str, setup: &str, want: Vec<(&str, Want)>) {
    let db = ScratchStore::new(backend);
    let url = db.create_source().await;
    exec(&url, setup).await;
    let w = Workdir::new(Backend::Sqlite, &config_with_source(kind, &url, ""));
    let out = w.ok(&[
        "export",
        "--source",
        "src",
        "--sql",
        "SELECT * FROM t ORDER BY id",
        "-o",
        "types.xlsx",
    ]);
    assert!(
        out.starts_with("2 rows, ") && out.contains("types.xlsx"),
        "{out}"
    );
    // No ZIP64 in files of ordinary size (their entries would need zip version 4.5):
    // LibreOffice 7.4 refuses to open such files.
    let bytes = std::fs::read(w.path().join("types.xlsx")).unwrap();
    assert_eq!(&bytes[..4], b"PK\x03\x04");
    assert_eq!(
        u16::from_le_bytes([bytes[4], bytes[5]]),
        20,
        "zip version needed to extract"
    );
    let sheets = read_xlsx(&w.path().join("types.xlsx"));
    assert_eq!(sheets.len(), 1);
    let (name, rows) = &sheets[0];
    assert_eq!(name, "types");
    let header: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
    let names: Vec<&str> = want.iter().map(|(n, _)| *n).collect();
    assert_eq!(header, names);
    for (i, (col, wanted)) in want.iter().enumerate() {
        check(&rows[1][i], wanted, &format!("{kind} {col}"));
    }
    // The second row is all NULL but its id.
    for (i, cell) in rows[2].iter().enumerate().skip(1) {
        assert!(
            cell.is_empty(),
            "{kind} NULL in {} came out as {cell:?}",
            names[i]
        );
    }
    assert!(
        files_under(&w.path().join("temp")).is_empty(),
        "no temp file left"
    );
}

#[tokio::test]
async fn mariadb_types_read_back_as_a_person_expects() {
    let long = "长".repeat(40_000);
    let setup = format!(
        "CREATE TABLE t (id INT PRIMARY KEY, i BIGINT, big BIGINT, u BIGINT UNSIGNED, small_dec DECIMAL(12,2), big_dec DECIMAL(30,10), \
         f DOUBLE, fl FLOAT, b BOOLEAN, d DATE, dt DATETIME, ts TIMESTAMP NULL, tm TIME, j JSON, bin VARBINARY(8), formula TEXT, \
         longtxt LONGTEXT, e ENUM('甲','乙'), y YEAR, nul INT);
         SET time_zone = '+00:00';
         INSERT INTO t VALUES (1, -42, 9007199254740993, 18446744073709551615, 12345.60, 12345678901234567890.1234567890, 3.25, 1.5, TRUE, \
         '2026-11-23', '2026-11-23 09:08:07', '2026-01-01 00:00:00', '12:34:56', '{{\"a\": 1}}', 0x00ABFF, '=1+1', '{long}', '乙', 2026, NULL);
         INSERT INTO t (id) VALUES (2);"
    );
    let want = vec![
        ("id", Want::Num(1.0)),
        ("i", Want::Num(-42.0)),
        ("big", text("9007199254740993")),
        ("u", text("18446744073709551615")),
        ("small_dec", Want::Num(12345.6)),
        ("big_dec", text("12345678901234567890.1234567890")),
        ("f", Want::Num(3.25)),
        ("fl", Want::Num(1.5)),
        ("b", Want::Bool(true)),
        ("d", Want::Date("2026-11-23")),
        ("dt", Want::DateTime("2026-11-23 09:08:07")),
        // Stored as UTC midnight; shown in scheduler.timezone (Asia/Shanghai).
        ("ts", Want::DateTime("2026-01-01 08:00:00")),
        ("tm", Want::Time("12:34:56")),
        ("j", text("{\"a\": 1}")),
        ("bin", text("0x00abff")),
        ("formula", text("=1+1")),
        ("longtxt", Want::Text("长".repeat(32_767))),
        ("e", text("乙")),
        ("y", Want::Num(2026.0)),
        ("nul", Want::Empty),
    ];
    types_case(Backend::Mysql, "mysql", &setup, want).await;
}

#[tokio::test]
async fn postgres_types_read_back_as_a_person_expects() {
    let setup = "CREATE TABLE t (id INT PRIMARY KEY, s SMALLINT, big BIGINT, small_num NUMERIC(12,2), big_num NUMERIC(40,10), \
         f4 REAL, f8 DOUBLE PRECISION, b BOOLEAN, d DATE, ts TIMESTAMP, tstz TIMESTAMPTZ, tm TIME, j JSONB, bin BYTEA, u UUID, \
         arr INT[], tarr TEXT[], iv INTERVAL, formula TEXT, nul TEXT);
         INSERT INTO t VALUES (1, -7, 9007199254740993, 12345.60, 123456789012345678901234567890.1234567890, 1.5, 3.25, false, \
         '2026-11-23', '2026-11-23 09:08:07', '2026-01-01 00:00:00+00', '12:34:56', '{\"a\": 1}', '\\x00abff', \
         'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,2,3}', '{\"x y\",z}', '1 day 02:00:00', '=1+1', NULL);
         INSERT INTO t (id) VALUES (2);";
    let want = vec![
        ("id", Want::Num(1.0)),
        ("s", Want::Num(-7.0)),
        ("big", text("9007199254740993")),
        ("small_num", Want::Num(12345.6)),
        ("big_num", text("123456789012345678901234567890.1234567890")),
        ("f4", Want::Num(1.5)),
        ("f8", Want::Num(3.25)),
        ("b", Want::Bool(false)),
        ("d", Want::Date("2026-11-23")),
        ("ts", Want::DateTime("2026-11-23 09:08:07")),
        ("tstz", Want::DateTime("2026-01-01 08:00:00")),
        ("tm", Want::Time("12:34:56")),
        ("j", text("{\"a\":1}")),
        ("bin", text("0x00abff")),
        ("u", text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")),
        ("arr", text("{1,2,3}")),
        ("tarr", text("{\"x y\",z}")),
        ("iv", text("1 day 02:00:00")),
        ("formula", text("=1+1")),
        ("nul", Want::Empty),
    ];
    types_case(Backend::Postgres, "postgresql", setup, want).await;
}

#[tokio::test]
async fn sqlite_types_read_back_as_a_person_expects() {
    let setup = "CREATE TABLE t (id INTEGER PRIMARY KEY, big INTEGER, r REAL, txt TEXT, bin BLOB, flag BOOLEAN, d DATE, dt DATETIME, formula TEXT, nul TEXT);
         INSERT INTO t VALUES (1, 9007199254740993, 2.5, '中文, \"quoted\"', x'00abff', 1, '2026-11-23', '2026-11-23 09:08:07', '=1+1', NULL);
         INSERT INTO t (id) VALUES (2);";
    let want = vec![
        ("id", Want::Num(1.0)),
        ("big", text("9007199254740993")),
        ("r", Want::Num(2.5)),
        ("txt", text("中文, \"quoted\"")),
        ("bin", text("0x00abff")),
        ("flag", Want::Bool(true)),
        ("d", Want::Date("2026-11-23")),
        ("dt", Want::DateTime("2026-11-23 09:08:07")),
        ("formula", text("=1+1")),
        ("nul", Want::Empty),
    ];
    types_case(Backend::Sqlite, "sqlite", setup, want).await;
}

#[tokio::test]
async fn csv_has_a_bom_and_rfc_4180_quoting() {
    let db = ScratchStore::new(Backend::Sqlite);
    let url = db.create_source().await;
    exec(&url, "CREATE TABLE t (id INTEGER, name TEXT, amount NUMERIC, d DATE); INSERT INTO t VALUES (1, '张三, \"老张\"', 12.5, '2026-11-23'), (2, '两行\n文本', NULL, NULL);").await;
    let w = Workdir::new(Backend::Sqlite, &config_with_source("sqlite", &url, ""));
    w.ok(&[
        "export",
        "--source",
        "src",
        "--sql",
        "SELECT * FROM t ORDER BY id",
        "-o",
        "t.csv",
    ]);
    let bytes = std::fs::read(w.path().join("t.csv")).unwrap();
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        "\u{feff}id,name,amount,d\r\n1,\"张三, \"\"老张\"\"\",12.5,2026-11-23\r\n2,\"两行\n文本\",,\r\n"
    );
}

#[tokio::test]
async fn empty_results_still_get_their_header() {
    let db = ScratchStore::new(Backend::Postgres);
    let url = db.create_source().await;
    let w = Workdir::new(Backend::Sqlite, &config_with_source("postgresql", &url, ""));
    let out = w.ok(&[
        "export",
        "--source",
        "src",
        "--sql",
        "SELECT 1 AS a, 'x' AS b WHERE false",
        "-o",
        "empty.xlsx",
    ]);
    assert!(out.starts_with("0 rows"), "{out}");
    let sheets = read_xlsx(&w.path().join("empty.xlsx"));
    assert_eq!(
        sheets[0].1,
        vec![vec![Data::String("a".into()), Data::String("b".into())]]
    );
}

#[tokio::test]
async fn a_sheet_continues_past_excel_row_limit() {
    let db = ScratchStore::new(Backend::Sqlite);
    let url = db.create_source().await;
    let w = Workdir::new(
        Backend::Sqlite,
        &config_with_source("sqlite", &url, "export:\n  chunk_size: 50000\n"),
    );
    let sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 1048577) SELECT x FROM c";
    let out = w.ok(&["export", "--source", "src", "--sql", sql, "-o", "big.xlsx"]);
    assert!(out.starts_with("1,048,577 rows"), "{out}");
    let mut wb: Xlsx<_> = open_workbook(w.path().join("big.xlsx")).unwrap();
    assert_eq!(wb.sheet_names(), ["big", "big (2)"]);
    let first = wb.worksheet_range("big").unwrap();
    assert_eq!(first.height(), 1_048_576, "header + 1,048,575 rows");
    assert_eq!(first.get((1_048_575, 0)), Some(&Data::Float(1_048_575.0)));
    let second = wb.worksheet_range("big (2)").unwrap();
    let rows: Vec<Vec<Data>> = second.rows().map(<[Data]>::to_vec).collect();
    assert_eq!(
        rows,
        vec![
            vec![Data::String("x".into())],
            vec![Data::Float(1_048_576.0)],
            vec![Data::Float(1_048_577.0)]
        ]
    );
}

async fn parts_case(format: &str) {
    let db = ScratchStore::new(Backend::Sqlite);
    let url = db.create_source().await;
    let w = Workdir::new(
        Backend::Sqlite,
        &config_with_source(
            "sqlite",
            &url,
            "export:\n  max_file_size: 100KB\n  chunk_size: 1000\n",
        ),
    );
    let sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 20000) \
               SELECT x AS id, printf('第%d行 row %d, some text to fill the file', x, x * 7919 % 10007) AS note FROM c";
    let out = w.ok(&[
        "export",
        "--source",
        "src",
        "--sql",
        sql,
        "-o",
        &format!("parts.{format}"),
    ]);
    assert!(out.starts_with("20,000 rows"), "{out}");
    let mut ids = Vec::new();
    let mut sizes = Vec::new();
    let mut n = 1;
    loop {
        let name = if n == 1 {
            format!("parts.{format}")
        } else {
            format!("parts_part{n}.{format}")
        };
        let path = w.path().join(&name);
        if !path.exists() {
            break;
        }
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(
            size <= 100 * 1024,
            "{name} is {size} bytes, over max_file_size"
        );
        sizes.push(size);
        assert!(out.contains(&name), "summary names {name}: {out}");
        if format == "csv" {
            let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
            let mut lines = text.split("\r\n");
            assert_eq!(
                lines.next(),
                Some("\u{feff}id,note"),
                "every part starts with BOM and header"
            );
            ids.extend(
                lines
                    .filter(|l| !l.is_empty())
                    .map(|l| l.split(',').next().unwrap().parse::<u64>().unwrap()),
            );
        } else {
            let sheets = read_xlsx(&path);
            assert_eq!(sheets.len(), 1);
            assert_eq!(
                sheets[0].1[0],
                vec![Data::String("id".into()), Data::String("note".into())]
            );
            ids.extend(
                sheets[0].1[1..]
                    .iter()
                    .map(|r| r[0].as_f64().unwrap() as u64),
            );
        }
        n += 1;
    }
    assert!(n > 3, "at least two parts, found {}", n - 1);
    assert_eq!(
        ids,
        (1..=20_000).collect::<Vec<u64>>(),
        "every row exactly once, in order"
    );
    // Split on the real (compressed) size: every part but the last is filled near the limit.
    for size in &sizes[..sizes.len() - 1] {
        assert!(*size >= 85 * 1024, "a part of {size} bytes: {sizes:?}");
    }
}

/// An export of 30,000 rows to `name` with `max_file_size`: the files' sizes, in order.
fn xlsx_sizes(max_file_size: &str, name: &str, url: &str) -> Vec<u64> {
    let w = Workdir::new(
        Backend::Sqlite,
        &config_with_source(
            "sqlite",
            url,
            &format!("export:\n  max_file_size: {max_file_size}\n  chunk_size: 1000\n"),
        ),
    );
    let sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 30000) \
               SELECT x AS id, printf('%d-%d', x * 7919 % 10007, x * 104729 % 65537) AS code, \
               x * 0.25 AS amount FROM c";
    let out = w.ok(&["export", "--source", "src", "--sql", sql, "-o", name]);
    assert!(out.starts_with("30,000 rows"), "{out}");
    let stem = name.trim_end_matches(".xlsx");
    let mut sizes = vec![std::fs::metadata(w.path().join(name)).unwrap().len()];
    while let Ok(m) = std::fs::metadata(
        w.path()
            .join(format!("{stem}_part{}.xlsx", sizes.len() + 1)),
    ) {
        sizes.push(m.len());
    }
    sizes
}

#[tokio::test]
async fn an_xlsx_that_compresses_under_max_file_size_is_one_file() {
    let db = ScratchStore::new(Backend::Sqlite);
    let url = db.create_source().await;
    let whole = xlsx_sizes("400MB", "whole.xlsx", &url);
    assert_eq!(whole.len(), 1);
    // A limit 6 % above the file's size: one file, as big as before.
    let limit = whole[0] + whole[0] * 6 / 100;
    let one = xlsx_sizes(&limit.to_string(), "one.xlsx", &url);
    assert_eq!(one.len(), 1, "one file under {limit} bytes: {one:?}");
    assert!(one[0].abs_diff(whole[0]) < 64, "{one:?} {whole:?}");
    // Below the file's size: two parts, each within the limit.
    let limit = whole[0] * 3 / 4;
    let two = xlsx_sizes(&limit.to_string(), "two.xlsx", &url);
    assert_eq!(two.len(), 2, "{two:?} under {limit}");
    assert!(two.iter().all(|s| *s <= limit), "{two:?} under {limit}");
}

#[tokio::test]
async fn max_file_size_splits_csv_into_parts() {
    parts_case("csv").await;
}

#[tokio::test]
async fn max_file_size_splits_xlsx_into_parts() {
    parts_case("xlsx").await;
}

#[tokio::test]
async fn a_failed_export_leaves_no_file() {
    let db = ScratchStore::new(Backend::Postgres);
    let url = db.create_source().await;
    let w = Workdir::new(
        Backend::Sqlite,
        &config_with_source("postgresql", &url, "export:\n  chunk_size: 100\n"),
    );
    let err = w.fails(
        &[
            "export",
            "--source",
            "src",
            "--sql",
            "SELECT x, 1 / (x - 5000) AS boom FROM generate_series(1, 10000) x",
            "-o",
            "fail.xlsx",
        ],
        1,
    );
    assert!(
        err.contains("data source src: query:") && err.contains("division by zero"),
        "{err}"
    );
    assert!(!w.path().join("fail.xlsx").exists());
    assert!(
        files_under(&w.path().join("temp")).is_empty(),
        "temp files left: {:?}",
        files_under(&w.path().join("temp"))
    );
}

fn signal(pid: u32, sig: &str) {
    assert!(
        std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
}

/// A slow query, recognisable on the server by `marker`.
fn slow_sql(marker: &str) -> String {
    format!("SELECT x, pg_sleep(0.002) AS z /* {marker} */ FROM generate_series(1, 20000) x")
}

/// Starts a slow export and waits until its query runs on the server and rows flow.
async fn slow_export(w: &Workdir, url: &str, marker: &str) -> std::process::Child {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("reportd"));
    cmd.current_dir(w.path())
        .args([
            "--config",
            "config.yaml",
            "export",
            "--source",
            "src",
            "-o",
            "slow.xlsx",
            "--sql",
        ])
        .arg(slow_sql(marker))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let started = Instant::now();
    while active_queries(url, marker).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the export never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    child
}

/// Queries running on the server whose text contains `marker` (other than this lookup).
async fn active_queries(url: &str, marker: &str) -> i64 {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE state = 'active' AND strpos(query, $1) > 0 \
         AND strpos(query, 'pg_stat_activity') = 0 AND pid <> pg_backend_pid()",
    )
    .bind(marker)
    .fetch_one(&mut c)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_interrupted_export_leaves_nothing_and_stops_the_query() {
    let db = ScratchStore::new(Backend::Postgres);
    let url = db.create_source().await;
    let w = Workdir::new(
        Backend::Sqlite,
        &config_with_source("postgresql", &url, "export:\n  chunk_size: 10\n"),
    );
    let child = slow_export(&w, &url, "interrupt-marker").await;
    signal(child.id(), "-TERM");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("export cancelled: interrupted (SIGTERM)"),
        "{err}"
    );
    assert!(!w.path().join("slow.xlsx").exists());
    assert!(
        files_under(&w.path().join("temp")).is_empty(),
        "temp files left"
    );
    let started = Instant::now();
    while active_queries(&url, "interrupt-marker").await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the query still runs on the server"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn temp_files_of_a_killed_export_are_swept_by_the_next() {
    let db = ScratchStore::new(Backend::Postgres);
    let url = db.create_source().await;
    let w = Workdir::new(
        Backend::Sqlite,
        &config_with_source("postgresql", &url, "export:\n  chunk_size: 10\n"),
    );
    let mut child = slow_export(&w, &url, "kill-marker").await;
    let pid = child.id();
    signal(pid, "-KILL");
    child.wait().unwrap();
    let dead_dir = w.path().join(format!("temp/reportd-{pid}"));
    assert!(
        dead_dir.exists(),
        "kill -9 leaves the temp directory behind"
    );
    assert!(
        !w.path().join("slow.xlsx").exists(),
        "but never a file in the destination"
    );
    w.ok(&[
        "export",
        "--source",
        "src",
        "--sql",
        "SELECT 1 AS one",
        "-o",
        "next.xlsx",
    ]);
    assert!(!dead_dir.exists(), "the next export removes it");
}

async fn store_of(w: &Workdir) -> Store {
    let settings = reportd::config::SystemDatabase {
        sqlite_path: w.path().join("data/system.db"),
        ..Default::default()
    };
    Store::connect(&settings).await.unwrap()
}

/// The read-only transaction behind the SQL classifier: a SELECT that writes through a
/// `SELECT id FROM t` still exports its one row, to `t.csv`.
fn assert_row_still_there(w: &Workdir) {
    let out = w.ok(&[
        "export",
        "--source",
        "src",
        "--sql",
        "SELECT id FROM t",
        "-o",
        "t.csv",
    ]);
    assert!(out.starts_with("1 rows"), "the row is still there: {out}");
}

/// function passes the classifier and must still be refused by the server.
async fn read_only_case(backend: Backend, kind: &str, message: &str, function: &str) {
    let db = ScratchStore::new(backend);
    let url = db.create_source().await;
    exec(&url, "CREATE TABLE t (id INT); INSERT INTO t VALUES (1);").await;
    exec(&url, function).await;
    let w = Workdir::new(Backend::Sqlite, &config_with_source(kind, &url, ""));
    w.write("t.yaml", "tasks:\n  - name: writer\n    data_source: src\n    cron: \"@daily\"\n    sql: SELECT wipe()\n");
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let err = w.fails(&["task", "run", "writer"], 1);
    assert!(
        err.contains("task writer: data source src: query:") && err.contains(message),
        "{kind}: {err}"
    );
    let err = w.fails(
        &[
            "export",
            "--source",
            "src",
            "--sql",
            "SELECT wipe() AS gone",
            "-o",
            "x.xlsx",
        ],
        1,
    );
    assert!(err.contains(message), "{kind}: {err}");
    assert_row_still_there(&w);
    assert_eq!(
        std::fs::read_to_string(w.path().join("t.csv")).unwrap(),
        "\u{feff}id\r\n1\r\n"
    );
    let store = store_of(&w).await;
    let runs = store.executions(None, 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, ExecutionStatus::Failed);
    assert!(runs[0].error.as_deref().unwrap().contains(message));
}

#[tokio::test]
async fn writes_are_refused_by_mariadb() {
    read_only_case(
        Backend::Mysql,
        "mysql",
        "READ ONLY transaction",
        "CREATE FUNCTION wipe() RETURNS INT MODIFIES SQL DATA BEGIN DELETE FROM t; RETURN 1; END",
    )
    .await;
}

#[tokio::test]
async fn writes_are_refused_by_postgres() {
    read_only_case(
        Backend::Postgres,
        "postgresql",
        "read-only transaction",
        "CREATE FUNCTION wipe() RETURNS int LANGUAGE sql AS $$ DELETE FROM t; SELECT 1 $$",
    )
    .await;
}

/// SQLite has no functions that write: a write is stopped by the SQL classifier (apply and
/// export), and the pool's read-only connections stay behind it.
#[tokio::test]
async fn writes_are_refused_by_sqlite() {
    let db = ScratchStore::new(Backend::Sqlite);
    let url = db.create_source().await;
    exec(&url, "CREATE TABLE t (id INT); INSERT INTO t VALUES (1);").await;
    let w = Workdir::new(Backend::Sqlite, &config_with_source("sqlite", &url, ""));
    w.write("t.yaml", "tasks:\n  - name: writer\n    data_source: src\n    cron: \"@daily\"\n    sql: DELETE FROM t\n");
    let err = w.fails(&["task", "apply", "-f", "t.yaml"], 1);
    assert!(
        err.contains("refused: only read queries may run (found DELETE)"),
        "{err}"
    );
    let err = w.fails(
        &[
            "export",
            "--source",
            "src",
            "--sql",
            "UPDATE t SET id = 2",
            "-o",
            "x.csv",
        ],
        1,
    );
    assert!(
        err.contains("data source src: refused: only read queries may run (found UPDATE)"),
        "{err}"
    );
    assert_row_still_there(&w);
}

#[tokio::test]
async fn task_run_records_the_execution_and_renders_names_and_macros() {
    let db = ScratchStore::new(Backend::Sqlite);
    let url = db.create_source().await;
    exec(&url, "CREATE TABLE o (id INTEGER, d TEXT); INSERT INTO o VALUES (1, date('now', '-1 day')), (2, date('now', '-10 day'));").await;
    let w = Workdir::new(
        Backend::Sqlite,
        &config_with_source("sqlite", &url, "scheduler:\n  timezone: UTC\n"),
    );
    w.write(
        "t.yaml",
        "tasks:\n  - name: 日报/daily\n    data_source: src\n    cron: \"@daily\"\n    timezone: UTC\n    sheets:\n      - { name: 昨天, sql: \"SELECT * FROM o WHERE d = '{yesterday}'\" }\n      - { name: 全部, sql: SELECT * FROM o }\n    output: { filename: \"{task_name}_{date:%Y%m%d}.xlsx\" }\n",
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let out = w.ok(&["task", "run", "日报/daily"]);
    let today = chrono::Utc::now().date_naive();
    let dir = w
        .path()
        .join("exports")
        .join(today.format("%Y-%m-%d").to_string());
    let file = dir.join(format!("日报_daily_{}.xlsx", today.format("%Y%m%d")));
    assert!(
        out.starts_with("3 rows")
            && out.contains(
                &file
                    .display()
                    .to_string()
                    .replace(&format!("{}/", w.path().display()), "")
            ),
        "{out}"
    );
    let sheets = read_xlsx(&file);
    assert_eq!(
        sheets.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
        ["昨天", "全部"]
    );
    assert_eq!(sheets[0].1.len(), 2, "header and yesterday's row");
    assert_eq!(sheets[1].1.len(), 3);
    // A second run does not overwrite the first file.
    w.ok(&["task", "run", "1"]);
    assert!(
        dir.join(format!("日报_daily_{}_2.xlsx", today.format("%Y%m%d")))
            .exists()
    );

    let store = store_of(&w).await;
    let runs = store.executions(None, 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    let run = &runs[1];
    assert_eq!(
        (run.status, run.trigger, run.rows),
        (ExecutionStatus::Success, Trigger::Manual, Some(3))
    );
    assert_eq!(run.bytes, Some(std::fs::metadata(&file).unwrap().len()));
    assert!(
        run.files[0].ends_with(&format!("日报_daily_{}.xlsx", today.format("%Y%m%d"))),
        "{:?}",
        run.files
    );
    assert!(run.finished_at.is_some());
}

#[tokio::test]
async fn task_timeout_stops_the_query_and_is_recorded() {
    let db = ScratchStore::new(Backend::Postgres);
    let url = db.create_source().await;
    let w = Workdir::new(Backend::Sqlite, &config_with_source("postgresql", &url, ""));
    w.write(
        "t.yaml",
        &format!("tasks:\n  - name: slow\n    data_source: src\n    cron: \"@daily\"\n    timeout: 1\n    sql: \"{}\"\n", slow_sql("timeout-marker")),
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let started = Instant::now();
    let err = w.fails(&["task", "run", "slow"], 1);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "gave up in time"
    );
    assert!(
        err.contains("timed out after 1s") && err.contains(", timeout)"),
        "{err}"
    );
    let store = store_of(&w).await;
    assert_eq!(
        store.executions(None, 1).await.unwrap()[0].status,
        ExecutionStatus::Timeout
    );
    assert!(files_under(&w.path().join("exports")).is_empty());
    let started = Instant::now();
    while active_queries(&url, "timeout-marker").await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the query still runs on the server"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
