//! Export safety (issue 11): a file belongs to exactly one export even when many want the
//! same name at once; CSV sheets whose names clash once made safe keep all their rows; a full
//! disk (temp or output) fails cleanly with its cause and leaves nothing behind; CSV text that
//! a spreadsheet would run as a formula is escaped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::helpers::{Backend, ScratchStore, Workdir, files_under};
use reportd::export::{Destination, ExportRequest, SheetQuery, export};
use reportd::model::datasource::{DataSourceSpec, SourceKind};
use reportd::model::execution::ExecutionStatus;
use reportd::model::task::Format;
use reportd::source::Source;
use reportd::source::query::QueryOptions;
use reportd::store::Store;

fn sqlite_config(url: &str, extra: &str) -> String {
    format!("data_sources:\n  src:\n    type: sqlite\n    url: \"{url}\"\n{extra}")
}

async fn store_of(w: &Workdir) -> Store {
    let settings = reportd::config::SystemDatabase {
        sqlite_path: w.path().join("data/system.db"),
        ..Default::default()
    };
    Store::connect(&settings).await.unwrap()
}

/// Rows `1..=n` of `x` with a constant `who` column.
fn marker_sql(who: &str, n: u32) -> String {
    format!(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT {n}) \
         SELECT '{who}' AS who, x FROM c"
    )
}

/// Every `who` value of a CSV file (the first column, header skipped).
fn csv_markers(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.trim_start_matches('\u{feff}')
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect()
}

fn request(who: &str, dir: &Path, temp: &Path) -> ExportRequest {
    ExportRequest {
        sheets: vec![SheetQuery {
            name: "data".into(),
            sql: marker_sql(who, 12),
            split: None,
        }],
        format: Format::Csv,
        destination: Destination::Dir {
            dir: dir.to_path_buf(),
            file_name: "shared.csv".into(),
        },
        query: QueryOptions {
            chunk_rows: 1,
            timeout: None,
            tz: chrono_tz::UTC,
            recycle: Default::default(),
            marks: Default::default(),
        },
        // One row per file: every export has 12 parts, all to be named under one suffix.
        max_file_size: 1,
        max_total_bytes: u64::MAX,
        compression_level: 1,
        temp_dir: temp.to_path_buf(),
        csv_escape_formulas: true,
        preview_rows: 0,
        look: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_exports_to_one_name_never_share_or_swap_files() {
    let db = ScratchStore::new(Backend::Sqlite);
    let url = db.create_source().await;
    let mut spec = DataSourceSpec::new(SourceKind::Sqlite);
    spec.url = reportd::model::secret::Secret::new(url);
    spec.max_connections = Some(16);
    let source = Arc::new(
        Source::open("src", &spec, reportd::config::ReadOnlyAccounts::Warn)
            .await
            .unwrap(),
    );
    let work = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let dir = work.path().join(format!("out{round}"));
        let temp = work.path().join("temp");
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (source, who) = (source.clone(), format!("task-{i}"));
                let req = request(&who, &dir, &temp);
                tokio::spawn(async move {
                    let outcome = export(
                        &source,
                        "src",
                        &req,
                        Arc::new(AtomicU64::new(0)),
                        std::future::pending::<String>(),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("{who}: {e}"));
                    (who, outcome)
                })
            })
            .collect();
        let mut all: Vec<PathBuf> = Vec::new();
        for t in tasks {
            let (who, outcome) = t.await.unwrap();
            assert_eq!(outcome.files.len(), 12, "{who}: one file per row");
            let suffixes: std::collections::HashSet<String> = outcome
                .files
                .iter()
                .map(|f| {
                    let name = f.path.file_name().unwrap().to_string_lossy().into_owned();
                    name.trim_end_matches(".csv")
                        .split("_part")
                        .next()
                        .unwrap()
                        .to_string()
                })
                .collect();
            assert_eq!(
                suffixes.len(),
                1,
                "{who}: parts share a suffix: {suffixes:?}"
            );
            for f in &outcome.files {
                assert_eq!(
                    csv_markers(&f.path),
                    [who.as_str()],
                    "round {round}: {} of {who} holds another export's data",
                    f.path.display()
                );
                all.push(f.path.clone());
            }
        }
        let distinct: std::collections::HashSet<&PathBuf> = all.iter().collect();
        assert_eq!(
            distinct.len(),
            16 * 12,
            "round {round}: every path is distinct"
        );
        let mut on_disk = files_under(&dir);
        on_disk.sort();
        all.sort();
        assert_eq!(on_disk, all, "round {round}: no file lost or left over");
        assert!(
            std::fs::read_dir(&temp).unwrap().next().is_none(),
            "no temp directory left"
        );
    }
}

