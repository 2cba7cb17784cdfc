//! One long-lived connection pool per data source (issue 33), driven through the daemon's API
//! against real MariaDB and PostgreSQL and observed on the servers:
//! - fifty runs and previews at once hold at most the source's `max_connections` connections
//!   (PROCESSLIST / pg_stat_activity of the source's own database), and a warm run reuses one;
//! - a run after a cancelled one gets a fresh connection with its own statement timeout (the
//!   cancelled one is closed, not given back);
//! - editing a data source (its password) gives it a new pool: the old connections close and
//!   the new ones log in with the new password.

use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api_daemon::Daemon;
use crate::helpers::{Backend, ScratchStore, exec, mysql_url, pg_url};

/// Server connections on database `db` (MariaDB or PostgreSQL, by `url`'s scheme), other
/// than the asking one.
async fn connections_on(url: &str, db: &str) -> i64 {
    if url.starts_with("mysql:") {
        let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()",
        )
        .bind(db)
        .fetch_one(&mut c)
        .await
        .unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(db)
        .fetch_one(&mut c)
        .await
        .unwrap()
    }
}

/// Adds data source `name` (`body` besides the name) and a task `task` on it running `sql`.
async fn source_and_task(d: &Daemon, name: &str, body: Value, task: &str, sql: &str) -> i64 {
    let mut body = body;
    body["name"] = json!(name);
    let (s, b) = d.call("POST", "/api/data-sources", Some(body)).await;
    assert_eq!(s, 201, "{b}");
    add_task(d, name, task, sql).await
}

/// Adds task `task` on data source `name` running `sql`; its id.
async fn add_task(d: &Daemon, name: &str, task: &str, sql: &str) -> i64 {
    let task = json!({
        "name": task, "data_source": name, "cron": "0 9 1 1 *", "timeout": 20,
        "sql": sql, "output": {"format": "csv"}
    });
    let (s, b) = d.call("POST", "/api/tasks", Some(task)).await;
    assert_eq!(s, 201, "{b}");
    b["id"].as_i64().unwrap()
}

/// Starts a run of task `id`; its execution id.
async fn start(d: &Daemon, id: i64) -> i64 {
    let (s, b) = d.call("POST", &format!("/api/tasks/{id}/run"), None).await;
    assert_eq!(s, 202, "{b}");
    b["execution_id"].as_i64().expect("the execution id")
}

