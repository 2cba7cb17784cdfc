//! The `reportd` binary: parse the command line, load the config, set up logging, dispatch.

use clap::Parser;
use std::process::ExitCode;

use reportd::cli::{Cli, Command};
use reportd::config::Settings;

fn main() -> ExitCode {
    // Before any thread or file: what reportd and its libraries create is the user's only.
    reportd::private::restrict_umask();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(&cli.config)?;
    let stderr_level = match cli.verbose {
        // The daemon tells what it does; management commands only warn.
        0 if matches!(cli.command, Command::Run | Command::Monitor { .. }) => tracing::Level::INFO,
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    // A daemon started by `reportd start` has its stderr in the log file already.
    let detached = matches!(cli.command, Command::Run)
        && std::env::var_os(reportd::supervise::process::DETACHED_ENV).is_some()
        && settings.logging.file.is_some();
    let _guard = reportd::logging::init(
        &settings.logging,
        (!detached).then_some(stderr_level),
        cli.command.writes_log_file(),
    )?;
    // From here a panic is a log line (file and stderr), not a bare stderr message.
    reportd::panics::log_panics();
    if !matches!(cli.command, Command::Check { .. }) {
        // `check` prints them in its report.
        for w in &settings.warnings {
            tracing::warn!("{w}");
        }
    }
    // The supervisor starts the daemon before any runtime exists here.
    if let Some(code) = reportd::commands::supervise::dispatch(&cli.command, &settings)? {
        return Ok(code);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // A command's panic (a bug) ends it with one error line and exit status 1; runs catch
    // their own and record them.
    let command = std::panic::AssertUnwindSafe(reportd::commands::dispatch(cli.command, &settings));
    match runtime.block_on(futures_util::FutureExt::catch_unwind(command)) {
        Ok(result) => result,
        Err(payload) => anyhow::bail!(
            "internal error: panicked: {}",
            reportd::panics::message(payload.as_ref())
        ),
    }
}
