//! The task routes of the API (issue 13) against the real daemon (`reportd run`) over HTTP, on
//! SQLite, MariaDB and PostgreSQL: create, read, list, replace (and rename), enable, disable,
//! remove; the CLI and the API see each other's tasks at once; a bad task is 422 naming the
//! field and stores nothing (SQL that writes included); a duplicate is 409; unknown ids and
//! names with `/` or `..` are 404; a run is 202 with its execution id and leaves its file;
//! DingTalk secrets are masked and a PUT of `"***"` keeps the stored value; changes are audited
//! without secrets; viewers change nothing; the daemon fires a task made over the API.

use reqwest::Method;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use crate::daemon::{start, stop};
use crate::helpers::{Backend, DEMO_SOURCE, FAST_CRON, Workdir, free_port};

const TOKEN: &str = "t0k3n";
const WEBHOOK: &str = "https://oapi.dingtalk.com/robot/send?access_token=WEBHOOKs3cr3t";
const SECRET: &str = "SECsigningS3CR3T";

/// A daemon with the demo data source and `http.token`, and a client for its API.
struct Api {
    w: Workdir,
    daemon: Option<Child>,
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn start(backend: Backend) -> Api {
        let port = free_port();
        let w = Workdir::new(
            backend,
            &format!(
                "{DEMO_SOURCE}http:\n  bind: 127.0.0.1:{port}\n  token: {TOKEN}\ndaemon:\n  shutdown_timeout: 5\nscheduler:\n{FAST_CRON}"
            ),
        );
        // The demo database is made on first use; make it before the daemon starts.
        w.ok(&["datasource", "test", "demo"]);
        let daemon = start(&w);
        let api = Api {
            w,
            daemon: Some(daemon),
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let started = Instant::now();
        loop {
            if let Ok(r) = api.http.get(format!("{}/health", api.base)).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the daemon never became healthy"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        api
    }

    /// `method path` with the admin token and a JSON body; the status and the JSON answer
    /// (`null` when empty).
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }

    /// The raw answer of `method path` with this body text and content type.
    async fn raw(&self, method: Method, path: &str, body: &str, kind: &str) -> (u16, String) {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .header("content-type", kind)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// `reportd task list --json`.
    fn cli_tasks(&self) -> Vec<Value> {
        serde_json::from_str(&self.w.ok(&["task", "list", "--json"])).unwrap()
    }

    /// Waits until the execution `id` has ended; its log entry.
    async fn finished(&self, id: i64) -> Value {
        let started = Instant::now();
        loop {
            let runs: Vec<Value> =
                serde_json::from_str(&self.w.ok(&["logs", "--json", "--limit", "50"])).unwrap();
            if let Some(run) = runs.iter().find(|r| r["id"] == id)
                && run["status"] != "running"
            {
                return run.clone();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "execution {id} never ended: {runs:#?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn path_of(&self, file: &str) -> PathBuf {
        let p = PathBuf::from(file);
        if p.is_absolute() {
            p
        } else {
            self.w.path().join(p)
        }
    }

    fn stop(mut self) {
        if let Some(d) = self.daemon.take() {
            stop(d, Duration::from_secs(20));
        }
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
    }
}

fn task(name: &str) -> Value {
    json!({
        "name": name,
        "description": "orders by city",
        "data_source": "demo",
        "cron": "0 9 * * 1-5",
        "timezone": "Asia/Shanghai",
        "sql": "SELECT city, COUNT(*) AS n FROM orders GROUP BY city",
        "output": {"format": "csv", "filename": "cities_{date:%Y%m%d}.csv"},
        "notify": {"dingtalk": {"webhook": WEBHOOK, "secret": SECRET}, "on": ["failure"]}
    })
}

/// The whole life of a task through the API, with the CLI looking on.
async fn round_trip(backend: Backend) {
    let api = Api::start(backend).await;

    // Created over the API: 201, shown with id, next_fire, no last_run, secrets masked.
    let (code, created) = api.post("/api/tasks", task("城市订单")).await;
    assert_eq!(code, 201, "{created:#}");
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["name"], "城市订单");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["cron"], "0 9 * * 1-5");
    assert_eq!(created["output"]["format"], "csv");
    assert_eq!(created["notify"]["dingtalk"]["webhook"], "***");
    assert_eq!(created["notify"]["dingtalk"]["secret"], "***");
    assert_eq!(created["last_run"], Value::Null);
    let next = created["next_fire"].as_str().unwrap();
    assert!(
        next.ends_with("+08:00") && next.contains("T09:00:00"),
        "{next}"
    );

    // ...shows in the CLI at once, and the CLI's task shows in the API.
    let cli = api.cli_tasks();
    assert!(
        cli.iter().any(|t| t["id"] == id && t["name"] == "城市订单"),
        "{cli:#?}"
    );
    api.w.write(
        "t.yaml",
        "tasks:\n  - name: from-cli\n    data_source: demo\n    cron: \"0 0 1 1 *\"\n    enabled: false\n    sql: SELECT 1 AS one\n",
    );
    api.w.ok(&["task", "apply", "-f", "t.yaml"]);
    let (code, list) = api.get("/api/tasks").await;
    assert_eq!(code, 200);
    assert_eq!(list["total"], 2, "{list:#}");
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["城市订单", "from-cli"]);
    assert_eq!(list["items"][1]["enabled"], false);
    assert_eq!(
        list["items"][1]["next_fire"],
        Value::Null,
        "disabled: no next fire"
    );
    let (_, found) = api.get("/api/tasks?q=CLI").await;
    assert_eq!(found["total"], 1, "{found:#}");
    assert_eq!(found["items"][0]["name"], "from-cli");
    let (_, found) = api.get("/api/tasks?q=%25").await;
    assert_eq!(found["total"], 0, "% is matched literally: {found:#}");
    let (_, page) = api.get("/api/tasks?limit=1&offset=1").await;
    assert_eq!(page["total"], 2);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["name"], "from-cli");
    let (code, _) = api.get("/api/tasks?limit=0").await;
    assert_eq!(code, 400);

