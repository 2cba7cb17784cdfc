//! Config loading through the binary: the shipped file, the seed system's file, and the
//! errors an operator makes (each one line, exit 1, naming file, line and key).

use crate::helpers::{Backend, Workdir, repo, reportd_cmd};

#[test]
fn help_lists_the_commands() {
    let out = reportd_cmd().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for cmd in ["check", "datasource", "task"] {
        assert!(text.contains(cmd), "{cmd} missing from --help: {text}");
    }
}

#[test]
fn shipped_config_passes_check_without_connecting() {
    let out = reportd_cmd()
        .current_dir(repo())
        .args(["--config", "config.yaml", "check", "--no-connect"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ok    config config.yaml"), "{stdout}");
    assert!(
        stdout.contains("ok    template ./templates/dingtalk_report.md"),
        "{stdout}"
    );
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

#[test]
fn seed_fixture_loads_with_a_flask_warning() {
    // A copy of ../shared/fixtures/seed-001-config.yaml, so the test runs wherever the
    // repository is checked out.
    let fixture = repo().join("tests/fixtures/seed-001-config.yaml");
    let shared = repo().join("../shared/fixtures/seed-001-config.yaml");
    if let Ok(original) = std::fs::read(&shared) {
        assert_eq!(
            original,
            std::fs::read(&fixture).unwrap(),
            "the copy is current"
        );
    }
    let out = reportd_cmd()
        .arg("--config")
        .arg(&fixture)
        .args(["check", "--no-connect"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("(2 data source(s))"), "{stdout}");
    assert!(
        stdout.contains("warn") && stdout.contains("`flask` section"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("your_password"),
        "a password was printed: {stdout}"
    );
}

#[test]
fn broken_yaml_names_file_line_and_column() {
    // The store section takes lines 1-3; the bad indentation is on line 6.
    let w = Workdir::new(
        Backend::Sqlite,
        "export:\n  chunk_size: 10\n   output_dir: x\n",
    );
    let err = w.fails(&["check", "--no-connect"], 1);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("error: config.yaml:5:"), "{err}");
}

#[test]
fn misspelled_key_names_the_key_and_its_line() {
    let w = Workdir::new(
        Backend::Sqlite,
        "export:\n  chunk_size: 10\n  outptu_dir: ./x\n",
    );
    let err = w.fails(&["check", "--no-connect"], 1);
    assert!(err.starts_with("error: config.yaml:6:3:"), "{err}");
    assert!(err.contains("unknown field `outptu_dir`"), "{err}");
    let w = Workdir::new(Backend::Sqlite, "schedular:\n  timezone: UTC\n");
    let err = w.fails(&["check", "--no-connect"], 1);
    assert!(
        err.starts_with("error: config.yaml:4:1:") && err.contains("`schedular`"),
        "{err}"
    );
}

#[test]
fn bad_values_and_missing_env_are_located() {
    let w = Workdir::new(Backend::Sqlite, "scheduler:\n  timezone: Asia/Shanghia\n");
    let err = w.fails(&["check", "--no-connect"], 1);
    assert!(
        err.starts_with("error: config.yaml:5:") && err.contains("Asia/Shanghia"),
        "{err}"
    );
    let w = Workdir::new(
        Backend::Sqlite,
        "email:\n  password: ${REPORTD_IT_SURELY_UNSET}\n",
    );
    let err = w.fails(&["check", "--no-connect"], 1);
    assert!(
        err.contains("config.yaml:5:") && err.contains("REPORTD_IT_SURELY_UNSET is not set"),
        "{err}"
    );
    let w = Workdir::new(Backend::Sqlite, "logging:\n  max_size: 10XB\n");
    let err = w.fails(&["check", "--no-connect"], 1);
    assert!(
        err.contains("config.yaml:5:") && err.contains("unknown size unit"),
        "{err}"
    );
}

#[test]
fn env_values_reach_the_settings_and_secrets_stay_hidden() {
    let w = Workdir::new(
        Backend::Sqlite,
        "data_sources:\n  wh:\n    type: mysql\n    host: ${REPORTD_IT_HOST:-127.0.0.1}\n    port: ${REPORTD_IT_PORT}\n    username: root\n    password: ${REPORTD_IT_PW}\n",
    );
    let out = w
        .cmd(&["datasource", "list", "--json"])
        .env("REPORTD_IT_PORT", "3307")
        .env("REPORTD_IT_PW", "s3cr3t-pw")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("root@127.0.0.1:3307/"), "{stdout}");
    assert!(!stdout.contains("s3cr3t-pw"), "{stdout}");
}

#[test]
fn missing_config_file_is_one_clear_line() {
    let err = reportd_cmd()
        .args(["--config", "/nonexistent/reportd.yaml", "task", "list"])
        .output()
        .unwrap();
    assert_eq!(err.status.code(), Some(1));
    let text = String::from_utf8_lossy(&err.stderr);
    assert_eq!(
        text.trim(),
        "error: /nonexistent/reportd.yaml: cannot read: No such file or directory (os error 2)"
    );
}

#[test]
fn bad_usage_exits_2() {
    let out = reportd_cmd().args(["task", "frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
