//! Tests of loading and checking `config.yaml`.

use super::*;

fn parse(text: &str) -> Result<Settings, ConfigError> {
    Settings::parse(text, Path::new("conf/config.yaml"))
}

#[test]
fn empty_file_gives_defaults() {
    let s = parse("# nothing\n").unwrap();
    assert_eq!(s.system_database.kind, StoreKind::Sqlite);
    assert_eq!(
        s.system_database.sqlite_path,
        PathBuf::from("conf/data/system.db")
    );
    assert_eq!(s.scheduler.timezone.to_string(), "Asia/Shanghai");
    assert_eq!(s.http.bind.to_string(), "127.0.0.1:5002");
    assert_eq!(s.email.security(), Security::Tls);
}

#[test]
fn empty_sections_are_defaults() {
    let s = parse("dingtalk:\nemail:\n  smtp_port: 587\n").unwrap();
    assert_eq!(s.dingtalk.timeout, 10);
    assert_eq!(s.email.security(), Security::Starttls);
}

#[test]
fn unknown_key_names_key_and_line() {
    let e = parse("export:\n  chunk_size: 10\n  chunk_sise: 5\n").unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("conf/config.yaml:3:"), "{msg}");
    assert!(msg.contains("chunk_sise"), "{msg}");
    assert!(!msg.contains(" at line "), "{msg}");
}

#[test]
fn syntax_error_has_line_and_column() {
    let msg = parse("export:\n  chunk_size: [1,\n")
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("conf/config.yaml:"), "{msg}");
    assert!(matches!(
        parse("a: b: c").unwrap_err(),
        ConfigError::Yaml(crate::yaml::YamlError::Parse { line: 1, .. })
    ));
}

#[test]
fn bad_values_are_located() {
    let msg = parse("scheduler:\n  timezone: Mars/Base\n")
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("conf/config.yaml:2:"), "{msg}");
    assert!(msg.contains("Mars/Base"), "{msg}");
    let msg = parse("data_sources:\n  wh:\n    type: mysql\n")
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "conf/config.yaml:2: data_sources.wh: mysql needs `host` or `url`"
    );
}

#[test]
fn env_values_and_missing_env() {
    // SAFETY: test-only variable names unique to this test.
    unsafe { std::env::set_var("REPORTD_T_PW", "p:w #1") };
    let s = parse(
        "data_sources:\n  wh:\n    type: mysql\n    host: h\n    port: ${REPORTD_T_PORT:-3307}\n    password: ${REPORTD_T_PW}\n",
    )
    .unwrap();
    let wh = &s.data_sources["wh"];
    assert_eq!(wh.port, Some(3307));
    assert_eq!(wh.password.expose(), "p:w #1");
    assert!(!format!("{s:?}").contains("p:w #1"));
    let msg = parse("email:\n  password: ${REPORTD_T_UNSET}\n")
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("conf/config.yaml:2:"), "{msg}");
    assert!(msg.contains("REPORTD_T_UNSET is not set"), "{msg}");
}

#[test]
fn line_of_key_finds_first() {
    assert_eq!(line_of_key("a:\n  b: 1\n  bb: 2\n", "bb"), Some(3));
    assert_eq!(line_of_key("a: 1", "z"), None);
}

#[test]
fn read_only_accounts_is_warn_or_require() {
    assert_eq!(
        parse("# nothing\n").unwrap().security.read_only_accounts,
        ReadOnlyAccounts::Warn
    );
    let s = parse("security:\n  read_only_accounts: require\n").unwrap();
    assert_eq!(s.security.read_only_accounts, ReadOnlyAccounts::Require);
    let e = parse("security:\n  read_only_accounts: maybe\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("read_only_accounts") && e.contains("maybe") && e.contains("require"),
        "{e}"
    );
}
