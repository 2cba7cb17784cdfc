//! `reportd cron next` across DST changes (Vixie cron rules, as the scheduler uses them) and
//! `reportd logs`.

use crate::helpers::{Backend, DEMO_SOURCE, Workdir};

fn next(w: &Workdir, expr: &str, tz: &str, after: &str, count: &str) -> Vec<String> {
    w.ok(&[
        "cron", "next", expr, "--tz", tz, "--after", after, "--count", count,
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn spring_forward_runs_a_skipped_fixed_time_at_the_first_valid_time() {
    let w = Workdir::new(Backend::Sqlite, "");
    assert_eq!(
        next(
            &w,
            "30 2 * * *",
            "America/New_York",
            "2026-03-07T12:00:00-05:00",
            "2"
        ),
        ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]
    );
    assert_eq!(
        next(
            &w,
            "30 2 * * *",
            "Europe/Berlin",
            "2026-03-28T12:00:00+01:00",
            "2"
        ),
        ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]
    );
}

#[test]
fn fall_back_runs_a_fixed_time_once_and_intervals_on_both_instants() {
    let w = Workdir::new(Backend::Sqlite, "");
    assert_eq!(
        next(
            &w,
            "30 1 * * *",
            "America/New_York",
            "2026-10-31T12:00:00-04:00",
            "2"
        ),
        ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]
    );
    assert_eq!(
        next(
            &w,
            "*/30 * * * *",
            "Europe/Berlin",
            "2026-10-25T01:45:00+02:00",
            "5"
        ),
        [
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:30:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T02:30:00+01:00",
            "2026-10-25T03:00:00+01:00"
        ]
    );
}

#[test]
fn seconds_names_and_the_default_zone() {
    let w = Workdir::new(Backend::Sqlite, "scheduler:\n  timezone: Asia/Shanghai\n");
    let out = w.ok(&[
        "cron",
        "next",
        "15 0 9 * * MON",
        "--after",
        "2026-11-23T10:00:00+08:00",
        "--count",
        "1",
    ]);
    assert_eq!(out.trim(), "2026-11-30T09:00:15+08:00");
    let err = w.fails(&["cron", "next", "61 * * * *"], 1);
    assert!(
        err.contains("\"61 * * * *\" is not a valid cron expression"),
        "{err}"
    );
    let err = w.fails(&["cron", "next", "@daily", "--tz", "Mars/Base"], 1);
    assert!(err.contains("unknown time zone"), "{err}");
}

#[test]
fn logs_show_the_history_newest_first() {
    let w = Workdir::new(Backend::Sqlite, DEMO_SOURCE);
    w.write("t.yaml", "tasks:\n  - name: ok\n    data_source: demo\n    cron: \"@daily\"\n    sql: SELECT id FROM orders LIMIT 3\n  - name: broken\n    data_source: demo\n    cron: \"@daily\"\n    sql: SELECT nope FROM orders\n");
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    w.ok(&["task", "run", "ok"]);
    w.fails(&["task", "run", "broken"], 1);
    let text = w.ok(&["logs"]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("STATUS"), "{text}");
    assert!(
        lines[1].contains("broken")
            && lines[1].contains("failed")
            && lines[1].contains("no such column"),
        "{text}"
    );
    assert!(
        lines[2].contains("ok") && lines[2].contains("success") && lines[2].contains("manual"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&w.ok(&["logs", "--task", "ok", "--json"])).unwrap();
    let runs = json.as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], "success");
    assert_eq!(runs[0]["rows"], 3);
    let err = w.fails(&["logs", "--task", "ghost"], 1);
    assert!(err.contains("no task named or numbered \"ghost\""), "{err}");
}
