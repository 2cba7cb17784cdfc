//! `reportd task list | show | apply | enable | disable | remove | export`.

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use std::process::ExitCode;

use super::{Progress, audit, open_store, print_json, table};
use crate::cli::TaskCommand;
use crate::clock::Clock;
use crate::config::Settings;
use crate::model::cron::Schedule;
use crate::model::task::TaskSpec;
use crate::notify::notifier::Notifier;
use crate::run::{Executor, RunContext};
use crate::shutdown::Shutdown;
use crate::store::catalog;
use crate::store::{Change, Store, TaskRecord};
use crate::task::file::TaskFile;
use crate::task::validate::{Context, validate_all};
use std::sync::Arc;

/// Runs a `task` subcommand.
///
/// # Errors
/// Store errors, invalid task files, unknown tasks.
pub async fn dispatch(settings: &Settings, command: TaskCommand) -> anyhow::Result<ExitCode> {
    match command {
        TaskCommand::List { json } => list(settings, json).await,
        TaskCommand::Show { task, json } => show(settings, &task, json).await,
        TaskCommand::Apply { file, dry_run } => apply(settings, &file, dry_run).await,
        TaskCommand::Run { task, no_notify } => run_once(settings, &task, no_notify).await,
        TaskCommand::Enable { task } => set_enabled(settings, &task, true).await,
        TaskCommand::Disable { task } => set_enabled(settings, &task, false).await,
        TaskCommand::Remove { task } => remove(settings, &task).await,
        TaskCommand::Export { tasks, output } => export(settings, &tasks, output.as_deref()).await,
    }
}

/// The next `count` fires of an enabled task after `now`.
fn next_fires(
    spec: &TaskSpec,
    settings: &Settings,
    now: DateTime<Utc>,
    count: usize,
) -> Vec<DateTime<Tz>> {
    if !spec.enabled {
        return Vec::new();
    }
    Schedule::parse(&spec.cron)
        .map(|s| s.next_fires(spec.zone(settings.scheduler.timezone), now, count))
        .unwrap_or_default()
}

#[derive(Serialize)]
struct Listed<'a> {
    id: i64,
    name: &'a str,
    enabled: bool,
    data_source: &'a str,
    cron: &'a str,
    timezone: String,
    next_fire: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

