//! Identity and keys (issue 24, classes 6 and 7) against the real daemon: the download-link
//! key is sealed in the store (also a plain one an older version left, at the next start),
//! `secrets rotate` re-seals it and a link's `expires` is capped; the last admin survives
//! concurrent demotions and removals (MariaDB, PostgreSQL, SQLite); a data source's stored
//! password does not follow a change of server; ids resolve before names and all-digit task
//! names are refused; jobs belong to a user id, not a name; names are plain text and user
//! names are compared after NFKC and case folding; files are private whatever the umask.

use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::api_daemon::Daemon;
use crate::api_exports::until_not;
use crate::helpers::{Backend, DEMO_SOURCE, ScratchStore, free_port};

/// One value of the store, by SQL (`SELECT value ...`), on any backend.
async fn store_text(d: &Daemon, sql: &str) -> Option<String> {
    let url = d.store_url();
    let row: Option<(String,)> = if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_optional(&pool)
            .await
            .unwrap()
    } else if url.starts_with("mysql") {
        let pool = sqlx::MySqlPool::connect(&url).await.unwrap();
        sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_optional(&pool)
            .await
            .unwrap()
    } else {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query_as(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_optional(&pool)
            .await
            .unwrap()
    };
    row.map(|r| r.0)
}

const LINK_KEY_SQL: &str = "SELECT value FROM meta WHERE name = 'download_link_key'";

/// A link to `rel` (under the daemon's `./exports`) signed with the plain key `key`.
fn link_with(d: &Daemon, key: &str, rel: &str, expires: i64) -> String {
    let signer = reportd::notify::links::LinkSigner::new(
        key.as_bytes().to_vec(),
        Some(d.base.clone()),
        Duration::from_secs(3600),
        d.dir.path().join("exports"),
    );
    signer
        .url_until(&d.dir.path().join("exports").join(rel), expires)
        .unwrap()
}

