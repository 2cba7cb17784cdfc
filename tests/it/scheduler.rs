//! The timer loop on a clock the test moves (`Clock::Manual`): DST gaps and overlaps in
//! America/New_York and Europe/Berlin, catch-up within and beyond the grace time, no overlap,
//! retries with back-off, task timeout, shutdown drain and crash recovery, runs asked for
//! through the loop's control channel (as over HTTP). Queries, files and
//! the store are real; only time is driven.

use chrono::{DateTime, Duration as Span, DurationRound, Utc};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use reportd::clock::{Clock, ManualClock};
use reportd::config::Settings;
use reportd::model::execution::{Execution, ExecutionStatus, NewExecution, Trigger};
use reportd::schedule::control::{Control, Refused};
use reportd::schedule::{Options, Scheduler};
use reportd::shutdown::Shutdown;
use reportd::store::{Store, StoreError};

use crate::helpers::{Backend, DEMO_SOURCE, ScratchStore, Workdir, files_under};

/// A daemon running in this process on a manual clock.
struct Daemon {
    store: Store,
    /// Requests to the loop, as the HTTP server sends them.
    control: Control,
    clock: ManualClock,
    stop: Shutdown,
    handle: JoinHandle<Result<(), StoreError>>,
}

impl Daemon {
    /// Starts the loop with the directory's config, the clock reading `start`.
    async fn start(w: &Workdir, start: DateTime<Utc>) -> Daemon {
        let settings = Settings::load(&w.path().join("config.yaml")).unwrap();
        let store = Store::connect(&settings.system_database).await.unwrap();
        let clock = ManualClock::new(start);
        let stop = Shutdown::new();
        let (ready_tx, ready) = oneshot::channel();
        let (control, requests) = Control::channel();
        let options = Options {
            clock: Clock::Manual(clock.clone()),
            ready: Some(ready_tx),
            control: Some(requests),
        };
        let handle = tokio::spawn(Scheduler::run(
            Arc::new(settings),
            store.clone(),
            options,
            stop.clone(),
        ));
        // Recovery and catch-up look at the clock as it reads at start.
        tokio::time::timeout(Duration::from_secs(20), ready)
            .await
            .expect("the loop starts")
            .unwrap();
        Daemon {
            store,
            control,
            clock,
            stop,
            handle,
        }
    }

    /// The execution history, oldest first.
    async fn runs(&self) -> Vec<Execution> {
        let mut runs = self.store.executions(None, 1000).await.unwrap();
        runs.reverse();
        runs
    }

