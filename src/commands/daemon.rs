//! `reportd run`: the daemon in the foreground (what systemd and `reportd start` run). It
//! holds the PID file, serves HTTP on `http.bind` (health, status, metrics, runs, downloads),
//! tells systemd when it is ready (`READY=1`) and, when a watchdog is set, pings it while the
//! scheduler loop answers; all of it is [`crate::app::App`].

use std::process::ExitCode;

use crate::app::App;
use crate::config::Settings;
use crate::shutdown::Shutdown;

/// Runs the daemon until SIGTERM/SIGINT.
///
/// # Errors
/// Another daemon holds the PID file, the store cannot be opened, or `http.bind` cannot be
/// bound.
pub async fn foreground(settings: &Settings) -> anyhow::Result<ExitCode> {
    // The handlers go in first: a signal during start-up is not lost.
    let shutdown = Shutdown::on_signals();
    App::build(settings.clone())
        .await?
        .run_until_stopped(shutdown)
        .await?;
    Ok(ExitCode::SUCCESS)
}
