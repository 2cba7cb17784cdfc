//! The composition root of the daemon (`reportd run`): [`App::build`] does everything that can
//! fail on start-up (the refusals, the PID lock, binding `http.bind`, opening the store with
//! its secret key and sealing the secrets older versions left in plain text, loading the
//! download-link key, the scheduler's control channel);
//! [`App::run_until_stopped`] runs the long-lived parts on one [`Shutdown`]: the HTTP server,
//! the systemd notifications (`READY=1`, watchdog pings while the loop answers, `STOPPING=1`),
//! the scheduler and the export jobs' workers; the PID file is released last.

use anyhow::Context as _;
use chrono::Utc;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::accounts::Accounts;
use crate::clock::Clock;
use crate::config::Settings;
use crate::http::{AppState, serve};
use crate::jobs::Jobs;
use crate::notify::links::LinkSigner;
use crate::schedule::control::{Control, Request};
use crate::schedule::{Options, Scheduler};
use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::supervise::pidfile::PidLock;
use crate::supervise::systemd;

/// A daemon ready to run.
pub struct App {
    settings: Arc<Settings>,
    pid_lock: PidLock,
    listener: TcpListener,
    store: Store,
    state: AppState,
    requests: mpsc::Receiver<Request>,
    clock: Clock,
}

impl App {
    /// Builds the daemon on the system clock.
    ///
    /// # Errors
    /// A refusal ([`refusals`]), another daemon holds the PID file, `http.bind` cannot be bound,
    /// the store cannot be opened or the link key loaded.
    pub async fn build(settings: Settings) -> anyhow::Result<App> {
        App::build_with(settings, Clock::default()).await
    }

    /// [`App::build`] with the clock the scheduler goes by (tests move a manual one).
    ///
    /// # Errors
    /// As [`App::build`].
    pub async fn build_with(settings: Settings, clock: Clock) -> anyhow::Result<App> {
        let started_at = Utc::now();
        if let Some(why) = refusals(&settings).into_iter().next() {
            anyhow::bail!(why);
        }
        let pid_lock = PidLock::acquire(&settings.daemon.pid_file).context("daemon.pid_file")?;
        let bind = settings.http.bind;
        let listener = TcpListener::bind(bind)
            .await
            .with_context(|| format!("http.bind {bind}: cannot listen"))?;
        let store = Store::open(&settings).await.with_context(|| {
            format!(
                "opening the store ({})",
                settings.system_database.describe()
            )
        })?;
        let sealed = store
            .seal_plaintext()
            .await
            .context("checking the secrets in the store")?;
        if sealed > 0 {
            tracing::info!(values = sealed, "encrypted plain secrets left in the store");
        }
        if let Some(why) = exposure_refusal(&settings, store.user_count().await?) {
            anyhow::bail!(why);
        }
        let links = match settings.http.file_server_url {
            Some(_) => Some(Arc::new(
                LinkSigner::load(&settings, &store)
                    .await
                    .context("loading the download link key")?,
            )),
            None => None,
        };
        let settings = Arc::new(settings);
        let (control, requests) = Control::channel();
        let jobs = Arc::new(Jobs::new(
            settings.clone(),
            store.clone(),
            crate::schedule::instance_name(),
            links.clone(),
        ));
        let state = AppState {
            settings: settings.clone(),
            store: store.clone(),
            control,
            links,
            started_at,
            accounts: Accounts::new(
                store.clone(),
                Duration::from_secs(settings.security.session_ttl),
            ),
            jobs,
            console: crate::http::console::ConsoleState::first_run(
                &store,
                &format!(
                    "http://{}",
                    listener.local_addr().unwrap_or(settings.http.bind)
                ),
            )
            .await,
            previews: Default::default(),
        };
        Ok(App {
            settings,
            pid_lock,
            listener,
            store,
            state,
            requests,
            clock,
        })
    }

