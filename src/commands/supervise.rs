//! `reportd start | stop | restart | status | monitor`: the supervisor. It runs before any
//! async runtime exists in this process (the daemon is started as a new process, `reportd
//! run`, in its own session) and finds the daemon through the PID file and its lock
//! ([`crate::supervise::pidfile`]) and its HTTP server on `http.bind`. `status` is in
//! `status`.

use anyhow::{Context as _, bail};
use nix::sys::signal::Signal;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode};
use std::time::{Duration, Instant};

mod status;

use crate::cli::Command;
use crate::config::Settings;
use crate::http::status::HealthBody;
use crate::supervise::monitor::RestartPolicy;
use crate::supervise::pidfile::{self, PidState};
use crate::supervise::probe::{Probe, ProbeError};
use crate::supervise::process;

/// How long `start` waits for the daemon to be healthy.
pub const START_WAIT: Duration = Duration::from_secs(15);
/// Exit status of `status` when no daemon runs (LSB's "program is not running").
pub const NOT_RUNNING: u8 = 3;
/// Health checks that fail in a row before `monitor` restarts the daemon.
const FAILED_CHECKS: u32 = 3;
const POLL: Duration = Duration::from_millis(200);

/// Runs `command` when it is a supervisor command; `None` for the others.
///
/// # Errors
/// Start failed (with the tail of the daemon's log), the PID file cannot be read, …
pub fn dispatch(command: &Command, settings: &Settings) -> anyhow::Result<Option<ExitCode>> {
    let code = match command {
        Command::Start => {
            start(settings)?;
            ExitCode::SUCCESS
        }
        Command::Stop => {
            stop(settings)?;
            ExitCode::SUCCESS
        }
        Command::Restart => {
            stop(settings)?;
            start(settings)?;
            ExitCode::SUCCESS
        }
        Command::Status { json } => status::status(settings, *json)?,
        Command::Monitor { interval } => monitor(settings, Duration::from_secs(*interval))?,
        _ => return Ok(None),
    };
    Ok(Some(code))
}

/// Where a started daemon's stdout and stderr go, beside the PID file: `reportd.log` when
/// there is no `logging.file` (it is then the daemon's log), else `reportd.out` (only what
/// the daemon prints before its log is open, such as a config error, and panics; never the
/// rotated `logging.file`, which would carry them off to `.1`).
fn console_log(settings: &Settings) -> PathBuf {
    let ext = if settings.logging.file.is_some() {
        "out"
    } else {
        "log"
    };
    settings.daemon.pid_file.with_extension(ext)
}

/// The client of the daemon's HTTP server; `None` when `http.bind` has port 0 (the port is
/// the daemon's choice, unknown here), and then only the process is checked.
fn probe(settings: &Settings) -> anyhow::Result<Option<Probe>> {
    if settings.http.bind.port() == 0 {
        return Ok(None);
    }
    // Longer than the server's own 5 s wait for the loop and the store.
    // With the token, `/status` answers also when `http.public_status` is off.
    let probe = Probe::new(settings.http.bind, Duration::from_secs(8))
        .context("HTTP client")?
        .with_token(settings.http.token.expose());
    Ok(Some(probe))
}

/// `Ok` when `/health` answers 200 from the daemon with PID `pid`; else why not.
fn health_of(probe: &Probe, pid: Option<u32>) -> Result<(), String> {
    let from = match probe.health::<HealthBody>() {
        Ok(body) => body.map(|b| b.pid),
        // The daemon's own reason, else what answered.
        Err(ProbeError::Refused { code, body, .. }) => {
            return Err(format!("{code}: {}", HealthBody::reason_in(&body)));
        }
        Err(e) => return Err(e.to_string()),
    };
    if from.is_some() && from == pid {
        return Ok(());
    }
    Err(format!(
        "{} is answered by another process (PID {})",
        probe.base(),
        from.map_or("?".into(), |p| p.to_string())
    ))
}

