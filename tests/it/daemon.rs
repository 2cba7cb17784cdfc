//! `reportd run` driven as systemd would: fires on time (6-field cron every 2 s), a fire that
//! comes while the previous run still goes is `skipped`, SIGTERM drains then interrupts,
//! executions of a killed daemon are recovered, missed fires run once within the grace time or
//! are recorded as skipped beyond it.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{Backend, DEMO_SOURCE, FAST_CRON, ScratchStore, Workdir};

pub fn start(w: &Workdir) -> Child {
    start_with(w, "config.yaml")
}

fn start_with(w: &Workdir, config: &str) -> Child {
    // Each daemon its own PID file, for configs that say `${REPORTD_TEST_PID_FILE}` (several
    // daemons in one directory).
    static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Command::new(assert_cmd::cargo::cargo_bin("reportd"))
        .current_dir(w.path())
        .env("REPORTD_TEST_PID_FILE", format!("reportd-{n}.pid"))
        .args(["--config", config, "run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

pub fn signal(child: &Child, sig: &str) {
    assert!(
        Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

pub fn logs(w: &Workdir) -> Vec<Value> {
    serde_json::from_str(&w.ok(&["logs", "--json", "--limit", "100"])).unwrap()
}

/// Waits until `pred` holds for the execution history, up to `secs`.
pub fn wait_for(w: &Workdir, secs: u64, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let runs = logs(w);
        if pred(&runs) {
            return runs;
        }
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}: {runs:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn stop(child: Child, within: Duration) -> String {
    signal(&child, "-TERM");
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < within,
        "shutdown took {:?}",
        started.elapsed()
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{err}");
    err
}

/// The executions that are not fires folded into a later one, and checks that each folded
/// one names an execution among them.
pub fn unfolded(runs: &[Value]) -> Vec<Value> {
    let folded = |e: &Value| {
        e["error"]
            .as_str()
            .and_then(|t| t.split("; folded into execution ").nth(1))
            .map(|id| id.parse::<i64>().unwrap())
    };
    let kept: Vec<Value> = runs
        .iter()
        .filter(|e| folded(e).is_none())
        .cloned()
        .collect();
    for e in runs {
        if let Some(into) = folded(e) {
            assert_eq!(e["status"], "skipped", "{e}");
            assert!(
                kept.iter().any(|k| k["id"] == into),
                "{e} names no execution kept: {runs:#?}"
            );
        }
    }
    kept
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn fires_on_time_and_stops_cleanly() {
    let w = Workdir::new(
        Backend::Sqlite,
        &format!("{DEMO_SOURCE}scheduler:\n{FAST_CRON}"),
    );
    w.write("t.yaml", "tasks:\n  - name: every2s\n    data_source: demo\n    cron: \"*/2 * * * * *\"\n    sql: SELECT id, city FROM orders LIMIT 5\n");
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let daemon = start(&w);
    let runs = wait_for(&w, 15, "two cron runs", |r| {
        r.iter()
            .filter(|e| e["trigger"] == "cron" && e["status"] == "success")
            .count()
            >= 2
    });
    let err = stop(daemon, Duration::from_secs(5));
    assert!(
        err.contains("scheduler started") && err.contains("scheduler stopped"),
        "{err}"
    );
    for run in runs.iter().filter(|e| e["trigger"] == "cron") {
        let scheduled = time(&run["scheduled_at"]);
        assert_eq!(scheduled.timestamp() % 2, 0, "fires on even seconds: {run}");
        let delay = time(&run["started_at"]) - scheduled;
        assert!(
            delay < chrono::Duration::milliseconds(500),
            "fired {delay} late: {run}"
        );
        assert_eq!(run["rows"], 5);
        assert!(std::path::Path::new(&w.path().join(run["files"][0].as_str().unwrap())).exists());
    }
}

#[tokio::test]
async fn overlap_is_skipped_and_shutdown_interrupts_after_its_timeout() {
    let db = ScratchStore::new(Backend::Postgres);
    let url = db.create_source().await;
    let w = Workdir::new(
        Backend::Sqlite,
        &format!(
            "data_sources:\n  pg:\n    type: postgresql\n    url: \"{url}\"\ndaemon:\n  shutdown_timeout: 1\nscheduler:\n{FAST_CRON}"
        ),
    );
    w.write("t.yaml", "tasks:\n  - name: slow\n    data_source: pg\n    cron: \"* * * * * *\"\n    sql: SELECT pg_sleep(30)\n");
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let daemon = start(&w);
    wait_for(&w, 15, "a skipped overlap", |r| {
        r.iter().any(|e| {
            e["status"] == "skipped"
                && e["error"]
                    .as_str()
                    .is_some_and(|m| m.contains("still going"))
        })
    });
    stop(daemon, Duration::from_secs(6));
    let runs = logs(&w);
    assert!(runs.iter().all(|e| e["status"] != "running"), "{runs:#?}");
    let interrupted: Vec<&Value> = runs
        .iter()
        .filter(|e| e["status"] == "interrupted")
        .collect();
    assert_eq!(interrupted.len(), 1, "{runs:#?}");
    assert!(
        interrupted[0]["error"]
            .as_str()
            .unwrap()
            .contains("interrupted (daemon shutdown)")
    );
}

#[tokio::test]
async fn executions_of_a_killed_daemon_are_recovered_at_start() {
    let db = ScratchStore::new(Backend::Postgres);
    let url = db.create_source().await;
    let w = Workdir::new(
        Backend::Sqlite,
        &format!(
            "data_sources:\n  pg:\n    type: postgresql\n    url: \"{url}\"\nscheduler:\n{FAST_CRON}"
        ),
    );
    w.write("t.yaml", "tasks:\n  - name: slow\n    data_source: pg\n    cron: \"*/3 * * * * *\"\n    sql: SELECT pg_sleep(30)\n");
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let mut daemon = start(&w);
    wait_for(&w, 40, "a running execution", |r| {
        r.iter().any(|e| e["status"] == "running")
    });
    signal(&daemon, "-KILL");
    daemon.wait().unwrap();
    w.ok(&["task", "disable", "slow"]);
    let again = start(&w);
    let runs = wait_for(&w, 10, "the recovery", |r| {
        r.iter().all(|e| e["status"] != "running")
    });
    stop(again, Duration::from_secs(5));
    assert_eq!(runs[0]["status"], "interrupted", "{runs:#?}");
    assert!(
        runs[0]["error"]
            .as_str()
            .unwrap()
            .contains("recovered at start")
    );
}

/// Applies `tasks` and dates the tasks' creation back to 2020, so that fires since then count
/// as missed.
async fn apply_created_long_ago(w: &Workdir, tasks: &str) {
    w.write("t.yaml", tasks);
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let db = w.path().join("data/system.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let long_ago: DateTime<Utc> = "2020-06-01T00:00:00Z".parse().unwrap();
    sqlx::query("UPDATE tasks SET created_at = ?")
        .bind(long_ago)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

/// A task whose only fire is on January 1st.
const YEARLY: &str = "tasks:\n  - name: yearly\n    data_source: demo\n    cron: \"0 0 1 1 *\"\n    sql: SELECT COUNT(*) AS n FROM orders\n";

#[tokio::test]
async fn a_missed_fire_within_grace_runs_once_and_beyond_grace_is_recorded() {
    // Within: a grace of more than a year covers the missed January 1st fire.
    let w = Workdir::new(
        Backend::Sqlite,
        &format!("{DEMO_SOURCE}scheduler:\n  misfire_grace_time: 40000000\n"),
    );
    apply_created_long_ago(&w, YEARLY).await;
    let daemon = start(&w);
    wait_for(&w, 10, "the catch-up run", |r| {
        r.iter().any(|e| e["status"] == "success")
    });
    stop(daemon, Duration::from_secs(5));
    let all = logs(&w);
    let runs = unfolded(&all);
    assert_eq!(
        runs.len(),
        1,
        "several missed fires coalesce into one run: {all:#?}"
    );
    assert!(
        all.len() > 1,
        "the earlier missed fires are recorded: {all:#?}"
    );
    assert_eq!(runs[0]["trigger"], "catch-up");
    assert!(
        runs[0]["scheduled_at"]
            .as_str()
            .unwrap()
            .ends_with("-12-31T16:00:00Z"),
        "Jan 1st 00:00 in Shanghai: {}",
        runs[0]
    );

    // Beyond: with a one-second grace the same fire is recorded as skipped, once.
    let w = Workdir::new(
        Backend::Sqlite,
        &format!("{DEMO_SOURCE}scheduler:\n  misfire_grace_time: 1\n"),
    );
    apply_created_long_ago(&w, YEARLY).await;
    let daemon = start(&w);
    wait_for(&w, 10, "the skipped record", |r| !r.is_empty());
    stop(daemon, Duration::from_secs(5));
    let again = start(&w);
    std::thread::sleep(Duration::from_secs(1));
    stop(again, Duration::from_secs(5));
    let all = logs(&w);
    let runs = unfolded(&all);
    assert_eq!(runs.len(), 1, "recorded once, not at every start: {all:#?}");
    assert_eq!(runs[0]["status"], "skipped");
    assert!(
        runs[0]["error"]
            .as_str()
            .unwrap()
            .contains("beyond scheduler.misfire_grace_time"),
        "{}",
        runs[0]
    );
}

#[test]
fn sigterm_during_start_up_still_stops_cleanly() {
    let w = Workdir::new(Backend::Sqlite, DEMO_SOURCE);
    for _ in 0..3 {
        let daemon = start(&w);
        std::thread::sleep(Duration::from_millis(30));
        stop(daemon, Duration::from_secs(5));
    }
}

#[tokio::test]
async fn a_failed_run_is_retried_with_back_off_each_attempt_recorded() {
    let w = Workdir::new(
        Backend::Sqlite,
        &format!("{DEMO_SOURCE}scheduler:\n  misfire_grace_time: 40000000\n  retry_backoff: 1\n"),
    );
    apply_created_long_ago(
        &w,
        "tasks:\n  - name: yearly\n    data_source: demo\n    cron: \"0 0 1 1 *\"\n    retries: 2\n    sql: SELECT no_such_column FROM orders\n",
    )
    .await;

    let daemon = start(&w);
    // (The earlier missed January fires are recorded skipped, folded into this one.)
    let runs = wait_for(&w, 15, "three attempts", |r| {
        unfolded(r).len() >= 3 && r.iter().all(|e| e["status"] != "running")
    });
    stop(daemon, Duration::from_secs(5));
    let mut runs = unfolded(&runs);
    runs.reverse();
    let seen: Vec<(&str, u64, &str)> = runs
        .iter()
        .map(|e| {
            (
                e["trigger"].as_str().unwrap(),
                e["attempt"].as_u64().unwrap(),
                e["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("catch-up", 1, "failed"),
            ("retry", 2, "failed"),
            ("retry", 3, "failed")
        ]
    );
    assert!(
        runs.iter()
            .all(|e| e["scheduled_at"] == runs[0]["scheduled_at"]),
        "all attempts belong to one fire"
    );
    let gap = |a: &Value, b: &Value| time(&b["started_at"]) - time(&a["finished_at"]);
    assert!(
        gap(&runs[0], &runs[1]) >= chrono::Duration::milliseconds(950),
        "first back-off 1 s"
    );
    assert!(
        gap(&runs[1], &runs[2]) >= chrono::Duration::milliseconds(1950),
        "second back-off 2 s"
    );
}

#[test]
fn sighup_reloads_the_config_and_refuses_a_broken_one() {
    let w = Workdir::new(
        Backend::Sqlite,
        &format!("{DEMO_SOURCE}scheduler:\n{FAST_CRON}"),
    );
    let original = std::fs::read_to_string(w.path().join("config.yaml")).unwrap();
    w.write("t.yaml", "tasks:\n  - name: every2s\n    data_source: demo\n    cron: \"*/2 * * * * *\"\n    sql: SELECT id FROM orders LIMIT 1\n");
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    // The daemon reads its own copy, which the test edits; `logs` keeps using config.yaml.
    w.write("daemon.yaml", &original);
    let daemon = start_with(&w, "daemon.yaml");
    wait_for(&w, 10, "a first run", |r| {
        r.iter().any(|e| e["status"] == "success")
    });

    // A broken file is refused; the daemon goes on with the old config.
    w.write("daemon.yaml", &format!("{original}bogus_key: 1\n"));
    signal(&daemon, "-HUP");
    let before = logs(&w).len();
    wait_for(&w, 10, "a run after the refused reload", |r| {
        r.len() > before + 1 && r[0]["status"] == "success"
    });

    // A good file takes effect for the next fires.
    w.write(
        "daemon.yaml",
        &format!("{original}export:\n  output_dir: ./reports\n"),
    );
    signal(&daemon, "-HUP");
    let runs = wait_for(&w, 10, "a run into the new output_dir", |r| {
        r.iter().any(|e| {
            e["files"][0]
                .as_str()
                .is_some_and(|f| f.starts_with("./reports/"))
        })
    });
    let err = stop(daemon, Duration::from_secs(5));
    assert!(
        err.contains("config reload failed; keeping the current config")
            && err.contains("bogus_key"),
        "{err}"
    );
    assert!(err.contains("config reloaded"), "{err}");
    assert!(runs.iter().all(|e| e["status"] == "success"), "{runs:#?}");
}

#[test]
fn fires_due_during_a_stall_coalesce_into_one() {
    let w = Workdir::new(
        Backend::Sqlite,
        &format!("{DEMO_SOURCE}scheduler:\n{FAST_CRON}"),
    );
    w.write("t.yaml", "tasks:\n  - name: every1s\n    data_source: demo\n    cron: \"* * * * * *\"\n    sql: SELECT 1 AS one\n");
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let daemon = start(&w);
    wait_for(&w, 10, "a first run", |r| {
        r.iter().any(|e| e["status"] == "success")
    });
    signal(&daemon, "-STOP");
    let stalled = Utc::now();
    std::thread::sleep(Duration::from_secs(4));
    let resumed = Utc::now();
    signal(&daemon, "-CONT");
    std::thread::sleep(Duration::from_millis(1500));
    let err = stop(daemon, Duration::from_secs(5));
    let in_stall = |runs: &[Value]| {
        runs.iter()
            .filter(|e| {
                let at = time(&e["scheduled_at"]);
                at > stalled + chrono::Duration::seconds(1) && at <= resumed
            })
            .count()
    };
    let all = logs(&w);
    let ran = in_stall(&unfolded(&all));
    assert!(
        ran <= 1,
        "{ran} fires run for the 4 s stall; they should coalesce"
    );
    assert!(
        in_stall(&all) >= 2,
        "each coalesced fire is recorded skipped: {all:#?}"
    );
    assert!(err.contains("coalesced"), "{err}");
}
