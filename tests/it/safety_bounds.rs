//! Editors' work is bounded (issue 24, classes 3, 5 and 7's `scheduler.min_interval`),
//! driven through the daemon's API and the CLI against real MariaDB:
//! - a preview stops at `http.preview_max_bytes` (marked `truncated`) and the daemon's memory
//!   stays bounded; previews hold at most the source's `max_connections` connections at once
//!   whatever their number, and more than `http.max_previews(_per_user)` get 429; a preview
//!   whose client went away stops its query on the server before freeing its slot;
//! - a task's `${VAR}` names only `security.task_env_prefix` variables: a forbidden one and an
//!   unset one get the same refusal, an allowed one is expanded when the task sends;
//!   `config.yaml` still takes any variable;
//! - a cron firing more often than `scheduler.min_interval` is refused by `task apply` and the
//!   API, and a stored one is not scheduled.

use serde_json::{Value, json};
use std::io::{Read as _, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::api_daemon::Daemon;
use crate::helpers::{Backend, DEMO_SOURCE, FAST_CRON, ScratchStore, Workdir, mysql_url};

/// A fresh MariaDB database on the test server, added to `d` as data source `wh` with
/// `max_connections`; returns its name.
async fn mariadb_source(d: &Daemon, db: &ScratchStore, max_connections: u32) -> String {
    db.create_source().await;
    let name = db.url.rsplit('/').next().unwrap().to_string();
    let (s, b) = d
        .call(
            "POST",
            "/api/data-sources",
            Some(json!({"name": "wh", "type": "mysql", "url": db.url, "max_connections": max_connections})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    name
}

/// The peak resident memory of process `pid` so far (VmHWM), bytes.
fn high_water(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[tokio::test]
async fn a_huge_preview_stops_at_preview_max_bytes() {
    let d = Daemon::start(Backend::Sqlite, "").await;
    let db = ScratchStore::new(Backend::Mysql);
    mariadb_source(&d, &db, 4).await;
    // 100 columns of 10,000 characters (what a preview shows of a cell), 100 rows: 100 MB.
    let columns: Vec<String> = (0..100)
        .map(|i| format!("REPEAT('x', 10000) AS c{i}"))
        .collect();
    let sql = format!("SELECT seq, {} FROM seq_1_to_100", columns.join(", "));
    let before = high_water(d.pid());
    let (s, b) = d
        .call(
            "POST",
            "/api/preview",
            Some(json!({"data_source": "wh", "sql": sql, "limit": 100})),
        )
        .await;
    assert_eq!(s, 200, "{}", &b.to_string()[..200.min(b.to_string().len())]);
    assert_eq!(b["truncated"], true);
    let rows = b["rows"].as_array().unwrap();
    let text: usize = rows
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|c| c.as_str().map_or(4, str::len))
        .sum();
    assert!(
        (1..100).contains(&rows.len()) && text <= 8 << 20 && text > 7 << 20,
        "{} rows, {text} bytes",
        rows.len()
    );
    // Whole rows only, in order.
    assert!(rows.iter().all(|r| r.as_array().unwrap().len() == 101));
    assert_eq!(rows[0][0], 1);
    // A sanity bound, not a measurement: the whole answer would be 100 MB, held twice.
    let grown = high_water(d.pid()).saturating_sub(before);
    eprintln!("preview: the daemon grew by {} MB", grown >> 20);
    assert!(grown < 80 << 20, "the daemon grew by {} MB", grown >> 20);
}

/// Server connections open on database `db` now.
async fn connections_on(db: &str) -> i64 {
    use sqlx::Connection;
    let mut c = sqlx::MySqlConnection::connect(&mysql_url()).await.unwrap();
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()",
    )
    .bind(db)
    .fetch_one(&mut c)
    .await
    .unwrap();
    n
}

#[tokio::test]
async fn previews_share_the_sources_connections() {
    let d = Daemon::start_with(
        Backend::Sqlite,
        "",
        "  max_previews: 20\n  max_previews_per_user: 20\n",
    )
    .await;
    let db = ScratchStore::new(Backend::Mysql);
    let name = mariadb_source(&d, &db, 2).await;
    let d = std::sync::Arc::new(d);
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let d = d.clone();
            tokio::spawn(async move {
                d.call(
                    "POST",
                    "/api/preview",
                    Some(json!({"data_source": "wh", "sql": "SELECT SLEEP(2) AS slept"})),
                )
                .await
            })
        })
        .collect();
    let mut most = 0;
    while calls.iter().any(|c| !c.is_finished()) {
        most = most.max(connections_on(&name).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!((1..=2).contains(&most), "{most} connections at once");
    let (mut ok, mut busy) = (0, 0);
    for c in calls {
        let (s, b) = c.await.unwrap();
        match s {
            200 => ok += 1,
            429 => {
                busy += 1;
                let e = b["error"].as_str().unwrap();
                assert!(
                    e.contains("data source wh") && e.contains("max_connections"),
                    "{e}"
                );
            }
            _ => panic!("{s} {b}"),
        }
    }
    // Two at a time, two seconds each, waiting up to five seconds for a slot.
    assert!(
        ok >= 4 && busy >= 1 && ok + busy == 20,
        "{ok} answered, {busy} busy"
    );
    // The API's connection test takes a slot as well, and one is free now.
    let (s, b) = d.call("POST", "/api/data-sources/wh/test", None).await;
    assert_eq!((s, &b["ok"]), (200, &json!(true)), "{b}");
}

#[tokio::test]
async fn previews_are_capped_per_user_and_in_all() {
    let d = Daemon::start_with(
        Backend::Sqlite,
        "",
        "  max_previews: 3\n  max_previews_per_user: 2\n",
    )
    .await;
    let db = ScratchStore::new(Backend::Mysql);
    mariadb_source(&d, &db, 10).await;
    let ed = d.login("bounds_ed", "editor").await;
    let other = d.login("bounds_other", "editor").await;
    let third_user = d.login("bounds_third", "editor").await;
    let d = std::sync::Arc::new(d);
    let sleep = |token: String| {
        let d = d.clone();
        tokio::spawn(async move {
            d.call_as(
                &token,
                "POST",
                "/api/preview",
                Some(json!({"data_source": "wh", "sql": "SELECT SLEEP(2) AS slept"})),
            )
            .await
        })
    };
    let running = [sleep(ed.clone()), sleep(ed.clone())];
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (s, b) = sleep(ed.clone()).await.unwrap();
    assert_eq!(s, 429, "{b}");
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .contains("http.max_previews_per_user"),
        "{b}"
    );
    let third = sleep(other.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (s, b) = sleep(third_user).await.unwrap();
    assert_eq!(s, 429, "{b}");
    assert!(
        b["error"].as_str().unwrap().contains("(http.max_previews)"),
        "{b}"
    );
    for r in running {
        assert_eq!(r.await.unwrap().0, 200);
    }
    assert_eq!(third.await.unwrap().0, 200);
    // Finished previews free their places.
    assert_eq!(sleep(ed).await.unwrap().0, 200);
}

/// Queries on database `db` whose text holds `marker` now (this one's aside).
async fn queries_on(db: &str, marker: &str) -> i64 {
    use sqlx::Connection;
    let mut c = sqlx::MySqlConnection::connect(&mysql_url()).await.unwrap();
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
         WHERE DB = ? AND ID <> CONNECTION_ID() AND INFO LIKE CONCAT('%', ?, '%')",
    )
    .bind(db)
    .bind(marker)
    .fetch_one(&mut c)
    .await
    .unwrap();
    n
}

/// Sends `POST /api/preview` of `sql` on a raw connection to the daemon at `base` and closes
/// it after `after`, without reading the answer.
fn abandoned_preview(base: &str, sql: &str, after: Duration) {
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let body = json!({"data_source": "wh", "sql": sql}).to_string();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /api/preview HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        crate::api_daemon::TOKEN,
        body.len()
    )
    .unwrap();
    std::thread::sleep(after);
    drop(s);
}