    // One task, by id or by name.
    let (code, by_id) = api.get(&format!("/api/tasks/{id}")).await;
    assert_eq!(code, 200);
    let (code, by_name) = api
        .get("/api/tasks/%E5%9F%8E%E5%B8%82%E8%AE%A2%E5%8D%95")
        .await;
    assert_eq!(code, 200);
    assert_eq!(by_id, by_name);

    // 409: the name exists. 404: unknown ids, and names with / or .. reach nothing.
    let (code, dup) = api.post("/api/tasks", task("城市订单")).await;
    assert_eq!(code, 409, "{dup:#}");
    assert!(
        dup["error"].as_str().unwrap().contains("already exists"),
        "{dup:#}"
    );
    for path in [
        "/api/tasks/999999",
        "/api/tasks/nope",
        "/api/tasks/..%2Ffrom-cli",
        "/api/tasks/a%2Fb",
        "/api/tasks/from-cli..",
        "/api/tasks/%2E%2E",
    ] {
        let (code, body) = api.get(path).await;
        assert_eq!(code, 404, "{path}: {body:#}");
    }
    let (code, _) = api.put("/api/tasks/999999", task("x")).await;
    assert_eq!(code, 404);
    let (code, _) = api.call(Method::DELETE, "/api/tasks/999999", None).await;
    assert_eq!(code, 404);

    // PUT: the shown task sent back with a change; "***" keeps the stored secrets.
    let mut changed = by_id.clone();
    changed["cron"] = json!("30 8 * * *");
    let (code, updated) = api.put(&format!("/api/tasks/{id}"), changed).await;
    assert_eq!(code, 200, "{updated:#}");
    assert_eq!(updated["cron"], "30 8 * * *");
    assert_eq!(updated["notify"]["dingtalk"]["webhook"], "***");
    let exported = api.w.ok(&["task", "export", &id.to_string()]);
    assert!(
        exported.contains(WEBHOOK) && exported.contains(SECRET),
        "{exported}"
    );
    assert!(exported.contains("30 8 * * *"), "{exported}");

