//! Retention: `reportd cleanup` removes exported files and execution history older than the
//! retention and keeps the rest; the daemon does the same at start.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::helpers::{Backend, DEMO_SOURCE, Workdir};

/// Writes `name` under `exports/` with a modification time `days` ago.
fn export_file(w: &Workdir, name: &str, days: u64) -> std::path::PathBuf {
    let path = w.path().join("exports").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, vec![b'x'; 1000]).unwrap();
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(days * 86_400))
        .unwrap();
    path
}

/// Runs the task once and dates its execution `days` back.
async fn history(w: &Workdir, task: &str, days: i64) {
    w.ok(&["task", "run", task]);
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        w.path().join("data/system.db").display()
    ))
    .await
    .unwrap();
    let at = chrono::Utc::now() - chrono::Duration::days(days);
    sqlx::query("UPDATE executions SET started_at = ? WHERE task_name = ?")
        .bind(at)
        .bind(task)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

fn tasks_in_logs(w: &Workdir) -> Vec<String> {
    let runs: Vec<serde_json::Value> =
        serde_json::from_str(&w.ok(&["logs", "--json", "--limit", "100"])).unwrap();
    runs.iter()
        .map(|r| r["task_name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn cleanup_removes_old_files_and_history_and_keeps_the_rest() {
    let w = Workdir::new(Backend::Sqlite, DEMO_SOURCE);
    w.write("t.yaml", "tasks:\n  - name: old\n    data_source: demo\n    cron: \"0 9 * * *\"\n    sql: SELECT 1 AS one\n  - name: new\n    data_source: demo\n    cron: \"0 9 * * *\"\n    sql: SELECT 1 AS one\n");
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    history(&w, "old", 40).await;
    history(&w, "new", 5).await;
    let stale = export_file(&w, "2026-01-01/stale.xlsx", 40);
    let fresh = export_file(&w, "2026-11-20/fresh.xlsx", 5);

    let out = w.ok(&["cleanup", "--days", "30", "--dry-run"]);
    assert!(
        out.starts_with("would remove 1 file(s) (1000B) older than 30 days"),
        "{out}"
    );
    assert!(stale.exists());

    let out = w.ok(&["cleanup", "--days", "30"]);
    assert!(
        out.starts_with("removed 1 file(s) (1000B) and 1 empty directories"),
        "{out}"
    );
    assert!(out.contains("1 execution(s)"), "{out}");
    assert!(!stale.exists() && !stale.parent().unwrap().exists());
    assert!(fresh.exists());
    assert_eq!(tasks_in_logs(&w), ["new"]);
    assert!(
        Path::new(&w.path().join("exports")).exists(),
        "the export root stays"
    );
}

#[test]
fn the_daemon_applies_the_retention_at_start() {
    let w = Workdir::new(
        Backend::Sqlite,
        &format!("{DEMO_SOURCE}export:\n  retention_days: 10\n"),
    );
    let stale = export_file(&w, "2026-01-01/stale.xlsx", 11);
    let fresh = export_file(&w, "2026-11-20/fresh.xlsx", 9);
    let daemon = crate::daemon::start(&w);
    let started = std::time::Instant::now();
    while stale.exists() {
        assert!(started.elapsed() < Duration::from_secs(10), "not removed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let err = crate::daemon::stop(daemon, Duration::from_secs(5));
    assert!(
        err.contains("retention: old files and history removed"),
        "{err}"
    );
    assert!(fresh.exists());
}
