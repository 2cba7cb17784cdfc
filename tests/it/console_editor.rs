//! The task editor in a real browser (`browser.rs`) against a real daemon: a task with two
//! sheets made through the form (SQL preview, cron fires, file-name example), saved, run and
//! seen in the log; a bad cron and a write statement refused next to their fields; a task named
//! like a script edited as text; screenshots of the editor in both languages.

use fantoccini::Locator;
use serde_json::json;
use std::time::{Duration, Instant};

use crate::browser::Browser;
use crate::console::{PASSWORD, add_task, daemon_with};

/// Waits for the log of task `name` to show a success.
async fn until_success(b: &Browser, base: &str, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        b.visit(base, &format!("/logs?task={name}")).await;
        let status = b
            .js("const s = document.querySelector('#logs .log-status'); return s ? s.getAttribute('data-status') : '';")
            .await;
        if status == json!("success") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not succeed: {status}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_editor_creates_a_task_with_two_sheets() {
    let d = daemon_with(&[("eddie", "editor")]).await;
    let base = d.base.clone();
    let b = Browser::start(&base).await;
    b.login(&base, "eddie", PASSWORD, "/tasks").await;
    b.click("#task-new").await;
    b.until(
        "the editor",
        "return !!document.getElementById('task-editor') && document.readyState === 'complete';",
    )
    .await;
    b.check().await;

    b.fill("#f-name", "two_sheets").await;
    b.c.find(Locator::Css("#f-data_source"))
        .await
        .unwrap()
        .select_by_value("demo")
        .await
        .unwrap();
    b.fill("#f-cron", "30 8 * * 1-5").await;
    b.until(
        "five cron fires at 08:30",
        "const l = document.querySelectorAll('#cron-fires li');
         return l.length === 5 && Array.from(l).every(e => e.textContent.includes('T08:30:00'));",
    )
    .await;
    b.fill("#f-filename", "{task_name}_{date:%Y%m%d}").await;
    b.until(
        "the file-name example",
        "return /^two_sheets_\\d{8}\\.xlsx$/.test(document.getElementById('filename-example').textContent);",
    )
    .await;

    b.js("window.scrollTo(0, 0); return true;").await;
    b.shot("editor-top-zh").await;
    b.fill("#sheet-0-name", "orders").await;
    b.fill("#sheet-0-sql", "SELECT id, amount FROM orders LIMIT 20")
        .await;
    b.click(".sheet[data-sheet='0'] .sheet-preview").await;
    b.until(
        "the preview rows",
        "return document.querySelectorAll(\".sheet[data-sheet='0'] .preview tbody tr\").length === 20;",
    )
    .await;
    assert_eq!(b.text(".sheet[data-sheet='0'] .preview th").await, "id");
    b.click("#sheet-add").await;
    b.fill("#sheet-1-name", "cities").await;
    b.fill(
        "#sheet-1-sql",
        "SELECT city, COUNT(*) AS n FROM orders GROUP BY city",
    )
    .await;
    b.check().await;
    b.shot("editor-new-zh").await;
    b.click("#save").await;
    b.until(
        "the task page",
        "return /^\\/tasks\\/\\d+$/.test(location.pathname) && document.readyState === 'complete';",
    )
    .await;
    b.check().await;
    let (s, task) = d.call("GET", "/api/tasks/two_sheets", None).await;
    assert_eq!(s, 200, "{task}");
    assert_eq!(task["sheets"].as_array().unwrap().len(), 2, "{task}");
    assert_eq!(task["sheets"][1]["name"], "cities", "{task}");
    assert_eq!(task["cron"], "30 8 * * 1-5");
    assert_eq!(task["output"]["filename"], "{task_name}_{date:%Y%m%d}");

    // The edit page in English, then run now and its success in the log.
    let id = task["id"].as_i64().unwrap();
    b.visit(&base, &format!("/tasks/{id}/edit?lang=en")).await;
    assert_eq!(
        b.js("return document.getElementById('sheet-1-name').value;")
            .await,
        json!("cities")
    );
    b.until(
        "five cron fires",
        "return document.querySelectorAll('#cron-fires li').length === 5;",
    )
    .await;
    b.shot("editor-edit-en").await;
    // Phone width: nothing wider than the screen.
    b.c.set_window_size(390, 844).await.unwrap();
    let wide = b
        .js("return Math.max(...Array.from(document.querySelectorAll('form.editor input, form.editor textarea, form.editor select, form.editor button')).map(e => e.getBoundingClientRect().right));")
        .await;
    assert!(
        wide.as_f64().unwrap() <= 390.0,
        "the editor overflows at 390 px: {wide}"
    );
    b.shot("editor-phone-en").await;
    b.c.set_window_size(1366, 768).await.unwrap();
    let (s, _) = d.call("POST", &format!("/api/tasks/{id}/run"), None).await;
    assert_eq!(s, 202);
    until_success(&b, &base, "two_sheets").await;
    b.visit(&base, "/tasks?lang=zh").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_editor_shows_errors_next_to_fields() {
    let d = daemon_with(&[("eddie", "editor"), ("vera", "viewer")]).await;
    let base = d.base.clone();
    let b = Browser::start(&base).await;
    b.login(&base, "eddie", PASSWORD, "/tasks/new").await;
    b.fill("#f-name", "bad_one").await;
    b.fill("#sheet-0-sql", "SELECT 1").await;
    // A bad cron: the API's error next to the field as you type, and again on save.
    b.fill("#f-cron", "61 * * * *").await;
    b.until(
        "the cron error",
        "return document.querySelector('.fe[data-for=cron]').textContent.length > 0 && document.querySelectorAll('#cron-fires li').length === 0;",
    )
    .await;
    b.click("#save").await;
    b.until(
        "the cron error on save",
        "return document.querySelector('.fe[data-for=cron]').textContent.includes('cron') && document.activeElement.id === 'f-cron';",
    )
    .await;
    b.check().await;
    b.shot("editor-bad-cron-zh").await;
    let (s, _) = d.call("GET", "/api/tasks/bad_one", None).await;
    assert_eq!(s, 404, "nothing saved");

    // A write statement in the second sheet: the error next to that sheet's SQL.
    b.fill("#f-cron", "0 9 * * *").await;
    b.fill("#sheet-0-name", "ok").await;
    b.click("#sheet-add").await;
    b.fill("#sheet-1-name", "bad").await;
    b.fill("#sheet-1-sql", "DROP TABLE orders").await;
    b.click("#save").await;
    b.until(
        "the SQL error next to the second sheet",
        "return document.querySelector('.fe[data-for=\"sheets[1].sql\"]').textContent.length > 0;",
    )
    .await;
    assert_eq!(
        b.js("return document.activeElement.id;").await,
        json!("sheet-1-sql")
    );
    b.check().await;
    let (s, _) = d.call("GET", "/api/tasks/bad_one", None).await;
    assert_eq!(s, 404, "nothing saved");
    let (_, t) = d.call("GET", "/api/tasks?q=orders", None).await;
    assert_eq!(t["total"], 0);

    // A viewer gets the 403 page.
    let v = Browser::start(&base).await;
    v.login(&base, "vera", PASSWORD, "/tasks").await;
    assert_eq!(v.count("#task-new").await, 0);
    assert_eq!(v.count(".task-edit").await, 0);
    v.visit(&base, "/tasks/new").await;
    assert_eq!(v.text("h1").await, "403");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_editor_edits_a_script_named_task_as_text() {
    let d = daemon_with(&[("alice", "admin")]).await;
    let base = d.base.clone();
    let name = "<script>alert(1)</script>";
    let id = add_task(&d, name).await;
    let b = Browser::start(&base).await;
    b.login(&base, "alice", PASSWORD, "/tasks").await;
    b.click(&format!("tr[data-task='{id}'] .task-edit")).await;
    b.until(
        "the editor",
        "return !!document.getElementById('task-editor') && document.readyState === 'complete';",
    )
    .await;
    assert!(
        b.c.get_alert_text().await.is_err(),
        "an alert on the editor"
    );
    assert_eq!(b.text("#editor-name").await, name);
    assert_eq!(
        b.js("return document.getElementById('f-name').value;")
            .await,
        json!(name)
    );
    // A single `sql` is one unnamed sheet, saved back as `sql`.
    assert_eq!(
        b.js("return document.querySelectorAll('.sheet').length;")
            .await,
        json!(1)
    );
    b.until(
        "the file-name example",
        "return document.getElementById('filename-example').textContent.length > 0;",
    )
    .await;
    b.fill("#f-description", "<b>bold</b>").await;
    b.click("#save").await;
    b.until(
        "the task page",
        &format!(
            "return location.pathname === '/tasks/{id}' && document.readyState === 'complete';"
        ),
    )
    .await;
    b.check().await;
    assert!(
        b.c.get_alert_text().await.is_err(),
        "an alert on the task page"
    );
    assert_eq!(b.text("#task-title").await, name);
    let (_, t) = d.call("GET", &format!("/api/tasks/{id}"), None).await;
    assert_eq!(t["description"], "<b>bold</b>");
    assert_eq!(t["sql"], "SELECT id, amount FROM orders LIMIT 20");
    assert_eq!(t["name"], name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_editor_api_helpers_answer_editors_only() {
    let d = daemon_with(&[]).await;
    // The file name a run now writes, by the runs' own code.
    let (s, b) = d
        .call(
            "POST",
            "/api/filename/example",
            Some(json!({"name": "daily", "filename": "{task_name}_{date:%Y%m%d}", "format": "csv", "timezone": "Asia/Shanghai"})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let want = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("daily_%Y%m%d.csv")
        .to_string();
    assert_eq!(b["example"], want);
    let (s, b) = d
        .call("POST", "/api/filename/example", Some(json!({"name": "x"})))
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(b["example"].as_str().unwrap().starts_with("x_"), "{b}");
    assert!(b["example"].as_str().unwrap().ends_with(".xlsx"), "{b}");
    let (s, b) = d
        .call(
            "POST",
            "/api/filename/example",
            Some(json!({"name": "x", "timezone": "Mars/Olympus"})),
        )
        .await;
    assert_eq!((s, b["field"].as_str()), (422, Some("timezone")), "{b}");

    // Test messages: a channel that is not configured is 422 naming `channel`.
    for (body, field) in [
        (json!({"channel": "pigeon"}), "channel"),
        (json!({"channel": "dingtalk"}), "channel"),
        (json!({"channel": "webhook"}), "channel"),
    ] {
        let (s, b) = d.call("POST", "/api/notify/test", Some(body.clone())).await;
        assert_eq!((s, b["field"].as_str()), (422, Some(field)), "{body}: {b}");
    }
    let (s, b) = d
        .call(
            "POST",
            "/api/notify/test",
            Some(json!({"channel": "email", "task": "nope"})),
        )
        .await;
    assert_eq!(s, 404, "{b}");

    // Viewers may not.
    let viewer = d.login("vic", "viewer").await;
    for path in ["/api/filename/example", "/api/notify/test"] {
        let (s, _) = d
            .call_as(
                &viewer,
                "POST",
                path,
                Some(json!({"name": "x", "channel": "email"})),
            )
            .await;
        assert_eq!(s, 403, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_editor_saves_an_unchanged_task_unchanged() {
    let d = crate::api_daemon::Daemon::start(
        crate::helpers::Backend::Sqlite,
        "email:\n  smtp_server: 127.0.0.1\n  smtp_port: 2525\n  from_address: r@example.com\n",
    )
    .await;
    d.cli(
        &[
            "user",
            "add",
            "alice",
            "--role",
            "admin",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    let task = json!({
        "name": "round_trip", "description": "  indented", "data_source": "demo", "cron": "0 9 * * *",
        "sql": "SELECT id,\n       amount\n  FROM orders\n",
        "notify": {
            "dingtalk": {"webhook": "https://oapi.dingtalk.com/robot/send?access_token=tok1", "secret": "SECx",
                         "template": "## {task_name}\n\n{table}\n"},
            "email": {"to": ["\"Doe, John\" <j@example.com>", "ops@example.com"], "subject": "{task_name} 日报 "}
        }
    });
    let (s, b) = d.call("POST", "/api/tasks", Some(task)).await;
    assert_eq!(s, 201, "{b}");
    let id = b["id"].as_i64().unwrap();
    let (_, before) = d.call("GET", &format!("/api/tasks/{id}"), None).await;
    let browser = Browser::start(&d.base).await;
    browser
        .login(&d.base, "alice", PASSWORD, &format!("/tasks/{id}/edit"))
        .await;
    browser.click("#save").await;
    browser
        .until(
            "the task page",
            &format!(
                "return location.pathname === '/tasks/{id}' && document.readyState === 'complete';"
            ),
        )
        .await;
    let (_, after) = d.call("GET", &format!("/api/tasks/{id}"), None).await;
    for key in [
        "description",
        "sql",
        "notify",
        "cron",
        "name",
        "data_source",
    ] {
        assert_eq!(
            before[key], after[key],
            "{key} changed by a save without edits"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_editor_saves_a_split_read() {
    let d = daemon_with(&[("eddie", "editor")]).await;
    let base = d.base.clone();
    let b = Browser::start(&base).await;
    b.login(&base, "eddie", PASSWORD, "/tasks").await;
    b.click("#task-new").await;
    b.until(
        "the editor",
        "return !!document.getElementById('task-editor') && document.readyState === 'complete';",
    )
    .await;
    b.fill("#f-name", "split_read").await;
    b.c.find(Locator::Css("#f-data_source"))
        .await
        .unwrap()
        .select_by_value("demo")
        .await
        .unwrap();
    b.fill("#f-cron", "30 8 * * 1-5").await;
    b.fill(
        "#sheet-0-sql",
        "SELECT id, amount FROM orders o WHERE {split} ORDER BY o.id",
    )
    .await;
    b.fill(".sheet[data-sheet='0'] .sheet-split-column", "o.id")
        .await;
    b.fill(".sheet[data-sheet='0'] .sheet-split-readers", "2")
        .await;
    b.fill(".sheet[data-sheet='0'] .sheet-split-chunk", "500")
        .await;
    b.click("#save").await;
    b.until(
        "the task page",
        "return /^\\/tasks\\/\\d+$/.test(location.pathname) && document.readyState === 'complete';",
    )
    .await;
    let (s, task) = d.call("GET", "/api/tasks/split_read", None).await;
    assert_eq!(s, 200, "{task}");
    assert_eq!(
        task["split"],
        json!({"column": "o.id", "readers": 2, "chunk_rows": 500}),
        "{task}"
    );
    // Editing shows the setting again.
    b.visit(&base, &format!("/tasks/{}/edit", task["id"])).await;
    b.until(
        "the split column",
        "const e = document.querySelector(\".sheet[data-sheet='0'] .sheet-split-column\"); return !!e && e.value === 'o.id';",
    )
    .await;
}
