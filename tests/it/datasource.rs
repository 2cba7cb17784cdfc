//! Data sources through the binary: the demo source, stored MariaDB and PostgreSQL sources
//! with `${ENV}` passwords, `test` against live servers and a dead port, and removal rules.

use serde_json::Value;
use sqlx::Connection;

use crate::helpers::{Backend, DEMO_SOURCE, Workdir, mysql_url, pg_url};

#[tokio::test]
async fn demo_source_is_created_and_filled_once() {
    let w = Workdir::sqlite_with_demo();
    let out = w.ok(&["datasource", "test", "demo"]);
    assert!(
        out.starts_with("ok  demo (sqlite ./data/demo.db): SELECT 1 in "),
        "{out}"
    );
    let db = w.path().join("data/demo.db");
    let count = || async {
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let (n, cities): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT city) FROM orders")
                .fetch_one(&mut c)
                .await
                .unwrap();
        let (name,): (String,) = sqlx::query_as("SELECT customer FROM orders WHERE id = 1")
            .fetch_one(&mut c)
            .await
            .unwrap();
        (n, cities, name)
    };
    let (n, cities, name) = count().await;
    assert_eq!(n, reportd::source::demo::DEMO_ROWS as i64);
    assert_eq!(cities, 8);
    assert!(
        name.chars().all(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
        "a Chinese name: {name}"
    );
    w.ok(&["datasource", "test", "demo"]);
    assert_eq!(count().await.0, n, "filled once only");
}

fn with_password_ref(url: &str) -> String {
    // mysql://root@host:port/db -> mysql://root:${REPORTD_IT_DB_PW:-}@host:port/db
    url.replacen("root@", "root:${REPORTD_IT_DB_PW:-}@", 1)
        .replacen("postgres@", "postgres:${REPORTD_IT_DB_PW:-}@", 1)
}

#[test]
fn stored_sources_are_listed_without_passwords_and_tested_live() {
    let w = Workdir::new(Backend::Sqlite, DEMO_SOURCE);
    let maria = with_password_ref(&mysql_url());
    let pg = with_password_ref(&pg_url());
    assert!(
        maria.contains("${REPORTD_IT_DB_PW:-}") && pg.contains("${REPORTD_IT_DB_PW:-}"),
        "{maria} {pg}"
    );
    w.ok(&[
        "datasource",
        "add",
        "maria",
        "--type",
        "mysql",
        "--url",
        &maria,
    ]);
    w.ok(&[
        "datasource",
        "add",
        "pg",
        "--type",
        "postgresql",
        "--url",
        &pg,
    ]);
    w.ok(&[
        "datasource",
        "add",
        "dead",
        "--type",
        "mysql",
        "--host",
        "127.0.0.1",
        "--port",
        "1",
        "--username",
        "root",
        "--password",
        "hunter2-pw",
    ]);

    let listed: Vec<Value> =
        serde_json::from_str(&w.ok(&["datasource", "list", "--json"])).unwrap();
    let names: Vec<_> = listed.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["demo", "dead", "maria", "pg"]);
    assert_eq!(listed[0]["origin"], "config");
    assert_eq!(listed[2]["origin"], "store");
    let text = w.ok(&["datasource", "list"]);
    for out in [&text, &serde_json::to_string(&listed).unwrap()] {
        assert!(!out.contains("hunter2-pw"), "password printed: {out}");
    }

    for name in ["maria", "pg"] {
        let out = w.ok(&["datasource", "test", name]);
        assert!(
            out.starts_with(&format!("ok  {name} (")) && out.contains("SELECT 1 in "),
            "{out}"
        );
    }
    let err = w.fails(&["datasource", "test", "dead"], 1);
    assert!(
        err.starts_with("error: data source dead: connect and SELECT 1:"),
        "{err}"
    );
    assert!(
        err.contains("Connection refused") && !err.contains("hunter2-pw"),
        "{err}"
    );
    let err = w.fails(&["datasource", "test", "ghost"], 1);
    assert!(err.contains("unknown data source ghost"), "{err}");
}

#[test]
fn add_and_remove_rules() {
    let w = Workdir::sqlite_with_demo();
    let err = w.fails(
        &[
            "datasource",
            "add",
            "demo",
            "--type",
            "sqlite",
            "--database",
            "x.db",
        ],
        1,
    );
    assert!(
        err.contains("data source demo is defined in config.yaml"),
        "{err}"
    );
    let err = w.fails(&["datasource", "add", "wh", "--type", "mysql"], 1);
    assert!(
        err.contains("data source wh: mysql needs `host` or `url`"),
        "{err}"
    );
    w.ok(&[
        "datasource",
        "add",
        "wh",
        "--type",
        "mysql",
        "--host",
        "db.internal",
    ]);
    let err = w.fails(
        &[
            "datasource",
            "add",
            "wh",
            "--type",
            "mysql",
            "--host",
            "db.internal",
        ],
        1,
    );
    assert!(err.contains("data source wh already exists"), "{err}");
    let err = w.fails(&["datasource", "add", "x", "--type", "oracle"], 2);
    assert!(err.contains("unknown data source type"), "{err}");

    w.write(
        "t.yaml",
        "tasks:\n  - name: uses-wh\n    data_source: wh\n    cron: \"@daily\"\n    sql: SELECT 1\n",
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let err = w.fails(&["datasource", "remove", "wh"], 1);
    assert!(err.contains("used by tasks: uses-wh"), "{err}");
    w.ok(&["datasource", "remove", "wh", "--force"]);
    let err = w.fails(&["datasource", "remove", "demo"], 1);
    assert!(err.contains("defined in config.yaml"), "{err}");
}