/// Starts the daemon and waits until it is healthy; returns its process.
fn start(settings: &Settings) -> anyhow::Result<Child> {
    let pid_file = &settings.daemon.pid_file;
    if let PidState::Running(pid) = pidfile::probe(pid_file)? {
        bail!(
            "reportd is already running (PID {}; {})",
            pid.map_or("?".into(), |p| p.to_string()),
            pid_file.display()
        );
    }
    pidfile::remove_stale(pid_file)?;
    let config = std::path::absolute(&settings.path)
        .with_context(|| format!("config {}", settings.path.display()))?;
    let console = console_log(settings);
    let offset = std::fs::metadata(&console).map_or(0, |m| m.len());
    let log_offset = settings.logging.file.clone().map(|f| {
        let at = std::fs::metadata(&f).map_or(0, |m| m.len());
        (f, at)
    });
    let mut child = process::spawn_detached(&config, &console)
        .with_context(|| format!("starting reportd run (output to {})", console.display()))?;
    let pid = child.id();
    let probe = probe(settings)?;
    let started = Instant::now();
    let mut last = String::from("no answer yet");
    let tails = || {
        let mut text = tail(&console, offset);
        if let Some((log, at)) = &log_offset {
            text = format!("{text}\n{}", tail(log, *at));
        }
        text
    };
    loop {
        if let Some(exit) = child.try_wait()? {
            bail!(
                "reportd (PID {pid}) exited during start ({exit}); {}",
                tails()
            );
        }
        if pidfile::probe(pid_file)? == PidState::Running(Some(pid)) {
            let Some(probe) = &probe else {
                println!(
                    "reportd started (PID {pid}); http.bind has port 0, so health was not checked"
                );
                return Ok(child);
            };
            match health_of(probe, Some(pid)) {
                Ok(()) => {
                    println!(
                        "reportd started (PID {pid}), healthy after {:.1}s; status at {}/status, output {}",
                        started.elapsed().as_secs_f64(),
                        probe.base(),
                        console.display()
                    );
                    return Ok(child);
                }
                Err(why) => last = why,
            }
        }
        if started.elapsed() >= START_WAIT {
            let _ = terminate(pid, pid_file, Duration::from_secs(5));
            let _ = child.wait();
            bail!(
                "reportd (PID {pid}) was not healthy within {}s ({last}); stopped it; {}",
                START_WAIT.as_secs(),
                tails()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// The last lines the daemon wrote to `log` after `offset`, for an error message.
fn tail(log: &Path, offset: u64) -> String {
    let mut text = String::new();
    let read = std::fs::File::open(log).and_then(|mut f| {
        f.seek(SeekFrom::Start(offset))?;
        f.take(1 << 20).read_to_string(&mut text)
    });
    if read.is_err() || text.trim().is_empty() {
        return format!("nothing in {}", log.display());
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = &lines[lines.len().saturating_sub(15)..];
    format!("last lines of {}:\n{}", log.display(), last.join("\n"))
}

/// Stops the daemon: SIGTERM, then SIGKILL after `daemon.shutdown_timeout` + 5 s.
fn stop(settings: &Settings) -> anyhow::Result<()> {
    let pid_file = &settings.daemon.pid_file;
    let pid = match pidfile::probe(pid_file)? {
        PidState::Stopped { stale } => {
            if stale.is_some() && pidfile::remove_stale(pid_file)? {
                println!(
                    "reportd is not running (removed the stale PID file {})",
                    pid_file.display()
                );
            } else {
                println!("reportd is not running");
            }
            return Ok(());
        }
        PidState::Running(Some(pid)) => pid,
        PidState::Running(None) => bail!(
            "{}: locked by a daemon that has not written its PID yet; try again",
            pid_file.display()
        ),
    };
    let started = Instant::now();
    let grace = Duration::from_secs(settings.daemon.shutdown_timeout + 5);
    if terminate(pid, pid_file, grace)? {
        println!(
            "reportd stopped (PID {pid}) in {:.1}s",
            started.elapsed().as_secs_f64()
        );
    } else {
        println!("reportd killed (PID {pid}) after {}s", grace.as_secs());
    }
    Ok(())
}

/// SIGTERM to `pid`; after `grace`, SIGKILL. True when it stopped on SIGTERM, false when it
/// had to be killed. The PID file is gone afterwards.
fn terminate(pid: u32, pid_file: &Path, grace: Duration) -> anyhow::Result<bool> {
    process::signal(pid, Signal::SIGTERM).with_context(|| format!("SIGTERM to PID {pid}"))?;
    if wait_stopped(pid_file, grace)? {
        return Ok(true);
    }
    eprintln!(
        "warning: reportd (PID {pid}) did not stop within {}s; sending SIGKILL",
        grace.as_secs()
    );
    process::signal(pid, Signal::SIGKILL).with_context(|| format!("SIGKILL to PID {pid}"))?;
    if !wait_stopped(pid_file, Duration::from_secs(5))? {
        bail!("reportd (PID {pid}) survived SIGKILL");
    }
    pidfile::remove_stale(pid_file)?;
    Ok(false)
}

/// Waits up to `limit` for the PID file's lock to go; true when it went.
fn wait_stopped(pid_file: &Path, limit: Duration) -> anyhow::Result<bool> {
    let started = Instant::now();
    loop {
        if matches!(pidfile::probe(pid_file)?, PidState::Stopped { .. }) {
            return Ok(true);
        }
        if started.elapsed() >= limit {
            return Ok(false);
        }
        std::thread::sleep(POLL);
    }
}

/// `reportd monitor`: checks every `interval`; restarts the daemon when its process is gone
/// or [`FAILED_CHECKS`] health checks fail in a row, with back-off and a restart budget.
fn monitor(settings: &Settings, interval: Duration) -> anyhow::Result<ExitCode> {
    let pid_file = &settings.daemon.pid_file;
    let probe = probe(settings)?;
    if probe.is_none() {
        tracing::warn!("http.bind has port 0: only the process is watched, not its health");
    }
    let mut policy = RestartPolicy::default();
    let mut failures = 0;
    // Daemons this monitor started: reaped when they end, so none stays a zombie.
    let mut children: Vec<Child> = Vec::new();
    tracing::info!(
        interval = interval.as_secs(),
        pid_file = %pid_file.display(),
        http = probe.as_ref().map_or("-", |p| p.base()),
        "monitor watching reportd"
    );
    loop {
        children.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
        let now = Instant::now();
        let why = match pidfile::probe(pid_file)? {
            PidState::Stopped { stale } => {
                failures = 0;
                Some(match stale {
                    Some(p) => format!("reportd is not running (PID {p} is gone)"),
                    None => "reportd is not running".to_string(),
                })
            }
            PidState::Running(pid) => match probe.as_ref().map_or(Ok(()), |p| health_of(p, pid)) {
                Ok(()) => {
                    if failures > 0 {
                        tracing::info!("reportd is healthy again");
                    }
                    failures = 0;
                    policy.healthy(now);
                    None
                }
                Err(why) => {
                    failures += 1;
                    tracing::warn!(
                        pid = pid.unwrap_or(0),
                        check = failures,
                        of = FAILED_CHECKS,
                        reason = %why,
                        "health check failed"
                    );
                    if failures < FAILED_CHECKS {
                        None
                    } else {
                        tracing::error!(
                            "reportd failed {FAILED_CHECKS} health checks in a row; stopping it"
                        );
                        if let Err(e) = stop(settings) {
                            tracing::error!(error = %format!("{e:#}"), "stopping reportd failed");
                        }
                        failures = 0;
                        Some(format!("unhealthy: {why}"))
                    }
                }
            },
        };
        if let Some(why) = why {
            let wait = match policy.next(now) {
                Ok(wait) => wait,
                Err(spent) => {
                    tracing::error!(
                        "GIVING UP: {spent}; reportd stays down until someone looks ({why})"
                    );
                    bail!("monitor gave up: {spent}");
                }
            };
            tracing::warn!(reason = %why, in_seconds = wait.as_secs(), "restarting reportd");
            std::thread::sleep(wait);
            match start(settings) {
                Ok(child) => {
                    tracing::info!(pid = child.id(), "reportd restarted");
                    children.push(child);
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "restarting reportd failed")
                }
            }
        }
        std::thread::sleep(interval);
    }
}
