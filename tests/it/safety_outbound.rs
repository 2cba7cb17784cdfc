//! SSRF: one outbound policy for every URL a task, an export job or a test message gives.
//! Loopback listeners that record every connection must receive nothing when a task's
//! webhook or DingTalk robot, a job's callback or `POST /api/notify/test` targets them in any
//! spelling (`127.0.0.1`, `localhost`, `[::1]`, `2130706433`, `0.0.0.0`, `127.1`, `0x7f.1`,
//! `[::ffff:127.0.0.1]`); the execution, the log and the test answer name the refusal; with
//! `security.outbound_allow` the same calls arrive. A test answer never carries the body.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api_daemon::Daemon;
use crate::helpers::{Backend, DEMO_SOURCE, Workdir};

/// What a trap answers: a body an internal service would not want shown.
const INSIDE: &str = "instance-secret-AKIA42";

/// A listener that counts connections and answers each request: 500 with [`INSIDE`] on a
/// path with `/fail`, else 200 with a DingTalk-like JSON body that carries [`INSIDE`] too.
struct Trap {
    port: u16,
    hits: Arc<AtomicUsize>,
    paths: Arc<Mutex<Vec<String>>>,
}

impl Trap {
    fn on(addr: &str) -> Option<Trap> {
        let listener = TcpListener::bind(addr).ok()?;
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let (h, p) = (hits.clone(), paths.clone());
        std::thread::spawn(move || {
            for sock in listener.incoming() {
                let Ok(mut sock) = sock else { continue };
                h.fetch_add(1, Ordering::SeqCst);
                let _ = sock.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 8192];
                let n = sock.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split(' ').nth(1).unwrap_or("").to_string();
                let (status, body) = if path.contains("/fail") {
                    ("500 Internal Server Error", format!("<h1>{INSIDE}</h1>"))
                } else {
                    (
                        "200 OK",
                        format!(r#"{{"errcode":0,"code":0,"errmsg":"ok","leak":"{INSIDE}"}}"#),
                    )
                };
                p.lock().unwrap().push(path);
                let _ = write!(
                    sock,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Some(Trap { port, hits, paths })
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// The hosts that all mean this machine, with the trap port for each, and whether
/// `outbound_allow: [127.0.0.1, "::1"]` lets it through.
fn spellings(v4: &Trap, v6: Option<&Trap>) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = [
        "127.0.0.1",
        "localhost",
        "2130706433",
        "127.1",
        "0x7f.1",
        "[::ffff:127.0.0.1]",
    ]
    .iter()
    .map(|h| (format!("{h}:{}", v4.port), true))
    .collect();
    // 0.0.0.0 reaches this host on Linux; it is not 127.0.0.1, so stays refused.
    out.push((format!("0.0.0.0:{}", v4.port), false));
    if let Some(v6) = v6 {
        out.push((format!("[::1]:{}", v6.port), true));
    }
    out
}

fn last_run(w: &Workdir, task: &str) -> Value {
    let runs: Vec<Value> =
        serde_json::from_str(&w.ok(&["logs", "--task", task, "--json"])).unwrap();
    runs[0].clone()
}

/// A task per spelling whose DingTalk robot and webhook are at `host`.
fn tasks(hosts: &[(String, bool)]) -> String {
    let mut out = String::from("tasks:\n");
    for (i, (host, _)) in hosts.iter().enumerate() {
        out.push_str(&format!(
            "  - name: t{i}\n    data_source: demo\n    cron: \"0 9 * * *\"\n    sql: SELECT 1 AS x\n    notify:\n      dingtalk: {{ webhook: \"http://{host}/robot/send?access_token=tok{i}secret\" }}\n      webhook: {{ url: \"http://{host}/hook?token=tok{i}secret\" }}\n"
        ));
    }
    out
}

/// Runs every task; returns the notification outcomes of each, as (channel, ok, error).
fn run_all(w: &Workdir, n: usize) -> Vec<Vec<(String, bool, String)>> {
    (0..n)
        .map(|i| {
            let task = format!("t{i}");
            let _ = w.cmd(&["task", "run", &task]).output().unwrap();
            let run = last_run(w, &task);
            run["notifications"]
                .as_array()
                .unwrap_or_else(|| panic!("{run:#}"))
                .iter()
                .map(|n| {
                    (
                        n["channel"].as_str().unwrap().to_string(),
                        n["ok"] == true,
                        n["error"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .collect()
}

#[test]
fn task_robots_and_webhooks_at_this_host_are_refused_in_every_spelling() {
    let v4 = Trap::on("127.0.0.1:0").unwrap();
    let v6 = Trap::on("[::1]:0");
    let hosts = spellings(&v4, v6.as_ref());
    let config =
        format!("{DEMO_SOURCE}security:\n  outbound_allow: []\nwebhook:\n  retry_delay: 0\n");
    let w = Workdir::new(Backend::Sqlite, &config);
    w.write("t.yaml", &tasks(&hosts));
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    for (i, outcomes) in run_all(&w, hosts.len()).iter().enumerate() {
        let host = &hosts[i].0;
        let name = host.rsplit_once(':').unwrap().0;
        assert_eq!(outcomes.len(), 2, "{host}: {outcomes:?}");
        for (channel, ok, error) in outcomes {
            let word = if channel == "dingtalk" {
                "DingTalk"
            } else {
                "webhook"
            };
            assert!(!ok, "{host} {channel}");
            assert!(
                error.starts_with(&format!("{word} host "))
                    && error.ends_with("; add it to security.outbound_allow to allow it")
                    && (error.contains("a loopback address")
                        || error.contains("an unspecified address")),
                "{host} {channel}: {error}"
            );
            assert!(
                !error.contains("secret") && !error.contains(INSIDE),
                "{error}"
            );
            if name == "localhost" {
                assert!(error.contains("host localhost resolves to "), "{error}");
            }
        }
    }
    assert_eq!(v4.hits(), 0, "{:?}", v4.paths.lock().unwrap());
    assert_eq!(v6.as_ref().map_or(0, Trap::hits), 0);

    // Allowed by the operator: the same calls arrive; 0.0.0.0 stays refused.
    let config = format!(
        "{DEMO_SOURCE}security:\n  outbound_allow: [127.0.0.1, \"::1\"]\nwebhook:\n  retry_delay: 0\n"
    );
    let w = Workdir::new(Backend::Sqlite, &config);
    w.write("t.yaml", &tasks(&hosts));
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let mut arrived = 0;
    for (i, outcomes) in run_all(&w, hosts.len()).iter().enumerate() {
        let (host, allowed) = &hosts[i];
        for (channel, ok, error) in outcomes {
            assert_eq!(ok, allowed, "{host} {channel}: {error}");
            arrived += usize::from(*ok);
        }
    }
    assert_eq!(v4.hits() + v6.as_ref().map_or(0, Trap::hits), arrived);
    assert_eq!(arrived, 2 * (hosts.len() - 1));
}

#[test]
fn a_task_that_inherits_the_configs_robot_is_trusted_and_errors_hide_the_answer() {
    let trap = Trap::on("127.0.0.1:0").unwrap();
    let config = format!(
        "{DEMO_SOURCE}security:\n  outbound_allow: []\ndingtalk:\n  webhook_url: \"http://127.0.0.1:{}/robot/send?access_token=cfgtok\"\nwebhook:\n  retry_delay: 0\n  max_attempts: 1\n",
        trap.port
    );
    let w = Workdir::new(Backend::Sqlite, &config);
    w.write(
        "t.yaml",
        &format!(
            "tasks:\n  - name: inherits\n    data_source: demo\n    cron: \"0 9 * * *\"\n    sql: SELECT 1 AS x\n    notify:\n      dingtalk: {{}}\n  - name: own\n    data_source: demo\n    cron: \"0 9 * * *\"\n    sql: SELECT 1 AS x\n    notify:\n      dingtalk: {{ webhook: \"http://127.0.0.1:{}/robot/send?access_token=owntok\" }}\n",
            trap.port
        ),
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    w.ok(&["task", "run", "inherits"]);
    let run = last_run(&w, "inherits");
    assert_eq!(run["notifications"][0]["ok"], true, "{run:#}");
    assert_eq!(trap.hits(), 1);
    let _ = w.cmd(&["task", "run", "own"]).output().unwrap();
    let run = last_run(&w, "own");
    let error = run["notifications"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("host 127.0.0.1 is a loopback address"),
        "{error}"
    );
    assert_eq!(trap.hits(), 1, "the task's own robot is checked");

    // Allowed: a task's failing receiver shows its status, not its answer.
    let config = format!(
        "{DEMO_SOURCE}security:\n  outbound_allow: [127.0.0.0/8]\nwebhook:\n  retry_delay: 0\n  max_attempts: 1\n"
    );
    let w = Workdir::new(Backend::Sqlite, &config);
    w.write(
        "t.yaml",
        &format!(
            "tasks:\n  - name: failing\n    data_source: demo\n    cron: \"0 9 * * *\"\n    sql: SELECT 1 AS x\n    notify:\n      webhook: {{ url: \"http://127.0.0.1:{}/fail\" }}\n",
            trap.port
        ),
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let _ = w.cmd(&["task", "run", "failing"]).output().unwrap();
    let run = last_run(&w, "failing");
    let error = run["notifications"][0]["error"].as_str().unwrap();
    assert_eq!(
        error, "webhook answered HTTP 500: (answer not shown)",
        "{run:#}"
    );
    assert_eq!(trap.hits(), 2);
}

/// The last line of `file` holding every one of `want`, waiting up to 20 s for it.
async fn log_line(file: &std::path::Path, want: &[&str]) -> Option<String> {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let line = text.lines().rfind(|l| want.iter().all(|w| l.contains(w)));
        if line.is_some() || started.elapsed() > Duration::from_secs(20) {
            return line.map(String::from);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn job_with_callback(d: &Daemon, editor: &str, url: &str) -> i64 {
    let body = json!({"data_source": "demo", "format": "csv", "sql": "SELECT 1 AS x",
        "callback": {"url": url, "secret": "cb-secret"}});
    let (s, b) = d.call_as(editor, "POST", "/api/exports", Some(body)).await;
    assert_eq!(s, 202, "{b}");
    b["id"].as_i64().unwrap()
}

#[tokio::test]
async fn job_callbacks_and_test_messages_at_this_host_are_refused() {
    let trap = Trap::on("127.0.0.1:0").unwrap();
    let d = Daemon::start(
        Backend::Sqlite,
        "logging:\n  file: ./reportd.log\nsecurity:\n  outbound_allow: []\nwebhook:\n  retry_delay: 0\n  max_attempts: 1\n",
    )
    .await;
    let log = d.dir.path().join("reportd.log");
    let editor = d.login("ed", "editor").await;
    for host in ["127.0.0.1", "localhost", "2130706433", "[::ffff:127.0.0.1]"] {
        let url = format!("http://{host}:{}/cb?token=cbtok", trap.port);
        let id = job_with_callback(&d, &editor, &url).await;
        let want = format!("job={id}");
        let line = log_line(&log, &["export job callback failed", &want])
            .await
            .unwrap_or_else(|| panic!("no refusal for {host} in the log"));
        assert!(
            line.contains("webhook host")
                && line.contains("a loopback address")
                && !line.contains("cbtok"),
            "{line}"
        );
    }

    // A test message to a task's robot at this host: refused, named, nothing arrives.
    let task = json!({"name": "probe", "data_source": "demo", "cron": "0 9 * * *", "sql": "SELECT 1 AS x",
        "notify": {"dingtalk": {"webhook": format!("http://127.1:{}/robot/send?access_token=tt", trap.port)},
                   "webhook": {"url": format!("http://localhost:{}/hook", trap.port)}}});
    let (s, b) = d.call_as(&editor, "POST", "/api/tasks", Some(task)).await;
    assert_eq!(s, 201, "{b}");
    for (channel, word) in [
        ("dingtalk", "DingTalk host 127.0.0.1 is a loopback address"),
        (
            "webhook",
            "webhook host localhost resolves to a loopback address",
        ),
    ] {
        let (s, b) = d
            .call_as(
                &editor,
                "POST",
                "/api/notify/test",
                Some(json!({"channel": channel, "task": "probe"})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["ok"], false, "{b}");
        let message = b["message"].as_str().unwrap();
        assert!(
            message.contains(word) && message.contains("security.outbound_allow"),
            "{message}"
        );
    }
    assert_eq!(trap.hits(), 0, "{:?}", trap.paths.lock().unwrap());
}

#[tokio::test]
async fn allowed_callbacks_and_test_messages_arrive_but_answers_stay_out() {
    let trap = Trap::on("127.0.0.1:0").unwrap();
    let d = Daemon::start(
        Backend::Sqlite,
        "logging:\n  file: ./reportd.log\nsecurity:\n  outbound_allow: [127.0.0.1]\nwebhook:\n  retry_delay: 0\n  max_attempts: 1\n",
    )
    .await;
    let editor = d.login("ed", "editor").await;
    job_with_callback(&d, &editor, &format!("http://2130706433:{}/cb", trap.port)).await;
    let started = Instant::now();
    while trap.hits() == 0 && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(trap.paths.lock().unwrap().as_slice(), ["/cb"]);

    let task = json!({"name": "probe", "data_source": "demo", "cron": "0 9 * * *", "sql": "SELECT 1 AS x",
        "notify": {"dingtalk": {"webhook": format!("http://127.0.0.1:{}/robot/send?access_token=tt", trap.port)},
                   "webhook": {"url": format!("http://127.0.0.1:{}/fail", trap.port)}}});
    let (s, b) = d.call_as(&editor, "POST", "/api/tasks", Some(task)).await;
    assert_eq!(s, 201, "{b}");
    let test = |channel: &'static str| {
        let (d, editor) = (&d, &editor);
        async move {
            let (s, b) = d
                .call_as(
                    editor,
                    "POST",
                    "/api/notify/test",
                    Some(json!({"channel": channel, "task": "probe"})),
                )
                .await;
            assert_eq!(s, 200, "{b}");
            b
        }
    };
    let b = test("dingtalk").await;
    assert_eq!(
        b["message"], "dingtalk: sent (attempts 1): errcode 0",
        "{b}"
    );
    let b = test("webhook").await;
    let message = b["message"].as_str().unwrap();
    assert!(
        message.contains("HTTP 500") && !message.contains(INSIDE),
        "{message}"
    );
    assert_eq!(trap.hits(), 3, "the callback, the robot, the webhook");
}

#[test]
fn a_bad_allow_entry_is_refused_at_load_named() {
    for (entry, why) in [
        ("10.0.0.1/8", "write 10.0.0.0/8"),
        (
            "http://hooks.corp/x",
            "not a host name, an address or a CIDR",
        ),
        ("*.corp", "not a host name, an address or a CIDR"),
    ] {
        let config =
            format!("{DEMO_SOURCE}security:\n  outbound_allow: [127.0.0.1, \"{entry}\"]\n");
        let w = Workdir::new(Backend::Sqlite, &config);
        let err = w.fails(&["check", "--no-connect"], 1);
        assert!(
            err.contains("security.outbound_allow")
                && err.contains(&format!("`{entry}`"))
                && err.contains(why),
            "{entry}: {err}"
        );
    }
}

#[test]
fn a_proxy_from_the_environment_does_not_carry_task_urls() {
    // The proxy would connect for us, past the check: a task's URL never goes through it.
    let proxy = Trap::on("127.0.0.1:0").unwrap();
    let config = format!(
        "{DEMO_SOURCE}security:\n  outbound_allow: []\nwebhook:\n  timeout: 2\n  retry_delay: 0\n  max_attempts: 1\n"
    );
    let w = Workdir::new(Backend::Sqlite, &config);
    w.write(
        "t.yaml",
        "tasks:\n  - name: public\n    data_source: demo\n    cron: \"0 9 * * *\"\n    sql: SELECT 1 AS x\n    notify:\n      webhook: { url: \"http://93.184.216.34/hook\" }\n",
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let url = format!("http://127.0.0.1:{}", proxy.port);
    let _ = w
        .cmd(&["task", "run", "public"])
        .env("HTTP_PROXY", &url)
        .env("http_proxy", &url)
        .env("ALL_PROXY", &url)
        .output()
        .unwrap();
    let run = last_run(&w, "public");
    assert_eq!(run["notifications"][0]["ok"], false, "{run:#}");
    assert_eq!(proxy.hits(), 0, "{:?}", proxy.paths.lock().unwrap());
}
