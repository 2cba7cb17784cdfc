//! No panic escapes a run (issue 11, class 2): a run whose body panics ends as a `failed`
//! execution with the panic's text, in the record and the log file, `task run` exits 1 with
//! one line, a failure notice goes out, and in the daemon the task's next fire runs. Date
//! macros with time items render midnight; formats chrono cannot write are refused at apply
//! and, in a task stored before that check, fail the run instead of panicking.

use serde_json::Value;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::stop;
use crate::helpers::{Backend, DEMO_SOURCE, FAST_CRON, Workdir, exec, free_port};

/// What `reportd::run::attempt::DEBUG_PANIC_ENV` is: debug builds panic in the body of a run of the
/// task it names.
const PANIC_ENV: &str = "REPORTD_DEBUG_PANIC_IN_TASK";

fn logs(w: &Workdir) -> Vec<Value> {
    serde_json::from_str(&w.ok(&["logs", "--json", "--limit", "100"])).unwrap()
}

fn output(w: &Workdir, args: &[&str], env: Option<(&str, &str)>) -> Output {
    let mut c = w.cmd(args);
    if let Some((k, v)) = env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// A failed run through `task run`: exit 1, one `error:` line, no default panic message.
fn assert_failed_run(out: &Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{what}: {err}");
    assert!(!err.contains("RUST_BACKTRACE"), "{what}: {err}");
    assert!(!err.contains("thread '"), "{what}: {err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: task "), "{what}: {err}");
    err
}

#[test]
fn a_panic_in_task_run_is_a_failed_execution_logged_and_notified() {
    let w = Workdir::new(
        Backend::Sqlite,
        &format!("{DEMO_SOURCE}logging:\n  file: ./logs/reportd.log\n"),
    );
    w.write(
        "t.yaml",
        "tasks:\n  - name: boom\n    data_source: demo\n    cron: \"@daily\"\n    sql: SELECT id FROM orders LIMIT 3\n    notify:\n      dingtalk: { webhook: \"http://127.0.0.1:9/robot/send?access_token=x\" }\n",
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let out = output(&w, &["task", "run", "boom"], Some((PANIC_ENV, "boom")));
    let err = assert_failed_run(&out, "task run");
    assert!(err.contains("panicked: injected"), "{err}");
    // The failure notice of the final attempt was tried (the robot is not there).
    assert!(err.contains("notification dingtalk failed"), "{err}");

    let runs = logs(&w);
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["status"], "failed");
    let error = runs[0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("task boom: panicked: injected"),
        "{error}"
    );
    let log = std::fs::read_to_string(w.path().join("logs/reportd.log")).unwrap();
    assert!(
        log.contains("run panicked") && log.contains("injected"),
        "{log}"
    );

    // A panic after the body, while the row is completed, is recorded the same way.
    let out = output(
        &w,
        &["task", "run", "boom", "--no-notify"],
        Some((PANIC_ENV, "boom:finish")),
    );
    let err = assert_failed_run(&out, "task run (finishing)");
    assert!(err.contains("panicked: injected"), "{err}");
    let latest = &logs(&w)[0];
    assert_eq!(latest["status"], "failed", "{latest}");
    assert!(
        latest["error"]
            .as_str()
            .unwrap()
            .contains("while finishing"),
        "{latest}"
    );

    // Nothing is wedged: the same task runs again, and succeeds without the fault.
    w.ok(&["task", "run", "boom", "--no-notify"]);
    assert_eq!(logs(&w)[0]["status"], "success");
}

/// A format chrono cannot write, stored behind `task apply`'s back (as a task applied before
/// the check would be): the run fails with the placeholder named, no panic, nothing running.
#[tokio::test]
async fn an_unwritable_file_name_format_in_the_store_fails_the_run_cleanly() {
    let w = Workdir::sqlite_with_demo();
    w.write(
        "t.yaml",
        "tasks:\n  - name: zoned\n    data_source: demo\n    cron: \"@daily\"\n    sql: SELECT id FROM orders LIMIT 3\n",
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let store = format!("sqlite://{}", w.path().join("data/system.db").display());
    exec(
        &store,
        "UPDATE tasks SET output = json_set(output, '$.filename', 'r_{date:%#z}')",
    )
    .await;
    let out = output(&w, &["task", "run", "zoned"], None);
    let err = assert_failed_run(&out, "task run");
    assert!(
        err.contains("{date:%#z}: the date format cannot be written"),
        "{err}"
    );
    let runs = logs(&w);
    assert_eq!(runs[0]["status"], "failed", "{runs:#?}");

    // `check` finds the stored task's bad format too.
    let out = output(&w, &["check", "--no-connect"], None);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("output.filename") && text.contains("%#z"),
        "{text}"
    );
}

