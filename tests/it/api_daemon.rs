//! A `reportd run` daemon on a scratch store for the API tests, with an HTTP client that
//! keeps every body it got (to look for leaked secrets).

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::helpers::{Backend, DEMO_SOURCE, FAST_CRON, ScratchStore, allow_loopback, free_port};

pub const TOKEN: &str = "t0k3n";

/// A `reportd run` on a scratch store, and an HTTP client that keeps every body it got.
pub struct Daemon {
    pub store: ScratchStore,
    pub dir: tempfile::TempDir,
    child: Child,
    pub base: String,
    pub http: reqwest::Client,
    pub seen: Mutex<String>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    pub async fn start(backend: Backend, extra: &str) -> Daemon {
        Daemon::start_with(backend, extra, "").await
    }

    /// As [`Daemon::start`], with more `http:` settings.
    pub async fn start_with(backend: Backend, extra: &str, http: &str) -> Daemon {
        Daemon::start_full(backend, extra, http, "").await
    }

    /// As [`Daemon::start_with`], with more `export:` settings; tasks may fire every second
    /// (`scheduler.min_interval: 1`).
    pub async fn start_full(backend: Backend, extra: &str, http: &str, export: &str) -> Daemon {
        Daemon::start_scheduled(backend, extra, http, export, FAST_CRON).await
    }

    /// As [`Daemon::start_full`], with `scheduler` settings besides `timezone: UTC` (the
    /// defaults for the rest when empty), each line indented by two spaces.
    pub async fn start_scheduled(
        backend: Backend,
        extra: &str,
        http: &str,
        export: &str,
        scheduler: &str,
    ) -> Daemon {
        let store = ScratchStore::new(backend);
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        std::fs::write(
            dir.path().join("config.yaml"),
            format!(
                "{}{DEMO_SOURCE}{}http:\n{http}  bind: 127.0.0.1:{port}\n  token: {TOKEN}\n  file_server_url: http://127.0.0.1:{port}\nexport:\n  output_dir: ./exports\n{export}scheduler:\n  timezone: UTC\n{scheduler}daemon:\n  shutdown_timeout: 2\n  pid_file: ./reportd.pid\n",
                store.yaml(),
                allow_loopback(extra)
            ),
        )
        .unwrap();
        let child = spawn(dir.path());
        let d = Daemon {
            store,
            dir,
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            seen: Mutex::new(String::new()),
        };
        d.healthy().await;
        d
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `/health` answers 200.
    async fn healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = self.http.get(format!("{}/health", self.base)).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(Instant::now() < deadline, "the daemon never became healthy");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the daemon (SIGKILL: no shutdown at all) and starts it again on the same
    /// directory and store.
    pub async fn crash_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(self.dir.path());
        self.healthy().await;
    }

    /// Stops the daemon with SIGTERM (a graceful stop, waited for) and starts it again.
    pub async fn stop_and_restart(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let _ = self.child.wait();
        self.child = spawn(self.dir.path());
        self.healthy().await;
    }

    /// `reportd --config config.yaml ARGS` in the daemon's directory, with `stdin`.
    pub fn cli(&self, args: &[&str], stdin: &str) -> String {
        let out = assert_cmd::Command::cargo_bin("reportd")
            .unwrap()
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .arg("--config")
            .arg("config.yaml")
            .args(args)
            .write_stdin(stdin.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "reportd {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A request with `token` (default: the admin `http.token`); the status and JSON body.
    pub async fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        self.seen.lock().unwrap().push_str(&text);
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
        };
        (status, value)
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(TOKEN, method, path, body).await
    }

    /// A login token for a new account of `role`.
    pub async fn login(&self, name: &str, role: &str) -> String {
        self.cli(
            &["user", "add", name, "--role", role, "--password-stdin"],
            "password123\n",
        );
        let (s, b) = self
            .call(
                "POST",
                "/api/auth/login",
                Some(json!({"username": name, "password": "password123"})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        b["token"].as_str().unwrap().to_string()
    }

    /// GETs `path` until its `status` is none of `passing`, within `within`: the last body.
    pub async fn until_not(&self, path: &str, passing: &[&str], within: Duration) -> Value {
        let started = Instant::now();
        loop {
            let (s, body) = self.call("GET", path, None).await;
            assert_eq!(s, 200, "{path}: {body}");
            if !passing.contains(&body["status"].as_str().unwrap_or_default()) {
                return body;
            }
            assert!(
                started.elapsed() < within,
                "{path} still {}: {body:#}",
                body["status"]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The store as a URL for [`exec`].
    pub fn store_url(&self) -> String {
        match self.store.backend {
            Backend::Sqlite => format!(
                "sqlite://{}",
                self.dir.path().join("data/system.db").display()
            ),
            _ => self.store.url.clone(),
        }
    }
}

/// `reportd --config config.yaml run` in `dir`.
fn spawn(dir: &std::path::Path) -> Child {
    Command::new(assert_cmd::cargo::cargo_bin("reportd"))
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .args(["--config", "config.yaml", "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}
