//! The REST API's doors, against the real daemon on each store backend: logins (token and
//! cookie), logout, API tokens, removed users, throttling, CSRF and cross-origin refusal, every
//! role on every route class, malformed requests, the audit log and the OpenAPI document.

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{Backend, DEMO_SOURCE, Workdir, free_port};

pub(crate) const PASSWORD: &str = "correct-horse-9";

/// A daemon with an admin, an editor and a viewer, stopped at the end.
pub(crate) struct Api {
    pub(crate) w: Workdir,
    daemon: Child,
    pub(crate) base: String,
    pub(crate) http: Client,
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

fn add_user(w: &Workdir, name: &str, role: &str) {
    let out = w
        .cmd(&["user", "add", name, "--role", role, "--password-stdin"])
        .write_stdin(format!("{PASSWORD}\n"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "user add {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Api {
    pub(crate) async fn start(backend: Backend, extra: &str) -> Api {
        let port = free_port();
        let w = Workdir::new(
            backend,
            &format!("{DEMO_SOURCE}{extra}http:\n  bind: 127.0.0.1:{port}\n  token: t0k3n\n"),
        );
        for (name, role) in [("ann", "admin"), ("ed", "editor"), ("vic", "viewer")] {
            add_user(&w, name, role);
        }
        let daemon = Command::new(assert_cmd::cargo::cargo_bin("reportd"))
            .current_dir(w.path())
            .args(["--config", "config.yaml", "run"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let http = Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while http.get(format!("{base}/health")).send().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no HTTP server"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Api {
            w,
            daemon,
            base,
            http,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn login(&self, name: &str) -> Value {
        let r = self
            .http
            .post(self.url("/api/auth/login"))
            .json(&json!({ "username": name, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "login {name}");
        r.json().await.unwrap()
    }

    pub(crate) async fn token(&self, name: &str) -> String {
        self.login(name).await["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// `method path` with a bearer token and an optional JSON body: status and body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
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

fn backends() -> [Backend; 3] {
    [Backend::Sqlite, Backend::Mysql, Backend::Postgres]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_tokens_logout_and_removed_users_on_every_backend() {
    for backend in backends() {
        let api = Api::start(backend, "").await;
        // Wrong password and unknown name: 401 with the same text.
        let mut texts = Vec::new();
        for (user, pw) in [("ann", "wrong-password"), ("nobody", PASSWORD)] {
            let r = api
                .http
                .post(api.url("/api/auth/login"))
                .json(&json!({ "username": user, "password": pw }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401, "{backend:?}");
            texts.push(r.text().await.unwrap());
        }
        assert_eq!(texts[0], texts[1], "no hint which names exist");

        let r = api
            .http
            .post(api.url("/api/auth/login"))
            .json(&json!({ "username": "ed", "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(cookie.starts_with("reportd_session=rpd_"), "{cookie}");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        let login: Value = r.json().await.unwrap();
        assert_eq!(login["user"], json!({ "name": "ed", "role": "editor" }));
        assert!(login["expires_at"].as_str().is_some());
        let token = login["token"].as_str().unwrap();

        let (s, me) = api.call(Method::GET, "/api/auth/me", token, None).await;
        assert_eq!(
            (s, me),
            (StatusCode::OK, json!({ "name": "ed", "role": "editor" }))
        );
        // The cookie alone works for reads.
        let r = api
            .http
            .get(api.url("/api/auth/me"))
            .header("cookie", cookie.split(';').next().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        // Logout ends the token.
        let (s, _) = api
            .call(Method::POST, "/api/auth/logout", token, None)
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, body) = api.call(Method::GET, "/api/auth/me", token, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
        assert!(body["error"].as_str().unwrap().contains("token"), "{body}");

        // API tokens: made by the CLI, shown once, replaced by the next one.
        let first = api.w.ok(&["user", "token", "vic"]).trim().to_string();
        assert!(first.starts_with("rpd_"));
        let (s, me) = api.call(Method::GET, "/api/auth/me", &first, None).await;
        assert_eq!((s, me["role"].clone()), (StatusCode::OK, json!("viewer")));
        let second = api.w.ok(&["user", "token", "vic"]).trim().to_string();
        assert_eq!(
            api.call(Method::GET, "/api/auth/me", &first, None).await.0,
            401
        );
        assert_eq!(
            api.call(Method::GET, "/api/auth/me", &second, None).await.0,
            200
        );

        // A removed user's login and token stop at once.
        let vic_login = api.token("vic").await;
        api.w.ok(&["user", "remove", "vic"]);
        assert_eq!(
            api.call(Method::GET, "/api/auth/me", &second, None).await.0,
            401
        );
        assert_eq!(
            api.call(Method::GET, "/api/auth/me", &vic_login, None)
                .await
                .0,
            401
        );

        // A password change ends the logins made with the old one.
        let ann = api.token("ann").await;
        let (s, _) = api
            .call(
                Method::PUT,
                "/api/users/ed",
                &ann,
                Some(json!({ "password": "another-pass-1" })),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let ed_cli = api.w.ok(&["user", "list", "--json"]);
        assert!(!ed_cli.contains("argon2"), "no hash in listings: {ed_cli}");

        // The config token acts as admin.
        let (s, users) = api.call(Method::GET, "/api/users", "t0k3n", None).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(users["total"], 2, "{users}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_changes_need_the_csrf_token_and_foreign_origins_are_refused() {
    let api = Api::start(Backend::Sqlite, "").await;
    let login = api.login("ann").await;
    let (token, csrf) = (
        login["token"].as_str().unwrap(),
        login["csrf_token"].as_str().unwrap(),
    );
    let cookie = format!("reportd_session={token}");
    let new_user = json!({ "name": "zoe", "role": "viewer", "password": PASSWORD });
    let post = |csrf: Option<&str>| {
        let mut r = api
            .http
            .post(api.url("/api/users"))
            .header("cookie", &cookie)
            .json(&new_user);
        if let Some(c) = csrf {
            r = r.header("x-csrf-token", c);
        }
        r
    };
    let r = post(None).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("X-CSRF-Token"));
    assert_eq!(post(Some("rpd_wrong")).send().await.unwrap().status(), 403);
    assert_eq!(
        api.call(Method::GET, "/api/users", token, None).await.1["total"],
        3,
        "nothing changed"
    );
    // Another site's page, even with the right CSRF token and a bearer token.
    let r = post(Some(csrf))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("cross-origin"));
    let r = api
        .http
        .delete(api.url("/api/users/ed"))
        .bearer_auth(token)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = api
        .http
        .post(api.url("/api/auth/login"))
        .header("origin", "http://evil.example")
        .json(&json!({ "username": "ann", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "no login from another site");
    // The same page's origin with the CSRF token works.
    let r = post(Some(csrf))
        .header("origin", api.base.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failed_logins_are_throttled() {
    let api = Api::start(Backend::Sqlite, "").await;
    let attempt = |pw: &'static str| {
        api.http
            .post(api.url("/api/auth/login"))
            .json(&json!({ "username": "ann", "password": pw }))
            .send()
    };
    for _ in 0..5 {
        assert_eq!(attempt("wrong-password").await.unwrap().status(), 401);
    }
    let r = attempt("wrong-password").await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // Even the right password waits: the name is locked, not the guess.
    assert_eq!(attempt(PASSWORD).await.unwrap().status(), 429);
    // Other names are not locked.
    let r = api
        .http
        .post(api.url("/api/auth/login"))
        .json(&json!({ "username": "ed", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// The least role each route class needs; `None`: open without a login.
const ROUTES: &[(&str, &str, &str)] = &[
    ("GET", "/api/auth/me", "viewer"),
    ("GET", "/api/status", "viewer"),
    ("GET", "/api/tasks", "viewer"),
    ("GET", "/api/data-sources", "viewer"),
    ("GET", "/api/logs", "viewer"),
    ("POST", "/api/cron/next", "viewer"),
    ("POST", "/api/tasks", "editor"),
    ("POST", "/api/preview", "editor"),
    ("POST", "/api/data-sources/demo/test", "editor"),
    ("POST", "/api/data-sources", "admin"),
    ("GET", "/api/users", "admin"),
    ("POST", "/api/users", "admin"),
    ("DELETE", "/api/users/nobody", "admin"),
    ("GET", "/api/audit", "admin"),
];

fn rank(role: &str) -> u8 {
    match role {
        "viewer" => 0,
        "editor" => 1,
        _ => 2,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_on_every_route_class() {
    let api = Api::start(Backend::Sqlite, "").await;
    let tokens = [
        ("vic", api.token("vic").await),
        ("ed", api.token("ed").await),
        ("ann", api.token("ann").await),
    ];
    for (method, path, needs) in ROUTES {
        let method: Method = method.parse().unwrap();
        // No credentials: 401 everywhere under /api.
        let r = api
            .http
            .request(method.clone(), api.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path} without a login");
        for (i, (user, token)) in tokens.iter().enumerate() {
            // A body that is well-formed JSON but not a valid request: the role is checked
            // before the body, so refusals are 403 and allowed calls get past it.
            let body = (method != Method::GET && method != Method::DELETE).then(|| json!({}));
            let (status, answer) = api.call(method.clone(), path, token, body).await;
            if (i as u8) < rank(needs) {
                assert_eq!(status, 403, "{user} on {method} {path}: {answer}");
                assert!(
                    answer["error"].as_str().unwrap().contains("role"),
                    "{answer}"
                );
            } else {
                assert!(
                    ![401, 403, 405, 500].contains(&status.as_u16()),
                    "{user} on {method} {path}: {status} {answer}"
                );
                assert!(
                    status != 404 || path.ends_with("nobody"),
                    "{method} {path} is routed: {answer}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_one_line_errors_and_change_nothing() {
    let api = Api::start(Backend::Sqlite, "").await;
    let admin = api.token("ann").await;
    let send = |body: Vec<u8>, ctype: &'static str| {
        api.http
            .post(api.url("/api/users"))
            .bearer_auth(&admin)
            .header("content-type", ctype)
            .body(body)
            .send()
    };
    let cases: Vec<(Vec<u8>, &str, u16, &str)> = vec![
        (
            b"{\"name\": ".to_vec(),
            "application/json",
            400,
            "malformed JSON",
        ),
        (
            br#"{"name":"x","role":"viewer","password":"p"}"#.to_vec(),
            "text/plain",
            415,
            "JSON",
        ),
        (
            br#"{"name":"x","role":"viewer","password":12}"#.to_vec(),
            "application/json",
            422,
            "password",
        ),
        (
            br#"{"name":"x","role":"root","password":"longenough"}"#.to_vec(),
            "application/json",
            422,
            "role",
        ),
        (
            br#"{"name":"x","role":"viewer","password":"longenough","admin":true}"#.to_vec(),
            "application/json",
            422,
            "admin",
        ),
        (
            br#"{"name":"../x","role":"viewer","password":"longenough"}"#.to_vec(),
            "application/json",
            422,
            "name",
        ),
        (
            br#"{"name":"x","role":"viewer","password":"short"}"#.to_vec(),
            "application/json",
            422,
            "8 characters",
        ),
        (vec![b' '; 1_100_000], "application/json", 413, "too large"),
    ];
    for (body, ctype, code, says) in cases {
        let r = send(body, ctype).await.unwrap();
        assert_eq!(r.status().as_u16(), code, "{says}");
        let v: Value = r.json().await.unwrap();
        let error = v["error"].as_str().unwrap();
        assert!(error.contains(says), "{error}");
        assert!(!error.contains('\n'), "one line: {error}");
    }
    assert_eq!(
        api.call(Method::GET, "/api/users", &admin, None).await.1["total"],
        3
    );
    for (method, path, code) in [
        (Method::DELETE, "/api/users/nobody", 404),
        (Method::GET, "/api/no-such-thing", 404),
        (Method::GET, "/api/logs?limit=5000", 400),
        (Method::GET, "/api/audit?limit=abc", 400),
    ] {
        let (s, v) = api.call(method.clone(), path, &admin, None).await;
        assert_eq!(s.as_u16(), code, "{method} {path}: {v}");
        assert!(v["error"].is_string(), "{v}");
    }
    let (s, _) = api
        .call(Method::GET, "/api/auth/me", "rpd_not-a-token", None)
        .await;
    assert_eq!(s, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_by_api_and_cli_are_audited_without_secrets() {
    for backend in backends() {
        let api = Api::start(backend, "").await;
        let admin = api.token("ann").await;
        let (s, _) = api
            .call(
                Method::POST,
                "/api/users",
                &admin,
                Some(json!({ "name": "zoe", "role": "editor", "password": "zoe-secret-pw" })),
            )
            .await;
        assert_eq!(s, 201);
        let (s, _) = api
            .call(
                Method::PUT,
                "/api/users/zoe",
                &admin,
                Some(json!({ "password": "zoe-other-pw" })),
            )
            .await;
        assert_eq!(s, 204);
        // The CLI's actor is the OS user of its uid, also without $USER (cron, a unit).
        let out = api
            .w
            .cmd(&["user", "add", "nor", "--role", "viewer", "--password-stdin"])
            .env_remove("USER")
            .env_remove("SUDO_USER")
            .write_stdin(format!("{PASSWORD}\n"))
            .output()
            .unwrap();
        assert!(out.status.success());
        let os_user = crate::helpers::os_user();
        let (s, audit) = api
            .call(Method::GET, "/api/audit?limit=100", &admin, None)
            .await;
        assert_eq!(s, 200);
        let text = audit.to_string();
        assert!(
            !text.contains("zoe-secret-pw") && !text.contains("zoe-other-pw"),
            "{text}"
        );
        let items = audit["items"].as_array().unwrap();
        let find = |action: &str, via: &str| {
            items
                .iter()
                .find(|e| e["action"] == action && e["via"] == via)
                .unwrap_or_else(|| panic!("no {action} by {via} in {text}"))
        };
        let by_api = find("user.add", "api");
        assert_eq!(by_api["actor"], "ann");
        assert_eq!(by_api["object"], "user zoe");
        assert_eq!(by_api["address"], "127.0.0.1");
        assert_eq!(find("user.update", "api")["detail"]["password"], "***");
        let by_cli = |object: &str| {
            items
                .iter()
                .find(|e| e["action"] == "user.add" && e["via"] == "cli" && e["object"] == object)
                .unwrap_or_else(|| panic!("no user.add of {object} by cli in {text}"))
        };
        by_cli("user vic");
        assert_eq!(by_cli("user nor")["actor"], os_user.as_str(), "{text}");
        assert_eq!(audit["total"].as_u64().unwrap() as usize, items.len());
        let viewer = api.token("vic").await;
        assert_eq!(
            api.call(Method::GET, "/api/audit", &viewer, None).await.0,
            403
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_covers_every_route() {
    let api = Api::start(Backend::Sqlite, "").await;
    let doc = crate::api_contract::document(&api).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (method, path, _) in ROUTES {
        let path = path
            .replace("/demo/", "/{name}/")
            .replace("/nobody", "/{name}");
        let item = paths
            .get(&path)
            .unwrap_or_else(|| panic!("{path} missing from {:?}", paths.keys()));
        assert!(item.get(method.to_lowercase()).is_some(), "{method} {path}");
    }
    for path in ["/api/auth/login", "/api/auth/logout"] {
        assert!(paths.contains_key(path), "{path}");
    }
}

#[test]
fn a_reachable_address_needs_a_token_or_an_account() {
    let w = Workdir::new(
        Backend::Sqlite,
        &format!("{DEMO_SOURCE}http:\n  bind: 0.0.0.0:{}\n", free_port()),
    );
    let out = w.cmd(&["check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("neither http.token nor an account"), "{said}");
    add_user(&w, "root-admin", "admin");
    let out = w.cmd(&["check"]).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("neither http.token"), "{text}");
    assert!(out.status.success(), "{text}");
}
