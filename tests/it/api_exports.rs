//! Export jobs (the download center) against the real daemon over HTTP: a job queued by an
//! editor runs in its lane, its file downloads (behind the login and through its signed
//! link) and is counted; a task's queries run as a job; bad requests are refused naming the
//! field; queued and running jobs are cancelled (the query stopped on MariaDB, no file
//! kept), the per-user limit answers 429; a done job expires (410, files removed); a job
//! running when the daemon is killed runs again after the restart; the callback is signed.

use serde_json::{Value, json};
use std::time::{Duration, Instant};

use crate::api_daemon::{Daemon, TOKEN};
use crate::helpers::{Backend, mysql_url};
use crate::stand_in::StandIn;

const HOOK_SECRET: &str = "job-callback-secret";

/// Polls job `id` until its status is not one of `passing` (at most `within`).
pub(crate) async fn until_not(d: &Daemon, id: i64, passing: &[&str], within: Duration) -> Value {
    d.until_not(&format!("/api/exports/{id}"), passing, within)
        .await
}

/// GET `url` (a full URL or a path) with an optional bearer token: status and body.
async fn fetch(d: &Daemon, url: &str, token: Option<&str>) -> (u16, Vec<u8>) {
    let url = if url.starts_with("http") {
        url.to_string()
    } else {
        format!("{}{url}", d.base)
    };
    let mut req = d.http.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn a_job_runs_downloads_are_counted_and_bad_requests_are_refused() {
    let hook = StandIn::script("webhook.py", &[HOOK_SECRET]);
    let d = Daemon::start(Backend::Sqlite, "").await;
    let editor = d.login("ed", "editor").await;
    let viewer = d.login("vi", "viewer").await;
    let body = json!({
        "data_source": "demo", "format": "csv", "filename": "订单_{date:%Y%m%d}",
        "sql": "SELECT id, customer, amount FROM orders WHERE id <= 1200 ORDER BY id",
        "callback": {"url": format!("http://127.0.0.1:{}/ok/jobs", hook.port), "secret": HOOK_SECRET}
    });
    let (s, b) = d
        .call_as(&viewer, "POST", "/api/exports", Some(body.clone()))
        .await;
    assert_eq!(s, 403, "a viewer may not create jobs: {b}");
    let (s, b) = d.call_as(&editor, "POST", "/api/exports", Some(body)).await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["status"], "queued");
    let id = b["id"].as_i64().unwrap();

    let job = until_not(&d, id, &["queued", "running"], Duration::from_secs(30)).await;
    assert_eq!(job["status"], "done", "{job:#}");
    assert_eq!(job["lane"], "fast");
    assert_eq!(job["rows"], 1200);
    assert_eq!(job["created_by"], "ed");
    assert_eq!(job["callback"], true);
    assert!(job.get("secret").is_none() && !job.to_string().contains(HOOK_SECRET));
    let file = &job["files"][0];
    assert!(
        file["name"].as_str().unwrap().starts_with("订单_"),
        "{file}"
    );
    assert_eq!(file["downloads"], 0);
    assert!(job["expires_at"].is_string());

    // Behind the login: the creator downloads it, counted.
    let url = file["url"].as_str().unwrap();
    assert_eq!(url, format!("/api/exports/{id}/files/0"));
    let (s, bytes) = fetch(&d, url, Some(&editor)).await;
    assert_eq!(s, 200);
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(
        text.trim_start_matches('\u{feff}').lines().count(),
        1201,
        "header + 1200 rows"
    );
    assert_eq!(bytes_of(&job), text.len() as u64);
    // Through the signed link, without a login: counted too.
    let link = file["link"]
        .as_str()
        .expect("a signed link for its creator");
    let (s, _) = fetch(&d, link, None).await;
    assert_eq!(s, 200);
    let (_, job) = d.call("GET", &format!("/api/exports/{id}"), None).await;
    assert_eq!(job["files"][0]["downloads"], 2, "{job:#}");
    assert!(job["files"][0]["last_download_at"].is_string());

    // A viewer sees the job, not its link, and may not download someone else's job.
    let (s, list) = d.call_as(&viewer, "GET", "/api/exports", None).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["total"], 1);
    assert!(list["items"][0]["files"][0].get("link").is_none(), "{list}");
    let (s, _) = fetch(&d, url, Some(&viewer)).await;
    assert_eq!(s, 403);
    let (_, mine) = d
        .call_as(&viewer, "GET", "/api/exports?mine=true", None)
        .await;
    assert_eq!(mine["total"], 0);

    // The callback: signed, export.finished, the job as the API shows it.
    let calls = wait_for(|| hook.requests(), 1).await;
    assert_eq!(calls[0]["sig_ok"], true, "{:#}", calls[0]);
    assert_eq!(calls[0]["delivery"], format!("job-{id}-export.finished"));
    let event = &calls[0]["body"];
    assert_eq!(event["event"], "export.finished");
    assert_eq!(event["job"]["id"], id);
    assert_eq!(event["job"]["status"], "done");
    assert_eq!(event["execution"]["status"], "success");
    assert_eq!(event["execution"]["trigger"], "export");
    assert_eq!(event["files"][0]["bytes"], text.len());

    // Its run is in the execution log, under no task; a viewer gets no link there either.
    let log = format!("/api/logs/{}", job["execution_id"]);
    let (_, run) = d.call("GET", &log, None).await;
    assert_eq!(run["trigger"], "export", "{run:#}");
    assert_eq!(run["task_id"], Value::Null);
    assert!(run["downloads"][0]["url"].is_string(), "{run:#}");
    let (_, run) = d.call_as(&viewer, "GET", &log, None).await;
    assert_eq!(run["downloads"][0]["url"], Value::Null, "{run:#}");

    // Bad requests, each naming its field; nothing queued.
    let bad = [
        (
            json!({"data_source": "nope", "sql": "SELECT 1"}),
            422,
            "data_source",
        ),
        (
            json!({"data_source": "demo", "sql": "DELETE FROM orders"}),
            422,
            "sql",
        ),
        (
            json!({"data_source": "demo", "sheets": [{"name": "a", "sql": "SELECT 1"}, {"name": "b", "sql": "DROP TABLE orders"}]}),
            422,
            "sheets[1].sql",
        ),
        (
            json!({"data_source": "demo", "sql": "SELECT 1", "callback": {"url": "ftp://x/y"}}),
            422,
            "callback.url",
        ),
        (
            json!({"data_source": "demo", "sql": "SELECT 1", "callback": {"url": "${HOME}"}}),
            422,
            "callback.url",
        ),
        (
            json!({"data_source": "demo", "sql": "SELECT 1", "callback": {"url": "http://127.0.0.1:9/x", "secret": "${REPORTD_SECRET_KEY}"}}),
            422,
            "callback.secret",
        ),
        (
            json!({"data_source": "demo", "sql": "SELECT 1", "filename": "../x"}),
            422,
            "filename",
        ),
        (json!({"data_source": "demo"}), 422, "sql"),
        (json!({"task": "no such task"}), 422, "task"),
        (json!({"task": "x", "sql": "SELECT 1"}), 422, "sql"),
        (
            json!({"data_source": "demo", "sql": "SELECT 1", "format": "pdf"}),
            422,
            "format",
        ),
        (
            json!({"data_source": "demo", "sql": "SELECT 1", "surprise": 1}),
            422,
            "surprise",
        ),
    ];
    for (body, status, field) in bad {
        let (s, b) = d
            .call_as(&editor, "POST", "/api/exports", Some(body.clone()))
            .await;
        assert_eq!(s, status, "{body}: {b}");
        assert_eq!(b["field"], field, "{body}: {b}");
    }
    let (_, list) = d.call("GET", "/api/exports", None).await;
    assert_eq!(list["total"], 1, "nothing else was queued");
    let (s, b) = d
        .call("POST", &format!("/api/exports/{id}/cancel"), None)
        .await;
    assert_eq!(s, 409, "{b}");
    let (s, _) = d.call("GET", "/api/exports/99999", None).await;
    assert_eq!(s, 404);
    let (s, _) = d
        .call("GET", &format!("/api/exports/{id}/files/7"), None)
        .await;
    assert_eq!(s, 404);

    // A task's queries as a one-off job: its sheets, its file name, no notification.
    let task = json!({
        "name": "城市", "data_source": "demo", "cron": "0 9 1 1 *",
        "sheets": [{"name": "a", "sql": "SELECT city FROM orders LIMIT 3"},
                   {"name": "b", "sql": "SELECT id FROM orders LIMIT 5"}],
        "output": {"filename": "城市_{date:%Y}.xlsx"}
    });
    let (s, b) = d.call("POST", "/api/tasks", Some(task)).await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = d
        .call_as(
            &editor,
            "POST",
            "/api/exports",
            Some(json!({"task": "城市"})),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let job = until_not(
        &d,
        b["id"].as_i64().unwrap(),
        &["queued", "running"],
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(job["status"], "done", "{job:#}");
    assert_eq!(job["task"], "城市");
    assert_eq!(job["rows"], 8);
    assert!(
        job["files"][0]["name"]
            .as_str()
            .unwrap()
            .starts_with("城市_")
    );

    let (_, audit) = d.call("GET", "/api/audit?limit=50", None).await;
    assert!(audit.to_string().contains("export.create"), "{audit}");
    let (_, doc) = d.call("GET", "/api/openapi.json", None).await;
    for path in [
        "/api/exports",
        "/api/exports/{id}",
        "/api/exports/{id}/cancel",
        "/api/exports/{id}/files/{index}",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} is in the OpenAPI document"
        );
    }
}