#[tokio::test]
async fn an_abandoned_preview_stops_its_query() {
    let d = Daemon::start_with(
        Backend::Sqlite,
        "",
        "  max_previews: 20\n  max_previews_per_user: 20\n",
    )
    .await;
    let db = ScratchStore::new(Backend::Mysql);
    let name = mariadb_source(&d, &db, 2).await;
    // Two waves of four previews of a long query, each client gone after 300 ms: a dropped
    // preview stops its query on the server before its slot is taken again.
    let sql = "SELECT SLEEP(20) AS bounds_abandoned";
    let mut most = 0;
    for _ in 0..2 {
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let base = d.base.clone();
                std::thread::spawn(move || {
                    abandoned_preview(&base, sql, Duration::from_millis(300))
                })
            })
            .collect();
        let until = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < until {
            most = most.max(queries_on(&name, "bounds_abandoned").await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for c in clients {
            c.join().unwrap();
        }
    }
    assert!((1..=2).contains(&most), "{most} queries at once");
    // The last ones are gone from the server soon after their clients.
    let until = Instant::now() + Duration::from_secs(2);
    let mut left = queries_on(&name, "bounds_abandoned").await;
    while left > 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = queries_on(&name, "bounds_abandoned").await;
    }
    assert_eq!(left, 0, "queries still running after their clients left");
    // Their slots are free: a new preview runs at once.
    let started = Instant::now();
    let (s, b) = d
        .call(
            "POST",
            "/api/preview",
            Some(json!({"data_source": "wh", "sql": "SELECT 1 AS one"})),
        )
        .await;
    assert_eq!((s, &b["rows"]), (200, &json!([[1]])), "{b}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// A task over the API whose webhook signs with `secret`.
fn hooked(name: &str, url: &str, secret: &str) -> Value {
    json!({"name": name, "data_source": "demo", "cron": "0 9 * * *", "sql": "SELECT 1 AS one",
        "notify": {"webhook": {"url": url, "secret": secret}, "on": ["success", "failure"]}})
}

/// Accepts one HTTP request on a new local port; the request's text comes through the
/// returned channel.
fn one_request() -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/hook",
        listener.local_addr().unwrap().port()
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = vec![0u8; 65536];
        let mut got = Vec::new();
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    break;
                }
            }
        }
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let _ = tx.send(String::from_utf8_lossy(&got).into_owned());
    });
    (url, rx)
}