    // A new webhook replaces the stored one.
    let mut changed = updated.clone();
    changed["notify"]["dingtalk"]["webhook"] =
        json!("https://oapi.dingtalk.com/robot/send?access_token=other");
    let (code, _) = api.put(&format!("/api/tasks/{id}"), changed).await;
    assert_eq!(code, 200);
    let exported = api.w.ok(&["task", "export", &id.to_string()]);
    assert!(
        exported.contains("access_token=other")
            && !exported.contains(WEBHOOK)
            && exported.contains(SECRET),
        "{exported}"
    );

    // Rename; a rename onto another task's name is 409 and changes nothing.
    let mut renamed = updated.clone();
    renamed["name"] = json!("cities");
    let (code, body) = api.put(&format!("/api/tasks/{id}"), renamed.clone()).await;
    assert_eq!(code, 200, "{body:#}");
    assert_eq!(body["name"], "cities");
    assert_eq!(body["id"], id);
    renamed["name"] = json!("from-cli");
    let (code, body) = api.put(&format!("/api/tasks/{id}"), renamed).await;
    assert_eq!(code, 409, "{body:#}");
    let (_, still) = api.get("/api/tasks/cities").await;
    assert_eq!(still["id"], id);
    assert!(api.cli_tasks().iter().any(|t| t["name"] == "cities"));

    // Disable, enable.
    let (code, off) = api
        .post(&format!("/api/tasks/{id}/disable"), json!({}))
        .await;
    assert_eq!(code, 200, "{off:#}");
    assert_eq!(off["enabled"], false);
    assert_eq!(off["next_fire"], Value::Null);
    let cli = api.cli_tasks();
    assert_eq!(
        cli.iter().find(|t| t["id"] == id).unwrap()["enabled"],
        false
    );
    let (code, on) = api.post("/api/tasks/cities/enable", json!({})).await;
    assert_eq!(code, 200);
    assert_eq!(on["enabled"], true);

    // Run: 202 with the execution id; it ends with its file, and shows as last_run.
    let (code, ran) = api.post(&format!("/api/tasks/{id}/run"), json!({})).await;
    assert_eq!(code, 202, "{ran:#}");
    let execution = ran["execution_id"].as_i64().expect("an execution id");
    let run = api.finished(execution).await;
    assert_eq!(run["status"], "success", "{run:#}");
    assert_eq!(run["trigger"], "manual");
    let file = run["files"][0].as_str().unwrap();
    assert!(api.path_of(file).is_file(), "{file}");
    let (_, shown) = api.get(&format!("/api/tasks/{id}")).await;
    assert_eq!(shown["last_run"]["id"], execution, "{shown:#}");
    assert_eq!(shown["last_run"]["status"], "success");
    assert!(shown["last_run"]["rows"].as_u64().unwrap() > 0);
    let (_, list) = api.get("/api/tasks").await;
    assert_eq!(list["items"][0]["last_run"]["id"], execution);
    assert_eq!(list["items"][1]["last_run"], Value::Null);

    // Remove: 204, then 404; the CLI no longer lists it.
    let (code, _) = api
        .call(Method::DELETE, &format!("/api/tasks/{id}"), None)
        .await;
    assert_eq!(code, 204);
    let (code, _) = api.get(&format!("/api/tasks/{id}")).await;
    assert_eq!(code, 404);
    assert!(!api.cli_tasks().iter().any(|t| t["id"] == id));

