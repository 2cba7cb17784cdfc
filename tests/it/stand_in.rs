//! A stand-in server (`tests/stand_ins/<script>`, Python standard library only): started
//! with its log file and arguments, it prints its port and logs every request it gets as a
//! JSON line, which the tests read back.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// Reads the `PORT n` line a started server (`what`) prints first on its stdout.
pub fn read_port(child: &mut Child, what: &str) -> u16 {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{what} did not start; it printed {line:?}"))
}

/// A running stand-in, killed on drop.
pub struct StandIn {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl StandIn {
    /// Starts `tests/stand_ins/<script>` with its log file and `args`.
    pub fn script(script: &str, args: &[&str]) -> StandIn {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("requests.jsonl");
        let path = format!("{}/tests/stand_ins/{script}", env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new("python3")
            .arg(path)
            // The stand-ins import common.py: no __pycache__ left in the source tree.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg(&log)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the stand-in");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the stand-in prints its port");
        StandIn {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Value> {
        match std::fs::read_to_string(&self.log) {
            Ok(text) => text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The error's `Display` and `Debug`, checked to be one line and to show none of `hidden`
/// (tokens, keys, secrets).
pub fn assert_clean<E: std::fmt::Display + std::fmt::Debug>(err: &E, hidden: &[&str]) -> String {
    let shown = format!("{err} | {err:?}");
    for h in hidden {
        assert!(!shown.contains(h), "{h} leaked: {shown}");
    }
    assert!(!err.to_string().contains('\n'), "not one line: {err}");
    shown
}