fn bytes_of(job: &Value) -> u64 {
    job["files"][0]["bytes"].as_u64().unwrap()
}

/// Waits (up to 10 s) until `get` returns at least `n` items.
async fn wait_for(get: impl Fn() -> Vec<Value>, n: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let got = get();
        if got.len() >= n {
            return got;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "only {} of {n}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A MariaDB source for slow queries (continues the `data_sources` mapping).
pub(crate) fn slowdb() -> String {
    format!("  slowdb:\n    type: mysql\n    url: \"{}\"\n", mysql_url())
}

/// The MariaDB process-list entries running `marker`.
async fn running_queries(marker: &str) -> usize {
    use sqlx::Connection;
    let mut conn = sqlx::MySqlConnection::connect(&mysql_url()).await.unwrap();
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE ? AND INFO NOT LIKE '%PROCESSLIST%'",
    )
    .bind(format!("%{marker}%"))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    n as usize
}

#[tokio::test]
async fn queued_and_running_jobs_are_cancelled_and_the_queue_is_limited_per_user() {
    let d = Daemon::start_full(
        Backend::Sqlite,
        &slowdb(),
        "",
        "  jobs:\n    fast_workers: 1\n    slow_workers: 1\n    max_queued_per_user: 2\n",
    )
    .await;
    let editor = d.login("ed", "editor").await;
    let other = d.login("al", "editor").await;
    let slow = |marker: &str| json!({"data_source": "slowdb", "sql": format!("SELECT SLEEP(30) AS {marker}")});
    let (s, b) = d
        .call_as(&editor, "POST", "/api/exports", Some(slow("job_cancel_a")))
        .await;
    assert_eq!(s, 202, "{b}");
    let running = b["id"].as_i64().unwrap();
    until_not(&d, running, &["queued"], Duration::from_secs(10)).await;
    let mut queued = Vec::new();
    for marker in ["job_cancel_b", "job_cancel_c"] {
        let (s, b) = d
            .call_as(&editor, "POST", "/api/exports", Some(slow(marker)))
            .await;
        assert_eq!(s, 202, "{b}");
        queued.push(b["id"].as_i64().unwrap());
    }
    let (s, b) = d
        .call_as(&editor, "POST", "/api/exports", Some(slow("job_cancel_d")))
        .await;
    assert_eq!(s, 429, "a third queued job is over the limit: {b}");
    assert!(
        b["error"].as_str().unwrap().contains("max_queued_per_user"),
        "{b}"
    );

    // Someone else's job: 403; a queued job: cancelled at once, never run.
    let (s, _) = d
        .call_as(
            &other,
            "POST",
            &format!("/api/exports/{}/cancel", queued[0]),
            None,
        )
        .await;
    assert_eq!(s, 403);
    let (s, b) = d
        .call_as(
            &editor,
            "POST",
            &format!("/api/exports/{}/cancel", queued[0]),
            None,
        )
        .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["status"], "cancelled");
    let (_, job) = d
        .call("GET", &format!("/api/exports/{}", queued[0]), None)
        .await;
    assert_eq!(job["status"], "cancelled");
    assert_eq!(job["execution_id"], Value::Null, "it never ran");
    assert_eq!(job["error"], "cancelled by ed (api)");

    // Nor through its execution.
    let (_, job) = d
        .call("GET", &format!("/api/exports/{running}"), None)
        .await;
    let log_cancel = format!("/api/logs/{}/cancel", job["execution_id"]);
    let (s, b) = d.call_as(&other, "POST", &log_cancel, None).await;
    assert_eq!(s, 403, "{b}");

    // The running one: the query is gone from the server within 2 s, no file kept.
    assert_eq!(running_queries("job_cancel_a").await, 1);
    let (s, b) = d
        .call_as(
            &editor,
            "POST",
            &format!("/api/exports/{running}/cancel"),
            None,
        )
        .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["status"], "running");
    let asked = Instant::now();
    let job = until_not(&d, running, &["running"], Duration::from_secs(5)).await;
    assert_eq!(job["status"], "cancelled", "{job:#}");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(
        running_queries("job_cancel_a").await,
        0,
        "the query is stopped on the server"
    );
    assert_eq!(job["files"], json!([]));
    let (_, run) = d
        .call("GET", &format!("/api/logs/{}", job["execution_id"]), None)
        .await;
    assert_eq!(run["status"], "cancelled", "{run:#}");
    let leftovers = crate::helpers::files_under(&d.dir.path().join("exports"));
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The next queued job runs; cancelled from the CLI.
    let last = queued[1];
    until_not(&d, last, &["queued"], Duration::from_secs(10)).await;
    let out = d.cli(&["jobs", "cancel", &last.to_string()], "");
    assert!(out.contains("cancelled"), "{out}");
    let job = until_not(&d, last, &["running"], Duration::from_secs(5)).await;
    assert_eq!(job["status"], "cancelled", "{job:#}");

    // The row estimate has one time budget, however many sheets make the planner wait
    // (MariaDB runs derived tables to plan); a slow callback holds neither the request nor
    // a worker.
    let hook = StandIn::script("webhook.py", &[HOOK_SECRET]);
    let sheets: Vec<Value> = (0..3)
        .map(|i| json!({"name": format!("s{i}"), "sql": "SELECT * FROM (SELECT SLEEP(2) AS z) d"}))
        .collect();
    let body = json!({"data_source": "slowdb", "sheets": sheets,
        "callback": {"url": format!("http://127.0.0.1:{}/slow/x", hook.port), "secret": HOOK_SECRET}});
    let asked = Instant::now();
    let (s, b) = d.call_as(&editor, "POST", "/api/exports", Some(body)).await;
    assert_eq!(s, 202, "{b}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    let slow = b["id"].as_i64().unwrap();
    let (s, b) = d
        .call_as(
            &editor,
            "POST",
            "/api/exports",
            Some(slow_job("job_cancel_e", &hook)),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let queued = b["id"].as_i64().unwrap();
    let asked = Instant::now();
    let (s, b) = d
        .call_as(
            &editor,
            "POST",
            &format!("/api/exports/{queued}/cancel"),
            None,
        )
        .await;
    assert_eq!((s, b["status"].as_str()), (202, Some("cancelled")), "{b}");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "the callback (5 s) is sent in the background"
    );
    let calls = wait_for(|| hook.requests(), 1).await;
    assert_eq!(calls[0]["body"]["job"]["id"], queued);
    assert_eq!(calls[0]["body"]["job"]["status"], "cancelled");
    d.call_as(
        &editor,
        "POST",
        &format!("/api/exports/{slow}/cancel"),
        None,
    )
    .await;
}