#[tokio::test]
async fn tasks_name_only_their_own_variables() {
    let (url, received) = one_request();
    // SAFETY: each test runs in a process of its own (nextest); the daemon inherits these.
    unsafe {
        std::env::set_var("REPORTD_TASK_BOUNDS_URL", &url);
        std::env::set_var("REPORTD_TASK_BOUNDS_SECRET", "bounds-signing-key");
        std::env::set_var("BOUNDS_DAEMON_SECRET", "not-for-tasks");
    }
    let d = Daemon::start(Backend::Sqlite, "").await;

    // Set or not, outside the prefix or not: the same words.
    let mut refusals = Vec::new();
    for name in ["HOME", "PATH", "BOUNDS_DAEMON_SECRET", "REPORTD_TASK_NOPE"] {
        let (s, b) = d
            .call(
                "POST",
                "/api/tasks",
                Some(hooked(
                    "probe",
                    "https://hooks.example/in",
                    &format!("${{{name}}}"),
                )),
            )
            .await;
        assert_eq!(s, 422, "{name}: {b}");
        assert_eq!(b["field"], "notify.webhook.secret", "{b}");
        refusals.push(b["error"].as_str().unwrap().replace(name, "NAME"));
    }
    assert_eq!(
        refusals[0],
        "notify.webhook.secret: ${NAME} is not set or not allowed in tasks (task variables start with REPORTD_TASK_)"
    );
    assert!(refusals.iter().all(|r| *r == refusals[0]), "{refusals:#?}");
    // A URL too, and a default does not open other variables.
    let (s, b) = d
        .call(
            "POST",
            "/api/tasks",
            Some(hooked("probe", "${HOME:-https://h/x}", "plain")),
        )
        .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (422, Some("notify.webhook.url")),
        "{b}"
    );

    // The task's own variables are expanded when it sends.
    let (s, b) = d
        .call(
            "POST",
            "/api/tasks",
            Some(hooked(
                "hooked",
                "${REPORTD_TASK_BOUNDS_URL}",
                "${REPORTD_TASK_BOUNDS_SECRET}",
            )),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = d
        .call("POST", "/api/tasks/hooked/run", Some(json!({})))
        .await;
    assert_eq!(s, 202, "{b}");
    let request = received.recv_timeout(Duration::from_secs(30)).unwrap();
    assert!(request.starts_with("POST /hook "), "{request}");
    let (head, body) = request.split_once("\r\n\r\n").unwrap();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no {name} in {head}"))
    };
    let timestamp: i64 = header("X-Reportd-Timestamp").parse().unwrap();
    assert_eq!(
        header("X-Reportd-Signature"),
        reportd::notify::webhook::signature("bounds-signing-key", timestamp, body.as_bytes())
    );
}