async fn list(settings: &Settings, json: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let tasks = store.tasks().await?;
    let now = Utc::now();
    let listed: Vec<Listed<'_>> = tasks
        .iter()
        .map(|t| Listed {
            id: t.id,
            name: &t.spec.name,
            enabled: t.spec.enabled,
            data_source: &t.spec.data_source,
            cron: &t.spec.cron,
            timezone: t.spec.zone(settings.scheduler.timezone).name().to_string(),
            next_fire: next_fires(&t.spec, settings, now, 1)
                .first()
                .map(|d| d.to_rfc3339()),
            created_at: t.created_at,
            updated_at: t.updated_at,
        })
        .collect();
    if json {
        print_json(&listed)?;
        return Ok(ExitCode::SUCCESS);
    }
    if listed.is_empty() {
        println!("no tasks; add some with: reportd task apply -f tasks.yaml");
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table(&[
        "ID",
        "NAME",
        "ENABLED",
        "SOURCE",
        "CRON",
        "TIMEZONE",
        "NEXT FIRE",
    ]);
    for l in &listed {
        t.add_row(vec![
            l.id.to_string(),
            l.name.to_string(),
            if l.enabled { "yes".into() } else { "no".into() },
            l.data_source.to_string(),
            l.cron.to_string(),
            l.timezone.clone(),
            l.next_fire.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}

async fn find(store: &Store, key: &str) -> anyhow::Result<TaskRecord> {
    store
        .find_task(key)
        .await?
        .with_context(|| format!("no task named or numbered {key:?} (see `reportd task list`)"))
}

async fn show(settings: &Settings, key: &str, json: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let record = find(&store, key).await?;
    let fires: Vec<String> = next_fires(&record.spec, settings, Utc::now(), 5)
        .iter()
        .map(|d| d.to_rfc3339())
        .collect();
    let spec = record.spec.clone().masked();
    if json {
        #[derive(Serialize)]
        struct Shown<'a> {
            id: i64,
            created_at: DateTime<Utc>,
            updated_at: DateTime<Utc>,
            timezone: &'a str,
            next_fires: &'a [String],
            spec: &'a TaskSpec,
        }
        print_json(&Shown {
            id: record.id,
            created_at: record.created_at,
            updated_at: record.updated_at,
            timezone: record.spec.zone(settings.scheduler.timezone).name(),
            next_fires: &fires,
            spec: &spec,
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("# task {} (id {})", record.spec.name, record.id);
    println!(
        "# created {}, updated {}",
        record.created_at.to_rfc3339(),
        record.updated_at.to_rfc3339()
    );
    if fires.is_empty() {
        println!(
            "# next fires: none ({})",
            if record.spec.enabled {
                "cron never fires"
            } else {
                "disabled"
            }
        );
    } else {
        println!(
            "# next fires ({}): {}",
            record.spec.zone(settings.scheduler.timezone).name(),
            fires.join(", ")
        );
    }
    print!(
        "{}",
        serde_yaml::to_string(&spec).context("formatting the task")?
    );
    Ok(ExitCode::SUCCESS)
}

async fn apply(
    settings: &Settings,
    path: &std::path::Path,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let file = TaskFile::read(path)?;
    let store = open_store(settings).await?;
    let entries = catalog::entries(settings, Some(&store)).await?;
    let names = catalog::names(&entries);
    let ctx = Context::new(settings, &names);
    let errors = validate_all(&file.tasks, &ctx);
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("{}: {e}", path.display());
        }
        bail!(
            "{}: {} problem{} found; nothing was written",
            path.display(),
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        );
    }
    if dry_run {
        println!(
            "{}: {} task(s) valid; nothing written (--dry-run)",
            path.display(),
            file.tasks.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let changes = store.apply_tasks(&file.tasks).await?;
    let (mut created, mut updated, mut unchanged) = (0, 0, 0);
    for (name, change) in &changes {
        let (word, id) = match *change {
            Change::Created(id) => {
                created += 1;
                ("created", id)
            }
            Change::Updated(id) => {
                updated += 1;
                ("updated", id)
            }
            Change::Unchanged(id) => {
                unchanged += 1;
                ("unchanged", id)
            }
        };
        if !matches!(change, Change::Unchanged(_)) {
            tracing::info!(task = %name, id, change = word, "task applied");
            let action = if word == "created" {
                "task.create"
            } else {
                "task.update"
            };
            audit(
                &store,
                action,
                &format!("task {name}"),
                Some(serde_json::json!({ "id": id, "file": path.display().to_string() })),
            )
            .await;
        }
        println!("{word:<9}  {name} (id {id})");
    }
    println!(
        "{}: {created} created, {updated} updated, {unchanged} unchanged",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn set_enabled(settings: &Settings, key: &str, enabled: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let record = find(&store, key).await?;
    let word = if enabled { "enabled" } else { "disabled" };
    if record.spec.enabled == enabled {
        println!(
            "task {} (id {}) was already {word}",
            record.spec.name, record.id
        );
        return Ok(ExitCode::SUCCESS);
    }
    if !store.set_task_enabled(record.id, enabled).await? {
        bail!("task {key:?} disappeared meanwhile");
    }
    tracing::info!(task = %record.spec.name, id = record.id, "task {word}");
    let action = if enabled {
        "task.enable"
    } else {
        "task.disable"
    };
    audit(&store, action, &format!("task {}", record.spec.name), None).await;
    println!("task {} (id {}) {word}", record.spec.name, record.id);
    Ok(ExitCode::SUCCESS)
}

async fn remove(settings: &Settings, key: &str) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let record = find(&store, key).await?;
    if !store.remove_task(record.id).await? {
        bail!("task {key:?} disappeared meanwhile");
    }
    tracing::info!(task = %record.spec.name, id = record.id, "task removed");
    audit(
        &store,
        "task.delete",
        &format!("task {}", record.spec.name),
        None,
    )
    .await;
    println!(
        "removed task {} (id {}); its execution history stays",
        record.spec.name, record.id
    );
    Ok(ExitCode::SUCCESS)
}

async fn export(
    settings: &Settings,
    keys: &[String],
    output: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let tasks = if keys.is_empty() {
        store.tasks().await?.into_iter().map(|r| r.spec).collect()
    } else {
        let mut v = Vec::with_capacity(keys.len());
        for k in keys {
            v.push(find(&store, k).await?.spec);
        }
        v
    };
    let yaml = TaskFile { tasks }.to_yaml();
    match output {
        Some(path) => {
            std::fs::write(path, &yaml).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{yaml}"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_once(settings: &Settings, key: &str, no_notify: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let record = find(&store, key).await?;
    // From here on Ctrl-C interrupts the run (recorded `interrupted`); before, it ends the
    // command at once.
    let stop = Shutdown::on_signals();
    let settings = Arc::new(settings.clone());
    let notifier = match no_notify {
        true => None,
        false => Some(Notifier::new(settings.clone(), &store).await),
    };
    let instance = crate::schedule::instance_name();
    let executor = Executor::new(
        settings,
        store,
        notifier,
        Clock::default(),
        instance,
        stop.clone(),
    );
    let ctx = RunContext::manual(Utc::now(), stop);
    let progress = Progress::start(ctx.progress.clone());
    let report = executor.run(&record, ctx).await;
    progress.finish();
    let report = report?;
    for n in &report.notifications {
        match &n.error {
            None => eprintln!("notified: {} (attempts {})", n.channel, n.attempts),
            Some(e) => eprintln!("warning: notification {} failed: {e}", n.channel),
        }
    }
    match report.outcome {
        Some(_) => {
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        None => bail!("{report}"),
    }
}