#[tokio::test]
async fn tasks_sharing_a_file_name_each_point_at_their_own_file() {
    let db = ScratchStore::new(Backend::Sqlite);
    let url = db.create_source().await;
    let w = Workdir::new(Backend::Sqlite, &sqlite_config(&url, ""));
    let mut yaml = String::from("tasks:\n");
    for i in 0..6 {
        yaml.push_str(&format!(
            "  - name: t{i}\n    data_source: src\n    cron: \"@daily\"\n    sql: \"{}\"\n    output: {{ format: csv, filename: shared.csv }}\n",
            marker_sql(&format!("t{i}"), 3)
        ));
    }
    w.write("t.yaml", &yaml);
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let runs: Vec<_> = (0..6)
        .map(|i| {
            let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("reportd"));
            c.current_dir(w.path()).env_remove("RUST_LOG").args([
                "--config",
                "config.yaml",
                "task",
                "run",
                &format!("t{i}"),
            ]);
            c.output_async()
        })
        .collect();
    for r in runs {
        let out = r.join().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let store = store_of(&w).await;
    let execs = store.executions(None, 20).await.unwrap();
    assert_eq!(execs.len(), 6);
    let mut paths = std::collections::HashSet::new();
    for e in &execs {
        assert_eq!(e.status, ExecutionStatus::Success, "{:?}", e.error);
        assert_eq!(e.files.len(), 1);
        let path = w.path().join(&e.files[0]);
        assert_eq!(
            csv_markers(&path),
            [e.task_name.as_str(); 3],
            "{}",
            e.files[0]
        );
        assert!(paths.insert(path), "{} is shared", e.files[0]);
    }
}

/// Starts a process and joins it on a thread, so that several run at once.
trait OutputAsync {
    fn output_async(self) -> std::thread::JoinHandle<std::process::Output>;
}

impl OutputAsync for std::process::Command {
    fn output_async(mut self) -> std::thread::JoinHandle<std::process::Output> {
        let child = self
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::spawn(move || child.wait_with_output().unwrap())
    }
}

#[tokio::test]
async fn csv_sheets_whose_names_clash_once_made_safe_keep_all_their_rows() {
    let db = ScratchStore::new(Backend::Sqlite);
    let url = db.create_source().await;
    let w = Workdir::new(
        Backend::Sqlite,
        &sqlite_config(&url, "scheduler:\n  timezone: UTC\n"),
    );
    let sheets = ["Orders", "Orders ", "a<b", "a>b"];
    let mut yaml = String::from(
        "tasks:\n  - name: clash\n    data_source: src\n    cron: \"@daily\"\n    output: { format: csv, filename: r.csv }\n    sheets:\n",
    );
    for (i, name) in sheets.iter().enumerate() {
        yaml.push_str(&format!(
            "      - {{ name: \"{name}\", sql: \"{}\" }}\n",
            marker_sql(&format!("s{i}"), 5 + i as u32)
        ));
    }
    w.write("t.yaml", &yaml);
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    w.ok(&["task", "run", "clash"]);
    let store = store_of(&w).await;
    let run = &store.executions(None, 1).await.unwrap()[0];
    assert_eq!(run.status, ExecutionStatus::Success);
    assert_eq!(run.files.len(), 4, "a file per sheet: {:?}", run.files);
    let mut names = std::collections::HashSet::new();
    for (i, file) in run.files.iter().enumerate() {
        let path = w.path().join(file);
        let name = path.file_name().unwrap().to_string_lossy().to_lowercase();
        assert!(names.insert(name), "{file}: two sheets share a file name");
        assert_eq!(
            csv_markers(&path),
            vec![format!("s{i}"); 5 + i],
            "{file}: all rows of sheet {:?}",
            sheets[i]
        );
    }
    let on_disk = files_under(&w.path().join("exports"));
    assert_eq!(on_disk.len(), 4, "{on_disk:?}");
}

