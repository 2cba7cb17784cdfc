//! Several daemons on one store (high availability): 3 on a PostgreSQL store and 2 on a
//! MariaDB store (6-field every-second crons, data sources on the same servers) run 200 fires
//! between them, each exactly once, each leaving its CSV file; a daemon killed (`kill -9`)
//! or frozen (SIGSTOP, so its lease runs out) in the middle of a run has the fire re-run by
//! another (trigger `takeover`).

use chrono::{DateTime, Duration as Span, DurationRound, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::daemon::{signal, start, stop};
use crate::helpers::{Backend, Workdir, mysql_url, pg_url};

/// `logs --json` of a workdir, all rows.
fn history(w: &Workdir) -> Vec<Value> {
    serde_json::from_str(&w.ok(&["logs", "--json", "--limit", "100000"])).unwrap()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// A workdir on `backend`'s store with a data source `db` on the same server, a short lease
/// and `tasks` applied.
fn cluster_dir(backend: Backend, tasks: &str) -> Workdir {
    let (kind, url) = match backend {
        Backend::Postgres => ("postgresql", pg_url()),
        _ => ("mysql", mysql_url()),
    };
    let w = Workdir::new(
        backend,
        &format!(
            "data_sources:\n  db:\n    type: {kind}\n    url: \"{url}\"\nscheduler:\n  lease_time: 3\n  min_interval: 1\ndaemon:\n  shutdown_timeout: 1\n  pid_file: \"${{REPORTD_TEST_PID_FILE:-reportd.pid}}\"\n"
        ),
    );
    w.write("t.yaml", tasks);
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    w
}

#[test]
fn five_daemons_on_two_stores_run_200_fires_exactly_once() {
    let every_second: String = (1..=4)
        .map(|i| format!("  - name: t{i}\n    data_source: db\n    cron: \"* * * * * *\"\n    output: {{ format: csv }}\n    sql: SELECT {i} AS task\n"))
        .collect();
    let tasks = format!("tasks:\n{every_second}");
    let pg = cluster_dir(Backend::Postgres, &tasks);
    let my = cluster_dir(Backend::Mysql, &tasks);
    let daemons: Vec<(&Workdir, Child)> = [&pg, &pg, &pg, &my, &my]
        .into_iter()
        .map(|w| (w, start(w)))
        .collect();

    // The window: 25 whole seconds, starting once every daemon is surely up.
    let from = (Utc::now() + Span::seconds(3))
        .duration_trunc(Span::seconds(1))
        .unwrap();
    let to = from + Span::seconds(25);
    let until = Instant::now() + (to - Utc::now() + Span::seconds(2)).to_std().unwrap();
    std::thread::sleep(until - Instant::now());
    for (_, d) in daemons {
        stop(d, Duration::from_secs(10));
    }

    let mut in_window = 0;
    for (w, name) in [(&pg, "PostgreSQL"), (&my, "MariaDB")] {
        let runs = history(w);
        let mut per_fire: BTreeMap<(String, DateTime<Utc>), Vec<&Value>> = BTreeMap::new();
        for r in &runs {
            per_fire
                .entry((
                    r["task_name"].as_str().unwrap().to_string(),
                    time(&r["scheduled_at"]),
                ))
                .or_default()
                .push(r);
        }
        let dupes: Vec<_> = per_fire.iter().filter(|(_, v)| v.len() > 1).collect();
        assert!(dupes.is_empty(), "{name}: fires run twice: {dupes:#?}");
        let mut instances = BTreeSet::new();
        for task in ["t1", "t2", "t3", "t4"] {
            let mut at = from;
            while at < to {
                let Some(rows) = per_fire.get(&(task.to_string(), at)) else {
                    panic!("{name}: fire of {task} at {at} missing");
                };
                assert_eq!(rows[0]["status"], "success", "{name}: {}", rows[0]);
                // The file is there, with the task's one row.
                let file = w.path().join(rows[0]["files"][0].as_str().unwrap());
                let text = std::fs::read_to_string(&file).unwrap();
                assert_eq!(
                    text,
                    format!("\u{feff}task\r\n{}\r\n", &task[1..]),
                    "{}",
                    file.display()
                );
                instances.insert(rows[0]["instance"].as_str().unwrap().to_string());
                in_window += 1;
                at += Span::seconds(1);
            }
        }
        eprintln!("{name}: fires in the window ran on {instances:?}");
    }
    assert_eq!(in_window, 200);
}

/// Waits until a fire of the slow task is running and returns its row.
fn running_fire(w: &Workdir, except: Option<DateTime<Utc>>) -> Value {
    let started = Instant::now();
    loop {
        if let Some(r) = history(w).into_iter().find(|r| {
            r["status"] == "running"
                && r["trigger"] == "cron"
                && Some(time(&r["scheduled_at"])) != except
        }) {
            return r;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "no run started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the fire at `at` has a successful takeover run; returns the fire's rows.
fn taken_over(w: &Workdir, at: DateTime<Utc>) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let rows: Vec<Value> = history(w)
            .into_iter()
            .filter(|r| time(&r["scheduled_at"]) == at)
            .collect();
        if rows
            .iter()
            .any(|r| r["trigger"] == "takeover" && r["status"] == "success")
        {
            return rows;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "fire {at} not re-run: {rows:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn pid_of(run: &Value) -> u32 {
    let instance = run["instance"].as_str().unwrap();
    instance.rsplit_once(':').unwrap().1.parse().unwrap()
}

#[test]
fn a_killed_or_frozen_daemons_fire_is_re_run_by_another() {
    let w = cluster_dir(
        Backend::Postgres,
        "tasks:\n  - name: slow\n    data_source: db\n    cron: \"*/20 * * * * *\"\n    output: { format: csv }\n    sql: SELECT pg_sleep(5) AS slept\n",
    );
    let mut daemons: Vec<Child> = (0..3).map(|_| start(&w)).collect();

    // kill -9 the instance running a fire: another sees the process gone and re-runs it.
    let run = running_fire(&w, None);
    let at = time(&run["scheduled_at"]);
    let victim = daemons.iter().position(|d| d.id() == pid_of(&run)).unwrap();
    let mut killed = daemons.remove(victim);
    signal(&killed, "-KILL");
    killed.wait().unwrap();
    let rows = taken_over(&w, at);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let old = rows.iter().find(|r| r["trigger"] == "cron").unwrap();
    assert_eq!(old["status"], "interrupted");
    assert!(
        old["error"]
            .as_str()
            .unwrap()
            .contains("fire taken over by"),
        "{old}"
    );
    let new = rows.iter().find(|r| r["trigger"] == "takeover").unwrap();
    assert_ne!(new["instance"], old["instance"]);

    // SIGSTOP the instance running the next fire: its lease (3 s) runs out, another takes
    // the fire over; when it wakes, it finds its lease lost and stops its own run.
    let run = running_fire(&w, Some(at));
    let at = time(&run["scheduled_at"]);
    let frozen = daemons.iter().find(|d| d.id() == pid_of(&run)).unwrap();
    signal(frozen, "-STOP");
    let rows = taken_over(&w, at);
    signal(frozen, "-CONT");
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let old = rows.iter().find(|r| r["trigger"] == "cron").unwrap();
    assert_eq!(old["status"], "interrupted", "{old}");
    for d in daemons {
        stop(d, Duration::from_secs(15));
    }
    let rows: Vec<Value> = history(&w)
        .into_iter()
        .filter(|r| time(&r["scheduled_at"]) == at)
        .collect();
    assert_eq!(
        rows.len(),
        2,
        "still one interrupted and one takeover run: {rows:#?}"
    );
}
