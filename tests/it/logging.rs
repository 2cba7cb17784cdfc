//! The log file: state-changing commands append to `logging.file`, which rotates by size and
//! keeps `backup_count` old files; read-only commands leave it alone.

use crate::helpers::{Backend, DEMO_SOURCE, Workdir};

#[test]
fn changes_are_logged_and_the_file_rotates_by_size() {
    let w = Workdir::new(
        Backend::Sqlite,
        &format!(
            "{DEMO_SOURCE}logging:\n  level: INFO\n  file: ./logs/app.log\n  max_size: 400\n  backup_count: 2\n"
        ),
    );
    w.ok(&["task", "list"]);
    assert!(
        !w.path().join("logs/app.log").exists(),
        "read-only commands do not log to the file"
    );

    for i in 0..12 {
        let name = format!("wh{i}");
        w.ok(&[
            "datasource",
            "add",
            &name,
            "--type",
            "mysql",
            "--host",
            "db.internal",
            "--password",
            "pw-not-in-logs",
        ]);
        w.ok(&["datasource", "remove", &name]);
    }
    let logs = w.path().join("logs");
    let mut files: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["app.log", "app.log.1", "app.log.2"],
        "rotated, two backups kept"
    );
    let mut all = String::new();
    for f in &files {
        let text = std::fs::read_to_string(logs.join(f)).unwrap();
        assert!(text.len() < 1200, "{f} is {} bytes", text.len());
        all.push_str(&text);
    }
    assert!(
        all.contains("data source added") && all.contains("name=wh11"),
        "{all}"
    );
    assert!(!all.contains("pw-not-in-logs"));
    assert!(!all.contains('\u{1b}'), "no colour codes in the file");
}
