//! The subcommands, one file per family: [`check`], [`datasource`], [`task`]. Each returns
//! the process exit code or an error that `main` prints as one line.

pub mod check;
pub mod datasource;
pub mod task;

use anyhow::Context as _;
use comfy_table::{ContentArrangement, Table, presets};
use std::process::ExitCode;

use crate::cli::Command;
use crate::config::Settings;
use crate::store::Store;

/// Runs one command.
///
/// # Errors
/// Whatever the command fails with, as a one-line chain.
pub async fn run(command: Command, settings: &Settings) -> anyhow::Result<ExitCode> {
    match command {
        Command::Check { no_connect } => check::run(settings, no_connect).await,
        Command::Datasource(c) => datasource::run(settings, c).await,
        Command::Task(c) => task::run(settings, c).await,
    }
}

/// Connects to the system store named by the config.
///
/// # Errors
/// The store error, with where the store is.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    Store::connect(&settings.system_database)
        .await
        .with_context(|| {
            format!(
                "opening the store ({})",
                settings.system_database.describe()
            )
        })
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
