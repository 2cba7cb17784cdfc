//! `reportd datasource list | add | test | remove`.

use anyhow::{Context as _, bail};
use serde::Serialize;
use std::process::ExitCode;

use super::{audit, open_store, print_json, table};
use crate::cli::{DatasourceAdd, DatasourceCommand};
use crate::config::Settings;
use crate::model::datasource::DataSourceSpec;
use crate::model::secret::Secret;
use crate::source::Source;
use crate::store::catalog::{self, Origin};

/// Runs a `datasource` subcommand.
///
/// # Errors
/// Store errors, unknown names, failed connections.
pub async fn dispatch(settings: &Settings, command: DatasourceCommand) -> anyhow::Result<ExitCode> {
    match command {
        DatasourceCommand::List { json } => list(settings, json).await,
        DatasourceCommand::Add(add) => add_source(settings, add).await,
        DatasourceCommand::Test { name } => test(settings, &name).await,
        DatasourceCommand::Remove { name, force } => remove(settings, &name, force).await,
    }
}

#[derive(Serialize)]
struct Listed<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    origin: Origin,
    location: String,
    shadowed: bool,
}

async fn list(settings: &Settings, json: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let entries = catalog::entries(settings, Some(&store)).await?;
    let listed: Vec<Listed<'_>> = entries
        .iter()
        .map(|e| Listed {
            name: &e.name,
            kind: e.spec.kind.as_str(),
            origin: e.origin,
            location: e.spec.location(),
            shadowed: e.shadowed,
        })
        .collect();
    if json {
        print_json(&listed)?;
    } else {
        let mut t = table(&["NAME", "TYPE", "ORIGIN", "LOCATION"]);
        for l in &listed {
            let origin = match (l.origin, l.shadowed) {
                (Origin::Config, _) => "config",
                (Origin::Store, false) => "store",
                (Origin::Store, true) => "store (shadowed by config)",
            };
            t.add_row(vec![l.name, l.kind, origin, &l.location]);
        }
        println!("{t}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn add_source(settings: &Settings, add: DatasourceAdd) -> anyhow::Result<ExitCode> {
    if settings.data_sources.contains_key(&add.name) {
        bail!(
            "data source {} is defined in {}; change it there",
            add.name,
            settings.path.display()
        );
    }
    if let Err(e) = crate::model::plain::check(&add.name) {
        bail!("data source name {:?} {e}", add.name);
    }
    let mut spec = DataSourceSpec::new(add.kind);
    spec.host = add.host;
    spec.port = add.port;
    spec.database = add.database;
    spec.username = add.username;
    spec.password = Secret::new(add.password.unwrap_or_default());
    spec.charset = add.charset;
    spec.url = Secret::new(add.url.unwrap_or_default());
    spec.max_connections = add.max_connections;
    if let Some(path) = spec.sqlite_path().filter(|p| p.is_relative()) {
        let cwd = std::env::current_dir().context("current directory")?;
        spec.database = Some(cwd.join(path).to_string_lossy().into_owned());
    }
    spec.validate()
        .map_err(|m| anyhow::anyhow!("data source {}: {m}", add.name))?;
    let store = open_store(settings).await?;
    store.add_data_source(&add.name, &spec).await?;
    tracing::info!(name = %add.name, kind = %spec.kind, location = %spec.location(), "data source added");
    audit(
        &store,
        "datasource.add",
        &format!("data source {}", add.name),
        Some(serde_json::json!({ "type": spec.kind.to_string(), "location": spec.location() })),
    )
    .await;
    println!(
        "added data source {} ({} {})",
        add.name,
        spec.kind,
        spec.location()
    );
    println!("check it with: reportd datasource test {}", add.name);
    Ok(ExitCode::SUCCESS)
}

async fn test(settings: &Settings, name: &str) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let Some(entry) = catalog::lookup(settings, Some(&store), name).await? else {
        bail!("unknown data source {name} (see `reportd datasource list`)");
    };
    let spec = entry.connect_spec()?;
    let tested = Source::test(name, &spec).await?;
    let latency = tested.latency;
    // Under `security.read_only_accounts: require`, an account that can do more than read
    // fails the test; under `warn` it is named on a second line.
    let warning = tested.judge(name, settings.security.read_only_accounts)?;
    println!(
        "ok  {name} ({} {}): SELECT 1 in {:.1} ms",
        spec.kind,
        spec.location(),
        latency.as_secs_f64() * 1000.0
    );
    if let Some(w) = warning {
        println!("warn  {name}: {w}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn remove(settings: &Settings, name: &str, force: bool) -> anyhow::Result<ExitCode> {
    if settings.data_sources.contains_key(name) {
        bail!(
            "data source {name} is defined in {}; remove it there",
            settings.path.display()
        );
    }
    let store = open_store(settings).await?;
    let users: Vec<String> = store
        .tasks()
        .await?
        .into_iter()
        .filter(|t| t.spec.data_source == name)
        .map(|t| t.spec.name)
        .collect();
    if !users.is_empty() && !force {
        bail!(
            "data source {name} is used by tasks: {}; change or remove them first (or use --force)",
            users.join(", ")
        );
    }
    if !store.remove_data_source(name).await? {
        bail!("unknown data source {name} in the store");
    }
    tracing::info!(name, "data source removed");
    audit(
        &store,
        "datasource.remove",
        &format!("data source {name}"),
        None,
    )
    .await;
    println!("removed data source {name}");
    Ok(ExitCode::SUCCESS)
}
