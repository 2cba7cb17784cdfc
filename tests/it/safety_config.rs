//! Defaults and checks (issue 11, class 10): the default message templates are compiled in
//! (a directory without `templates/` still notifies; a file there overrides the built-in one);
//! `check` fails wherever `run` refuses to start; a YAML key written twice is refused, in the
//! config and in task files, with both lines.

use crate::dingtalk::{SECRET, StandIn};
use crate::helpers::{Backend, DEMO_SOURCE, Workdir};

fn dingtalk_dir(ding: &StandIn) -> Workdir {
    let w = Workdir::new(
        Backend::Sqlite,
        &format!(
            "{DEMO_SOURCE}dingtalk:\n  webhook_url: \"http://127.0.0.1:{}/robot/send?access_token=ok_builtin\"\n  secret: \"{SECRET}\"\n",
            ding.port
        ),
    );
    std::fs::remove_dir_all(w.path().join("templates")).unwrap();
    w.write(
        "t.yaml",
        "tasks:\n  - name: orders\n    data_source: demo\n    cron: \"0 9 * * *\"\n    sql: SELECT id FROM orders ORDER BY id LIMIT 3\n    notify:\n      dingtalk: {}\n  - name: broken\n    data_source: demo\n    cron: \"0 9 * * *\"\n    sql: SELECT no_such_column FROM orders\n    notify:\n      dingtalk: {}\n",
    );
    w
}

#[test]
fn without_a_templates_directory_the_built_in_templates_are_used_and_a_file_overrides_them() {
    let ding = StandIn::start();
    let w = dingtalk_dir(&ding);
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let out = w.ok(&["check", "--no-connect"]);
    assert!(!out.contains("FAIL"), "{out}");
    assert!(out.contains("templates: the built-in ones"), "{out}");

    let run = w.cmd(&["task", "run", "orders"]).output().unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{err}");
    assert!(err.contains("notified: dingtalk"), "{err}");
    let failed = w.cmd(&["task", "run", "broken"]).output().unwrap();
    assert!(!failed.status.success());
    let reqs = ding.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    let report = reqs[0]["body"]["markdown"]["text"].as_str().unwrap();
    assert!(
        report.contains("### 📊 orders 执行完成") && report.contains("**数据行数**: 3"),
        "{report}"
    );
    let failure = reqs[1]["body"]["markdown"]["text"].as_str().unwrap();
    assert!(failure.contains("no_such_column"), "{failure}");

    // A file in templates_dir overrides the built-in one of the same name.
    std::fs::create_dir(w.path().join("templates")).unwrap();
    w.write(
        "templates/dingtalk_report.md",
        "mine: {task_name} {rows_count}",
    );
    let run = w.cmd(&["task", "run", "orders"]).output().unwrap();
    assert!(run.status.success());
    let reqs = ding.requests();
    assert_eq!(reqs[2]["body"]["markdown"]["text"], "mine: orders 3");
}

