//! Cancelling a running execution from another process, as an operator would: `reportd task
//! run` of a long query on MariaDB and PostgreSQL in one process, `reportd cancel ID` in
//! another. The query is gone from the server, the run ends `cancelled` with who asked, no
//! file is kept; a finished or unknown execution cannot be cancelled.

use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::helpers::{Backend, Workdir, files_under, mysql_url, pg_url};

/// Queries on the source server whose text holds `marker`, other than the asking one.
pub(crate) async fn queries_with(url: &str, marker: &str) -> i64 {
    if url.starts_with("mysql:") {
        let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
        let sql = format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%{marker}%' AND ID <> CONNECTION_ID()"
        );
        sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_one(&mut c)
            .await
            .unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        let sql = format!(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE '%{marker}%' AND pid <> pg_backend_pid()"
        );
        sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_one(&mut c)
            .await
            .unwrap()
    }
}

fn running_id(w: &Workdir) -> Option<i64> {
    let runs: Vec<Value> = serde_json::from_str(&w.ok(&["logs", "--json"])).unwrap();
    runs.iter()
        .find(|r| r["status"] == "running")
        .and_then(|r| r["id"].as_i64())
}

async fn cancel_a_running_query(url: String, kind: &str, sql: &str, marker: &str) {
    let config = format!("data_sources:\n  db:\n    type: {kind}\n    url: \"{url}\"\n");
    let w = Workdir::new(Backend::Sqlite, &config);
    w.write(
        "t.yaml",
        &format!(
            "tasks:\n  - name: slow\n    data_source: db\n    cron: \"0 9 * * *\"\n    timeout: 120\n    output: {{ format: csv }}\n    sql: {sql}\n"
        ),
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_reportd"))
        .current_dir(w.path())
        .args(["--config", "config.yaml", "task", "run", "slow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let id = loop {
        if let Some(id) = running_id(&w) {
            break id;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never ran");
        std::thread::sleep(Duration::from_millis(100));
    };
    while queries_with(&url, marker).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the query never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let asked = Instant::now();
    let out = w.ok(&["cancel", &id.to_string()]);
    assert_eq!(out.trim(), format!("execution {id}: cancelled"));
    let status = run.wait().unwrap();
    let took = asked.elapsed();
    assert!(!status.success(), "a cancelled run fails");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("asked by"), "{stderr}");

    let runs: Vec<Value> = serde_json::from_str(&w.ok(&["logs", "--json"])).unwrap();
    let run = &runs[0];
    assert_eq!(run["status"], "cancelled", "{run:#}");
    let error = run["error"].as_str().unwrap();
    assert!(
        error.contains("asked by") && error.contains("(cli)"),
        "{error}"
    );
    assert!(
        files_under(&w.path().join("exports")).is_empty(),
        "no file kept"
    );
    // Stopped on the server too, not only abandoned by the client.
    let gone = Instant::now();
    while queries_with(&url, marker).await > 0 {
        assert!(
            gone.elapsed() < Duration::from_secs(2),
            "the query still runs on the server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let err = w.fails(&["cancel", &id.to_string()], 1);
    assert!(err.contains("is not running (cancelled)"), "{err}");
    let err = w.fails(&["cancel", "999999"], 1);
    assert!(err.contains("no execution 999999"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_mariadb_query_from_another_process() {
    cancel_a_running_query(
        mysql_url(),
        "mysql",
        "SELECT SLEEP(60) AS cancel_marker_my",
        "cancel_marker_my",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_postgres_query_from_another_process() {
    cancel_a_running_query(
        pg_url(),
        "postgresql",
        "SELECT 1 AS cancel_marker_pg FROM pg_sleep(60)",
        "cancel_marker_pg",
    )
    .await;
}
