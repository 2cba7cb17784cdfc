//! Task files through the binary: apply (idempotent, validated, all or nothing), list, show,
//! enable/disable/remove, export round trips, on the SQLite, MariaDB and PostgreSQL stores.

use serde_json::Value;

use crate::helpers::{Backend, DEMO_SOURCE, Workdir, repo};

const GOOD: &str = r#"tasks:
  - name: 每日订单报表
    data_source: demo
    cron: "0 9 * * 1-5"
    sheets:
      - name: 订单
        sql: SELECT * FROM orders WHERE created_at >= '{yesterday}'
      - name: 城市
        sql: SELECT city, COUNT(*) FROM orders GROUP BY city
    output: { format: xlsx, filename: "订单日报_{date:%Y%m%d}.xlsx" }
    retries: 2
    notify:
      dingtalk: { webhook: "https://oapi.dingtalk.com/robot/send?access_token=abc123", secret: SEC-very-secret, template: dingtalk_report.md }
      email: { to: [ops@example.com], subject: "{task_name} {date}", template: email_report.html }
  - name: minutely
    data_source: demo
    cron: "30 * * * * *"
    timezone: Europe/Berlin
    sql: SELECT COUNT(*) FROM orders
"#;

/// The demo data source and an SMTP server, so tasks may send e-mail.
fn config() -> String {
    format!("{DEMO_SOURCE}email:\n  smtp_server: 127.0.0.1\n  smtp_port: 2525\n")
}

fn task_list(w: &Workdir) -> Vec<Value> {
    serde_json::from_str(&w.ok(&["task", "list", "--json"])).unwrap()
}

/// The list without `next_fire`, which moves on by itself between two calls.
fn stored(w: &Workdir) -> Vec<Value> {
    let mut list = task_list(w);
    for t in &mut list {
        t.as_object_mut().unwrap().remove("next_fire");
    }
    list
}

fn round_trip(backend: Backend) {
    let w = Workdir::new(backend, &config());
    w.write("tasks.yaml", GOOD);
    let out = w.ok(&["task", "apply", "-f", "tasks.yaml"]);
    assert!(out.contains("2 created, 0 updated, 0 unchanged"), "{out}");
    let first_list = stored(&w);
    let first_export = w.ok(&["task", "export"]);

    // Applying again changes nothing, not even timestamps.
    let out = w.ok(&["task", "apply", "-f", "tasks.yaml"]);
    assert!(out.contains("0 created, 0 updated, 2 unchanged"), "{out}");
    assert_eq!(stored(&w), first_list);

    // The export is a task file that apply takes back unchanged, and exports identically.
    w.write("exported.yaml", &first_export);
    let out = w.ok(&["task", "apply", "-f", "exported.yaml"]);
    assert!(out.contains("0 created, 0 updated, 2 unchanged"), "{out}");
    assert_eq!(w.ok(&["task", "export"]), first_export);
    assert!(
        first_export.contains("SEC-very-secret"),
        "export keeps what apply needs"
    );

    // A changed task is updated; the other is left alone.
    w.write("tasks.yaml", &GOOD.replace("30 * * * * *", "0 */5 * * * *"));
    let out = w.ok(&["task", "apply", "-f", "tasks.yaml"]);
    assert!(out.contains("0 created, 1 updated, 1 unchanged"), "{out}");
    let list = task_list(&w);
    assert_eq!(stored(&w)[0], first_list[0]);
    assert_eq!(list[1]["cron"], "0 */5 * * * *");
    assert_eq!(list[1]["timezone"], "Europe/Berlin");
    assert_eq!(
        list[0]["timezone"], "Asia/Shanghai",
        "default zone from scheduler.timezone"
    );
    let next = list[0]["next_fire"].as_str().unwrap();
    assert!(next.ends_with("T09:00:00+08:00"), "{next}");
}

#[test]
fn apply_is_idempotent_and_export_round_trips_sqlite() {
    round_trip(Backend::Sqlite);
}

#[test]
fn apply_is_idempotent_and_export_round_trips_mariadb() {
    round_trip(Backend::Mysql);
}

#[test]
fn apply_is_idempotent_and_export_round_trips_postgres() {
    round_trip(Backend::Postgres);
}

fn refused(w: &Workdir, file: &str, expected: &[&str]) {
    w.write("bad.yaml", file);
    let err = w.fails(&["task", "apply", "-f", "bad.yaml"], 1);
    for e in expected {
        assert!(err.contains(e), "expected {e:?} in:\n{err}");
    }
    assert!(err.contains("nothing was written"), "{err}");
    assert!(task_list(w).is_empty(), "nothing may be written");
}

