//! `reportd run`: the daemon in the foreground (what systemd and `reportd start` run). It
//! holds the PID file, serves HTTP on `http.bind` (health, status, metrics, runs, downloads),
//! tells systemd when it is ready (`READY=1`) and, when a watchdog is set, pings it while the
//! scheduler loop answers.

use anyhow::Context as _;
use chrono::Utc;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::{interrupted, open_store};
use crate::config::Settings;
use crate::http::{AppState, serve};
use crate::notify::links::LinkSigner;
use crate::schedule::control::Control;
use crate::schedule::daemon::{RunOptions, run_with};
use crate::supervise::pidfile::PidLock;
use crate::supervise::systemd;

/// Runs the scheduler until SIGTERM/SIGINT.
///
/// # Errors
/// Another daemon holds the PID file, the store cannot be opened, or `http.bind` cannot be
/// bound.
pub async fn run(settings: &Settings) -> anyhow::Result<ExitCode> {
    let started_at = Utc::now();
    let shutdown = interrupted();
    if let Some(why) = refusals(settings).into_iter().next() {
        anyhow::bail!(why);
    }
    let pid_lock = PidLock::acquire(&settings.daemon.pid_file).context("daemon.pid_file")?;
    let bind = settings.http.bind;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("http.bind {bind}: cannot listen"))?;
    let store = open_store(settings).await?;
    let links = match settings.http.file_server_url {
        Some(_) => Some(Arc::new(
            LinkSigner::load(settings, &store)
                .await
                .context("loading the download link key")?,
        )),
        None => None,
    };
    let (control, requests) = Control::channel();
    let state = AppState {
        settings: Arc::new(settings.clone()),
        store: store.clone(),
        control: control.clone(),
        links,
        started_at,
    };
    let local = listener.local_addr().unwrap_or(bind);
    tracing::info!(bind = %local, pid_file = %pid_lock.path().display(), "HTTP server listening");
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async move {
        let _ = http_stopped.await;
    }));

    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let watchdog = tokio::spawn(tell_systemd(ready, control));
    let options = RunOptions {
        ready: Some(ready_tx),
        control: Some(requests),
        ..RunOptions::default()
    };
    let shutdown = async {
        let reason = shutdown.await;
        let _ = systemd::notify("STOPPING=1");
        reason
    };
    let result = run_with(settings.clone(), store, options, shutdown).await;
    watchdog.abort();
    let _ = stop_http.send(());
    match server.await {
        Ok(Err(e)) => tracing::error!(error = %e, "HTTP server failed"),
        Err(e) => tracing::error!(error = %e, "HTTP server task failed"),
        Ok(Ok(())) => {}
    }
    drop(pid_lock);
    result?;
    Ok(ExitCode::SUCCESS)
}

/// Why `run` would refuse to start with these settings, before it touches anything: a
/// public `http.bind` without `http.token`, a `daemon.pid_file` or `logging.file` that is a
/// directory or lies below a file. `check` reports the same list, so it fails wherever `run`
/// would.
pub fn refusals(settings: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    let bind = settings.http.bind;
    if !bind.ip().is_loopback() && settings.http.token.expose().is_empty() {
        out.push(format!(
            "http.bind {bind} is reachable from other hosts and http.token is not set: set a token (POST /tasks/{{id}}/run needs it; /health, /status and /metrics stay open) or bind 127.0.0.1"
        ));
    }
    let files = [
        ("daemon.pid_file", Some(&settings.daemon.pid_file)),
        ("logging.file", settings.logging.file.as_ref()),
    ];
    for (key, path) in files {
        if let Some(why) = path.and_then(|p| cannot_be_file(p)) {
            out.push(format!(
                "{key} {}: {why}",
                path.map_or_else(String::new, |p| p.display().to_string())
            ));
        }
    }
    let dirs = [
        ("export.output_dir", &settings.export.output_dir),
        ("export.temp_dir", &settings.export.temp_dir),
    ];
    for (key, path) in dirs {
        if let Some(file) = path
            .ancestors()
            .find(|d| d.exists())
            .filter(|d| !d.is_dir())
        {
            out.push(format!(
                "{key} {}: cannot create it: {} is not a directory",
                path.display(),
                file.display()
            ));
        }
    }
    out
}

/// Why `path` can never be a file the daemon creates: it is a directory, or what should be
/// one of its directories is a file.
fn cannot_be_file(path: &std::path::Path) -> Option<String> {
    if path.is_dir() {
        return Some("is a directory: name a file".into());
    }
    let mut dir = path.parent();
    while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
        if d.exists() {
            return (!d.is_dir())
                .then(|| format!("cannot create it: {} is not a directory", d.display()));
        }
        dir = d.parent();
    }
    None
}

/// Sends `READY=1` once the loop runs, then `WATCHDOG=1` at half the watchdog interval for as
/// long as the loop answers (a stuck loop stops the pings, and systemd restarts the daemon).
async fn tell_systemd(ready: tokio::sync::oneshot::Receiver<()>, control: Control) {
    if ready.await.is_err() {
        return;
    }
    let status = format!("READY=1\nSTATUS=scheduling\nMAINPID={}", std::process::id());
    match systemd::notify(&status) {
        Ok(true) => tracing::info!("told systemd the daemon is ready"),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "could not notify systemd (NOTIFY_SOCKET)"),
    }
    let Some(every) = systemd::watchdog_interval() else {
        return;
    };
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let wait = every.min(Duration::from_secs(10));
        if control.snapshot(wait, 0).await.is_some() {
            if let Err(e) = systemd::notify("WATCHDOG=1") {
                tracing::warn!(error = %e, "could not ping the systemd watchdog");
            }
        } else {
            tracing::error!("scheduler loop does not answer; withholding the watchdog ping");
        }
    }
}
