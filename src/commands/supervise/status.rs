//! `reportd status`: what the operating system says of the daemon's process (CPU, memory,
//! uptime), what its `/status` says ([`StatusBody`], parsed as the type the daemon serializes)
//! and its log files; as text or, with `--json`, as JSON. Exits 0 when healthy, 1 when not,
//! [`NOT_RUNNING`] when no daemon runs.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::{NOT_RUNNING, console_log, health_of, probe};
use crate::config::Settings;
use crate::http::status::StatusBody;
use crate::humanize;
use crate::supervise::pidfile::{self, PidState};
use crate::supervise::process;

/// `reportd status`: what the operating system and the daemon's `/status` say.
pub(super) fn status(settings: &Settings, as_json: bool) -> anyhow::Result<ExitCode> {
    let pid_file = &settings.daemon.pid_file;
    let logs = log_files(settings);
    let pid = match pidfile::probe(pid_file)? {
        PidState::Running(pid) => pid,
        PidState::Stopped { stale } => {
            if as_json {
                let v = json!({ "running": false, "stale_pid": stale, "pid_file": pid_file, "logs": logs });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                match stale {
                    Some(p) => println!(
                        "reportd is not running (PID {p} in {} is gone)",
                        pid_file.display()
                    ),
                    None => println!("reportd is not running"),
                }
                print_logs(&logs, settings.scheduler.timezone.0);
            }
            return Ok(ExitCode::from(NOT_RUNNING));
        }
    };
    let info = pid.and_then(process::info);
    let probe = probe(settings)?;
    let (problem, daemon) = match &probe {
        Some(probe) => (
            health_of(probe, pid).err(),
            probe.status::<StatusBody>().ok(),
        ),
        None => (None, None),
    };
    let healthy = problem.is_none();
    let base = probe.as_ref().map(|p| p.base().to_string());
    if as_json {
        let v = json!({
            "running": true,
            "healthy": healthy,
            "problem": problem,
            "pid": pid,
            "pid_file": pid_file,
            "process": info,
            "http": base,
            "daemon": daemon,
            "logs": logs,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let tz = settings.scheduler.timezone.0;
        let pid_text = pid.map_or("?".into(), |p| p.to_string());
        match &problem {
            None => println!("reportd is running (PID {pid_text}), healthy"),
            Some(why) => println!("reportd is running (PID {pid_text}), UNHEALTHY: {why}"),
        }
        if let Some(i) = &info {
            if let Some(at) = i.started_at {
                println!(
                    "  started      {} (up {})",
                    local(at, tz),
                    humanize::uptime(Duration::from_secs(i.uptime_seconds))
                );
            }
            println!(
                "  cpu, memory  {:.1} %, {}",
                i.cpu_percent,
                humanize::bytes(i.memory_bytes)
            );
        }
        match &base {
            Some(base) => println!("  http         {base}"),
            None => println!("  http         port 0 (chosen by the daemon): health not checked"),
        }
        if let Some(d) = &daemon {
            print_daemon(d, tz);
        }
        print_logs(&logs, tz);
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn local(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S %:z")
        .to_string()
}

/// `n`, or `null` when the daemon could not tell.
fn count(n: Option<usize>) -> String {
    n.map_or("null".into(), |n| n.to_string())
}

/// The daemon's `/status`, as text.
fn print_daemon(d: &StatusBody, tz: Tz) {
    let state = match &d.store.error {
        Some(e) => format!("ERROR: {e}"),
        None => "ok".into(),
    };
    println!("  store        {} ({state})", d.store.backend);
    println!(
        "  tasks        {} ({} enabled, {} scheduled), data sources {}",
        count(d.tasks.as_ref().map(|t| t.total)),
        count(d.tasks.as_ref().map(|t| t.enabled)),
        count(d.scheduler.scheduled_tasks),
        count(d.data_sources)
    );
    if let Some(rate) = &d.last_24h {
        println!("  last 24 h    {} succeeded", rate.success_rate);
    }
    let running = d.running.as_deref().unwrap_or_default();
    println!("  running      {}", running.len());
    for r in running {
        println!(
            "    {} ({}, fire {})",
            r.task,
            r.trigger,
            local(r.scheduled_at, tz)
        );
    }
    let next = d.next_fires.as_deref().unwrap_or_default();
    if !next.is_empty() {
        println!("  next fires");
        for f in next {
            println!("    {}  {}", local(f.at, tz), f.task);
        }
    }
}

/// A log file, for `status`.
#[derive(Debug, Serialize)]
struct LogFile {
    path: PathBuf,
    bytes: u64,
    /// Its last change.
    modified: Option<DateTime<Utc>>,
}

/// `logging.file` and its rotated copies (`.1`, `.2`, …), and the start output file when it
/// is another file: path, size, last change.
fn log_files(settings: &Settings) -> Vec<LogFile> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(file) = &settings.logging.file {
        candidates.push(file.clone());
        for n in 1..=settings.logging.backup_count {
            let mut p = file.clone().into_os_string();
            p.push(format!(".{n}"));
            candidates.push(p.into());
        }
    }
    let console = console_log(settings);
    if !candidates.contains(&console) {
        candidates.push(console);
    }
    candidates
        .into_iter()
        .filter_map(|p| {
            let m = std::fs::metadata(&p).ok()?;
            Some(LogFile {
                bytes: m.len(),
                modified: m.modified().ok().map(DateTime::from),
                path: p,
            })
        })
        .collect()
}

fn print_logs(logs: &[LogFile], tz: Tz) {
    if logs.is_empty() {
        return;
    }
    println!("  logs");
    for l in logs {
        println!(
            "    {}  {}  changed {}",
            l.path.display(),
            humanize::bytes(l.bytes),
            l.modified.map_or("?".into(), |t| local(t, tz))
        );
    }
}
