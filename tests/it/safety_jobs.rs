//! Editors' jobs and runs are bounded, and nothing is silent (issue 24, classes 7 and 8):
//! a non-admin's job timeout is capped by `export.jobs.max_timeout` (asked for: 422; inherited
//! from a task: lowered); a user runs at most one job per lane (over the API on MariaDB, and
//! with claimers on several stores at once, as several daemons, on MariaDB and PostgreSQL); a
//! run that writes more than `export.max_total_bytes` stops and keeps no file (csv and xlsx,
//! a task run and an export job);
//! fires folded into a later one, while the store held the scheduler up (PostgreSQL, its
//! claims table locked) or while no daemon ran (MariaDB), each leave a `skipped` record
//! naming the execution they were folded into.

use chrono::{DateTime, Duration as Span, DurationRound, Utc};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use reportd::config::Settings;
use reportd::model::job::{JobFinish, JobSpec, JobStatus, Lane, NewJob};
use reportd::model::task::{Format, SheetSpec};
use reportd::store::{Store, Submitted};

use crate::api_daemon::Daemon;
use crate::api_exports::{slowdb, until_not};
use crate::daemon::{logs, start, stop, unfolded};
use crate::helpers::{Backend, DEMO_SOURCE, ScratchStore, Workdir, files_under};

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("not a time: {v}"))
        .parse()
        .unwrap()
}

async fn queue(d: &Daemon, token: &str, body: Value) -> i64 {
    let (s, b) = d.call_as(token, "POST", "/api/exports", Some(body)).await;
    assert_eq!(s, 202, "{b}");
    b["id"].as_i64().unwrap()
}

#[tokio::test]
async fn a_non_admins_job_timeout_is_capped_by_export_jobs_max_timeout() {
    let d = Daemon::start_full(
        Backend::Sqlite,
        &slowdb(),
        "",
        "  jobs:\n    max_timeout: 1\n",
    )
    .await;
    let editor = d.login("ed", "editor").await;
    let sleep = |marker: &str, timeout: Option<u64>| {
        let mut body =
            json!({"data_source": "slowdb", "sql": format!("SELECT SLEEP(2) AS {marker}")});
        if let Some(t) = timeout {
            body["timeout"] = json!(t);
        }
        body
    };
    // Asked for more than the cap: refused, naming the field and the cap.
    let (s, b) = d
        .call_as(
            &editor,
            "POST",
            "/api/exports",
            Some(sleep("cap_a", Some(30))),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["field"], "timeout", "{b}");
    let message = b["error"].as_str().unwrap_or_default().to_string() + &b.to_string();
    assert!(
        message.contains("export.jobs.max_timeout (1 seconds)"),
        "{b}"
    );
    // An admin's job is not capped.
    let admin = queue(&d, crate::api_daemon::TOKEN, sleep("cap_b", Some(30))).await;
    // A task's job inherits the task's timeout (an hour), lowered to the cap for an editor.
    std::fs::write(
        d.dir.path().join("t.yaml"),
        "tasks:\n  - name: sleepy\n    data_source: slowdb\n    cron: \"0 0 1 1 *\"\n    enabled: false\n    timeout: 3600\n    sql: SELECT SLEEP(2) AS cap_c\n",
    )
    .unwrap();
    d.cli(&["task", "apply", "-f", "t.yaml"], "");
    let capped = queue(&d, &editor, json!({"task": "sleepy"})).await;
    let uncapped = queue(&d, crate::api_daemon::TOKEN, json!({"task": "sleepy"})).await;
    let within = Duration::from_secs(60);
    let job = until_not(&d, capped, &["queued", "running"], within).await;
    assert_eq!(job["status"], "failed", "{job:#}");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("timed out after 1s"),
        "{job:#}"
    );
    for id in [admin, uncapped] {
        let job = until_not(&d, id, &["queued", "running"], within).await;
        assert_eq!(
            job["status"], "done",
            "an admin's job runs its 2 s: {job:#}"
        );
    }
}

