//! Every limit checked where it is written (issue 11, class 8): config numbers a run or the
//! daemon would fail on are refused by `check` and `run` alike, naming the key; `task apply`
//! refuses sheet names over 31 UTF-16 units, timeouts beyond 24 days and crons that never
//! fire; `cleanup --days` far in the past is refused, not a panic.

use crate::helpers::{Backend, DEMO_SOURCE, Workdir};

/// Config values the daemon used to crash or fail every run on, and the key each names.
const BAD_CONFIGS: &[(&str, &str)] = &[
    (
        "scheduler:\n  misfire_grace_time: 10000000000000000\n",
        "scheduler.misfire_grace_time",
    ),
    (
        "export:\n  retention_days: 99999999\n",
        "export.retention_days",
    ),
    ("export:\n  chunk_size: 1000000000\n", "export.chunk_size"),
    (
        "scheduler:\n  task_timeout: 18446744073709551615\n",
        "scheduler.task_timeout",
    ),
    // Beyond PostgreSQL's statement_timeout (INT_MAX ms, 24.8 days).
    (
        "scheduler:\n  task_timeout: 2592000\n",
        "scheduler.task_timeout",
    ),
    (
        "export:\n  query_timeout: 2592000\n",
        "export.query_timeout",
    ),
    (
        "scheduler:\n  max_workers: 100000000000\n",
        "scheduler.max_workers",
    ),
    (
        "scheduler:\n  log_retention_days: 4000000000\n",
        "scheduler.log_retention_days",
    ),
    (
        "scheduler:\n  retry_backoff: 99999999999\n",
        "scheduler.retry_backoff",
    ),
    (
        "scheduler:\n  lease_time: 99999999999\n",
        "scheduler.lease_time",
    ),
    (
        "daemon:\n  shutdown_timeout: 99999999999\n",
        "daemon.shutdown_timeout",
    ),
    ("http:\n  link_expiry: 99999999999999\n", "http.link_expiry"),
    (
        "email:\n  retry_attempts: 4000000000\n",
        "email.retry_attempts",
    ),
    (
        "email:\n  smtp_timeout: 99999999999\n",
        "email.smtp_timeout",
    ),
    ("dingtalk:\n  timeout: 0\n", "dingtalk.timeout"),
    (
        "logging:\n  backup_count: 99999999\n",
        "logging.backup_count",
    ),
    (
        "email:\n  max_attachment_size: 10GB\n",
        "email.max_attachment_size",
    ),
    ("export:\n  max_file_size: 1KB\n", "export.max_file_size"),
];

#[test]
fn check_and_run_refuse_numbers_the_daemon_cannot_use() {
    for (body, key) in BAD_CONFIGS {
        let w = Workdir::new(Backend::Sqlite, &format!("{DEMO_SOURCE}{body}"));
        for args in [&["check", "--no-connect"][..], &["run"]] {
            let err = w.fails(args, 1);
            let line = err.lines().last().unwrap_or_default();
            assert!(
                line.starts_with("error: ") && line.contains(key) && line.contains("out of range"),
                "{args:?} with {body:?}: {err}"
            );
            assert!(line.contains("config.yaml:"), "the line is given: {err}");
        }
    }
}

#[test]
fn a_data_source_pool_too_big_to_allocate_is_refused() {
    let w = Workdir::new(
        Backend::Sqlite,
        "data_sources:\n  big:\n    type: sqlite\n    database: ./big.db\n    max_connections: 4000000000\n",
    );
    let err = w.fails(&["check", "--no-connect"], 1);
    assert!(
        err.contains("data_sources.big: max_connections: 4000000000 is out of range"),
        "{err}"
    );
}

#[test]
fn bounds_that_are_fine_still_load() {
    let w = Workdir::new(
        Backend::Sqlite,
        &format!(
            "{DEMO_SOURCE}scheduler:\n  task_timeout: 2073600\n  misfire_grace_time: 40000000\nexport:\n  chunk_size: 100000\n  retention_days: 36500\n"
        ),
    );
    w.ok(&["check", "--no-connect"]);
}

#[test]
fn apply_refuses_what_every_run_or_fire_would_fail_on() {
    let w = Workdir::sqlite_with_demo();
    let emoji = "📊".repeat(16); // 16 characters, 32 UTF-16 units
    w.write(
        "t.yaml",
        &format!(
            r#"tasks:
  - name: wide
    data_source: demo
    cron: "@daily"
    sheets:
      - name: "{emoji}"
        sql: SELECT 1
  - name: forever
    data_source: demo
    cron: "@daily"
    timeout: 18446744073709551615
    sql: SELECT 1
  - name: month
    data_source: demo
    cron: "@daily"
    timeout: 2592000
    retries: 4000000000
    sql: SELECT 1
  - name: feb31
    data_source: demo
    cron: "0 9 31 2 *"
    sql: SELECT 1
"#
        ),
    );
    let err = w.fails(&["task", "apply", "-f", "t.yaml"], 1);
    for want in [
        "task \"wide\": sheets[1].name:",
        "is 32 UTF-16 units long; Excel allows at most 31",
        "task \"forever\": timeout: 18446744073709551615 is out of range",
        "task \"month\": timeout: 2592000 is out of range",
        "task \"month\": retries: 4000000000 is out of range",
        "task \"feb31\": cron: \"0 9 31 2 *\" never fires",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    assert!(
        err.contains("5 problems found; nothing was written"),
        "{err}"
    );
    let listed = w.ok(&["task", "list"]);
    assert!(!listed.contains("feb31"), "{listed}");

    // The limits themselves pass: 15 emoji are 30 units, 24 days is the longest timeout.
    w.write(
        "ok.yaml",
        &format!(
            "tasks:\n  - name: ok\n    data_source: demo\n    cron: \"0 9 29 2 *\"\n    timeout: 2073600\n    sheets:\n      - name: \"{}\"\n        sql: SELECT 1\n",
            "📊".repeat(15)
        ),
    );
    w.ok(&["task", "apply", "-f", "ok.yaml"]);
    w.ok(&["task", "run", "ok", "--no-notify"]);
}

#[test]
fn a_task_named_with_emoji_gets_a_sheet_name_excel_takes() {
    let w = Workdir::sqlite_with_demo();
    let name = "📊".repeat(20);
    w.write(
        "t.yaml",
        &format!("tasks:\n  - name: \"{name}\"\n    data_source: demo\n    cron: \"@daily\"\n    sql: SELECT 1\n"),
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    w.ok(&["task", "run", &name, "--no-notify"]);
}

#[test]
fn cleanup_with_an_absurd_age_is_refused_not_a_panic() {
    let w = Workdir::sqlite_with_demo();
    let err = w.fails(&["cleanup", "--days", "100000000"], 1);
    assert!(err.contains("--days 100000000 is out of range"), "{err}");
    w.ok(&["cleanup", "--days", "36500", "--dry-run"]);
}

#[test]
fn cron_next_says_an_expression_never_fires() {
    let w = Workdir::sqlite_with_demo();
    let err = w.fails(&["cron", "next", "0 9 31 2 *"], 1);
    assert!(err.contains("\"0 9 31 2 *\" never fires"), "{err}");
}
