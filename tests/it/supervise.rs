//! The supervisor and the daemon's HTTP server, driven as an operator would: `reportd start`
//! → `status` (exit 0, the PID) → a second `start` is refused → `kill -9` → `monitor`
//! restarts it → `stop` → `status` exits 3; `/health`, `/status` and `/metrics` answer;
//! `POST /tasks/{id}/run` is 401 without the token and runs the task with it. Also: a daemon
//! that cannot start makes `start` fail with its log; a public bind without a token is
//! refused; under systemd the daemon sends READY=1, WATCHDOG=1 and STOPPING=1 on
//! `$NOTIFY_SOCKET` and writes journal-style lines.

use serde_json::Value;
use std::io::Read as _;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{Backend, DEMO_SOURCE, StopAtEnd, Workdir, free_port};

const TOKEN: &str = "s3cret-run-token";

/// A directory whose daemon listens on a port of its own, logs to `logs/reportd.log` and has
/// the task `orders` (which only runs when asked: its cron fires on 1 January).
fn supervised_dir() -> (Workdir, u16) {
    let port = free_port();
    let w = Workdir::new(
        Backend::Sqlite,
        &format!(
            "{DEMO_SOURCE}http:\n  bind: 127.0.0.1:{port}\n  token: {TOKEN}\nlogging:\n  file: logs/reportd.log\ndaemon:\n  shutdown_timeout: 2\n"
        ),
    );
    w.write("t.yaml", "tasks:\n  - name: orders\n    data_source: demo\n    cron: \"0 0 1 1 *\"\n    sql: SELECT id, city FROM orders ORDER BY id LIMIT 7\n");
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    (w, port)
}

fn run(w: &Workdir, args: &[&str]) -> (i32, String, String) {
    let out = w.cmd(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `reportd --config config.yaml ARGS` in `w`, as a process to spawn.
fn reportd(w: &Workdir, args: &[&str]) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("reportd"));
    c.current_dir(w.path())
        .env_remove("REPORTD_CONFIG")
        .env_remove("RUST_LOG")
        .args(["--config", "config.yaml"])
        .args(args);
    c
}

fn status_json(w: &Workdir) -> (i32, Value) {
    let (code, out, err) = run(w, &["status", "--json"]);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, v)
}

