//! `reportd check` with connections: the store, every data source (live MariaDB and
//! PostgreSQL, a dead one), and stored tasks that no longer validate.

use crate::helpers::{Backend, Workdir, mysql_url, pg_url};

fn sources(extra: &str) -> String {
    format!(
        "data_sources:\n  demo:\n    type: sqlite\n    database: ./data/demo.db\n    demo_data: true\n  maria:\n    type: mysql\n    url: {}\n  pg:\n    type: postgresql\n    url: {}\n{extra}",
        mysql_url(),
        pg_url()
    )
}

#[test]
fn check_connects_to_store_and_every_source() {
    for backend in [Backend::Sqlite, Backend::Mysql, Backend::Postgres] {
        let w = Workdir::new(backend, &sources(""));
        let out = w.ok(&["check"]);
        assert!(out.contains("ok    store "), "{out}");
        for name in ["demo", "maria", "pg"] {
            assert!(
                out.contains(&format!("ok    data source {name} (")),
                "{name}: {out}"
            );
        }
        assert!(!out.contains("FAIL"), "{out}");
    }
}

#[test]
fn check_fails_on_a_dead_source_and_names_it() {
    let w = Workdir::new(
        Backend::Sqlite,
        &sources("  dead:\n    type: postgresql\n    host: 127.0.0.1\n    port: 1\n"),
    );
    let out = w.cmd(&["check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAIL  data source dead: connect and SELECT 1:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok    data source maria"),
        "the others are still checked: {stdout}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: check found 1 problem"
    );
}

#[test]
fn check_reports_stored_tasks_that_no_longer_validate() {
    let w = Workdir::new(
        Backend::Sqlite,
        "data_sources:\n  demo:\n    type: sqlite\n    database: ./data/demo.db\n    demo_data: true\n",
    );
    w.ok(&[
        "datasource",
        "add",
        "wh",
        "--type",
        "sqlite",
        "--database",
        "wh.db",
    ]);
    w.write(
        "t.yaml",
        "tasks:\n  - name: orphan\n    data_source: wh\n    cron: \"@daily\"\n    sql: SELECT 1\n",
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    w.ok(&["datasource", "remove", "wh", "--force"]);
    let out = w.cmd(&["check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAIL  task \"orphan\": data_source: unknown data source \"wh\""),
        "{stdout}"
    );
}

#[test]
fn no_connect_still_checks_tasks_in_a_local_store_but_not_sources() {
    let w = Workdir::new(
        Backend::Sqlite,
        "data_sources:\n  dead:\n    type: mysql\n    host: 127.0.0.1\n    port: 1\n",
    );
    let out = w.ok(&["check", "--no-connect"]);
    assert!(
        out.contains("skip  store, stored tasks"),
        "no store file yet: {out}"
    );
    w.write("t.yaml", "tasks:\n  - name: nightly\n    data_source: dead\n    cron: \"@daily\"\n    sql: SELECT 1\n");
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let out = w.ok(&["check", "--no-connect"]);
    assert!(out.contains("ok    task nightly (id 1)"), "{out}");
    assert!(out.contains("skip  data source connections"), "{out}");
    assert!(
        !out.contains("FAIL"),
        "the dead source is not contacted: {out}"
    );
}