async fn status_of(d: &Daemon, url: &str) -> u16 {
    d.http.get(url).send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_link_key_is_sealed_rotated_and_links_are_capped() {
    let mut d = Daemon::start(Backend::Sqlite, "").await;
    let sealed = store_text(&d, LINK_KEY_SQL).await.expect("a link key");
    assert!(sealed.starts_with("enc:v1:"), "stored sealed: {sealed}");

    // As an older version left it: plain hex. The next start seals it, and links signed
    // with it still work.
    let plain = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    crate::helpers::exec(
        &d.store_url(),
        &format!("UPDATE meta SET value = '{plain}' WHERE name = 'download_link_key'"),
    )
    .await;
    d.stop_and_restart().await;
    let resealed = store_text(&d, LINK_KEY_SQL).await.unwrap();
    assert!(
        resealed.starts_with("enc:v1:"),
        "sealed at start: {resealed}"
    );
    assert!(!resealed.contains(plain));

    std::fs::create_dir_all(d.dir.path().join("exports/2026-12-01")).unwrap();
    std::fs::write(d.dir.path().join("exports/2026-12-01/r.csv"), "a,b\n").unwrap();
    let now = chrono::Utc::now().timestamp();
    let good = link_with(&d, plain, "2026-12-01/r.csv", now + 3600);
    assert_eq!(status_of(&d, &good).await, 200, "{good}");
    // Whoever holds the key (or an old link) cannot make a link that lives for years: the
    // cap is the longer of http.link_expiry and export.download_expiry (7 days each here).
    let far = link_with(&d, plain, "2026-12-01/r.csv", now + 10 * 365 * 86_400);
    assert_eq!(status_of(&d, &far).await, 403, "{far}");
    let beyond = link_with(&d, plain, "2026-12-01/r.csv", now + 8 * 86_400);
    assert_eq!(status_of(&d, &beyond).await, 403, "{beyond}");

    // `secrets rotate` re-seals it under the new key; the restarted daemon (new key) opens
    // it, so links made before the rotation still work.
    d.cli(&["stop"], "");
    let out = d.cli(&["secrets", "rotate"], "");
    assert!(out.starts_with("re-encrypted 1 secret value"), "{out}");
    let rotated = store_text(&d, LINK_KEY_SQL).await.unwrap();
    assert!(rotated.starts_with("enc:v1:") && rotated != resealed);
    // Started again (the old process is gone already).
    d.crash_and_restart().await;
    assert_eq!(status_of(&d, &good).await, 200);
}

/// Two admins demoted (and removed) many times at once through the API: one always stays.
async fn last_admin_stays(backend: Backend) {
    let d = Daemon::start(backend, "").await;
    let a1 = d.login("boss1", "admin").await;
    let a2 = d.login("boss2", "admin").await;
    for round in 0..12 {
        for name in ["boss1", "boss2"] {
            let (s, b) = d
                .call(
                    "PUT",
                    &format!("/api/users/{name}"),
                    Some(json!({"role": "admin"})),
                )
                .await;
            // 422: already an admin (an empty change).
            assert!(matches!(s, 204 | 422), "{s} {b}");
        }
        let mut calls = Vec::new();
        for i in 0..8 {
            let (token, target) = if i % 2 == 0 {
                (&a1, "boss2")
            } else {
                (&a2, "boss1")
            };
            // Through the config token too: its requests do not depend on boss1/boss2.
            let token = if i % 4 < 2 {
                token.clone()
            } else {
                crate::api_daemon::TOKEN.into()
            };
            let path = format!("/api/users/{target}");
            let d = &d;
            calls.push(async move {
                let (s, b) = d
                    .call_as(&token, "PUT", &path, Some(json!({"role": "editor"})))
                    .await;
                // 422: already demoted by another call (an empty change).
                assert!(matches!(s, 204 | 403 | 409 | 422), "{s} {b}");
            });
        }
        futures_util::future::join_all(calls).await;
        let (_, users) = d.call("GET", "/api/users", None).await;
        let admins = users["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["role"] == "admin")
            .count();
        assert_eq!(admins, 1, "round {round}: {users:#}");
    }
    // Removal: both at once (by the config token); one stays.
    for name in ["boss1", "boss2"] {
        d.call(
            "PUT",
            &format!("/api/users/{name}"),
            Some(json!({"role": "admin"})),
        )
        .await;
    }
    let (r1, r2) = tokio::join!(
        d.call("DELETE", "/api/users/boss1", None),
        d.call("DELETE", "/api/users/boss2", None)
    );
    let mut statuses = [r1.0, r2.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [204, 409], "{r1:?} {r2:?}");
    let (_, users) = d.call("GET", "/api/users", None).await;
    assert_eq!(users["items"].as_array().unwrap().len(), 1, "{users:#}");
    assert_eq!(users["items"][0]["role"], "admin");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_admin_stays_under_concurrent_demotions_mariadb() {
    last_admin_stays(Backend::Mysql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_admin_stays_under_concurrent_demotions_postgres() {
    last_admin_stays(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_last_admin_stays_under_concurrent_demotions_sqlite() {
    last_admin_stays(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stored_password_does_not_follow_a_new_server() {
    let d = Daemon::start(Backend::Sqlite, "").await;
    let base = json!({"name": "wh", "type": "mysql", "host": "db1.internal", "port": 3306,
        "username": "report", "database": "sales"});
    let mut with_pw = base.clone();
    with_pw["password"] = json!("s3cret-pw");
    let (s, b) = d.call("POST", "/api/data-sources", Some(with_pw)).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["has_password"], true);
    // The same server, another database: kept.
    let mut same = base.clone();
    same["database"] = json!("sales2");
    let (s, b) = d.call("PUT", "/api/data-sources/wh", Some(same)).await;
    assert_eq!((s, &b["has_password"]), (200, &json!(true)), "{b}");
    for (field, value) in [
        ("host", json!("evil.example.com")),
        ("port", json!(3307)),
        ("username", json!("root")),
        ("type", json!("postgresql")),
    ] {
        // Give the password back, then move the server without one: cleared.
        let mut again = base.clone();
        again["password"] = json!("s3cret-pw");
        let (s, b) = d.call("PUT", "/api/data-sources/wh", Some(again)).await;
        assert_eq!((s, &b["has_password"]), (200, &json!(true)), "{b}");
        let mut moved = base.clone();
        moved[field] = value;
        let (s, b) = d.call("PUT", "/api/data-sources/wh", Some(moved)).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["has_password"], false, "{field} changed: {b}");
    }
    // A URL with its password: a new URL without one does not keep the old.
    let url_src = json!({"name": "u", "type": "postgresql",
        "url": "postgres://report:pw9@db1.internal:5432/sales"});
    let (s, b) = d.call("POST", "/api/data-sources", Some(url_src)).await;
    assert_eq!(s, 201, "{b}");
    let shown = b["url"].as_str().unwrap().to_string();
    assert!(!shown.contains("pw9"), "{shown}");
    let (s, b) = d
        .call(
            "PUT",
            "/api/data-sources/u",
            Some(json!({"type": "postgresql", "url": shown})),
        )
        .await;
    assert_eq!(
        (s, &b["has_password"]),
        (200, &json!(true)),
        "masked URL kept: {b}"
    );
    let (s, b) = d
        .call(
            "PUT",
            "/api/data-sources/u",
            Some(json!({"type": "mysql", "url": shown})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["has_password"], false, "type changed, masked URL: {b}");
}

fn task(name: &str) -> Value {
    json!({
        "name": name,
        "data_source": "demo",
        "cron": "0 9 * * 1-5",
        "sql": "SELECT city, COUNT(*) AS n FROM orders GROUP BY city",
        "output": {"format": "csv"}
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn ids_resolve_first_and_digit_names_are_refused() {
    let d = Daemon::start(Backend::Sqlite, "").await;
    let (s, alpha) = d.call("POST", "/api/tasks", Some(task("alpha"))).await;
    assert_eq!(s, 201, "{alpha}");
    let alpha_id = alpha["id"].as_i64().unwrap();
    let (s, beta) = d.call("POST", "/api/tasks", Some(task("beta"))).await;
    assert_eq!(s, 201, "{beta}");

    // All-digit names are refused at the API and at apply, naming the field.
    let (s, b) = d.call("POST", "/api/tasks", Some(task("12345"))).await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["field"], "name", "{b}");
    assert!(b["error"].as_str().unwrap().contains("digits"), "{b}");
    std::fs::write(
        d.dir.path().join("digits.yaml"),
        "tasks:\n  - name: \"777\"\n    data_source: demo\n    cron: \"0 9 * * *\"\n    sql: SELECT 1\n",
    )
    .unwrap();
    let out = assert_cmd::Command::cargo_bin("reportd")
        .unwrap()
        .current_dir(d.dir.path())
        .args([
            "--config",
            "config.yaml",
            "task",
            "apply",
            "--file",
            "digits.yaml",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("name") && err.contains("digits"), "{err}");

    // An older version's all-digit name that is another task's id: the id wins everywhere.
    crate::helpers::exec(
        &d.store_url(),
        &format!("UPDATE tasks SET name = '{alpha_id}' WHERE name = 'beta'"),
    )
    .await;
    let (s, shown) = d.call("GET", &format!("/api/tasks/{alpha_id}"), None).await;
    assert_eq!(s, 200);
    assert_eq!(shown["name"], "alpha", "{shown}");
    let (s, ran) = d
        .call(
            "POST",
            &format!("/api/tasks/{alpha_id}/run"),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 202, "{ran}");
    let execution = ran["execution_id"].as_i64().unwrap();
    let (_, run) = d.call("GET", &format!("/api/logs/{execution}"), None).await;
    assert_eq!(run["task_name"], "alpha", "{run}");
    let cli = d.cli(&["task", "show", &alpha_id.to_string(), "--json"], "");
    assert!(cli.contains("\"alpha\""), "{cli}");
    let (s, job) = d
        .call(
            "POST",
            "/api/exports",
            Some(json!({"task": alpha_id.to_string()})),
        )
        .await;
    assert_eq!(s, 202, "{job}");
    let (_, job) = d
        .call("GET", &format!("/api/exports/{}", job["id"]), None)
        .await;
    assert_eq!(job["task"], "alpha", "{job}");
    // The old task stays usable by its id and can be renamed.
    let beta_id = beta["id"].as_i64().unwrap();
    let (s, b) = d
        .call(
            "PUT",
            &format!("/api/tasks/{beta_id}"),
            Some(task("beta-renamed")),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recreated_user_does_not_own_the_old_ones_jobs() {
    let d = Daemon::start(Backend::Sqlite, "").await;
    let old = d.login("tmpu", "editor").await;
    let (s, b) = d
        .call_as(
            &old,
            "POST",
            "/api/exports",
            Some(json!({"data_source": "demo", "sql": "SELECT id FROM orders WHERE id <= 5"})),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    let id = b["id"].as_i64().unwrap();
    let job = until_not(&d, id, &["queued", "running"], Duration::from_secs(30)).await;
    assert_eq!(job["status"], "done", "{job}");
    let (_, mine) = d.call_as(&old, "GET", "/api/exports?mine=true", None).await;
    assert_eq!(mine["total"], 1, "the owner sees it as theirs");

    let (s, _) = d.call("DELETE", "/api/users/tmpu", None).await;
    assert_eq!(s, 204);
    // The same name again: someone else.
    let new = d.login("tmpu", "editor").await;
    let (_, mine) = d.call_as(&new, "GET", "/api/exports?mine=true", None).await;
    assert_eq!(mine["total"], 0, "{mine}");
    let (s, b) = d
        .call_as(&new, "POST", &format!("/api/exports/{id}/cancel"), None)
        .await;
    assert_eq!(s, 403, "not theirs to cancel: {b}");
    // As a viewer, the new tmpu may not download the old one's files.
    let (s, _) = d
        .call("PUT", "/api/users/tmpu", Some(json!({"role": "viewer"})))
        .await;
    assert_eq!(s, 204);
    let (s, b) = d
        .call_as(&new, "GET", &format!("/api/exports/{id}/files/0"), None)
        .await;
    assert_eq!(s, 403, "{b}");
    let (_, shown) = d
        .call_as(&new, "GET", &format!("/api/exports/{id}"), None)
        .await;
    assert!(shown["files"][0].get("link").is_none(), "{shown}");
    assert_eq!(shown["created_by"], "tmpu", "the name is still shown");
}

#[tokio::test(flavor = "multi_thread")]
async fn names_are_plain_text_and_user_names_fold() {
    let d = Daemon::start(Backend::Sqlite, "").await;
    // Hidden characters, each refused naming its field.
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/api/tasks", task("daily\u{202E}txt.exe"), "name"),
        ("/api/tasks", task("dai\u{200B}ly"), "name"),
        (
            "/api/tasks",
            {
                let mut t = task("sheets");
                t.as_object_mut().unwrap().remove("sql");
                t["sheets"] = json!([{"name": "订单\u{2066}", "sql": "SELECT 1"}]);
                t
            },
            "sheets[0].name",
        ),
        (
            "/api/tasks",
            {
                let mut t = task("files");
                t["output"]["filename"] = json!("report\u{FEFF}_{date:%Y%m%d}");
                t
            },
            "output.filename",
        ),
        (
            "/api/data-sources",
            json!({"name": "wh\u{200D}", "type": "sqlite", "database": "x.db"}),
            "name",
        ),
        (
            "/api/users",
            json!({"name": "ad\u{061C}min", "role": "viewer", "password": "password123"}),
            "name",
        ),
    ];
    for (path, body, field) in cases {
        let (s, b) = d.call("POST", path, Some(body.clone())).await;
        assert_eq!(s, 422, "{path} {body}: {b}");
        assert_eq!(b["field"], field, "{path}: {b}");
        assert!(
            b["error"].as_str().unwrap().contains("invisible"),
            "{path}: {b}"
        );
    }

    // User names compare after NFKC and case folding.
    d.login("admin", "admin").await;
    for clash in ["ＡDMIN", "Admin", "ADMIN"] {
        let (s, b) = d
            .call(
                "POST",
                "/api/users",
                Some(json!({"name": clash, "role": "viewer", "password": "password123"})),
            )
            .await;
        assert_eq!(s, 409, "{clash}: {b}");
    }
    let (s, b) = d
        .call(
            "POST",
            "/api/auth/login",
            Some(json!({"username": "ADMIN", "password": "password123"})),
        )
        .await;
    assert_eq!(s, 200, "login is case-insensitive: {b}");
    assert_eq!(b["user"]["name"], "admin");
    let out = assert_cmd::Command::cargo_bin("reportd")
        .unwrap()
        .current_dir(d.dir.path())
        .args([
            "--config",
            "config.yaml",
            "user",
            "add",
            "ａdmin",
            "--role",
            "admin",
            "--password-stdin",
        ])
        .write_stdin("password123\n")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the CLI refuses the clash too");

    // Concurrent adds of names that fold together: exactly one wins.
    let names = ["bob", "BOB", "Bob", "ｂｏｂ", "ＢＯＢ", "bOb", "boB", "bOB"];
    let calls = names.iter().map(|n| {
        d.call(
            "POST",
            "/api/users",
            Some(json!({"name": n, "role": "viewer", "password": "password123"})),
        )
    });
    let results = futures_util::future::join_all(calls).await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(created, 1, "{results:?}");
    assert!(
        results.iter().all(|(s, _)| matches!(s, 201 | 409)),
        "{results:?}"
    );

    // Wrong guesses count against the account whatever the spelling.
    d.login("carol", "viewer").await;
    for spelling in ["CAROL", "Carol", "cArol", "caRol", "ｃarol"] {
        let (s, b) = d
            .call(
                "POST",
                "/api/auth/login",
                Some(json!({"username": spelling, "password": "wrong-password"})),
            )
            .await;
        assert_eq!(s, 401, "{spelling}: {b}");
    }
    let (s, b) = d
        .call(
            "POST",
            "/api/auth/login",
            Some(json!({"username": "carol", "password": "wrong-password"})),
        )
        .await;
    assert_eq!(
        s, 429,
        "five spellings of carol are five guesses at carol: {b}"
    );
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread")]
async fn files_are_private_whatever_the_umask() {
    let store = ScratchStore::new(Backend::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    std::fs::write(
        dir.path().join("config.yaml"),
        format!(
            "{}{DEMO_SOURCE}http:\n  bind: 127.0.0.1:{port}\n  token: t0k3n\nexport:\n  output_dir: ./out/exports\n\
             logging:\n  level: INFO\n  file: ./logs/reportd.log\ndaemon:\n  pid_file: ./run/reportd.pid\n  shutdown_timeout: 2\n",
            store.yaml()
        ),
    )
    .unwrap();
    let bin = assert_cmd::cargo::cargo_bin("reportd");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 000; exec '{}' --config config.yaml run",
            bin.display()
        ))
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while http.get(format!("{base}/health")).send().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "no daemon");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = http
        .post(format!("{base}/api/exports"))
        .bearer_auth("t0k3n")
        .json(&json!({"data_source": "demo", "sql": "SELECT id FROM orders WHERE id <= 5"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let job = loop {
        let job: Value = http
            .get(format!("{base}/api/exports/{id}"))
            .bearer_auth("t0k3n")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !matches!(job["status"].as_str(), Some("queued" | "running")) {
            break job;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(job["status"], "done", "{job}");
    let root = dir.path();
    let exported = crate::helpers::files_under(&root.join("out/exports"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(!exported.is_empty());
    for f in &exported {
        assert_eq!(mode(f), 0o600, "{}", f.display());
        let mut p = f.parent().unwrap();
        while p != root {
            assert_eq!(mode(p), 0o700, "{}", p.display());
            p = p.parent().unwrap();
        }
    }
    for f in ["data/system.db", "logs/reportd.log", "data/secret.key"] {
        assert_eq!(mode(&root.join(f)), 0o600, "{f}");
    }
    for d in ["data", "logs", "run"] {
        assert_eq!(mode(&root.join(d)), 0o700, "{d}");
    }
}
