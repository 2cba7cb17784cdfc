//! The web console in a real browser (headless Chromium over WebDriver, `browser.rs`) against
//! a real `reportd run` daemon (`api_daemon.rs`): login through the form, the pages, a data
//! source added through its form, run now and the log, the download read back, a viewer's
//! view and refused POST, escaping, phone width, no foreign request and no JS error anywhere.
//! Screenshots go to `target/console-screenshots/<page>-<lang>.png`.

use serde_json::json;
use std::time::{Duration, Instant};

use crate::api_daemon::Daemon;
use crate::browser::Browser;
use crate::helpers::Backend;

pub const PASSWORD: &str = "password123";

pub async fn daemon_with(users: &[(&str, &str)]) -> Daemon {
    let d = Daemon::start(Backend::Sqlite, "").await;
    for (name, role) in users {
        d.cli(
            &["user", "add", name, "--role", role, "--password-stdin"],
            &format!("{PASSWORD}\n"),
        );
    }
    d
}

pub async fn add_task(d: &Daemon, name: &str) -> i64 {
    let (s, b) = d
        .call(
            "POST",
            "/api/tasks",
            Some(
                json!({"name": name, "data_source": "demo", "cron": "0 9 * * *",
                         "sql": "SELECT id, amount FROM orders LIMIT 20"}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    b["id"].as_i64().unwrap()
}

/// Visits each page, checks it, saves its screenshot as `<page>-<lang>`; the server times.
async fn tour(b: &Browser, base: &str, lang: &str, pages: &[(&str, &str)]) -> Vec<(String, f64)> {
    let mut times = Vec::new();
    for (name, path) in pages {
        b.visit(base, path).await;
        times.push((format!("{name}-{lang}"), b.server_ms().await));
        b.shot(&format!("{name}-{lang}")).await;
    }
    times
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_admin_flow_in_a_browser() {
    let d = daemon_with(&[("alice", "admin")]).await;
    let base = d.base.clone();
    let b = Browser::start(&base).await;

    // Without a login every page sends to the login form, which comes back to it.
    b.c.goto(&format!("{base}/tasks?q=x")).await.unwrap();
    let url = b.c.current_url().await.unwrap();
    assert_eq!(url.path(), "/login");
    assert_eq!(url.query(), Some("next=%2Ftasks%3Fq%3Dx"));
    b.check().await;
    b.shot("login-zh").await;
    // A wrong password shows the API's error; nothing else happens.
    b.fill("#username", "alice").await;
    b.fill("#password", "wrong-password").await;
    b.click("#login-submit").await;
    b.until("the error", "return document.querySelector('.fe[data-for=password]').textContent.length > 0 || document.getElementById('flash').textContent.length > 0;").await;
    b.login(&base, "alice", PASSWORD, "/").await;

    // Overview (Chinese by default).
    assert_eq!(b.text("#health .v").await, "正常");
    assert_eq!(b.text("#who").await, "alice");
    assert!(b.text("header nav").await.contains("用户"), "admin nav");
    b.until(
        "the demo source to be tested",
        "return document.querySelector('#sources tr[data-source=demo] .probe').classList.contains('ok');",
    )
    .await;
    assert_eq!(
        b.text("#sources tr[data-source=demo] .probe").await,
        "可连接"
    );

    // A data source through the admin's form.
    b.visit(&base, "/data-sources").await;
    b.fill("#ds-name", "extra").await;
    b.c.find(fantoccini::Locator::Css("#ds-type"))
        .await
        .unwrap()
        .select_by_value("sqlite")
        .await
        .unwrap();
    b.fill("#ds-database", "./data/extra.db").await;
    b.click("#add-source-submit").await;
    b.until(
        "the new data source",
        "return !!document.querySelector('tr[data-source=extra]');",
    )
    .await;
    b.check().await;
    // "Test connection" answers in the page.
    b.click("tr[data-source=demo] .test-source").await;
    b.until(
        "the connection test",
        "return document.getElementById('flash').className === 'good';",
    )
    .await;
    b.check().await;
    let (s, list) = d.call("GET", "/api/data-sources", None).await;
    assert_eq!(s, 200);
    assert!(list.to_string().contains("\"extra\""), "{list}");

    // Editing one field keeps the others (charset, max_connections, a URL's password).
    let body = serde_json::json!({"name": "hs", "type": "mysql",
        "url": "mysql://ro:Sekr1t-pw@127.0.0.1:3306/test", "charset": "utf8mb4", "max_connections": 2});
    let (s, made) = d.call("POST", "/api/data-sources", Some(body)).await;
    assert_eq!(s, 201, "{made}");
    b.visit(&base, "/data-sources").await;
    b.click("tr[data-source=hs] details summary").await;
    b.fill("tr[data-source=hs] input[name=charset]", "utf8")
        .await;
    b.click("tr[data-source=hs] form button[type=submit]").await;
    // Saved, the page reloads (the form closed again).
    b.until(
        "the edit to be saved",
        "return document.readyState === 'complete' && !document.querySelector('tr[data-source=hs] details[open]');",
    )
    .await;
    let (_, hs) = d.call("GET", "/api/data-sources/hs", None).await;
    assert_eq!(hs["charset"], "utf8", "{hs}");
    assert_eq!(hs["max_connections"], 2, "{hs}");
    assert_eq!(hs["has_password"], true, "{hs}");
    assert_eq!(hs["url"], "mysql://ro:***@127.0.0.1:3306/test", "{hs}");
    // A port that is not a number is refused next to the field, not saved as the default.
    b.click("tr[data-source=hs] details summary").await;
    b.fill("tr[data-source=hs] input[name=port]", "33o6").await;
    b.click("tr[data-source=hs] form button[type=submit]").await;
    b.until(
        "the port's error",
        "return document.querySelector('tr[data-source=hs] .fe[data-for=port]').textContent.length > 0;",
    )
    .await;

    // A task made through the API is listed with its next fire; run it now.
    let id = add_task(&d, "daily_orders").await;
    b.visit(&base, "/tasks").await;
    let row = format!("tr[data-task='{id}']");
    assert_eq!(b.text(&format!("{row} .task-name")).await, "daily_orders");
    assert!(
        b.text(&format!("{row} .next-fire")).await.contains("09:00"),
        "next fire shown"
    );
    b.click(&format!("{row} .run-now")).await;
    b.until(
        "the run to be accepted",
        "return document.getElementById('flash').className === 'good';",
    )
    .await;

    // It succeeds in the log page.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        b.visit(&base, "/logs?task=daily_orders").await;
        let status =
            b.c.wait()
                .at_most(Duration::from_secs(10))
                .for_element(fantoccini::Locator::Css("#logs .log-status"))
                .await
                .unwrap()
                .attr("data-status")
                .await
                .unwrap()
                .unwrap_or_default();
        if status == "success" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not succeed: {status}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Its file through the page's link: an xlsx (zip) read back.
    let got =
        b.c.execute_async(
            "const done = arguments[arguments.length - 1];
             const a = document.querySelector('#logs a.download');
             fetch(a.href).then(r => r.arrayBuffer()).then(buf => {
               const u = new Uint8Array(buf);
               done({len: u.length, magic: Array.from(u.slice(0, 4)), name: a.textContent});
             }).catch(e => done({error: String(e)}));",
            vec![],
        )
        .await
        .unwrap();
    assert!(got["len"].as_u64().unwrap_or(0) > 0, "{got}");
    assert_eq!(got["magic"], json!([0x50, 0x4b, 0x03, 0x04]), "{got}");
    assert!(got["name"].as_str().unwrap().ends_with(".xlsx"), "{got}");

    // A one-off export through the "new export" form, then its file from the jobs page.
    b.visit(&base, "/exports").await;
    b.fill("#ex-sql", "SELECT id, city FROM orders LIMIT 10")
        .await;
    b.click("#new-export button[type=submit]").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        b.visit(&base, "/exports").await;
        let done = b
            .js("const s = document.querySelector('#exports [data-status]'); return s ? s.dataset.status : null;")
            .await;
        if done == "done" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the export job did not finish: {done}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let got =
        b.c.execute_async(
            "const done = arguments[arguments.length - 1];
             const a = document.querySelector('#exports a.download');
             fetch(a.href).then(r => r.arrayBuffer()).then(buf => {
               done({len: buf.byteLength, magic: Array.from(new Uint8Array(buf).slice(0, 4))});
             }).catch(e => done({error: String(e)}));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(got["magic"], json!([0x50, 0x4b, 0x03, 0x04]), "{got}");

    // Every page, in Chinese and English, at 1366×768.
    let pages = [
        ("overview", "/"),
        ("tasks", "/tasks"),
        ("task", &*format!("/tasks/{id}")),
        ("data-sources", "/data-sources"),
        ("logs", "/logs"),
        ("exports", "/exports"),
        ("users", "/users"),
        ("audit", "/audit"),
    ];
    let mut times = tour(&b, &base, "zh", &pages).await;
    b.visit(&base, "/?lang=en").await;
    assert_eq!(b.text("#health .v").await, "healthy");
    times.extend(tour(&b, &base, "en", &pages).await);
    for (page, ms) in &times {
        eprintln!("server time {page}: {ms:.1} ms");
        assert!(*ms >= 0.0 && *ms < 1000.0, "{page}: {ms} ms");
    }

    // Phone width: the task list is a list of cards (no table header, rows stacked).
    b.c.set_window_size(390, 844).await.unwrap();
    b.visit(&base, "/tasks").await;
    let v = b
        .js("const t = document.querySelector('#tasks');
             return {head: getComputedStyle(t.querySelector('thead')).display,
                     row: getComputedStyle(t.querySelector('tbody tr')).display,
                     wide: document.documentElement.scrollWidth};")
        .await;
    assert_eq!(v["head"], "none", "{v}");
    assert_eq!(v["row"], "block", "{v}");
    assert!(
        v["wide"].as_u64().unwrap() <= 390,
        "no sideways scroll: {v}"
    );
    b.shot("tasks-phone-en").await;
    b.visit(&base, "/logs").await;
    b.shot("logs-phone-en").await;

    // Logging out ends the session: pages send to the login again.
    b.c.set_window_size(1366, 768).await.unwrap();
    b.visit(&base, "/").await;
    b.click("#logout").await;
    b.until(
        "the login page",
        "return location.pathname === '/login' && document.readyState === 'complete';",
    )
    .await;
    b.c.goto(&format!("{base}/tasks")).await.unwrap();
    assert_eq!(b.c.current_url().await.unwrap().path(), "/login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_viewer_sees_no_controls_and_is_refused() {
    let d = daemon_with(&[("vera", "viewer")]).await;
    let base = d.base.clone();
    let id = add_task(&d, "viewed").await;
    let b = Browser::start(&base).await;
    b.login(&base, "vera", PASSWORD, "/tasks").await;
    assert_eq!(
        b.text(&format!("tr[data-task='{id}'] .task-name")).await,
        "viewed"
    );
    assert_eq!(b.count(".run-now").await, 0, "no run control");
    assert_eq!(b.count("input[data-toggle]").await, 0, "no enable switch");
    assert!(!b.text("header nav").await.contains("用户"), "no admin nav");
    b.visit(&base, "/data-sources").await;
    assert_eq!(b.count("#add-source").await, 0, "no add form");
    assert_eq!(b.count(".delete-source").await, 0);
    assert_eq!(b.count(".test-source").await, 0, "testing needs an editor");
    b.visit(&base, "/exports").await;
    assert_eq!(b.count("#new-export").await, 0, "no new export form");
    b.visit(&base, "/users").await;
    assert_eq!(b.text("h1").await, "403");
    b.visit(&base, "/audit").await;
    assert_eq!(b.text("h1").await, "403");
    b.visit(&base, "/tasks").await;
    b.shot("tasks-viewer-zh").await;

    // The page's own cookie and CSRF token, posting directly: the API refuses the role.
    let got =
        b.c.execute_async(
            &format!(
                "const done = arguments[arguments.length - 1];
                 const csrf = document.querySelector('meta[name=csrf-token]').content;
                 fetch('/api/tasks/{id}/run', {{method: 'POST', headers: {{'X-CSRF-Token': csrf}}}})
                   .then(r => done({{status: r.status, csrf: csrf.length}}));"
            ),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(got["status"], 403, "{got}");
    assert!(
        got["csrf"].as_u64().unwrap() > 10,
        "the page has the CSRF token: {got}"
    );
    // Nothing ran.
    let (_, logs) = d.call("GET", "/api/logs", None).await;
    assert_eq!(logs["total"], 0, "{logs}");

    // A `next` the browser would read as another site (it drops tabs and newlines from
    // URLs, so "/\t/host" is "//host") lands on this one.
    let origin = b.js("return location.origin;").await;
    for evil in [
        "%2F%09%2Fevil.example%2Fx",
        "%2F%0A%2Fevil.example%2Fx",
        "https%3A%2F%2Fevil.example%2F",
        "%2F%5Cevil.example",
    ] {
        b.visit(&base, &format!("/login?next={evil}")).await;
        b.fill("#username", "vera").await;
        b.fill("#password", PASSWORD).await;
        b.click("#login-submit").await;
        b.until(
            "the login to leave the form",
            "return location.pathname !== '/login' && document.readyState === 'complete';",
        )
        .await;
        assert_eq!(b.js("return location.origin;").await, origin, "{evil}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_shows_a_script_task_name_as_text() {
    let d = daemon_with(&[("alice", "admin")]).await;
    let base = d.base.clone();
    let name = "<script>alert(1)</script>";
    let id = add_task(&d, name).await;
    let (s, _) = d.call("POST", &format!("/api/tasks/{id}/run"), None).await;
    assert_eq!(s, 202);
    let b = Browser::start(&base).await;
    b.login(&base, "alice", PASSWORD, "/").await;
    for path in [
        "/tasks".to_string(),
        format!("/tasks/{id}"),
        "/logs".to_string(),
        "/".to_string(),
        format!("/tasks?q={}", "%3Cscript%3E"),
    ] {
        b.visit(&base, &path).await;
        // An alert would be open now (and fail every command): there is none.
        assert!(b.c.get_alert_text().await.is_err(), "an alert on {path}");
        let v = b
            .js(
                "return {scripts: Array.from(document.scripts).filter(s => !s.src).length,
                         text: document.body.textContent};",
            )
            .await;
        assert_eq!(v["scripts"], 0, "an inline script on {path}");
        if path.starts_with("/tasks") {
            assert!(
                v["text"].as_str().unwrap().contains(name),
                "{path} shows the name as text"
            );
        }
    }
    b.visit(&base, &format!("/tasks/{id}")).await;
    assert_eq!(b.text("#task-title").await, name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_assets_are_immutable_and_pages_strict() {
    let d = daemon_with(&[]).await;
    let login = d
        .http
        .get(format!("{}/login", d.base))
        .header("accept-language", "en-US,en;q=0.9,zh;q=0.5")
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let csp = login.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = login.text().await.unwrap();
    assert!(
        html.contains("Log in"),
        "English for a browser preferring it"
    );
    let zh = d
        .http
        .get(format!("{}/login", d.base))
        .header("accept-language", "zh-CN,zh;q=0.9,en;q=0.8")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(zh.contains("登录"));
    let css = html
        .split("href=\"")
        .find_map(|s| s.split('"').next().filter(|u| u.ends_with(".css")))
        .unwrap()
        .to_string();
    assert!(css.starts_with("/assets/console."), "{css}");
    let r = d.http.get(format!("{}{css}", d.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let again = d
        .http
        .get(format!("{}{css}", d.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let stale = d
        .http
        .get(format!("{}/assets/console.0000000000.css", d.base))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 404);
    // A page without a login redirects, with only this site's path as `next`.
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_follow
        .get(format!("{}/logs?status=failed", d.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/login?next=%2Flogs%3Fstatus%3Dfailed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_first_run_setup_creates_the_first_admin_once() {
    let d = Daemon::start(Backend::Sqlite, "logging:\n  file: ./reportd.log\n").await;
    let base = d.base.clone();
    let log = d.dir.path().join("reportd.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    let url = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(at) = text.find("/setup?token=") {
            let rest = &text[at..];
            let end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
            break rest[..end].to_string();
        }
        assert!(Instant::now() < deadline, "no setup URL logged: {text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let b = Browser::start(&base).await;
    // A wrong token shows no form.
    b.visit(&base, "/setup?token=rpd_wrong").await;
    assert_eq!(b.count("#setup-form").await, 0);
    b.visit(&base, &url).await;
    b.shot("setup-zh").await;
    b.fill("#username", "root_admin").await;
    b.fill("#password", "short").await;
    b.click("#setup-form button[type=submit]").await;
    b.until(
        "the password error",
        "return document.querySelector('.fe[data-for=password]').textContent.length > 0;",
    )
    .await;
    // The link still works after a refused password.
    b.fill("#password", PASSWORD).await;
    b.click("#setup-form button[type=submit]").await;
    b.until(
        "the login page",
        "return location.pathname === '/login' && document.readyState === 'complete';",
    )
    .await;
    b.login(&base, "root_admin", PASSWORD, "/users").await;
    assert!(b.text("#users").await.contains("root_admin"));
    // The token no longer works.
    b.visit(&base, &url).await;
    assert_eq!(b.count("#setup-form").await, 0);
    let (s, body) = d
        .call(
            "POST",
            "/setup",
            Some(json!({"token": url.trim_start_matches("/setup?token="), "username": "second", "password": PASSWORD})),
        )
        .await;
    assert_eq!(s, 403, "{body}");
}
