//! `reportd storage list | test NAME`: the storage targets of config.yaml; a test writes a
//! small object, reads it back and removes it.

use anyhow::Context as _;
use serde::Serialize;
use std::process::ExitCode;
use std::time::Instant;

use super::{print_json, table};
use crate::cli::StorageCommand;
use crate::config::Settings;
use crate::deliver::Target;

/// A target as listed: where it is, never a credential.
#[derive(Serialize)]
struct Listed {
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
    location: String,
    root: String,
    jobs: bool,
}

/// Carries out `reportd storage ...`.
///
/// # Errors
/// An unknown target; a failed test (exit 1 with the step and the service's error).
pub async fn dispatch(settings: &Settings, command: StorageCommand) -> anyhow::Result<ExitCode> {
    match command {
        StorageCommand::List { json } => {
            let listed: Vec<Listed> = settings
                .storage
                .iter()
                .map(|(name, t)| Listed {
                    name: name.clone(),
                    kind: t.kind.as_str(),
                    location: t.location(),
                    root: t.root.clone().unwrap_or_default(),
                    jobs: t.jobs,
                })
                .collect();
            if json {
                print_json(&listed)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut out = table(&["NAME", "TYPE", "WHERE", "ROOT", "JOBS"]);
            for l in listed {
                out.add_row(vec![
                    l.name,
                    l.kind.to_string(),
                    l.location,
                    l.root,
                    if l.jobs { "yes" } else { "no" }.to_string(),
                ]);
            }
            println!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        StorageCommand::Test { name } => {
            let t = settings.storage.get(&name).with_context(|| {
                format!(
                    "no storage target named {name:?} in config.yaml (see `reportd storage list`)"
                )
            })?;
            let started = Instant::now();
            let target = Target::build(t).with_context(|| format!("storage {name}"))?;
            let key = target
                .probe()
                .await
                .with_context(|| format!("storage {name} ({})", t.location()))?;
            println!(
                "storage {name}: ok ({} {}, wrote, read back and removed {key} in {:.2}s)",
                t.kind.as_str(),
                t.location(),
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
