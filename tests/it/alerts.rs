//! Alerts end to end, through `reportd task apply` and `reportd task run` against a stand-in
//! DingTalk: an alert-only task (`output.format: none`) that goes ok → triggered → triggered
//! → ok sends exactly the trigger (with the table) and the recovery; `repeat: always` sends
//! every time it holds; an alert whose own query fails records `error` and sends the
//! failure notice; bad alerts are refused at apply, naming the field.

use serde_json::Value;

use crate::dingtalk::{SECRET, StandIn};
use crate::helpers::{Backend, Workdir, exec, files_under};

/// A workdir whose data source `m` is a SQLite file with table `q(region, v)`.
fn setup(ding: &StandIn, tasks: &str) -> (Workdir, String) {
    let config = format!(
        "data_sources:\n  m:\n    type: sqlite\n    database: ./m.db\ndingtalk:\n  webhook_url: \"http://127.0.0.1:{}/robot/send?access_token=ok_alert\"\n  secret: \"{SECRET}\"\n",
        ding.port
    );
    let w = Workdir::new(Backend::Sqlite, &config);
    let url = format!("sqlite://{}?mode=rwc", w.path().join("m.db").display());
    block_on(exec(
        &url,
        "CREATE TABLE q (region TEXT, v INTEGER); INSERT INTO q VALUES ('华东', 5), ('华北', 1)",
    ));
    w.write("t.yaml", tasks);
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    (w, url)
}

/// Runs `f` to its end on a fresh current-thread runtime (for the synchronous tests).
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn set_backlog(url: &str, v: i64) {
    block_on(exec(
        url,
        &format!("UPDATE q SET v = {v} WHERE region = '华东'"),
    ));
}

/// The task's executions, oldest first.
fn history(w: &Workdir, task: &str) -> Vec<Value> {
    let mut runs: Vec<Value> =
        serde_json::from_str(&w.ok(&["logs", "--task", task, "--json"])).unwrap();
    runs.reverse();
    runs
}

fn titles(ding: &StandIn) -> Vec<String> {
    ding.requests()
        .iter()
        .map(|r| r["body"]["markdown"]["title"].as_str().unwrap().to_string())
        .collect()
}

const BACKLOG: &str = r#"tasks:
  - name: 积压告警
    data_source: m
    cron: "0 9 * * *"
    sql: SELECT v AS backlog, region FROM q ORDER BY v DESC
    output: { format: none }
    alert: { condition: "value > 100" }
    notify:
      dingtalk: {}
"#;

#[test]
fn on_change_sends_exactly_the_trigger_and_the_recovery() {
    let ding = StandIn::start();
    let (w, url) = setup(&ding, BACKLOG);
    for v in [5, 150, 170, 3, 4] {
        set_backlog(&url, v);
        let out = w.cmd(&["task", "run", "积压告警"]).output().unwrap();
        assert!(out.status.success());
        let shown = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        let state = if v > 100 { "triggered" } else { "ok" };
        let want = format!("no file; alert {state}: value > 100 ({v})");
        assert!(
            shown.contains("2 rows, ") && shown.contains(&want),
            "{want} in {shown}"
        );
    }
    let states: Vec<Value> = history(&w, "积压告警")
        .iter()
        .map(|r| r["alert"].clone())
        .collect();
    assert_eq!(states, ["ok", "triggered", "triggered", "ok", "ok"]);
    assert_eq!(titles(&ding), ["积压告警 告警", "积压告警 已恢复"]);
    let reqs = ding.requests();
    assert!(reqs.iter().all(|r| r["sign_ok"] == true));
    let alert = reqs[0]["body"]["markdown"]["text"].as_str().unwrap();
    for want in [
        "`value > 100`",
        "**当前值**: 150",
        "| backlog | region |",
        "| ---: | :--- |",
        "| 150 | 华东 |",
        "| 1 | 华北 |",
    ] {
        assert!(alert.contains(want), "{want} in {alert}");
    }
    let recovery = reqs[1]["body"]["markdown"]["text"].as_str().unwrap();
    assert!(recovery.contains("**当前值**: 3"), "{recovery}");
    assert!(
        files_under(&w.path().join("exports")).is_empty(),
        "output.format none writes no file"
    );
}