/// Waits for execution `id` to end; its record.
async fn ended(d: &Daemon, id: i64, within: Duration) -> Value {
    let t0 = Instant::now();
    loop {
        let (_, run) = d.call("GET", &format!("/api/logs/{id}"), None).await;
        if run["status"] != "running" && run["status"] != "queued" && !run["status"].is_null() {
            return run;
        }
        assert!(t0.elapsed() < within, "{run:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The second line of the run's CSV file, split at commas.
fn csv_row(d: &Daemon, run: &Value) -> Vec<String> {
    assert_eq!(run["status"], "success", "{run:#}");
    let file = run["files"][0].as_str().unwrap();
    let text = std::fs::read_to_string(d.dir.path().join(Path::new(file))).unwrap();
    let line = text.lines().nth(1).unwrap_or_default();
    line.split(',')
        .map(|c| c.trim_matches('"').to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_runs_and_previews_stay_within_max_connections() {
    let d = Daemon::start_scheduled(
        Backend::Sqlite,
        "",
        "  max_previews: 20\n  max_previews_per_user: 20\n",
        "",
        "  max_workers: 20\n  min_interval: 1\n",
    )
    .await;
    let (my, pg) = (
        ScratchStore::new(Backend::Mysql),
        ScratchStore::new(Backend::Postgres),
    );
    let (my_url, pg_db_url) = (my.create_source().await, pg.create_source().await);
    let my_task = source_and_task(
        &d,
        "my",
        json!({"type": "mysql", "url": my_url, "max_connections": 3}),
        "my_sleep",
        "SELECT SLEEP(0.2) AS slept",
    )
    .await;
    let pg_task = source_and_task(
        &d,
        "pg",
        json!({"type": "postgresql", "url": pg_db_url, "max_connections": 3}),
        "pg_sleep",
        "SELECT pg_sleep(0.2)::text AS slept",
    )
    .await;
    let db = |u: &str| u.rsplit('/').next().unwrap().to_string();
    let (my_db, pg_db) = (db(&my_url), db(&pg_db_url));
    let mut tasks = vec![my_task, pg_task];
    for i in 1..20 {
        tasks.push(add_task(&d, "my", &format!("my_{i}"), "SELECT SLEEP(0.2) AS slept").await);
        let sql = "SELECT pg_sleep(0.2)::text AS slept";
        tasks.push(add_task(&d, "pg", &format!("pg_{i}"), sql).await);
    }
    let d = Arc::new(d);
    let t0 = Instant::now();
    let mut runs = Vec::new();
    for id in tasks {
        runs.push(start(&d, id).await);
    }
    let previews: Vec<_> = (0..10)
        .map(|i| {
            let d = d.clone();
            let (source, sql) = if i % 2 == 0 {
                ("my", "SELECT SLEEP(0.2) AS slept")
            } else {
                ("pg", "SELECT pg_sleep(0.2)::text AS slept")
            };
            tokio::spawn(async move {
                d.call(
                    "POST",
                    "/api/preview",
                    Some(json!({"data_source": source, "sql": sql})),
                )
                .await
            })
        })
        .collect();
    let (mut most_my, mut most_pg) = (0, 0);
    loop {
        most_my = most_my.max(connections_on(&mysql_url(), &my_db).await);
        most_pg = most_pg.max(connections_on(&pg_url(), &pg_db).await);
        let (_, logs) = d.call("GET", "/api/logs?limit=100", None).await;
        let running = logs.to_string().matches("\"running\"").count();
        if running == 0 && previews.iter().all(|p| p.is_finished()) {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "runs still going");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in runs {
        let run = ended(&d, id, Duration::from_secs(5)).await;
        assert_eq!(run["status"], "success", "{run:#}");
    }
    for p in previews {
        let (s, b) = p.await.unwrap();
        assert_eq!(s, 200, "{b}");
    }
    eprintln!("at most {most_my} MariaDB and {most_pg} PostgreSQL connections at once");
    assert!((1..=3).contains(&most_my), "{most_my} MariaDB connections");
    assert!(
        (1..=3).contains(&most_pg),
        "{most_pg} PostgreSQL connections"
    );
    // The pools keep their connections for the next runs (idle_timeout: 5 minutes).
    let left = connections_on(&mysql_url(), &my_db).await;
    assert!((1..=3).contains(&left), "{left} idle MariaDB connections");
}

/// The slow task's queries running on the server.
async fn slow_queries() -> i64 {
    let mut c = sqlx::MySqlConnection::connect(&mysql_url()).await.unwrap();
    sqlx::query_scalar(AssertSqlSafe(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%pool_cancel_marker%' AND ID <> CONNECTION_ID()",
    ))
    .fetch_one(&mut c)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_after_a_cancelled_one_has_a_fresh_connection_and_its_own_timeout() {
    let d = Daemon::start(Backend::Sqlite, "").await;
    let my = ScratchStore::new(Backend::Mysql);
    let url = my.create_source().await;
    let body = json!({"type": "mysql", "url": url, "max_connections": 1});
    let probe = source_and_task(
        &d,
        "one",
        body,
        "probe",
        "SELECT CONNECTION_ID() AS id, @@max_statement_time AS limit_s, @@in_transaction AS tx",
    )
    .await;
    let slow = json!({
        "name": "slow", "data_source": "one", "cron": "0 9 1 1 *", "timeout": 60,
        "sql": "SELECT SLEEP(30) AS pool_cancel_marker", "output": {"format": "csv"}
    });
    let (s, b) = d.call("POST", "/api/tasks", Some(slow)).await;
    assert_eq!(s, 201, "{b}");
    let slow = b["id"].as_i64().unwrap();

    // A warm run reuses the pooled connection; its own timeout (20 s + 2) is set for it.
    let first = ended(&d, start(&d, probe).await, Duration::from_secs(10)).await;
    let first = csv_row(&d, &first);
    let again = ended(&d, start(&d, probe).await, Duration::from_secs(10)).await;
    let again = csv_row(&d, &again);
    assert_eq!(
        first[0], again[0],
        "the same connection: {first:?} {again:?}"
    );
    assert_eq!(first[1].parse::<f64>().unwrap(), 22.0, "{first:?}");
    assert_eq!(first[2], "1", "inside the read-only transaction: {first:?}");

    // The slow run gets the same connection; cancelled, it is closed, not given back.
    let id = start(&d, slow).await;
    let t0 = Instant::now();
    while slow_queries().await == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the slow query never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, b) = d
        .call("POST", &format!("/api/logs/{id}/cancel"), None)
        .await;
    assert_eq!(s, 202, "{b}");
    let run = ended(&d, id, Duration::from_secs(10)).await;
    assert_eq!(run["status"], "cancelled", "{run:#}");
    let after = ended(&d, start(&d, probe).await, Duration::from_secs(10)).await;
    let after = csv_row(&d, &after);
    assert_ne!(after[0], first[0], "the cancelled connection was reused");
    assert_eq!(after[1].parse::<f64>().unwrap(), 22.0, "{after:?}");
    assert_eq!(slow_queries().await, 0, "the query still runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_password_gives_the_source_a_new_pool() {
    let d = Daemon::start(Backend::Sqlite, "").await;
    let my = ScratchStore::new(Backend::Mysql);
    let url = my.create_source().await;
    let db = url.rsplit('/').next().unwrap().to_string();
    let user = format!("{}_u", &db[db.len().saturating_sub(20)..]);
    exec(
        &mysql_url(),
        &format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY 'first'; GRANT SELECT ON `{db}`.* TO '{user}'@'%'"
        ),
    )
    .await;
    let body = json!({
        "type": "mysql", "host": "127.0.0.1", "port": 3306, "database": db,
        "username": user, "password": "first", "max_connections": 2
    });
    let probe = source_and_task(
        &d,
        "pw",
        body.clone(),
        "who",
        "SELECT CONNECTION_ID() AS id",
    )
    .await;
    let first = csv_row(
        &d,
        &ended(&d, start(&d, probe).await, Duration::from_secs(10)).await,
    );

    // The server's password changes: the pooled connection still serves, a new one could not
    // log in. Editing the data source builds a new pool with the new password.
    exec(
        &mysql_url(),
        &format!("ALTER USER '{user}'@'%' IDENTIFIED BY 'second'"),
    )
    .await;
    let mut edited = body;
    edited["name"] = json!("pw");
    edited["password"] = json!("second");
    let (s, b) = d.call("PUT", "/api/data-sources/pw", Some(edited)).await;
    assert!(s == 200 || s == 204, "{s} {b}");
    let second = csv_row(
        &d,
        &ended(&d, start(&d, probe).await, Duration::from_secs(10)).await,
    );
    assert_ne!(first[0], second[0], "a new connection for the new settings");
    // The old pool drained: only the new pool's connection is left.
    let t0 = Instant::now();
    while connections_on(&mysql_url(), &db).await > 1 {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the old pool kept its connection"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    exec(&mysql_url(), &format!("DROP USER '{user}'@'%'")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_the_server_closed_is_replaced_before_use() {
    // As the server's wait_timeout would: the idle pooled connection is killed server-side.
    let d = Daemon::start(Backend::Sqlite, "").await;
    let my = ScratchStore::new(Backend::Mysql);
    let url = my.create_source().await;
    let body = json!({"type": "mysql", "url": url, "max_connections": 1});
    let probe = source_and_task(&d, "gone", body, "who", "SELECT CONNECTION_ID() AS id").await;
    let first = csv_row(
        &d,
        &ended(&d, start(&d, probe).await, Duration::from_secs(10)).await,
    );
    exec(&mysql_url(), &format!("KILL CONNECTION {}", first[0])).await;
    let run = ended(&d, start(&d, probe).await, Duration::from_secs(10)).await;
    let second = csv_row(&d, &run);
    assert_ne!(first[0], second[0], "{run:#}");
}

/// A TCP forwarder to MariaDB that can be cut (the source goes down: its listener and every
/// forwarded connection close) and brought back on the same port.
struct Cable {
    port: u16,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Cable {
    async fn up(port: u16) -> Cable {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut links = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                links.spawn(async move {
                    let mut server = tokio::net::TcpStream::connect("127.0.0.1:3306")
                        .await
                        .unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        Cable {
            port,
            task: Some(task),
        }
    }

    /// Closes the listener and every forwarded connection.
    async fn cut(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_goes_down_fails_runs_clearly_and_recovers() {
    let d = Daemon::start(Backend::Sqlite, "").await;
    let my = ScratchStore::new(Backend::Mysql);
    let url = my.create_source().await;
    let db = url.rsplit('/').next().unwrap().to_string();
    let mut cable = Cable::up(0).await;
    let body = json!({
        "type": "mysql", "url": format!("mysql://root@127.0.0.1:{}/{db}", cable.port),
        "max_connections": 2
    });
    let probe = source_and_task(&d, "flaky", body, "who", "SELECT CONNECTION_ID() AS id").await;
    csv_row(
        &d,
        &ended(&d, start(&d, probe).await, Duration::from_secs(10)).await,
    );

    // Down while the pool holds a connection: the run fails with the driver's error, well
    // within its 20 s timeout.
    cable.cut().await;
    let t0 = Instant::now();
    let run = ended(&d, start(&d, probe).await, Duration::from_secs(15)).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let error = run["error"].as_str().unwrap();
    assert!(
        error.contains("data source flaky") && error.contains("refused"),
        "{error}"
    );
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());

    // Back: the pool connects again.
    let _cable = Cable::up(cable.port).await;
    let run = ended(&d, start(&d, probe).await, Duration::from_secs(10)).await;
    assert_eq!(run["status"], "success", "{run:#}");
}