    /// The address the HTTP server listens on (the real port when `http.bind` says port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.settings.http.bind)
    }

    /// Runs the HTTP server, the systemd notifications and the scheduler until `shutdown` is
    /// triggered (or the scheduler ends on its own, which triggers it), drains them, then
    /// releases the PID file.
    ///
    /// # Errors
    /// The scheduler could not start (the store cannot be reached).
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let App {
            settings,
            pid_lock,
            listener,
            store,
            state,
            requests,
            clock,
        } = self;
        let local = listener.local_addr().unwrap_or(settings.http.bind);
        tracing::info!(bind = %local, pid_file = %pid_lock.path().display(), "HTTP server listening");
        let control = state.control.clone();
        let state_jobs = state.jobs.clone();
        // HTTP outlives the scheduler's drain: /health and /status answer 503 and runs are
        // refused while executions finish; it stops once the scheduler has stopped.
        let http_stop = Shutdown::new();
        let stopped = http_stop.wait_owned();
        let server = tokio::spawn(serve(listener, state, async move {
            stopped.await;
        }));
        let (ready_tx, ready) = oneshot::channel();
        let watchdog = tokio::spawn(tell_systemd(ready, control, shutdown.clone()));
        let options = Options {
            clock,
            ready: Some(ready_tx),
            control: Some(requests),
        };
        let jobs = tokio::spawn(state_jobs.run(shutdown.clone()));
        let result = Scheduler::run(settings, store, options, shutdown.clone()).await;
        // The scheduler may end first (it could not start): the rest stops with it.
        shutdown.trigger("the scheduler stopped");
        http_stop.trigger("the scheduler stopped");
        let _ = watchdog.await;
        if let Err(e) = jobs.await {
            tracing::error!(error = %e, "export jobs task failed");
        }
        match server.await {
            Ok(Err(e)) => tracing::error!(error = %e, "HTTP server failed"),
            Err(e) => tracing::error!(error = %e, "HTTP server task failed"),
            Ok(Ok(())) => {}
        }
        drop(pid_lock);
        result?;
        Ok(())
    }
}

/// Why `run` would refuse to start with these settings, before it touches anything: a
/// public `http.bind` without `http.token`, a `daemon.pid_file` or `logging.file` that is a
/// directory or lies below a file. `check` reports the same list, so it fails wherever `run`
/// would.
pub fn refusals(settings: &Settings) -> Vec<String> {
    let mut out = Vec::new();
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

/// The refusal to listen on an address other hosts reach while nothing guards the API: no
/// `http.token` and no account in the store (`users`).
pub fn exposure_refusal(settings: &Settings, users: u64) -> Option<String> {
    let bind = settings.http.bind;
    (!bind.ip().is_loopback() && settings.http.token.expose().is_empty() && users == 0).then(|| {
        format!(
            "http.bind {bind} is reachable from other hosts and neither http.token nor an account exists: add an account (`reportd user add NAME --role admin`), set http.token, or bind 127.0.0.1 (/health, /status and /metrics stay open)"
        )
    })
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
/// long as the loop answers (a stuck loop stops the pings, and systemd restarts the daemon);
/// `STOPPING=1` when shutdown begins.
async fn tell_systemd(ready: oneshot::Receiver<()>, control: Control, shutdown: Shutdown) {
    let stopping = shutdown.clone();
    let pings = async move {
        if ready.await.is_err() {
            return std::future::pending().await;
        }
        let status = format!("READY=1\nSTATUS=scheduling\nMAINPID={}", std::process::id());
        match systemd::notify(&status) {
            Ok(true) => tracing::info!("told systemd the daemon is ready"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not notify systemd (NOTIFY_SOCKET)"),
        }
        let Some(every) = systemd::watchdog_interval() else {
            return std::future::pending().await;
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
    };
    tokio::select! {
        _ = stopping.wait() => {
            let _ = systemd::notify("STOPPING=1");
        }
        () = pings => {}
    }
}