#[test]
fn repeat_always_sends_every_run_while_it_holds() {
    let ding = StandIn::start();
    let tasks = BACKLOG.replace(
        r#"alert: { condition: "value > 100" }"#,
        r#"alert: { condition: "rows >= 2", repeat: always, sql: "SELECT region FROM q WHERE v > 0" }"#,
    );
    let (w, url) = setup(&ding, &tasks);
    w.ok(&["task", "run", "积压告警"]);
    w.ok(&["task", "run", "积压告警"]);
    set_backlog(&url, 0);
    w.ok(&["task", "run", "积压告警"]);
    w.ok(&["task", "run", "积压告警"]);
    assert_eq!(
        titles(&ding),
        ["积压告警 告警", "积压告警 告警", "积压告警 已恢复"]
    );
    let text = ding.requests()[0]["body"]["markdown"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains("`rows >= 2`") && text.contains("**当前值**: 2"),
        "{text}"
    );
}

#[test]
fn an_alert_whose_query_fails_records_error_and_sends_the_failure_notice() {
    let ding = StandIn::start();
    let tasks = BACKLOG
        .replace(
            r#"alert: { condition: "value > 100" }"#,
            r#"alert: { condition: "value > 100", sql: "SELECT no_such_column FROM q" }"#,
        )
        .replace("format: none", "format: csv");
    let (w, _) = setup(&ding, &tasks);
    let err = w.fails(&["task", "run", "积压告警"], 1);
    assert!(
        err.contains("alert.sql") && err.contains("no_such_column"),
        "{err}"
    );
    let run = &history(&w, "积压告警")[0];
    assert_eq!(run["status"], "failed");
    assert_eq!(run["alert"], "error");
    assert!(
        files_under(&w.path().join("exports")).is_empty(),
        "the report of a failed run is not kept"
    );
    assert_eq!(titles(&ding), ["积压告警 执行失败"]);
    let text = ding.requests()[0]["body"]["markdown"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("no_such_column"), "{text}");
}

#[test]
fn bad_alerts_are_refused_at_apply_naming_the_field() {
    let ding = StandIn::start();
    let (w, _) = setup(&ding, BACKLOG);
    for (alert, field) in [
        (r#"{ condition: "value = 100" }"#, "alert.condition"),
        (r#"{ condition: "value > lots" }"#, "alert.condition"),
        (
            r#"{ condition: "rows > 0", sql: "DELETE FROM q" }"#,
            "alert.sql",
        ),
        (r#"{ condition: "rows > 0", repeat: sometimes }"#, "repeat"),
    ] {
        let tasks = BACKLOG.replace(r#"{ condition: "value > 100" }"#, alert);
        w.write("bad.yaml", &tasks);
        let err = w.fails(&["task", "apply", "-f", "bad.yaml"], 1);
        assert!(err.contains(field), "{alert}: {err}");
    }
    w.write(
        "bad.yaml",
        &BACKLOG.replace("dingtalk: {}", "dingtalk: {}\n      preview_rows: 1000"),
    );
    let err = w.fails(&["task", "apply", "-f", "bad.yaml"], 1);
    assert!(err.contains("notify.preview_rows"), "{err}");
    // Nothing was changed by the refused files.
    let shown = w.ok(&["task", "show", "积压告警"]);
    assert!(shown.contains("value > 100"), "{shown}");
}

#[test]
fn an_alert_nobody_was_told_of_is_sent_on_the_next_run() {
    let ding = StandIn::start();
    let (w, url) = setup(&ding, BACKLOG);
    set_backlog(&url, 150);
    w.ok(&["task", "run", "积压告警", "--no-notify"]);
    assert!(ding.requests().is_empty());
    w.ok(&["task", "run", "积压告警"]);
    w.ok(&["task", "run", "积压告警"]);
    assert_eq!(
        titles(&ding),
        ["积压告警 告警"],
        "told once, on the first run that could"
    );
    // A robot that refuses: the recovery is tried again on the next run.
    w.write(
        "t.yaml",
        &BACKLOG.replace(
            "dingtalk: {}",
            "dingtalk: { webhook: \"http://127.0.0.1:1/robot/send?access_token=x\" }",
        ),
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    set_backlog(&url, 3);
    w.ok(&["task", "run", "积压告警"]);
    w.write("t.yaml", BACKLOG);
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    w.ok(&["task", "run", "积压告警"]);
    w.ok(&["task", "run", "积压告警"]);
    assert_eq!(titles(&ding), ["积压告警 告警", "积压告警 已恢复"]);
}
