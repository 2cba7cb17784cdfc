//! The daemon as a process, seen from the supervisor: start `reportd run` detached (its own
//! session, output appended to a log file), send it signals, read its CPU, memory and start
//! time (sysinfo).

use chrono::{DateTime, Utc};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Serialize;
use std::fs::OpenOptions;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Set in the environment of a daemon started by `reportd start`: it logs to its log file
/// only (its stderr is that file already).
pub const DETACHED_ENV: &str = "REPORTD_DETACHED";

/// Starts `reportd --config CONFIG run` in a new session (no controlling terminal, not in the
/// caller's process group), stdin from /dev/null and stdout/stderr appended to `console`.
/// This is a fork + exec, so the new process starts without any of the caller's threads or
/// runtime.
///
/// # Errors
/// The log file cannot be opened or the binary cannot be started.
pub fn spawn_detached(config: &Path, console: &Path) -> std::io::Result<Child> {
    if let Some(dir) = console.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let out = OpenOptions::new().create(true).append(true).open(console)?;
    let err = out.try_clone()?;
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("--config")
        .arg(config)
        .arg("run")
        .env(DETACHED_ENV, "1")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    if let Some(dir) = config.parent().filter(|d| !d.as_os_str().is_empty()) {
        cmd.current_dir(dir);
    }
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    cmd.spawn()
}

/// Sends `signal` to `pid`; false when there is no such process.
///
/// # Errors
/// Not permitted to signal it.
pub fn signal(pid: u32, signal: Signal) -> std::io::Result<bool> {
    let pid = Pid::from_raw(i32::try_from(pid).map_err(std::io::Error::other)?);
    match kill(pid, signal) {
        Ok(()) => Ok(true),
        Err(nix::errno::Errno::ESRCH) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// What the operating system tells about the daemon's process.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessInfo {
    /// Its PID.
    pub pid: u32,
    /// CPU use over a short sample, percent of one core.
    pub cpu_percent: f32,
    /// Resident memory, bytes.
    pub memory_bytes: u64,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// Seconds since it started.
    pub uptime_seconds: u64,
}

/// Samples `pid` for CPU use (over sysinfo's minimum interval, about 200 ms), memory and
/// start time; `None` when there is no such process.
pub fn info(pid: u32) -> Option<ProcessInfo> {
    use sysinfo::{Pid as SysPid, ProcessRefreshKind, ProcessesToUpdate, System};
    let id = SysPid::from_u32(pid);
    let mut system = System::new().ok()?;
    let kind = ProcessRefreshKind::nothing().with_cpu().with_memory();
    let refresh = |system: &mut System| {
        system.refresh_processes_specifics(ProcessesToUpdate::Some(&[id]), true, kind)
    };
    refresh(&mut system);
    std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
    refresh(&mut system);
    let p = system.process(id)?;
    Some(ProcessInfo {
        pid,
        cpu_percent: p.cpu_usage(),
        memory_bytes: p.memory(),
        started_at: DateTime::from_timestamp(i64::try_from(p.start_time()).ok()?, 0),
        uptime_seconds: p.run_time(),
    })
}
