//! The subcommands, one file per family: [`check`], [`cleanup`], [`cron`], [`datasource`], [`export`],
//! [`jobs`], [`logs`], [`notify`], [`daemon`], [`secrets`], [`storage`], [`supervise`], [`task`]. Each returns the process exit code or an error that `main` prints as
//! one line.

pub mod cancel;
pub mod check;
pub mod cleanup;
pub mod cron;
pub mod daemon;
pub mod datasource;
pub mod export;
pub mod jobs;
pub mod logs;
pub mod notify;
pub mod secrets;
pub mod storage;
pub mod supervise;
pub mod task;
pub mod user;

use anyhow::Context as _;
use comfy_table::{ContentArrangement, Table, presets};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::export::ExportOutcome;

use crate::cli::Command;
use crate::config::Settings;
use crate::store::Store;

/// Carries out one command.
///
/// # Errors
/// Whatever the command fails with, as a one-line chain.
pub async fn dispatch(command: Command, settings: &Settings) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run => daemon::foreground(settings).await,
        Command::Start
        | Command::Stop
        | Command::Restart
        | Command::Status { .. }
        | Command::Monitor { .. } => {
            anyhow::bail!("supervisor commands run without a runtime: see commands::supervise")
        }
        Command::Check { no_connect } => check::dispatch(settings, no_connect).await,
        Command::Datasource(c) => datasource::dispatch(settings, c).await,
        Command::Export(args) => export::dispatch(settings, args).await,
        Command::Cron(c) => cron::dispatch(settings, c),
        Command::Logs { task, limit, json } => {
            logs::dispatch(settings, task.as_deref(), limit, json).await
        }
        Command::Task(c) => task::dispatch(settings, c).await,
        Command::Notify(c) => notify::dispatch(settings, c).await,
        Command::Cleanup { days, dry_run } => cleanup::dispatch(settings, days, dry_run).await,
        Command::Cancel { execution } => cancel::dispatch(settings, execution).await,
        Command::Jobs(c) => jobs::dispatch(settings, c).await,
        Command::User(c) => user::dispatch(settings, c).await,
        Command::Secrets(c) => secrets::dispatch(settings, c).await,
        Command::Storage(c) => storage::dispatch(settings, c).await,
    }
}

/// Connects to the system store named by the config, with the secret key.
///
/// # Errors
/// The store or key error, with where the store is.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    Store::open(settings).await.with_context(|| {
        format!(
            "opening the store ({})",
            settings.system_database.describe()
        )
    })
}

/// Records a change made on the command line in the audit log: the actor is the OS user
/// ([`cli_user`]), the address `cli`. A failure to record is a warning.
pub async fn audit(store: &Store, action: &str, object: &str, detail: Option<serde_json::Value>) {
    let actor = cli_user();
    let entry = crate::store::audit::NewAudit {
        actor: &actor,
        via: "cli",
        address: Some("cli"),
        action,
        object,
        detail,
    };
    if let Err(e) = store.record_audit(&entry).await {
        tracing::warn!(error = %e, action, object, "recording an audit entry failed");
    }
}

/// How long `cancel` waits for what it cancelled to stop.
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// After a cancel: waits up to 10 s for `what` (`execution 12`, `job 3`) to stop running,
/// reading `status` (running?, status) every 200 ms, and prints its final status.
///
/// # Errors
/// It is gone, still running after the wait, or `status` failed.
pub async fn wait_ended<F, Fut>(what: &str, status: F) -> anyhow::Result<ExitCode>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<(bool, String)>>>,
{
    let deadline = tokio::time::Instant::now() + CANCEL_WAIT;
    loop {
        match status().await? {
            Some((true, _)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Some((true, _)) => anyhow::bail!(
                "{what} is still running after {}s: is the instance that runs it alive? (see `reportd status`)",
                CANCEL_WAIT.as_secs()
            ),
            Some((false, status)) => {
                println!("{what}: {status}");
                return Ok(ExitCode::SUCCESS);
            }
            None => anyhow::bail!("{what} is gone"),
        }
    }
}

/// Who runs the command: the name of the process's user id (from the system's user database,
/// so a cron job or a unit without `$USER` is named too, and `$USER` cannot name someone
/// else); as root, the user behind `sudo` when there is one; `$USER`, else `uid N`, when the
/// uid has no name.
pub fn cli_user() -> String {
    let uid = nix::unistd::getuid();
    if uid.is_root()
        && let Ok(name) = std::env::var("SUDO_USER")
        && !name.is_empty()
    {
        return name;
    }
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| format!("uid {uid}")),
    }
}

/// A borderless table with a header, for listings.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().copied());
    t
}

/// Prints a value as pretty JSON.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM, with which one it was. The handlers are installed when this
/// is called, not when first polled, so a signal during start-up is not lost (nor fatal).
pub fn interrupted() -> impl std::future::Future<Output = String> {
    crate::shutdown::Shutdown::on_signals().wait_owned()
}

/// A progress line on a terminal (rows, rows/s, elapsed); nothing otherwise.
pub struct Progress {
    task: Option<(indicatif::ProgressBar, tokio::task::JoinHandle<()>)>,
}

impl Progress {
    /// Starts showing `rows` on stderr when it is a terminal.
    pub fn start(rows: Arc<AtomicU64>) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress { task: None };
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {human_pos} rows  {per_sec}  {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        let shown = bar.clone();
        let ticker = tokio::spawn(async move {
            loop {
                shown.set_position(rows.load(Ordering::Relaxed));
                shown.tick();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Progress {
            task: Some((bar, ticker)),
        }
    }

    /// Removes the progress line.
    pub fn finish(self) {
        if let Some((bar, ticker)) = self.task {
            ticker.abort();
            bar.finish_and_clear();
        }
    }
}

/// The one summary line of an export: rows, bytes, seconds, path(s) (as `task run` prints).
pub fn print_summary(outcome: &ExportOutcome) {
    println!("{}", crate::run::report::outcome_line(outcome));
}