/// A tmpfs of `size` mounted at `dir` (created), unmounted on drop; `None` when this user
/// may not mount (the tests that need it then say so and stop).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .ok()?;
        if out.status.success() {
            Some(Tmpfs(dir.to_path_buf()))
        } else {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs ({}); run as root to test a full disk",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Every entry below `dir`, directories included.
fn entries_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            out.push(e.path());
            if e.path().is_dir() {
                out.extend(entries_under(&e.path()));
            }
        }
    }
    out
}

/// The error a full disk must give: one line, its cause, no panic or backtrace.
fn assert_full_disk_error(stderr: &str) {
    assert!(stderr.contains("No space left on device"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("error: ") && l.contains("No space left on device")),
        "{stderr}"
    );
    for bad in ["panicked", "backtrace", "RUST_BACKTRACE", ".rs:"] {
        assert!(!stderr.contains(bad), "{bad:?} on stderr: {stderr}");
    }
}

/// 3 MB or so of rows.
const BIG_SQL: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 60000) \
                       SELECT x, printf('row %d with some text to make the file grow', x) AS note FROM c";

async fn full_disk_case(format: &str, full: &str) {
    let db = ScratchStore::new(Backend::Sqlite);
    let url = db.create_source().await;
    let work = tempfile::tempdir().unwrap();
    let small = work.path().join("small");
    let (temp, out) = match full {
        "temp" => (small.clone(), work.path().join("exports")),
        _ => (work.path().join("temp"), small.clone()),
    };
    let w = Workdir::new(
        Backend::Sqlite,
        &sqlite_config(
            &url,
            &format!(
                "export:\n  temp_dir: {}\n  output_dir: {}\n",
                temp.display(),
                out.display()
            ),
        ),
    );
    let Some(_mount) = Tmpfs::mount(&small, "1m") else {
        return;
    };
    w.write(
        "t.yaml",
        &format!(
            "tasks:\n  - name: big\n    data_source: src\n    cron: \"@daily\"\n    sql: \"{BIG_SQL}\"\n    output: {{ format: {format} }}\n"
        ),
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let stderr = w.fails(&["task", "run", "big"], 1);
    assert_full_disk_error(&stderr);
    let store = store_of(&w).await;
    let run = &store.executions(None, 1).await.unwrap()[0];
    assert_eq!(run.status, ExecutionStatus::Failed);
    let error = run.error.as_deref().unwrap();
    assert!(
        error.contains("No space left on device") && !error.contains('\n'),
        "{error}"
    );
    assert!(run.files.is_empty());
    // The same through `reportd export` to a file in the small output directory.
    let target = out.join(format!("adhoc.{format}"));
    let stderr = w.fails(
        &[
            "export",
            "--source",
            "src",
            "--sql",
            BIG_SQL,
            "-o",
            target.to_str().unwrap(),
        ],
        1,
    );
    assert_full_disk_error(&stderr);
    // The output directory may keep its (empty) day directory, nothing else.
    assert!(
        files_under(&out).is_empty(),
        "{full} disk full: left behind {:?}",
        files_under(&out)
    );
    assert!(
        entries_under(&temp).is_empty(),
        "{full} disk full: temp left {:?}",
        entries_under(&temp)
    );
}

#[tokio::test]
async fn a_full_temp_disk_fails_an_xlsx_export_cleanly_with_its_cause() {
    full_disk_case("xlsx", "temp").await;
}

#[tokio::test]
async fn a_full_temp_disk_fails_a_csv_export_cleanly_with_its_cause() {
    full_disk_case("csv", "temp").await;
}

#[tokio::test]
async fn a_full_output_disk_leaves_no_partial_file() {
    full_disk_case("csv", "output").await;
}

#[tokio::test]
async fn a_failed_export_leaves_no_temp_directory() {
    let db = ScratchStore::new(Backend::Sqlite);
    let url = db.create_source().await;
    let w = Workdir::new(Backend::Sqlite, &sqlite_config(&url, ""));
    for format in ["xlsx", "csv"] {
        let err = w.fails(
            &[
                "export",
                "--source",
                "src",
                "--sql",
                "SELECT 1 AS a UNION ALL SELECT abs(-9223372036854775807 - 1)",
                "-o",
                &format!("x.{format}"),
            ],
            1,
        );
        assert!(err.contains("integer overflow"), "{err}");
        assert!(
            entries_under(&w.path().join("temp")).is_empty(),
            "{format}: left {:?}",
            entries_under(&w.path().join("temp"))
        );
    }
}

const FORMULA_SQL: &str = "SELECT '=1+2' AS a, '-x' AS b, -5 AS c, '@SUM(A1)' AS d, 'ok' AS e, \
                           '+1 555' AS f, char(9) || 'tab' AS g, -2.5 AS h";

#[tokio::test]
async fn csv_text_that_looks_like_a_formula_is_escaped_by_default() {
    let db = ScratchStore::new(Backend::Sqlite);
    let url = db.create_source().await;
    let w = Workdir::new(Backend::Sqlite, &sqlite_config(&url, ""));
    let args = [
        "export",
        "--source",
        "src",
        "--sql",
        FORMULA_SQL,
        "-o",
        "f.csv",
    ];
    w.ok(&args);
    assert_eq!(
        std::fs::read_to_string(w.path().join("f.csv")).unwrap(),
        "\u{feff}a,b,c,d,e,f,g,h\r\n'=1+2,'-x,-5,'@SUM(A1),ok,'+1 555,'\ttab,-2.5\r\n"
    );

    let off = Workdir::new(
        Backend::Sqlite,
        &sqlite_config(&url, "export:\n  csv_escape_formulas: false\n"),
    );
    off.ok(&args);
    assert_eq!(
        std::fs::read_to_string(off.path().join("f.csv")).unwrap(),
        "\u{feff}a,b,c,d,e,f,g,h\r\n=1+2,-x,-5,@SUM(A1),ok,+1 555,\ttab,-2.5\r\n"
    );

    // xlsx writes text as text: no formula, the exact string.
    w.ok(&[
        "export",
        "--source",
        "src",
        "--sql",
        FORMULA_SQL,
        "-o",
        "f.xlsx",
    ]);
    use calamine::{Data, Reader, Xlsx, open_workbook};
    let mut wb: Xlsx<_> = open_workbook(w.path().join("f.xlsx")).unwrap();
    let formulas = wb.worksheet_formula("f").unwrap();
    assert!(formulas.used_cells().all(|(_, _, f)| f.is_empty()));
    let range = wb.worksheet_range("f").unwrap();
    assert_eq!(range.get((1, 0)), Some(&Data::String("=1+2".into())));
    assert_eq!(range.get((1, 3)), Some(&Data::String("@SUM(A1)".into())));
    assert_eq!(range.get((1, 2)), Some(&Data::Float(-5.0)));
}

#[test]
fn unknown_export_keys_are_still_refused() {
    let w = Workdir::new(Backend::Sqlite, "export:\n  csv_escape_formula: false\n");
    let err = w.fails(&["check"], 1);
    assert!(err.contains("csv_escape_formula"), "{err}");
}