#[test]
fn check_fails_on_a_public_bind_without_a_token_as_run_does() {
    let w = Workdir::new(
        Backend::Sqlite,
        &format!("{DEMO_SOURCE}http:\n  bind: 0.0.0.0:0\n"),
    );
    let run_err = w.fails(&["run"], 1);
    let out = w.cmd(&["check", "--no-connect"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let why = line.trim_start_matches("FAIL").trim();
    assert!(
        why.contains("http.bind 0.0.0.0:0") && why.contains("neither http.token nor an account"),
        "{why}"
    );
    assert!(
        run_err.contains(why),
        "same words as run: {run_err} / {why}"
    );

    // An output or temp directory that can never be created fails both as well.
    for key in ["output_dir", "temp_dir"] {
        let w = Workdir::new(
            Backend::Sqlite,
            &format!("{DEMO_SOURCE}export:\n  {key}: ./afile/sub\n"),
        );
        w.write("afile", "not a directory");
        let run_err = w.fails(&["run"], 1);
        let out = w.cmd(&["check", "--no-connect"]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{key}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("export.{key}"))
                && stdout.contains("afile is not a directory"),
            "{stdout}"
        );
        assert!(run_err.contains("afile is not a directory"), "{run_err}");
    }

    // With a token, both pass that point.
    let ok = Workdir::new(
        Backend::Sqlite,
        &format!("{DEMO_SOURCE}http:\n  bind: 0.0.0.0:0\n  token: t0ken\n"),
    );
    let out = ok.ok(&["check", "--no-connect"]);
    assert!(out.contains("ok    daemon start"), "{out}");

    // A PID file that is a directory: both refuse.
    let dir = Workdir::new(
        Backend::Sqlite,
        &format!("{DEMO_SOURCE}daemon:\n  pid_file: ./piddir\n"),
    );
    std::fs::create_dir(dir.path().join("piddir")).unwrap();
    let out = dir.cmd(&["check", "--no-connect"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("daemon.pid_file ./piddir: is a directory")
    );
    assert!(dir.fails(&["run"], 1).contains("is a directory"));
    let below_a_file = Workdir::new(
        Backend::Sqlite,
        &format!("{DEMO_SOURCE}logging:\n  file: ./afile/reportd.log\n"),
    );
    below_a_file.write("afile", "");
    let out = below_a_file
        .cmd(&["check", "--no-connect"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "FAIL  logging.file ./afile/reportd.log: cannot create it: ./afile is not a directory"
        ),
        "{stdout}"
    );
    assert!(below_a_file.fails(&["run"], 1).contains("afile"));
}

#[test]
fn a_key_written_twice_is_refused_in_the_config_and_in_task_files() {
    let w = Workdir::sqlite_with_demo();
    let config = std::fs::read_to_string(w.path().join("config.yaml")).unwrap();
    let first = config.lines().position(|l| l == "data_sources:").unwrap() + 1;
    let total = config.lines().count();
    // A second data source of the same name used to replace the first silently.
    std::fs::write(
        w.path().join("config.yaml"),
        format!("{config}data_sources:\n  other:\n    type: sqlite\n    database: ./x.db\n"),
    )
    .unwrap();
    let err = w.fails(&["check", "--no-connect"], 1);
    assert!(
        err.contains(&format!(
            "config.yaml:{}:1: duplicate key \"data_sources\" (first at line {first})",
            total + 1
        )),
        "{err}"
    );
    std::fs::write(
        w.path().join("config.yaml"),
        config.replace(
            "  demo:\n",
            "  demo:\n    type: sqlite\n    database: ./a.db\n  demo:\n",
        ),
    )
    .unwrap();
    let err = w.fails(&["check", "--no-connect"], 1);
    assert!(
        err.contains(&format!(
            ":{}:3: duplicate key \"demo\" (first at line {})",
            first + 4,
            first + 1
        )),
        "{err}"
    );
    std::fs::write(w.path().join("config.yaml"), &config).unwrap();

    // Task files: a repeated key inside one task, and a repeated sheet name in a map.
    w.write(
        "t.yaml",
        "tasks:\n  - name: orders\n    data_source: demo\n    cron: \"0 9 * * *\"\n    sql: SELECT id FROM orders\n    sql: DELETE FROM orders\n",
    );
    let err = w.fails(&["task", "apply", "-f", "t.yaml"], 1);
    assert!(
        err.contains("t.yaml:6:5: duplicate key \"sql\" (first at line 5)"),
        "{err}"
    );
    assert!(
        w.ok(&["task", "list"])
            .lines()
            .all(|l| !l.contains("orders"))
    );
    w.write(
        "t.yaml",
        "tasks:\n  - name: orders\n    data_source: demo\n    cron: \"0 9 * * *\"\n    sql: SELECT id FROM orders\n  - {name: b, data_source: demo, cron: \"0 9 * * *\", sql: SELECT 1, name: c}\n",
    );
    let err = w.fails(&["task", "apply", "-f", "t.yaml"], 1);
    assert!(
        err.contains("t.yaml:6:") && err.contains("duplicate key \"name\" (first at line 6)"),
        "{err}"
    );
    // The same key in different mappings is fine.
    w.write(
        "t.yaml",
        "tasks:\n  - name: a\n    data_source: demo\n    cron: \"0 9 * * *\"\n    sql: SELECT 1\n  - name: b\n    data_source: demo\n    cron: \"0 9 * * *\"\n    sql: SELECT 2\n",
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
}
