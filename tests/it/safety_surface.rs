//! The HTTP surface under an attacker (issue 24, class 4 and the HTTP items of class 7),
//! against the real daemon: logins throttled per (name, address) and per address, so guesses
//! from 127.0.0.2 never refuse the right password from 127.0.0.3; `X-Forwarded-For` believed
//! from `http.trusted_proxies` only; the per-address connection cap; `/status` and `/metrics`
//! behind a login with `http.public_status: false` (and `reportd status` still working with
//! the token); the `Host` check (421); `Secure` cookies; `nosniff`/`no-store` on API answers;
//! object-only JSON bodies; a lower-case `bearer`; an empty user change refused and not
//! audited; a megabyte value never echoed back.

use reqwest::header::{CACHE_CONTROL, SET_COOKIE, X_CONTENT_TYPE_OPTIONS};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt as _;

use crate::helpers::{Backend, DEMO_SOURCE, Workdir, free_port};

const PASSWORD: &str = "correct-horse-9";
const TOKEN: &str = "t0k3n";

/// A daemon on SQLite with an admin `ann` and a viewer `vic`, killed at the end.
struct Daemon {
    w: Workdir,
    child: Child,
    port: u16,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Starts a daemon with `http_extra` (indented keys) under `http:`.
    async fn start(http_extra: &str) -> Daemon {
        let port = free_port();
        let w = Workdir::new(
            Backend::Sqlite,
            &format!(
                "{DEMO_SOURCE}http:\n  bind: 127.0.0.1:{port}\n  token: {TOKEN}\n{http_extra}"
            ),
        );
        for (name, role) in [("ann", "admin"), ("vic", "viewer")] {
            let out = w
                .cmd(&["user", "add", name, "--role", role, "--password-stdin"])
                .write_stdin(format!("{PASSWORD}\n"))
                .output()
                .unwrap();
            assert!(out.status.success(), "user add {name}");
        }
        let child = Command::new(assert_cmd::cargo::cargo_bin("reportd"))
            .current_dir(w.path())
            .args(["--config", "config.yaml", "run"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let d = Daemon { w, child, port };
        let http = d.from("127.0.0.1");
        let started = Instant::now();
        while http.get(d.url("/health")).send().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no HTTP server"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        d
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A client whose connections come from `address` (any of 127/8 reaches loopback).
    fn from(&self, address: &str) -> Client {
        Client::builder()
            .local_address(address.parse::<IpAddr>().unwrap())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    }

    /// A login of `name` from `client` (with `X-Forwarded-For: xff` when given): the status.
    async fn login(&self, client: &Client, name: &str, password: &str, xff: Option<&str>) -> u16 {
        let mut req = client
            .post(self.url("/api/auth/login"))
            .json(&json!({ "username": name, "password": password }));
        if let Some(x) = xff {
            req = req.header("x-forwarded-for", x);
        }
        req.send().await.unwrap().status().as_u16()
    }

    /// `method path` as `http.token` with a raw JSON body: status and body.
    async fn call(&self, method: Method, path: &str, body: Option<&str>) -> (StatusCode, Value) {
        let mut req = self
            .from("127.0.0.1")
            .request(method, self.url(path))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_from_one_address_never_refuse_the_right_password_from_another() {
    let d = Daemon::start("").await;
    let (two, three) = (d.from("127.0.0.2"), d.from("127.0.0.3"));
    for _ in 0..5 {
        assert_eq!(d.login(&two, "ann", "wrong-password", None).await, 401);
    }
    // This name from this address is throttled, even with the right password...
    assert_eq!(d.login(&two, "ann", "wrong-password", None).await, 429);
    assert_eq!(d.login(&two, "ann", PASSWORD, None).await, 429);
    // ...but the owner elsewhere logs in.
    assert_eq!(d.login(&three, "ann", PASSWORD, None).await, 200);

    // Twenty failures for many names from .2 (five above) block .2, not .3.
    for i in 0..15 {
        assert_eq!(d.login(&two, &format!("u{i}"), "wrong-pw", None).await, 401);
    }
    assert_eq!(d.login(&two, "u99", "wrong-pw", None).await, 429);
    assert_eq!(d.login(&two, "vic", PASSWORD, None).await, 429);
    assert_eq!(d.login(&three, "vic", "wrong-pw", None).await, 401);
    assert_eq!(d.login(&three, "vic", PASSWORD, None).await, 200);
    assert_eq!(d.login(&three, "ann", PASSWORD, None).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_believed_from_trusted_proxies_only() {
    let d = Daemon::start("  trusted_proxies: [127.0.0.1/32]\n").await;
    let proxy = d.from("127.0.0.1");
    for _ in 0..5 {
        let s = d
            .login(&proxy, "ann", "wrong-pw", Some("10.9.9.9, 10.0.0.1"))
            .await;
        assert_eq!(s, 401);
    }
    assert_eq!(
        d.login(&proxy, "ann", PASSWORD, Some("10.0.0.1")).await,
        429
    );
    // Another client behind the same proxy is counted apart; what it claims left of the
    // proxy's entry is not believed (the same 10.0.0.1 stays throttled).
    assert_eq!(
        d.login(&proxy, "ann", PASSWORD, Some("10.0.0.2")).await,
        200
    );
    assert_eq!(
        d.login(&proxy, "ann", PASSWORD, Some("10.0.0.2, 10.0.0.1"))
            .await,
        429
    );
    // A peer that is no trusted proxy cannot pick its address.
    let other = d.from("127.0.0.2");
    for i in 0..5 {
        let xff = format!("10.1.0.{i}");
        assert_eq!(d.login(&other, "ann", "wrong-pw", Some(&xff)).await, 401);
    }
    assert_eq!(
        d.login(&other, "ann", PASSWORD, Some("10.1.0.99")).await,
        429
    );
    // The audit log records the client the proxy names.
    let r = proxy
        .post(d.url("/api/users"))
        .bearer_auth(TOKEN)
        .header("x-forwarded-for", "10.0.0.7")
        .json(&json!({ "name": "zed", "role": "viewer", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (_, audit) = d.call(Method::GET, "/api/audit?limit=100", None).await;
    let add = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "user.add" && e["via"] == "api")
        .cloned()
        .unwrap_or_else(|| panic!("no user.add in {audit}"));
    assert_eq!(add["address"], "10.0.0.7", "{add}");
    drop(d);

    // Without trusted proxies the header is ignored: every "client" is the peer.
    let d = Daemon::start("").await;
    let proxy = d.from("127.0.0.1");
    for i in 0..5 {
        let xff = format!("10.0.0.{i}");
        assert_eq!(d.login(&proxy, "ann", "wrong-pw", Some(&xff)).await, 401);
    }
    assert_eq!(
        d.login(&proxy, "ann", PASSWORD, Some("10.0.0.50")).await,
        429
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_at_most_its_share_of_connections() {
    let d = Daemon::start("").await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", d.port).parse().unwrap();
    let mut idle = Vec::new();
    for _ in 0..40 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        idle.push(socket.connect(addr).await.unwrap());
    }
    let asked = Instant::now();
    let r = d
        .from("127.0.0.3")
        .get(d.url("/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );

    // The first 32 stay open; the 33rd and later were closed at once.
    let mut closed = Vec::new();
    for (i, s) in idle.iter_mut().enumerate() {
        let mut buf = [0u8; 16];
        let wait = Duration::from_millis(if i < 32 { 50 } else { 2000 });
        let shut = match tokio::time::timeout(wait, s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => true,
            Ok(Ok(_)) | Err(_) => false,
        };
        if shut {
            closed.push(i);
        }
    }
    assert_eq!(closed, (32..40).collect::<Vec<_>>());
    // Closing some gives their places back.
    idle.truncate(20);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut again = socket.connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let still_open = tokio::time::timeout(Duration::from_millis(500), again.read(&mut buf))
        .await
        .is_err();
    assert!(still_open, "a connection after others closed is served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_metrics_need_a_login_when_not_public() {
    let d = Daemon::start("  public_status: false\n").await;
    let http = d.from("127.0.0.1");
    for path in ["/status", "/metrics"] {
        let r = http.get(d.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let r = http
            .get(d.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let r = http
            .get(d.url(path))
            .header("authorization", format!("bearer {TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path} with a lower-case scheme");
    }
    assert_eq!(
        http.get(d.url("/health")).send().await.unwrap().status(),
        200
    );
    // A viewer's login opens it too.
    let login: Value = http
        .post(d.url("/api/auth/login"))
        .json(&json!({ "username": "vic", "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap();
    let r = http
        .get(d.url("/status"))
        .header("authorization", format!("BEARER {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // `reportd status` sends http.token.
    let out = d.w.cmd(&["status", "--json"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("uptime_seconds"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_hosts_get_421() {
    let d = Daemon::start("  allowed_hosts: [Reports.Example.com]\n").await;
    let http = d.from("127.0.0.1");
    let status_for = |host: String, path: &'static str| {
        let req = http
            .get(d.url(path))
            .header("host", host)
            .bearer_auth(TOKEN);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let port = d.port;
    assert_eq!(status_for("evil.example".into(), "/status").await, 421);
    assert_eq!(
        status_for(format!("evil.example:{port}"), "/api/auth/me").await,
        421
    );
    assert_eq!(
        status_for(format!("localhost.evil.example:{port}"), "/").await,
        421
    );
    assert_eq!(
        status_for(format!("localhost:{port}"), "/status").await,
        200
    );
    assert_eq!(
        status_for(format!("LOCALHOST:{port}"), "/api/auth/me").await,
        200
    );
    assert_eq!(
        status_for(format!("127.0.0.1:{port}"), "/status").await,
        200
    );
    assert_eq!(status_for(format!("[::1]:{port}"), "/status").await, 200);
    assert_eq!(
        status_for("reports.example.com".into(), "/status").await,
        200
    );
    // /health answers whatever the name (load balancers).
    assert_eq!(status_for("evil.example".into(), "/health").await, 200);
    // The API's document says so.
    let doc: Value = http
        .get(d.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                op["responses"].get("421").is_some(),
                "{method} {path} does not list 421"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_secure_when_asked_and_api_answers_are_not_sniffed_or_cached() {
    let d =
        Daemon::start("  secure_cookies: true\n  file_server_url: http://files.example/\n").await;
    let http = d.from("127.0.0.1");
    let r = http
        .post(d.url("/api/auth/login"))
        .json(&json!({ "username": "ann", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookies: Vec<String> = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(cookies.len() >= 2, "{cookies:?}");
    assert!(
        cookies.iter().all(|c| c.ends_with("; Secure")),
        "{cookies:?}"
    );
    for (path, token) in [
        ("/api/auth/me", Some(TOKEN)),
        ("/api/auth/me", None),
        ("/api/tasks", Some(TOKEN)),
        ("/api/nothing-here", Some(TOKEN)),
        ("/api/openapi.json", None),
        ("/files/out/report.xlsx?expires=1&sig=forged", None),
    ] {
        let mut req = http.get(d.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let h = r.headers();
        assert_eq!(h.get(X_CONTENT_TYPE_OPTIONS).unwrap(), "nosniff", "{path}");
        assert_eq!(h.get(CACHE_CONTROL).unwrap(), "no-store", "{path}");
    }
    // The host of http.file_server_url is this server's too.
    let r = http
        .get(d.url("/status"))
        .header("host", "FILES.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(d);
    let d = Daemon::start("").await;
    let r = d
        .from("127.0.0.1")
        .post(d.url("/api/auth/login"))
        .json(&json!({ "username": "ann", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()
            .get_all(SET_COOKIE)
            .iter()
            .all(|c| !c.to_str().unwrap().contains("Secure"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_objects_and_empty_changes_are_refused_unaudited() {
    let d = Daemon::start("").await;
    let role_of = |users: &Value, name: &str| {
        users["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == name)
            .map(|u| u["role"].clone())
    };
    let (s, b) = d
        .call(Method::PUT, "/api/users/vic", Some(r#"["admin", null]"#))
        .await;
    assert_eq!(s, 422, "{b}");
    let (_, users) = d.call(Method::GET, "/api/users", None).await;
    assert_eq!(role_of(&users, "vic"), Some(json!("viewer")), "{users}");
    for body in ["{}", r#"{"role": "viewer"}"#, r#"{"role": null}"#] {
        let (s, b) = d.call(Method::PUT, "/api/users/vic", Some(body)).await;
        assert_eq!(s, 422, "{body}: {b}");
    }
    let (_, audit) = d.call(Method::GET, "/api/audit?limit=100", None).await;
    assert!(
        !audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "user.update"),
        "{audit}"
    );
    // A real change still works and is audited.
    let (s, b) = d
        .call(Method::PUT, "/api/users/vic", Some(r#"{"role": "editor"}"#))
        .await;
    assert_eq!(s, 204, "{b}");
    let (_, audit) = d.call(Method::GET, "/api/audit?limit=100", None).await;
    assert!(audit.to_string().contains("user.update"), "{audit}");

    // A data source replaced by itself: answered, neither written nor audited.
    let source = json!({"name": "wh", "type": "mysql", "host": "127.0.0.1", "port": 3306,
        "database": "nowhere", "username": "reader", "password": "pw-1"});
    let (s, b) = d
        .call(Method::POST, "/api/data-sources", Some(&source.to_string()))
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = d
        .call(
            Method::PUT,
            "/api/data-sources/wh",
            Some(&source.to_string()),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let updates = |audit: &Value| {
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "datasource.update")
            .count()
    };
    let (_, audit) = d.call(Method::GET, "/api/audit?limit=100", None).await;
    assert_eq!(updates(&audit), 0, "{audit}");
    let mut changed = source.clone();
    changed["port"] = json!(3307);
    let (s, b) = d
        .call(
            Method::PUT,
            "/api/data-sources/wh",
            Some(&changed.to_string()),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (_, audit) = d.call(Method::GET, "/api/audit?limit=100", None).await;
    assert_eq!(updates(&audit), 1, "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_quote_at_most_a_hundred_characters_of_a_value() {
    let d = Daemon::start("").await;
    let zone = "Z".repeat(1_000_000);
    let body = json!({ "cron": "0 8 * * *", "timezone": zone }).to_string();
    let (s, b) = d.call(Method::POST, "/api/cron/next", Some(&body)).await;
    assert_eq!(
        s,
        422,
        "{}",
        b.to_string().chars().take(300).collect::<String>()
    );
    let error = b["error"].as_str().unwrap();
    assert!(error.len() < 300, "{} characters", error.len());
    assert!(error.contains(&format!("{}…", "Z".repeat(100))), "{error}");
    assert!(!error.contains(&"Z".repeat(101)), "{error}");
    // A task with the same zone, and an unknown field of that length.
    let task = json!({ "name": "tz", "data_source": "demo", "sql": "SELECT 1",
        "cron": "0 8 * * *", "timezone": zone })
    .to_string();
    let (s, b) = d.call(Method::POST, "/api/tasks", Some(&task)).await;
    assert_eq!(s, 422);
    assert!(
        b.to_string().len() < 600,
        "{} characters",
        b.to_string().len()
    );
    let field = format!(r#"{{"{}": 1}}"#, "k".repeat(500_000));
    let (s, b) = d.call(Method::PUT, "/api/users/vic", Some(&field)).await;
    assert_eq!(s, 422);
    assert!(b.to_string().len() < 600, "{b}");
}

#[test]
fn the_new_http_keys_are_checked_at_load() {
    for (line, words) in [
        (
            "max_connections_per_address: 0",
            "http.max_connections_per_address: 0 is out of range; give 1 to 65536",
        ),
        (
            "trusted_proxies: [10.0.0.0/33]",
            "\"10.0.0.0/33\" is not a network",
        ),
        (
            "trusted_proxies: [proxy.lan]",
            "\"proxy.lan\" is not a network",
        ),
        (
            "allowed_hosts: [\"https://reports.example.com\"]",
            "is not a host name such as reports.example.com",
        ),
        ("allowed_hosts: [\"a.example:8080\"]", "is not a host name"),
        ("public_status: maybe", "public_status"),
    ] {
        let w = Workdir::new(Backend::Sqlite, &format!("{DEMO_SOURCE}http:\n  {line}\n"));
        let err = w.fails(&["check", "--no-connect"], 1);
        assert!(err.contains(words), "{line}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    let w = Workdir::new(
        Backend::Sqlite,
        &format!(
            "{DEMO_SOURCE}http:\n  trusted_proxies: [127.0.0.1, 10.0.0.0/8, \"fd00::/8\"]\n  allowed_hosts: [Reports.Example.com.]\n  public_status: false\n  secure_cookies: true\n  max_connections_per_address: 4\n"
        ),
    );
    w.ok(&["check", "--no-connect"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_for_line_with_non_utf8_bytes_is_never_the_proxy() {
    let d = Daemon::start("  trusted_proxies: [127.0.0.1/32]\n").await;
    let proxy = d.from("127.0.0.1");
    let login = |password: &'static str, xff: &'static [u8]| {
        proxy
            .post(d.url("/api/auth/login"))
            .header(
                "x-forwarded-for",
                reqwest::header::HeaderValue::from_bytes(xff).unwrap(),
            )
            .json(&json!({ "username": "ann", "password": password }))
            .send()
    };
    // The proxy merged the client's unreadable line with its own entry: that entry counts.
    for _ in 0..5 {
        let s = login("wrong-pw", b"\xff\xfe, 10.0.0.1").await.unwrap();
        assert_eq!(s.status(), 401);
    }
    assert_eq!(
        d.login(&proxy, "ann", PASSWORD, Some("10.0.0.1")).await,
        429
    );
    // An entry that cannot be read at all: one shared bucket, not the proxy's address.
    for _ in 0..5 {
        let s = login("wrong-pw", b"\xc3\xa9").await.unwrap();
        assert_eq!(s.status(), 401);
    }
    let s = login(PASSWORD, b"1.2.3.4, \xff").await.unwrap();
    assert_eq!(s.status(), 429);
    assert_eq!(d.login(&proxy, "ann", PASSWORD, None).await, 200);
    assert_eq!(
        d.login(&proxy, "ann", PASSWORD, Some("10.0.0.2")).await,
        200
    );
}