    // Every change audited, no secret in the audit log.
    let (code, audit) = api.get("/api/audit?limit=100").await;
    assert_eq!(code, 200);
    let text = audit.to_string();
    for secret in [WEBHOOK, SECRET, "WEBHOOKs3cr3t", "access_token=other"] {
        assert!(!text.contains(secret), "{secret} in {audit:#}");
    }
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["via"] == "api")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "task.create",
        "task.update",
        "task.disable",
        "task.enable",
        "task.run",
        "task.delete",
    ] {
        assert!(actions.contains(&action), "{action} not in {actions:?}");
    }
    api.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_on_sqlite() {
    round_trip(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_on_mysql() {
    round_trip(Backend::Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_on_postgres() {
    round_trip(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tasks_are_refused_naming_the_field_and_store_nothing() {
    let api = Api::start(Backend::Sqlite).await;
    let with = |key: &str, value: Value| {
        let mut t = task("bad");
        t[key] = value;
        t
    };
    let long_sheet = json!([{"name": "a".repeat(32), "sql": "SELECT 1"}]);
    let mut no_sql = with("sheets", long_sheet);
    no_sql.as_object_mut().unwrap().remove("sql");
    let cases = [
        (with("cron", json!("61 * * * *")), "cron"),
        (no_sql, "sheets[0].name"),
        (with("bogus", json!(1)), "bogus"),
        (with("retries", json!("two")), "retries"),
        (with("data_source", json!("nowhere")), "data_source"),
        (with("sql", json!("DROP TABLE orders")), "sql"),
        (with("sql", json!("DELETE FROM orders")), "sql"),
        (with("sql", json!("SELECT 1; DELETE FROM orders")), "sql"),
        (with("timezone", json!("Mars/Base")), "timezone"),
        (with("name", json!("")), "name"),
        (
            with("alert", json!({"condition": "value = 1"})),
            "alert.condition",
        ),
        (
            with(
                "alert",
                json!({"condition": "rows > 0", "sql": "DROP TABLE orders"}),
            ),
            "alert.sql",
        ),
        (
            with("notify", json!({"webhook": {"url": "ftp://x"}})),
            "notify.webhook.url",
        ),
        (
            with("notify", json!({"wecom": {"webhook": "not a url"}})),
            "notify.wecom.webhook",
        ),
        // A reference inside a longer value would read any of the daemon's variables.
        (
            with(
                "notify",
                json!({"webhook": {"url": "https://elsewhere.example/?leak=${HOME}"}}),
            ),
            "notify.webhook.url",
        ),
        (
            with(
                "notify",
                json!({"dingtalk": {"webhook": "https://oapi.dingtalk.com/robot/send?access_token=${HOME}"}}),
            ),
            "notify.dingtalk.webhook",
        ),
    ];
    for (body, field) in cases {
        let (code, err) = api.post("/api/tasks", body.clone()).await;
        assert_eq!(code, 422, "{field}: {err:#}");
        assert_eq!(err["field"], field, "{err:#}");
        let text = err["error"].as_str().unwrap();
        assert!(!text.contains('\n'), "{text}");
        assert!(
            !text.contains("WEBHOOKs3cr3t") && !text.contains(SECRET),
            "{text}"
        );
    }
    // Several problems: the first, and how many more.
    let mut two = with("cron", json!("nope"));
    two["timeout"] = json!(0);
    let (code, err) = api.post("/api/tasks", two).await;
    assert_eq!(code, 422);
    assert_eq!(err["field"], "cron");
    assert!(
        err["error"].as_str().unwrap().ends_with("(and 1 more)"),
        "{err:#}"
    );
    // "***" stands for a stored secret: a new task has none.
    let mut masked = task("bad");
    masked["notify"]["dingtalk"]["secret"] = json!("***");
    let (code, err) = api.post("/api/tasks", masked).await;
    assert_eq!(code, 422);
    assert_eq!(err["field"], "notify.dingtalk.secret");
    // Malformed bodies.
    let (code, _) = api
        .raw(Method::POST, "/api/tasks", "{", "application/json")
        .await;
    assert_eq!(code, 400);
    let (code, _) = api
        .raw(Method::POST, "/api/tasks", "name: x", "text/yaml")
        .await;
    assert_eq!(code, 415);
    let (code, _) = api
        .raw(Method::POST, "/api/tasks", "[1]", "application/json")
        .await;
    assert_eq!(code, 422);
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(2 << 20));
    let (code, _) = api
        .raw(Method::POST, "/api/tasks", &big, "application/json")
        .await;
    assert_eq!(code, 413);

    // Nothing was stored.
    let (_, list) = api.get("/api/tasks").await;
    assert_eq!(list["total"], 0, "{list:#}");
    assert!(api.cli_tasks().is_empty());

    // A PUT with a bad field changes nothing either.
    let (code, good) = api.post("/api/tasks", task("good")).await;
    assert_eq!(code, 201, "{good:#}");
    let mut bad = good.clone();
    bad["sql"] = json!("UPDATE orders SET amount = 0");
    let (code, err) = api.put("/api/tasks/good", bad).await;
    assert_eq!(code, 422, "{err:#}");
    assert_eq!(err["field"], "sql");
    let (_, after) = api.get("/api/tasks/good").await;
    assert_eq!(after, good);
    api.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_task_is_not_run_twice_and_viewers_cannot_change_tasks() {
    let api = Api::start(Backend::Sqlite).await;
    let mut slow = task("slow");
    slow["sql"] = json!(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000000) SELECT COUNT(*) AS n FROM c"
    );
    slow["notify"] = json!({});
    let (code, body) = api.post("/api/tasks", slow).await;
    assert_eq!(code, 201, "{body:#}");
    let (code, first) = api.post("/api/tasks/slow/run", json!({})).await;
    assert_eq!(code, 202, "{first:#}");
    let (code, second) = api.post("/api/tasks/slow/run", json!({})).await;
    assert_eq!(code, 409, "{second:#}");
    assert!(
        second["error"]
            .as_str()
            .unwrap()
            .contains("running already")
    );
    let (_, shown) = api.get("/api/tasks/slow").await;
    assert_eq!(shown["last_run"]["id"], first["execution_id"]);

    // A viewer reads, and may change nothing.
    let mut add = api.w.cmd(&[
        "user",
        "add",
        "vera",
        "--role",
        "viewer",
        "--password-stdin",
    ]);
    add.write_stdin("password123\n").assert().success();
    let login: Value = api
        .http
        .post(format!("{}/api/auth/login", api.base))
        .json(&json!({"username": "vera", "password": "password123"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap().to_string();
    let as_viewer = |method: Method, path: &str| {
        api.http
            .request(method, format!("{}{path}", api.base))
            .bearer_auth(&token)
            .json(&task("viewer-made"))
            .send()
    };
    assert_eq!(
        as_viewer(Method::GET, "/api/tasks").await.unwrap().status(),
        200
    );
    assert_eq!(
        as_viewer(Method::GET, "/api/tasks/slow")
            .await
            .unwrap()
            .status(),
        200
    );
    for (method, path) in [
        (Method::POST, "/api/tasks"),
        (Method::PUT, "/api/tasks/slow"),
        (Method::DELETE, "/api/tasks/slow"),
        (Method::POST, "/api/tasks/slow/disable"),
        (Method::POST, "/api/tasks/slow/run"),
    ] {
        let r = as_viewer(method.clone(), path).await.unwrap();
        assert_eq!(r.status(), 403, "{method} {path}");
    }
    let run = api.finished(first["execution_id"].as_i64().unwrap()).await;
    assert_eq!(run["status"], "success", "{run:#}");

    // The daemon picks up a task made over the API (it polls the store every 5 s).
    let mut ticking = task("ticking");
    ticking["cron"] = json!("* * * * * *");
    ticking["notify"] = json!({});
    let (code, body) = api.post("/api/tasks", ticking).await;
    assert_eq!(code, 201, "{body:#}");
    let started = Instant::now();
    loop {
        let runs: Vec<Value> =
            serde_json::from_str(&api.w.ok(&["logs", "--json", "--task", "ticking"])).unwrap();
        if runs.iter().any(|r| r["trigger"] == "cron") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no cron run of a task made over the API: {runs:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    api.stop();
}
