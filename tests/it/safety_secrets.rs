//! Secrets never leave (issue 11, class 3): a store URL and data-source URLs that carry their
//! password as a query parameter (`?password=…`, which PostgreSQL really uses) show it
//! nowhere: not in `datasource list [--json]`, `datasource test`, `check`, `status
//! [--json]`, the unauthenticated `/status`, nor the log file.

use crate::helpers::{Backend, ScratchStore, StopAtEnd, Workdir, free_port, pg_url};

const SECRET: &str = "SEKRETqz";

/// Stdout and stderr of a command, whatever its exit code.
fn output(w: &Workdir, args: &[&str]) -> String {
    let out = w.cmd(args).output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_no_secret(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} shows the secret:\n{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn query_string_passwords_show_nowhere() {
    // PostgreSQL here trusts local connections: the passwords are sent along and ignored,
    // so the store and the data sources really work.
    let source = ScratchStore::new(Backend::Postgres);
    let source_url = source.create_source().await;
    let port = free_port();
    let w = Workdir::new(
        Backend::Postgres,
        &format!(
            "data_sources:\n  src:\n    type: postgresql\n    url: \"{source_url}?sslmode=disable&password={SECRET}1\"\n\
             http:\n  bind: 127.0.0.1:{port}\nlogging:\n  level: INFO\n  file: logs/reportd.log\n\
             daemon:\n  shutdown_timeout: 2\n"
        ),
    );
    let _cleanup = StopAtEnd(&w);
    // The store URL gets a password parameter too.
    let config = std::fs::read_to_string(w.path().join("config.yaml")).unwrap();
    let store_line = config
        .lines()
        .find(|l| l.starts_with("  url: postgres"))
        .unwrap()
        .to_string();
    let config = config.replacen(
        &store_line,
        &format!("{store_line}?Password={SECRET}2&application_name=reportd"),
        1,
    );
    std::fs::write(w.path().join("config.yaml"), config).unwrap();

    // A stored data source: the `data source added` line goes to the log file.
    let added = w.ok(&[
        "datasource",
        "add",
        "stored",
        "--type",
        "postgresql",
        "--url",
        &format!("{}?pwd={SECRET}3;sslpassword={SECRET}4", pg_url()),
    ]);
    assert_no_secret("datasource add", &added);
    assert!(added.contains("pwd=***"), "{added}");

    let list = w.ok(&["datasource", "list"]);
    assert_no_secret("datasource list", &list);
    assert!(list.contains("password=***"), "{list}");
    let json = w.ok(&["datasource", "list", "--json"]);
    assert_no_secret("datasource list --json", &json);
    assert!(json.contains("sslpassword=***"), "{json}");
    let tested = w.ok(&["datasource", "test", "src"]);
    assert_no_secret("datasource test", &tested);
    let checked = output(&w, &["check"]);
    assert_no_secret("check", &checked);
    assert!(
        checked.contains("Password=***"),
        "the store is named: {checked}"
    );

    let started = w.ok(&["start"]);
    assert_no_secret("start", &started);
    let status = w.ok(&["status"]);
    assert_no_secret("status", &status);
    let status_json = w.ok(&["status", "--json"]);
    assert_no_secret("status --json", &status_json);
    let http = reqwest::get(format!("http://127.0.0.1:{port}/status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_no_secret("/status", &http);
    assert!(http.contains("Password=***"), "{http}");
    w.ok(&["stop"]);

    let log = std::fs::read_to_string(w.path().join("logs/reportd.log")).unwrap();
    assert!(log.contains("data source added"), "{log}");
    assert_no_secret("the log file", &log);
}