/// A job of `SELECT SLEEP(30)` (marked) with a callback to `hook`'s slow path.
fn slow_job(marker: &str, hook: &StandIn) -> Value {
    json!({"data_source": "slowdb", "sql": format!("SELECT SLEEP(30) AS {marker}"),
        "callback": {"url": format!("http://127.0.0.1:{}/slow/{marker}", hook.port), "secret": HOOK_SECRET}})
}

#[tokio::test]
async fn a_done_job_expires_and_its_links_answer_410() {
    let d = Daemon::start_full(Backend::Sqlite, "", "", "  download_expiry: 2\n").await;
    let (s, b) = d
        .call(
            "POST",
            "/api/exports",
            Some(json!({"data_source": "demo", "sql": "SELECT * FROM orders"})),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let id = b["id"].as_i64().unwrap();
    let job = until_not(&d, id, &["queued", "running"], Duration::from_secs(30)).await;
    assert_eq!(job["status"], "done", "{job:#}");
    let link = job["files"][0]["link"].as_str().unwrap().to_string();
    let url = job["files"][0]["url"].as_str().unwrap().to_string();
    let dir = d.dir.path().join(format!("exports/exports/{id}"));
    assert!(dir.is_dir());
    let job = until_not(&d, id, &["done"], Duration::from_secs(20)).await;
    assert_eq!(job["status"], "expired", "{job:#}");
    assert!(!dir.exists(), "the files are removed");
    assert_eq!(fetch(&d, &url, Some(TOKEN)).await.0, 410);
    assert_eq!(fetch(&d, &link, None).await.0, 410);
}

#[tokio::test]
async fn a_job_running_when_the_daemon_is_killed_runs_again_once_after_the_restart() {
    let mut d = Daemon::start(Backend::Sqlite, &slowdb()).await;
    let (s, b) = d
        .call("POST", "/api/exports", Some(json!({"data_source": "slowdb", "sql": "SELECT SLEEP(3) AS job_restart_marker, 1 AS n"})))
        .await;
    assert_eq!(s, 202, "{b}");
    let id = b["id"].as_i64().unwrap();
    let started = Instant::now();
    let first = loop {
        let (_, job) = d.call("GET", &format!("/api/exports/{id}"), None).await;
        if job["execution_id"].is_i64() {
            break job;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{job:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(first["status"], "running");
    d.crash_and_restart().await;
    let job = until_not(&d, id, &["queued", "running"], Duration::from_secs(30)).await;
    assert_eq!(job["status"], "done", "{job:#}");
    assert_eq!(job["attempts"], 2, "{job:#}");
    assert_eq!(job["rows"], 1);
    let (_, first_run) = d
        .call("GET", &format!("/api/logs/{}", first["execution_id"]), None)
        .await;
    assert_eq!(first_run["status"], "interrupted", "{first_run:#}");

    // Interrupted twice: failed, and its callback says so.
    let hook = StandIn::script("webhook.py", &[HOOK_SECRET]);
    let body = json!({"data_source": "slowdb", "sql": "SELECT SLEEP(30) AS job_restart_twice",
        "callback": {"url": format!("http://127.0.0.1:{}/ok/twice", hook.port), "secret": HOOK_SECRET}});
    let (s, b) = d.call("POST", "/api/exports", Some(body)).await;
    assert_eq!(s, 202, "{b}");
    let id = b["id"].as_i64().unwrap();
    for attempt in 1..=2 {
        let started = Instant::now();
        loop {
            let (_, job) = d.call("GET", &format!("/api/exports/{id}"), None).await;
            if job["attempts"] == attempt && job["execution_id"].is_i64() {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(15), "{job:#}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        d.crash_and_restart().await;
    }
    let job = until_not(&d, id, &["queued", "running"], Duration::from_secs(15)).await;
    assert_eq!(job["status"], "failed", "{job:#}");
    assert!(
        job["error"].as_str().unwrap().contains("interrupted twice"),
        "{job:#}"
    );
    let calls = wait_for(|| hook.requests(), 1).await;
    assert_eq!(calls[0]["body"]["job"]["status"], "failed");

    // A graceful stop lets a running job finish within daemon.shutdown_timeout (2 s).
    let (s, b) = d
        .call(
            "POST",
            "/api/exports",
            Some(json!({"data_source": "slowdb", "sql": "SELECT SLEEP(1) AS job_graceful"})),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let id = b["id"].as_i64().unwrap();
    until_not(&d, id, &["queued"], Duration::from_secs(10)).await;
    d.stop_and_restart().await;
    let job = until_not(&d, id, &["queued", "running"], Duration::from_secs(10)).await;
    assert_eq!(
        (job["status"].as_str(), job["attempts"].as_i64()),
        (Some("done"), Some(1)),
        "{job:#}"
    );
}