    /// Waits (real time) until `pred` holds for the history, up to 20 s.
    async fn wait(&self, what: &str, pred: impl Fn(&[Execution]) -> bool) -> Vec<Execution> {
        let started = Instant::now();
        loop {
            let runs = self.runs().await;
            if pred(&runs) {
                return runs;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "timed out waiting for {what}: {runs:#?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Moves the clock to `t` and lets the loop act on it.
    async fn set(&self, t: DateTime<Utc>) {
        self.clock.set(t);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }

    async fn advance(&self, secs: i64) {
        self.set(self.clock.now() + Span::seconds(secs)).await;
    }

    /// Asks the loop to stop; returns the handle to await.
    fn shutdown(&mut self) -> &mut JoinHandle<Result<(), StoreError>> {
        self.stop.trigger("test");
        &mut self.handle
    }

    async fn stop(mut self) {
        let handle = self.shutdown();
        tokio::time::timeout(Duration::from_secs(20), handle)
            .await
            .expect("the loop stops")
            .unwrap()
            .unwrap();
    }
}

/// Starts `w`'s daemon on a clock reading now (just after the tasks were applied, so no fire
/// was missed) and returns it with the next whole `period` boundary, when a task on that
/// period fires.
async fn start_now(w: &Workdir, period: Span) -> (Daemon, DateTime<Utc>) {
    let now = Utc::now();
    let first = now.duration_trunc(period).unwrap() + period;
    (Daemon::start(w, now).await, first)
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn statuses(runs: &[Execution]) -> Vec<(Trigger, u32, ExecutionStatus)> {
    runs.iter()
        .map(|e| (e.trigger, e.attempt, e.status))
        .collect()
}

/// The executions that are not fires folded into a later one (`missed fire at …; folded
/// into execution N`, recorded skipped).
pub(crate) fn unfolded(runs: &[Execution]) -> Vec<Execution> {
    runs.iter()
        .filter(|e| {
            !e.error
                .as_deref()
                .is_some_and(|t| t.contains("; folded into execution "))
        })
        .cloned()
        .collect()
}

fn settled(runs: &[Execution]) -> bool {
    runs.iter().all(|e| e.status != ExecutionStatus::Running)
}

/// Runs `tasks` from `from` to `to`, moving the clock a minute at a time, and returns the
/// scheduled times of the cron fires per task name.
async fn walk(tasks: &str, from: &str, to: &str) -> Vec<(String, String)> {
    let w = Workdir::new(Backend::Sqlite, DEMO_SOURCE);
    w.write("t.yaml", tasks);
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let d = Daemon::start(&w, utc(from)).await;
    // One minute per step, so two fires an hour apart can never coalesce.
    while d.clock.now() < utc(to) {
        d.advance(60).await;
    }
    let runs = d.wait("all fires done", settled).await;
    d.stop().await;
    runs.iter()
        .filter(|e| e.trigger == Trigger::Cron)
        .map(|e| {
            assert_eq!(e.status, ExecutionStatus::Success, "{e:?}");
            (e.task_name.clone(), e.scheduled_at.unwrap().to_rfc3339())
        })
        .collect()
}

fn task(name: &str, cron: &str, zone: &str) -> String {
    format!(
        "  - name: {name}\n    data_source: demo\n    cron: \"{cron}\"\n    timezone: {zone}\n    sql: SELECT 1 AS one\n"
    )
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dst_gap_runs_a_skipped_fixed_time_once_at_the_first_valid_time() {
    // New York springs forward 2026-03-08 02:00 EST -> 03:00 EDT: 02:30 does not exist.
    let tasks = format!("tasks:\n{}", task("ny", "30 2 * * *", "America/New_York"));
    let fired = walk(&tasks, "2026-03-08T05:00:00Z", "2026-03-08T09:00:00Z").await;
    assert_eq!(fired, pairs(&[("ny", "2026-03-08T07:00:00+00:00")])); // 03:00 EDT

    // Berlin: 2026-03-29 02:00 CET -> 03:00 CEST.
    let tasks = format!("tasks:\n{}", task("berlin", "30 2 * * *", "Europe/Berlin"));
    let fired = walk(&tasks, "2026-03-28T23:30:00Z", "2026-03-29T03:00:00Z").await;
    assert_eq!(fired, pairs(&[("berlin", "2026-03-29T01:00:00+00:00")])); // 03:00 CEST
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dst_overlap_runs_a_fixed_time_once_and_an_hourly_job_every_hour() {
    // New York falls back 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 comes twice.
    let tasks = format!("tasks:\n{}", task("ny", "30 1 * * *", "America/New_York"));
    let fired = walk(&tasks, "2026-11-01T04:00:00Z", "2026-11-01T08:00:00Z").await;
    assert_eq!(fired, pairs(&[("ny", "2026-11-01T05:30:00+00:00")])); // 01:30 EDT only

    // Berlin falls back 2026-10-25 03:00 CEST -> 02:00 CET: the fixed 02:30 runs once, an
    // hourly job runs in both 02:00 hours.
    let tasks = format!(
        "tasks:\n{}{}",
        task("fixed", "30 2 * * *", "Europe/Berlin"),
        task("hourly", "0 * * * *", "Europe/Berlin")
    );
    let mut fired = walk(&tasks, "2026-10-24T23:30:00Z", "2026-10-25T02:10:00Z").await;
    fired.sort();
    assert_eq!(
        fired,
        pairs(&[
            ("fixed", "2026-10-25T00:30:00+00:00"),  // 02:30 CEST
            ("hourly", "2026-10-25T00:00:00+00:00"), // 02:00 CEST
            ("hourly", "2026-10-25T01:00:00+00:00"), // 02:00 CET
            ("hourly", "2026-10-25T02:00:00+00:00"), // 03:00 CET
        ])
    );
}

/// A clock time a little after the tasks were applied, 30 s past a minute.
fn soon_after_apply() -> DateTime<Utc> {
    (Utc::now() + Span::minutes(10))
        .duration_trunc(Span::minutes(1))
        .unwrap()
        + Span::seconds(30)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_within_grace_runs_once_and_beyond_grace_is_skipped_once() {
    let every_minute = format!("tasks:\n{}", task("m", "* * * * *", "UTC"));
    for (grace, expected) in [
        (60, ExecutionStatus::Success),
        (10, ExecutionStatus::Skipped),
    ] {
        let w = Workdir::new(
            Backend::Sqlite,
            &format!("{DEMO_SOURCE}scheduler:\n  misfire_grace_time: {grace}\n"),
        );
        w.write("t.yaml", &every_minute);
        w.ok(&["task", "apply", "-f", "t.yaml"]);
        // Ten fires were missed; the latest, 30 s ago, is the one considered (the nine before
        // it are recorded skipped, folded into it).
        let start = soon_after_apply();
        let d = Daemon::start(&w, start).await;
        let runs = d
            .wait("the missed fire", |r| unfolded(r).len() == 1 && settled(r))
            .await;
        let runs = unfolded(&runs);
        assert_eq!(statuses(&runs), [(Trigger::CatchUp, 1, expected)]);
        assert_eq!(runs[0].scheduled_at, Some(start - Span::seconds(30)));
        if expected == ExecutionStatus::Skipped {
            let error = runs[0].error.as_deref().unwrap();
            assert!(
                error.contains("30s late, beyond scheduler.misfire_grace_time (10s)"),
                "{error}"
            );
        }
        // The next fire runs on time as usual.
        d.advance(30).await;
        let runs = d
            .wait("the next fire", |r| unfolded(r).len() == 2 && settled(r))
            .await;
        let runs = unfolded(&runs);
        assert_eq!(runs[1].trigger, Trigger::Cron);
        assert_eq!(runs[1].scheduled_at, Some(start + Span::seconds(30)));
        d.stop().await;
    }
}

/// A workdir with a PostgreSQL data source `pg` (a scratch database) and `tasks`.
async fn with_pg(db: &ScratchStore, extra: &str, tasks: &str) -> Workdir {
    let url = db.create_source().await;
    let w = Workdir::new(
        Backend::Sqlite,
        &format!("data_sources:\n  pg:\n    type: postgresql\n    url: \"{url}\"\n{extra}"),
    );
    w.write("t.yaml", tasks);
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_while_the_previous_run_goes_is_skipped() {
    let db = ScratchStore::new(Backend::Postgres);
    let w = with_pg(&db, "", "tasks:\n  - name: slow\n    data_source: pg\n    cron: \"* * * * *\"\n    sql: SELECT pg_sleep(2) AS slept\n").await;
    let (d, first) = start_now(&w, Span::minutes(1)).await;
    d.set(first).await;
    d.wait("the first run", |r| r.len() == 1).await;
    d.set(first + Span::minutes(1)).await; // the next fire, while the first still sleeps
    let runs = d
        .wait("both fires settled", |r| r.len() == 2 && settled(r))
        .await;
    d.stop().await;
    assert_eq!(
        statuses(&runs),
        [
            (Trigger::Cron, 1, ExecutionStatus::Success),
            (Trigger::Cron, 1, ExecutionStatus::Skipped)
        ]
    );
    assert!(
        runs[1]
            .error
            .as_deref()
            .unwrap()
            .contains("previous run of this task is still going")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_wait_the_back_off_on_the_clock_and_only_the_last_failure_is_notified() {
    let ding = crate::dingtalk::StandIn::start();
    let w = Workdir::new(
        Backend::Sqlite,
        &format!(
            "{DEMO_SOURCE}scheduler:\n  retry_backoff: 60\ndingtalk:\n  webhook_url: \"http://127.0.0.1:{}/robot/send?access_token=ok_retry\"\n",
            ding.port
        ),
    );
    w.write("t.yaml", "tasks:\n  - name: broken\n    data_source: demo\n    cron: \"0 * * * *\"\n    retries: 2\n    sql: SELECT no_such_column FROM orders\n    notify:\n      dingtalk: {}\n");
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let (d, first) = start_now(&w, Span::hours(1)).await;
    d.set(first).await;
    d.wait("attempt 1", |r| r.len() == 1 && settled(r)).await;
    d.advance(59).await; // back-off 60 s: not yet
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(d.runs().await.len(), 1);
    d.advance(1).await;
    d.wait("attempt 2", |r| r.len() == 2 && settled(r)).await;
    d.advance(119).await; // back-off doubles to 120 s: not yet
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(d.runs().await.len(), 2);
    d.advance(1).await;
    d.wait("attempt 3", |r| r.len() == 3 && settled(r)).await;
    d.advance(600).await; // no fourth attempt
    let runs = d
        .wait("the failure notice recorded", |r| {
            r.len() == 3 && !r[2].notifications.is_empty()
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(d.runs().await.len(), 3);
    d.stop().await;
    assert_eq!(
        statuses(&runs),
        [
            (Trigger::Cron, 1, ExecutionStatus::Failed),
            (Trigger::Retry, 2, ExecutionStatus::Failed),
            (Trigger::Retry, 3, ExecutionStatus::Failed)
        ]
    );
    assert!(runs.iter().all(|e| e.scheduled_at == runs[0].scheduled_at));
    assert!(runs[2].error.as_deref().unwrap().contains("no_such_column"));
    // One failure notice, for the last attempt, recorded on its row only.
    let sent = ding.requests();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0]["body"]["markdown"]["title"], "broken 执行失败");
    assert!(runs[..2].iter().all(|e| e.notifications.is_empty()));
    assert_eq!(runs[2].notifications.len(), 1);
    assert!(runs[2].notifications[0].ok);
}

/// Whether a query with `marker` in its text is still running on the server.
async fn pg_running(url: &str, marker: &str) -> bool {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
    )
    .bind(marker)
    .fetch_one(&mut c)
    .await
    .unwrap();
    n > 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_its_timeout_is_stopped_on_the_server() {
    let db = ScratchStore::new(Backend::Postgres);
    let w = with_pg(&db, "", "tasks:\n  - name: slow\n    data_source: pg\n    cron: \"0 * * * *\"\n    timeout: 600\n    sql: SELECT pg_sleep(60) /* timeout-marker */\n").await;
    let (d, first) = start_now(&w, Span::hours(1)).await;
    d.set(first).await;
    d.wait("the run", |r| r.len() == 1).await;
    let started = Instant::now();
    while !pg_running(&db.url, "timeout-marker").await {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "query never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d.advance(599).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(d.runs().await[0].status, ExecutionStatus::Running);
    d.advance(1).await; // 600 s on the clock: the timeout
    let runs = d.wait("the timeout", settled).await;
    assert_eq!(
        statuses(&runs),
        [(Trigger::Cron, 1, ExecutionStatus::Timeout)]
    );
    assert!(
        runs[0]
            .error
            .as_deref()
            .unwrap()
            .contains("timed out after 600s")
    );
    assert!(
        !pg_running(&db.url, "timeout-marker").await,
        "query still on the server"
    );
    assert!(runs[0].files.is_empty());
    d.stop().await;
    let leftovers = files_under(&w.path().join("temp"));
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_its_timeout_on_the_clock_then_interrupts() {
    let db = ScratchStore::new(Backend::Postgres);
    let w = with_pg(&db, "daemon:\n  shutdown_timeout: 30\n", "tasks:\n  - name: slow\n    data_source: pg\n    cron: \"0 * * * *\"\n    sql: SELECT pg_sleep(60) /* drain-marker */\n  - name: quick\n    data_source: pg\n    cron: \"0 * * * *\"\n    sql: SELECT pg_sleep(1) AS slept\n").await;
    let (mut d, first) = start_now(&w, Span::hours(1)).await;
    d.set(first).await;
    d.wait("both running", |r| r.len() == 2).await;
    let clock = d.clock.clone();
    let handle = d.shutdown();
    // The quick run finishes inside the grace; the loop keeps waiting for the slow one.
    let quick_done = async {
        tokio::time::sleep(Duration::from_millis(2500)).await;
    };
    tokio::select! {
        _ = &mut *handle => panic!("stopped before the shutdown timeout"),
        () = quick_done => {}
    }
    clock.set(clock.now() + Span::seconds(30));
    tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("stops after the timeout")
        .unwrap()
        .unwrap();
    let mut runs = d.runs().await;
    runs.sort_by(|a, b| a.task_name.cmp(&b.task_name));
    assert_eq!(runs[0].task_name, "quick");
    assert_eq!(runs[0].status, ExecutionStatus::Success);
    assert_eq!(runs[1].status, ExecutionStatus::Interrupted);
    assert!(
        runs[1]
            .error
            .as_deref()
            .unwrap()
            .contains("daemon shutdown")
    );
    assert!(!pg_running(&db.url, "drain-marker").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_daemons_run_is_interrupted_its_temp_files_swept_and_its_fire_run_again() {
    let w = Workdir::new(Backend::Sqlite, DEMO_SOURCE);
    w.write(
        "t.yaml",
        &format!("tasks:\n{}", task("daily", "0 9 * * *", "UTC")),
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let settings = Settings::load(&w.path().join("config.yaml")).unwrap();
    let store = Store::connect(&settings.system_database).await.unwrap();
    let task = store.find_task("daily").await.unwrap().unwrap();

    // A daemon on this host, now dead, claimed today's 09:00 fire and died running it.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let host = reportd::schedule::instance_name();
    let dead = format!("{}:{}", host.rsplit_once(':').unwrap().0, gone.id());
    let start = (Utc::now() + Span::hours(1))
        .duration_trunc(Span::days(1))
        .unwrap()
        + Span::days(1)
        + Span::hours(9);
    let fire = start;
    assert!(
        store
            .claim_fire(task.id, fire, &dead, fire + Span::seconds(60))
            .await
            .unwrap()
    );
    store
        .start_execution(&NewExecution {
            task_id: Some(task.id),
            task_name: "daily".into(),
            trigger: Trigger::Cron,
            attempt: 1,
            scheduled_at: Some(fire),
            status: ExecutionStatus::Running,
            error: None,
            instance: Some(dead.clone()),
        })
        .await
        .unwrap();
    let temp = settings
        .export
        .temp_dir
        .join(format!("reportd-{}", gone.id()))
        .join("export-1");
    std::fs::create_dir_all(&temp).unwrap();
    std::fs::write(temp.join("half.xlsx"), b"PK").unwrap();

    // The new daemon starts 20 s later, within the lease: the pid is gone, so no wait.
    let d = Daemon::start(&w, fire + Span::seconds(20)).await;
    let runs = d
        .wait("the fire run again", |r| r.len() == 2 && settled(r))
        .await;
    d.stop().await;
    assert_eq!(
        statuses(&runs),
        [
            (Trigger::Cron, 1, ExecutionStatus::Interrupted),
            (Trigger::Takeover, 1, ExecutionStatus::Success)
        ]
    );
    assert!(runs.iter().all(|e| e.scheduled_at == Some(fire)));
    assert!(
        runs[0]
            .error
            .as_deref()
            .unwrap()
            .contains("recovered at start"),
        "{:?}",
        runs[0]
    );
    assert!(!temp.exists(), "temp files of the dead process are swept");
    let claim = store.claim(task.id, fire).await.unwrap().unwrap();
    assert_ne!(claim.instance, dead);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_asked_for_holds_the_tasks_place_until_it_ends() {
    let db = ScratchStore::new(Backend::Postgres);
    let w = with_pg(&db, "", "tasks:\n  - name: slow\n    data_source: pg\n    cron: \"* * * * *\"\n    sql: SELECT pg_sleep(2) AS slept\n").await;
    let (d, first) = start_now(&w, Span::minutes(1)).await;
    let record = d.store.find_task("slow").await.unwrap().unwrap();
    let done = d.control.run(record.clone()).await.unwrap();
    assert_eq!(
        d.control.run(record).await.unwrap_err(),
        Refused::Busy("slow".into())
    );
    let snapshot = d
        .control
        .snapshot(Duration::from_secs(5), usize::MAX)
        .await
        .unwrap();
    assert_eq!(snapshot.running.len(), 1);
    assert_eq!(snapshot.running[0].trigger, "manual");
    assert_eq!(snapshot.next_fires[0].at, first);
    d.set(first).await; // the cron fire comes while the asked-for run sleeps
    let summary = tokio::time::timeout(Duration::from_secs(20), done.report)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(summary.status.as_str(), "success");
    assert_eq!(summary.rows(), 1);
    let runs = d.wait("both settled", |r| r.len() == 2 && settled(r)).await;
    d.stop().await;
    assert_eq!(
        statuses(&runs),
        [
            (Trigger::Manual, 1, ExecutionStatus::Success),
            (Trigger::Cron, 1, ExecutionStatus::Skipped)
        ]
    );
    assert_eq!(runs[0].id, summary.execution_id);
}