#[test]
fn config_yaml_still_names_any_variable() {
    let home = std::env::var("HOME").unwrap();
    let w = Workdir::new(
        Backend::Sqlite,
        "data_sources:\n  home:\n    type: mysql\n    host: \"${HOME}\"\n",
    );
    let listed = w.ok(&["datasource", "list"]);
    assert!(listed.contains(&home), "{listed}");
}

#[test]
fn a_cron_faster_than_min_interval_is_refused_by_task_apply() {
    let w = Workdir::new(Backend::Sqlite, DEMO_SOURCE);
    w.write(
        "t.yaml",
        "tasks:\n  - name: fast\n    data_source: demo\n    cron: \"*/10 * * * * *\"\n    sql: SELECT 1 AS one\n",
    );
    let err = w.fails(&["task", "apply", "-f", "t.yaml"], 1);
    assert!(
        err.contains("cron")
            && err.contains("10 s apart")
            && err.contains("60 s (scheduler.min_interval)"),
        "{err}"
    );
    // Once a minute is the default's limit.
    w.write(
        "t.yaml",
        "tasks:\n  - name: fast\n    data_source: demo\n    cron: \"30 * * * * *\"\n    sql: SELECT 1 AS one\n",
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
}

#[tokio::test]
async fn a_cron_faster_than_min_interval_is_refused_by_the_api() {
    let d = Daemon::start_scheduled(Backend::Sqlite, "", "", "", "  min_interval: 300\n").await;
    let mut task = json!({"name": "fast", "data_source": "demo", "cron": "*/2 * * * *", "sql": "SELECT 1 AS one"});
    let (s, b) = d.call("POST", "/api/tasks", Some(task.clone())).await;
    assert_eq!((s, b["field"].as_str()), (422, Some("cron")), "{b}");
    let e = b["error"].as_str().unwrap();
    assert!(e.contains("120 s apart") && e.contains("300 s"), "{e}");
    // Across midnight counts too: 23:58 and 00:01 are three minutes apart.
    task["cron"] = json!("0 1,58 0,23 * * *");
    let (s, b) = d.call("POST", "/api/tasks", Some(task.clone())).await;
    assert_eq!((s, b["field"].as_str()), (422, Some("cron")), "{b}");
    assert!(b["error"].as_str().unwrap().contains("180 s apart"), "{b}");
    task["cron"] = json!("*/5 * * * *");
    let (s, b) = d.call("POST", "/api/tasks", Some(task)).await;
    assert_eq!(s, 201, "{b}");
}

#[test]
fn a_stored_task_faster_than_min_interval_is_not_scheduled() {
    let w = Workdir::new(
        Backend::Sqlite,
        &format!("{DEMO_SOURCE}scheduler:\n{FAST_CRON}"),
    );
    w.write(
        "t.yaml",
        "tasks:\n  - name: every1s\n    data_source: demo\n    cron: \"* * * * * *\"\n    sql: SELECT 1 AS one\n",
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    // The limit is back to its default when the daemon starts.
    let config = std::fs::read_to_string(w.path().join("config.yaml")).unwrap();
    w.write(
        "daemon.yaml",
        &config.replace(&format!("scheduler:\n{FAST_CRON}"), ""),
    );
    let mut daemon = Command::new(assert_cmd::cargo::cargo_bin("reportd"))
        .current_dir(w.path())
        .env_remove("RUST_LOG")
        .args(["--config", "daemon.yaml", "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let mut err = String::new();
    daemon
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let _ = daemon.wait();
    let runs: Vec<Value> = serde_json::from_str(&w.ok(&["logs", "--json"])).unwrap();
    assert!(runs.is_empty(), "{runs:#?}");
    assert!(
        err.contains("every1s")
            && err.contains("1 s apart")
            && err.contains("scheduler.min_interval"),
        "{err}"
    );
}