#[tokio::test]
async fn a_users_second_job_waits_while_other_users_jobs_run() {
    let d = Daemon::start_full(
        Backend::Mysql,
        &slowdb(),
        "",
        "  jobs:\n    fast_workers: 3\n    slow_workers: 3\n",
    )
    .await;
    let alice = d.login("alice", "editor").await;
    let bob = d.login("bob", "editor").await;
    let job = |marker: &str| json!({"data_source": "slowdb", "format": "csv", "sql": format!("SELECT SLEEP(3) AS {marker}")});
    let a1 = queue(&d, &alice, job("lane_a1")).await;
    let a2 = queue(&d, &alice, job("lane_a2")).await;
    let b1 = queue(&d, &bob, job("lane_b1")).await;
    // At no moment do two of alice's jobs run in one lane.
    let started = Instant::now();
    loop {
        let (s, list) = d.call("GET", "/api/exports?status=running", None).await;
        assert_eq!(s, 200, "{list}");
        let mut per_lane: BTreeMap<(String, String), u32> = BTreeMap::new();
        for j in list["items"].as_array().unwrap() {
            let key = (j["created_by"].to_string(), j["lane"].to_string());
            *per_lane.entry(key).or_default() += 1;
        }
        assert!(
            per_lane.values().all(|n| *n <= 1),
            "two jobs of one user run in one lane: {list:#}"
        );
        let (_, all) = d.call("GET", "/api/exports", None).await;
        let finished = all["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| !["queued", "running"].contains(&j["status"].as_str().unwrap()));
        if finished {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{all:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let get = |id: i64| {
        let d = &d;
        async move { d.call("GET", &format!("/api/exports/{id}"), None).await.1 }
    };
    let (a1, a2, b1) = (get(a1).await, get(a2).await, get(b1).await);
    for j in [&a1, &a2, &b1] {
        assert_eq!(j["status"], "done", "{j:#}");
        assert_eq!(j["lane"], a1["lane"], "one lane: {j:#}");
    }
    assert!(
        time(&b1["started_at"]) < time(&a2["started_at"]),
        "bob's job starts before alice's second: {b1:#} {a2:#}"
    );
    assert!(
        time(&a2["started_at"]) >= time(&a1["finished_at"]),
        "alice's second starts after her first ended: {a1:#} {a2:#}"
    );
}

fn new_job(by: &str, lane: Lane) -> NewJob {
    NewJob {
        spec: JobSpec {
            data_source: "warehouse".into(),
            sheets: vec![SheetSpec {
                name: "s".into(),
                sql: "SELECT 1".into(),
                split: None,
            }],
            format: Format::Csv,
            filename: None,
            task: None,
            timeout: Some(60),
            deliver: Vec::new(),
        },
        lane,
        estimate: None,
        callback: None,
        created_by: by.into(),
        created_by_id: None,
    }
}

/// 16 claimers on four stores (as four daemons) drain the slow lane at once.
async fn claim_all(stores: &[Store], lane: Lane) -> Vec<(i64, String)> {
    let claimers: Vec<_> = (0..16)
        .map(|n| {
            let s = stores[n % stores.len()].clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(job) = s.claim_next_job(lane, &format!("inst-{n}")).await.unwrap() {
                    mine.push((job.id, job.created_by));
                }
                mine
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for c in claimers {
        claimed.extend(c.await.unwrap());
    }
    claimed.sort();
    claimed
}

async fn one_running_job_per_user_and_lane_across_daemons(backend: Backend) {
    let scratch = ScratchStore::new(backend);
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(Store::connect(&scratch.settings()).await.unwrap());
    }
    let mut alice = Vec::new();
    for _ in 0..12 {
        match stores[0]
            .insert_job(&new_job("alice", Lane::Slow), 1000)
            .await
            .unwrap()
        {
            Submitted::Queued(id) => alice.push(id),
            other => panic!("{other:?}"),
        }
    }
    let Submitted::Queued(bob) = stores[1]
        .insert_job(&new_job("bob", Lane::Slow), 1000)
        .await
        .unwrap()
    else {
        panic!("bob's job not queued")
    };
    let Submitted::Queued(fast) = stores[2]
        .insert_job(&new_job("alice", Lane::Fast), 1000)
        .await
        .unwrap()
    else {
        panic!("alice's fast job not queued")
    };
    let claimed = claim_all(&stores, Lane::Slow).await;
    assert_eq!(
        claimed,
        [(alice[0], "alice".to_string()), (bob, "bob".to_string())],
        "one job per user in the slow lane, the oldest"
    );
    // The other lane is another place.
    let claimed = claim_all(&stores, Lane::Fast).await;
    assert_eq!(claimed, [(fast, "alice".to_string())]);
    // Once her first slow job ends, her next one (and only it) runs.
    let job = stores[0].job(alice[0]).await.unwrap().unwrap();
    let finish = JobFinish {
        status: JobStatus::Done,
        rows: Some(1),
        bytes: Some(1),
        error: None,
        files: Vec::new(),
        expires_at: None,
        checksums: Vec::new(),
    };
    assert!(
        stores[0]
            .finish_job(alice[0], job.instance.as_deref().unwrap(), &finish)
            .await
            .unwrap()
    );
    let claimed = claim_all(&stores, Lane::Slow).await;
    assert_eq!(claimed, [(alice[1], "alice".to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_running_job_per_user_and_lane_across_daemons_mariadb() {
    one_running_job_per_user_and_lane_across_daemons(Backend::Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_running_job_per_user_and_lane_across_daemons_postgres() {
    one_running_job_per_user_and_lane_across_daemons(Backend::Postgres).await;
}

#[test]
fn a_run_past_export_max_total_bytes_stops_and_keeps_no_file() {
    // About 2 MB of rows against a 100 KB limit, as csv and as xlsx.
    let sql = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) SELECT i, printf('%0100d', i) AS pad FROM n";
    let w = Workdir::new(
        Backend::Sqlite,
        &format!(
            "{DEMO_SOURCE}export:\n  max_total_bytes: 100KB\n  temp_dir: ./tmp\n  output_dir: ./out\n"
        ),
    );
    let mut tasks = String::from("tasks:\n");
    for format in ["csv", "xlsx"] {
        tasks.push_str(&format!(
            "  - name: big_{format}\n    data_source: demo\n    cron: \"0 0 1 1 *\"\n    sql: \"{sql}\"\n    output: {{ format: {format}, filename: \"big_{format}.{format}\" }}\n"
        ));
    }
    tasks.push_str("  - name: small\n    data_source: demo\n    cron: \"0 0 1 1 *\"\n    sql: SELECT 1 AS one\n    output: { format: csv }\n");
    w.write("t.yaml", &tasks);
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    for format in ["csv", "xlsx"] {
        let out = w
            .cmd(&["task", "run", &format!("big_{format}"), "--no-notify"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{format}: {text}");
        assert!(
            text.contains("export stopped: files reached export.max_total_bytes (100KB)"),
            "{format}: {text}"
        );
        assert_eq!(
            files_under(&w.path().join("out")),
            Vec::<std::path::PathBuf>::new()
        );
        assert_eq!(
            files_under(&w.path().join("tmp")),
            Vec::<std::path::PathBuf>::new()
        );
    }
    let runs = logs(&w);
    let failed: Vec<&Value> = runs.iter().filter(|e| e["status"] == "failed").collect();
    assert_eq!(failed.len(), 2, "{runs:#?}");
    for e in failed {
        assert!(
            e["error"]
                .as_str()
                .unwrap()
                .contains("export stopped: files reached export.max_total_bytes (100KB)"),
            "{e}"
        );
    }
    // Under the limit, a run writes as usual.
    w.ok(&["task", "run", "small", "--no-notify"]);
    assert_eq!(files_under(&w.path().join("out")).len(), 1);
}

#[tokio::test]
async fn an_export_job_past_export_max_total_bytes_fails_and_keeps_no_file() {
    let d = Daemon::start_full(Backend::Sqlite, "", "", "  max_total_bytes: 100KB\n").await;
    let editor = d.login("ed", "editor").await;
    let sql = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) SELECT i, printf('%0100d', i) AS pad FROM n";
    for format in ["csv", "xlsx"] {
        let id = queue(
            &d,
            &editor,
            json!({"data_source": "demo", "format": format, "sql": sql}),
        )
        .await;
        let job = until_not(&d, id, &["queued", "running"], Duration::from_secs(60)).await;
        assert_eq!(job["status"], "failed", "{job:#}");
        assert!(
            job["error"]
                .as_str()
                .unwrap()
                .contains("export stopped: files reached export.max_total_bytes (100KB)"),
            "{job:#}"
        );
        assert_eq!(job["files"], json!([]), "{job:#}");
    }
    for dir in ["exports", "temp"] {
        assert_eq!(
            files_under(&d.dir.path().join(dir)),
            Vec::<std::path::PathBuf>::new(),
            "{dir}"
        );
    }
}

/// The whole seconds strictly between `from` and `to`.
fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut t = from.duration_trunc(Span::seconds(1)).unwrap() + Span::seconds(1);
    let mut all = Vec::new();
    while t < to {
        all.push(t);
        t += Span::seconds(1);
    }
    all
}

/// Every fire of the every-second task between `from` and `to` has exactly one record; those
/// folded into a later one name it. Returns the folded records.
fn every_fire_recorded_once(runs: &[Value], from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Value> {
    let mut seen = BTreeMap::new();
    for e in runs {
        *seen.entry(time(&e["scheduled_at"])).or_insert(0) += 1;
    }
    assert!(
        seen.values().all(|n| *n == 1),
        "a fire recorded twice: {runs:#?}"
    );
    for t in seconds_between(from, to) {
        assert!(
            seen.contains_key(&t),
            "the fire at {t} left no record: {runs:#?}"
        );
    }
    let kept: BTreeSet<String> = unfolded(runs).iter().map(|e| e["id"].to_string()).collect();
    runs.iter()
        .filter(|e| {
            let folded = e["error"]
                .as_str()
                .is_some_and(|t| t.contains("; folded into execution "));
            assert!(!folded || !kept.contains(&e["id"].to_string()));
            folded
        })
        .cloned()
        .collect()
}

const EVERY_SECOND: &str = "tasks:\n  - name: every1s\n    data_source: demo\n    cron: \"* * * * * *\"\n    sql: SELECT 1 AS one\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fires_folded_while_the_store_held_the_scheduler_up_are_each_recorded() {
    use sqlx::{Connection, Executor};
    let w = Workdir::new(
        Backend::Postgres,
        &format!("{DEMO_SOURCE}scheduler:\n  lease_time: 3\n  min_interval: 1\n"),
    );
    w.write("t.yaml", EVERY_SECOND);
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let url = Settings::load(&w.path().join("config.yaml"))
        .unwrap()
        .system_database
        .url
        .expose()
        .to_string();
    let daemon = start(&w);
    crate::daemon::wait_for(&w, 15, "a first run", |r| {
        r.iter().any(|e| e["status"] == "success")
    });
    // The store stops answering the scheduler for 5 s: its claims table is locked.
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut tx = c.begin().await.unwrap();
    tx.execute("LOCK TABLE fire_claims IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let locked = Utc::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    tx.commit().await.unwrap();
    let unlocked = Utc::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let err = stop(daemon, Duration::from_secs(10));
    let runs = logs(&w);
    let folded = every_fire_recorded_once(&runs, locked, unlocked);
    assert!(
        folded.len() >= 2,
        "the loop was held up for seconds; its missed fires are folded and recorded: {runs:#?}\n{err}"
    );
    for e in &folded {
        let t = time(&e["scheduled_at"]);
        assert!(t > locked && t < unlocked + Span::seconds(2), "{e}");
        assert!(
            e["error"].as_str().unwrap().starts_with(&format!(
                "missed fire at {}",
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            )),
            "{e}"
        );
    }
}

#[test]
fn fires_missed_while_no_daemon_ran_are_each_recorded_folded_into_the_catch_up() {
    let w = Workdir::new(
        Backend::Mysql,
        &format!("{DEMO_SOURCE}scheduler:\n  min_interval: 1\n"),
    );
    w.write("t.yaml", EVERY_SECOND);
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let daemon = start(&w);
    crate::daemon::wait_for(&w, 15, "a first run", |r| {
        r.iter().any(|e| e["status"] == "success")
    });
    stop(daemon, Duration::from_secs(10));
    let down = Utc::now();
    std::thread::sleep(Duration::from_secs(5));
    let up = Utc::now();
    let daemon = start(&w);
    std::thread::sleep(Duration::from_secs(3));
    stop(daemon, Duration::from_secs(10));
    let runs = logs(&w);
    // (The first start may have caught up fires since the task was applied, too.)
    let catch_up: Vec<&Value> = runs
        .iter()
        .filter(|e| e["trigger"] == "catch-up" && time(&e["scheduled_at"]) > down)
        .collect();
    let run = catch_up
        .iter()
        .find(|e| e["status"] == "success")
        .unwrap_or_else(|| panic!("one catch-up run: {runs:#?}"));
    let folded = every_fire_recorded_once(&runs, down + Span::seconds(1), up);
    assert!(folded.len() >= 3, "{runs:#?}");
    for e in &folded {
        assert_eq!(e["trigger"], "catch-up", "{e}");
        assert!(
            e["error"]
                .as_str()
                .unwrap()
                .ends_with(&format!("; folded into execution {}", run["id"])),
            "{e}"
        );
    }
    assert_eq!(
        catch_up.len(),
        folded.len() + 1,
        "one catch-up run, the rest folded into it: {runs:#?}"
    );
}