#[test]
fn in_the_daemon_a_panicking_run_frees_its_task_for_the_next_fire() {
    let w = Workdir::new(
        Backend::Sqlite,
        &format!("{DEMO_SOURCE}logging:\n  file: ./logs/reportd.log\nscheduler:\n{FAST_CRON}"),
    );
    w.write(
        "t.yaml",
        "tasks:\n  - name: every2s\n    data_source: demo\n    cron: \"*/2 * * * * *\"\n    sql: SELECT id FROM orders LIMIT 1\n",
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let daemon = Command::new(assert_cmd::cargo::cargo_bin("reportd"))
        .current_dir(w.path())
        .env(PANIC_ENV, "every2s")
        .args(["--config", "config.yaml", "run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let runs = loop {
        let runs = logs(&w);
        let settled = runs.iter().filter(|e| e["status"] != "running").count();
        if settled >= 3 {
            break runs;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "three fires: {runs:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let err = stop(daemon, Duration::from_secs(5));
    for run in runs.iter().filter(|e| e["status"] != "running") {
        // A fire that passed between `task apply` and the scheduler's start is run at once as
        // a catch-up: the fires are the cron's either way.
        assert!(
            run["trigger"] == "cron" || run["trigger"] == "catch-up",
            "{run}"
        );
        assert_eq!(run["status"], "failed", "not skipped: {runs:#?}");
        assert!(
            run["error"]
                .as_str()
                .unwrap()
                .contains("panicked: injected"),
            "{run}"
        );
    }
    assert!(err.contains("run panicked"), "{err}");
    let log = std::fs::read_to_string(w.path().join("logs/reportd.log")).unwrap();
    assert!(log.contains("injected"), "{log}");
    // Stopped cleanly: nothing left running.
    assert!(logs(&w).iter().all(|e| e["status"] != "running"));
}

#[test]
fn date_macros_with_time_items_render_midnight() {
    let w = Workdir::sqlite_with_demo();
    w.ok(&[
        "export",
        "--source",
        "demo",
        "--sql",
        "SELECT '{yesterday:%Y-%m-%d %H:%M:%S}' AS y, '{today:%s}' AS s, '{today:%H:%M %z}' AS z",
        "-o",
        "m.csv",
    ]);
    let text = std::fs::read_to_string(w.path().join("m.csv")).unwrap();
    let row = text.lines().nth(1).unwrap().trim_start_matches('\u{feff}');
    let cells: Vec<&str> = row.split(',').collect();
    assert!(cells[0].ends_with(" 00:00:00"), "{text}");
    let epoch: i64 = cells[1].parse().unwrap();
    // Midnight in the default zone (Asia/Shanghai, UTC+8).
    assert_eq!((epoch + 8 * 3600) % 86_400, 0, "{text}");
    assert_eq!(cells[2], "00:00 +0800", "{text}");

    let out = output(
        &w,
        &[
            "export",
            "--source",
            "demo",
            "--sql",
            "SELECT '{today:%#z}'",
            "-o",
            "x.csv",
        ],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("{today:%#z}"), "{err}");
}

#[test]
fn formats_that_cannot_be_written_are_refused_at_apply() {
    let w = Workdir::sqlite_with_demo();
    w.write(
        "t.yaml",
        r#"tasks:
  - name: fmt
    data_source: demo
    cron: "@daily"
    sheets:
      - name: a
        sql: "SELECT '{today:%#z}'"
      - name: b
        sql: "SELECT '{yesterday:%Y-%m-%d %H:%M:%S}', '{today:%s}'"
    output: { filename: "r_{date:%#z}" }
  - name: sqlfmt
    data_source: demo
    cron: "@daily"
    sql: "SELECT '{month_start:%Q}'"
"#,
    );
    let err = w.fails(&["task", "apply", "-f", "t.yaml"], 1);
    assert!(
        err.contains("task \"fmt\": sheets[1].sql: {today:%#z}"),
        "{err}"
    );
    assert!(err.contains("task \"fmt\": output.filename:"), "{err}");
    assert!(!err.contains("sheets[2]"), "{err}");
    assert!(
        err.contains("task \"sqlfmt\": sql: {month_start:%Q}"),
        "{err}"
    );
}

#[tokio::test]
async fn a_panicking_run_asked_for_over_http_frees_the_task() {
    let port = free_port();
    let w = Workdir::new(
        Backend::Sqlite,
        &format!("{DEMO_SOURCE}http:\n  bind: 127.0.0.1:{port}\n  token: t0ken\n"),
    );
    w.write(
        "t.yaml",
        "tasks:\n  - name: boom\n    data_source: demo\n    cron: \"0 0 1 1 *\"\n    sql: SELECT 1\n",
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let daemon = Command::new(assert_cmd::cargo::cargo_bin("reportd"))
        .current_dir(w.path())
        .env(PANIC_ENV, "boom")
        .args(["--config", "config.yaml", "run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while http.get(format!("{base}/health")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no HTTP server"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for attempt in 1..=2 {
        let r = http
            .post(format!("{base}/tasks/boom/run?wait=true"))
            .bearer_auth("t0ken")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "run {attempt} is not refused as busy");
        let ran: Value = r.json().await.unwrap();
        assert_eq!(ran["run"]["status"], "failed", "{ran:#}");
        assert!(
            ran["run"]["error"]
                .as_str()
                .unwrap()
                .contains("panicked: injected"),
            "{ran:#}"
        );
    }
    let health: Value = http
        .get(format!("{base}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["healthy"], true, "{health:#}");
    stop(daemon, Duration::from_secs(5));
}