#[test]
fn bad_tasks_are_refused_by_task_and_field_and_nothing_is_written() {
    let w = Workdir::sqlite_with_demo();
    let good_first = "tasks:\n  - name: fine\n    data_source: demo\n    cron: \"0 9 * * *\"\n    sql: SELECT 1\n";
    refused(
        &w,
        &format!(
            "{good_first}  - name: t1\n    data_source: demo\n    cron: \"61 * * * *\"\n    sql: SELECT 1\n"
        ),
        &["task \"t1\": cron: \"61 * * * *\" is not a valid cron expression"],
    );
    refused(
        &w,
        &format!(
            "{good_first}  - name: t2\n    data_source: demo\n    cron: \"0 9 * * *\"\n    timezone: Mars/Olympus\n    sql: SELECT 1\n"
        ),
        &["task \"t2\": timezone: unknown time zone \"Mars/Olympus\""],
    );
    refused(
        &w,
        &format!(
            "{good_first}  - name: t3\n    data_source: nowhere\n    cron: \"0 9 * * *\"\n    sql: SELECT 1\n"
        ),
        &["task \"t3\": data_source: unknown data source \"nowhere\" (known: demo)"],
    );
    refused(
        &w,
        "tasks:\n  - name: t4\n    data_source: demo\n    cron: \"0 9 * * *\"\n    sheets:\n      - { name: \"a:b\", sql: SELECT 1 }\n      - { name: 这是一个非常非常非常非常非常非常非常非常长的工作表名称超过三十一, sql: SELECT 1 }\n    notify:\n      email: { to: [ops@example.com], subject: \"{task_nam}\" }\n      dingtalk: { template: \"### {rows}\" }\n",
        &[
            "task \"t4\": sheets[1].name: \"a:b\" contains ':'",
            "task \"t4\": sheets[2].name:",
            "at most 31",
            "task \"t4\": notify.email.subject: unknown placeholder {task_nam}",
            "task \"t4\": notify.dingtalk.template: unknown placeholder {rows}",
            "task \"t4\": notify.dingtalk.webhook: no robot to send to",
            "task \"t4\": notify.email: e-mail is not configured",
        ],
    );
    refused(
        &w,
        "tasks:\n  - name: t5\n    data_source: demo\n    cron: \"0 9 * * *\"\n    sql: SELECT 1\n  - name: t5\n    data_source: demo\n    cron: \"0 9 * * *\"\n    sql: SELECT 2\n",
        &["task \"t5\": name: defined more than once"],
    );
    // A misspelled key is a YAML error with its line.
    w.write("typo.yaml", "tasks:\n  - name: t6\n    data_sorce: demo\n");
    let err = w.fails(&["task", "apply", "-f", "typo.yaml"], 1);
    assert!(
        err.contains("typo.yaml:3:5:") && err.contains("unknown field `data_sorce`"),
        "{err}"
    );
}

#[test]
fn show_masks_secrets_and_enable_disable_remove_work() {
    let w = Workdir::new(Backend::Sqlite, &config());
    w.write("tasks.yaml", GOOD);
    w.ok(&["task", "apply", "-f", "tasks.yaml"]);

    let shown = w.ok(&["task", "show", "每日订单报表"]);
    assert!(
        !shown.contains("SEC-very-secret") && !shown.contains("abc123"),
        "{shown}"
    );
    assert!(
        shown.contains("secret: '***'") || shown.contains("secret: \"***\""),
        "{shown}"
    );
    assert!(shown.contains("# next fires (Asia/Shanghai):"), "{shown}");
    let json: Value = serde_json::from_str(&w.ok(&["task", "show", "1", "--json"])).unwrap();
    assert_eq!(json["spec"]["name"], "每日订单报表");
    assert_eq!(json["next_fires"].as_array().unwrap().len(), 5);

    let out = w.ok(&["task", "disable", "minutely"]);
    assert!(out.contains("disabled"), "{out}");
    let list = task_list(&w);
    assert_eq!(list[1]["enabled"], false);
    assert!(
        list[1]["next_fire"].is_null(),
        "a disabled task has no next fire"
    );
    w.ok(&["task", "enable", "2"]);
    assert_eq!(task_list(&w)[1]["enabled"], true);

    let out = w.ok(&["task", "remove", "minutely"]);
    assert!(out.contains("removed task minutely"), "{out}");
    assert_eq!(task_list(&w).len(), 1);
    let err = w.fails(&["task", "remove", "minutely"], 1);
    assert!(
        err.contains("no task named or numbered \"minutely\""),
        "{err}"
    );
}

#[test]
fn dry_run_writes_nothing() {
    let w = Workdir::new(Backend::Sqlite, &config());
    w.write("tasks.yaml", GOOD);
    let out = w.ok(&["task", "apply", "-f", "tasks.yaml", "--dry-run"]);
    assert!(out.contains("2 task(s) valid"), "{out}");
    assert!(task_list(&w).is_empty());
}

#[test]
fn shipped_example_tasks_apply_against_the_shipped_config() {
    let w = Workdir::new(Backend::Sqlite, DEMO_SOURCE);
    std::fs::copy(
        repo().join("tasks.example.yaml"),
        w.path().join("tasks.example.yaml"),
    )
    .unwrap();
    let out = w.ok(&["task", "apply", "-f", "tasks.example.yaml"]);
    assert!(out.contains("1 created"), "{out}");
    assert_eq!(task_list(&w)[0]["cron"], "* * * * *");
}