/// Waits up to `secs` for `pred` on `status --json`.
fn wait_status(w: &Workdir, secs: u64, what: &str, pred: impl Fn(i32, &Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let (code, v) = status_json(w);
        if pred(code, &v) {
            return v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}: exit {code}, {v:#}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn kill(pid: u64, sig: &str) {
    assert!(
        Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn start_status_monitor_stop_and_the_http_endpoints() {
    let (w, port) = supervised_dir();
    let _cleanup = StopAtEnd(&w);
    let base = format!("http://127.0.0.1:{port}");

    let (code, out, err) = run(&w, &["start"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("reportd started (PID"), "{out}");
    let (code, text, _) = run(&w, &["status"]);
    assert_eq!(code, 0, "{text}");
    let (_, v) = status_json(&w);
    let pid = v["pid"].as_u64().unwrap();
    assert!(
        text.contains(&format!("running (PID {pid}), healthy")),
        "{text}"
    );
    assert!(text.contains("logs/reportd.log"), "{text}");
    assert!(!text.contains(TOKEN) && !v.to_string().contains(TOKEN));
    assert_eq!(v["healthy"], true, "{v:#}");
    assert!(v["process"]["memory_bytes"].as_u64().unwrap() > 0);
    assert_eq!(v["daemon"]["tasks"]["total"], 1);
    assert_eq!(v["daemon"]["scheduler"]["scheduled_tasks"], 1);
    assert_eq!(v["daemon"]["data_sources"], 1);
    assert_eq!(v["daemon"]["next_fires"][0]["task"], "orders");

    // A second start is refused and names the running daemon.
    let (code, _, err) = run(&w, &["start"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("already running (PID {pid}")),
        "{err}"
    );

    // The endpoints.
    let http = reqwest::Client::new();
    let get_json = |path: &str| {
        let request = http.get(format!("{base}{path}")).send();
        async { request.await.unwrap().json::<Value>().await.unwrap() }
    };
    let health = get_json("/health").await;
    assert_eq!(health["healthy"], true);
    assert_eq!(health["pid"], pid);
    let run_url = format!("{base}/tasks/orders/run?wait=true");
    let r = http.post(&run_url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(&run_url)
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{base}/tasks/nosuch/run"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http.post(&run_url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ran: Value = r.json().await.unwrap();
    assert_eq!(ran["run"]["status"], "success", "{ran:#}");
    assert_eq!(ran["run"]["rows"], 7);
    let file = w.path().join(ran["run"]["files"][0].as_str().unwrap());
    assert!(file.exists(), "{}", file.display());
    let logs: Value = serde_json::from_str(&w.ok(&["logs", "--json"])).unwrap();
    assert_eq!(logs[0]["trigger"], "manual");
    assert_eq!(logs[0]["id"], ran["run"]["execution_id"]);

    let status = get_json("/status").await;
    assert_eq!(status["last_24h"]["success_rate"], "1/1", "{status:#}");
    assert_eq!(status["active_executions"], 0);
    assert!(status["uptime_seconds"].as_i64().unwrap() >= 0);
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "reportd_up 1",
        "reportd_executions_total{task=\"orders\",status=\"success\"} 1",
        "reportd_rows_exported_total{task=\"orders\"} 7",
        "reportd_execution_duration_seconds_count{task=\"orders\"} 1",
        "reportd_next_fire_timestamp_seconds{task=\"orders\"} ",
        "reportd_scheduled_tasks 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }

    // kill -9: status says not running; the monitor starts a new daemon.
    kill(pid, "-KILL");
    wait_status(&w, 10, "the killed daemon to be seen gone", |code, _| {
        code == 3
    });
    let monitor_log = w.path().join("monitor.log");
    let mut monitor = reportd(&w, &["monitor", "--interval", "1"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&monitor_log).unwrap())
        .spawn()
        .unwrap();
    let v = wait_status(&w, 30, "the monitor to restart the daemon", |code, v| {
        code == 0 && v["pid"].as_u64().is_some_and(|p| p != pid)
    });
    let new_pid = v["pid"].as_u64().unwrap();
    kill(u64::from(monitor.id()), "-TERM");
    let _ = monitor.wait();
    let said = std::fs::read_to_string(&monitor_log).unwrap();
    assert!(
        said.contains("reportd is not running") && said.contains("restarting reportd"),
        "{said}"
    );
    assert!(said.contains("reportd restarted"), "{said}");

    // The restarted daemon survives its monitor (its own session) until stopped.
    let (code, out, err) = run(&w, &["stop"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("reportd stopped (PID {new_pid})")),
        "{out}"
    );
    assert!(!w.path().join("reportd.pid").exists());
    let (code, out, _) = run(&w, &["status"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("not running"), "{out}");
    let (code, out, _) = run(&w, &["stop"]);
    assert_eq!(code, 0);
    assert!(out.contains("not running"), "{out}");
    // The daemon's log has one line per execution.
    let log = std::fs::read_to_string(w.path().join("logs/reportd.log")).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("run finished"))
        .expect("a run line");
    for part in [
        "task=orders",
        "status=success",
        "rows=7",
        "bytes=",
        "seconds=",
        "files=",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
}

#[test]
fn start_fails_with_the_daemons_own_words() {
    // Another program has the port: the daemon cannot listen and exits at once.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let w = Workdir::new(
        Backend::Sqlite,
        &format!("{DEMO_SOURCE}http:\n  bind: 127.0.0.1:{port}\n"),
    );
    let err = w.fails(&["start"], 1);
    assert!(err.contains("exited during start"), "{err}");
    assert!(err.contains("last lines of"), "{err}");
    assert!(
        err.contains(&format!("http.bind 127.0.0.1:{port}: cannot listen")),
        "{err}"
    );
    let (code, ..) = run(&w, &["status"]);
    assert_eq!(code, 3);
    drop(taken);
}

#[test]
fn a_public_bind_needs_a_token() {
    let w = Workdir::new(
        Backend::Sqlite,
        &format!("{DEMO_SOURCE}http:\n  bind: 0.0.0.0:{}\n", free_port()),
    );
    let err = w.fails(&["run"], 1);
    assert!(
        err.contains("http.bind") && err.contains("http.token"),
        "{err}"
    );
}

#[test]
fn under_systemd_it_notifies_ready_watchdog_and_stopping_and_logs_for_the_journal() {
    use std::os::unix::fs::MetadataExt as _;
    let w = Workdir::new(Backend::Sqlite, DEMO_SOURCE);
    let socket_path = w.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let stderr_path = w.path().join("journal.txt");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let meta = stderr.metadata().unwrap();
    let mut daemon: Child = reportd(&w, &["run"])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "1000000")
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let recv = || {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let first = recv();
    assert!(first.lines().any(|l| l == "READY=1"), "{first}");
    assert!(
        first.contains(&format!("MAINPID={}", daemon.id())),
        "{first}"
    );
    // Pings every half second while the loop answers.
    let started = Instant::now();
    let mut pings = 0;
    while pings < 2 {
        if recv() == "WATCHDOG=1" {
            pings += 1;
        }
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    kill(u64::from(daemon.id()), "-TERM");
    let mut last = String::new();
    while last != "STOPPING=1" {
        last = recv();
    }
    assert!(daemon.wait().unwrap().success());
    let mut text = String::new();
    std::fs::File::open(&stderr_path)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("<6>") && l.contains("scheduler started")),
        "{text}"
    );
    assert!(
        text.lines().all(|l| l.starts_with('<')),
        "every line has a priority, and no timestamp first: {text}"
    );
}
