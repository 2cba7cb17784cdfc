//! `reportd check [--no-connect]`: validates the config (already loaded by then), the
//! templates and the stored tasks, and unless `--no-connect` connects to the store and to
//! every data source. With `--no-connect`, stored tasks are still checked when the store is a
//! local SQLite file that exists; a server store is not contacted. Prints one line per item;
//! exit 1 when anything failed.

use anyhow::bail;
use std::process::ExitCode;

use crate::config::{Settings, StoreKind};
use crate::model::template::{self, MESSAGE_PLACEHOLDERS};
use crate::source::Source;
use crate::store::Store;
use crate::store::catalog;
use crate::task::validate::{Context, validate};

#[derive(Default)]
struct Report {
    failures: usize,
}

impl Report {
    fn ok(&mut self, what: impl AsRef<str>) {
        println!("ok    {}", what.as_ref());
    }
    fn warn(&mut self, what: impl AsRef<str>) {
        println!("warn  {}", what.as_ref());
    }
    fn skip(&mut self, what: impl AsRef<str>) {
        println!("skip  {}", what.as_ref());
    }
    fn fail(&mut self, what: impl AsRef<str>) {
        self.failures += 1;
        println!("FAIL  {}", what.as_ref());
    }
}

/// Runs the checks.
///
/// # Errors
/// "N problems" when any check failed (each was printed).
pub async fn dispatch(settings: &Settings, no_connect: bool) -> anyhow::Result<ExitCode> {
    let mut r = Report::default();
    r.ok(format!(
        "config {} ({} data source(s))",
        settings.path.display(),
        settings.data_sources.len()
    ));
    for w in &settings.warnings {
        r.warn(w);
    }
    let refusals = crate::app::refusals(settings);
    if refusals.is_empty() {
        r.ok(format!("daemon start (http.bind {})", settings.http.bind));
    }
    for why in refusals {
        r.fail(why);
    }
    check_templates(settings, &mut r);

    let sd = &settings.system_database;
    let local_store = sd.kind == StoreKind::Sqlite && sd.url.is_empty() && sd.sqlite_path.exists();
    if no_connect && !local_store {
        r.skip("store, stored tasks and data source connections (--no-connect)");
        if let Some(why) = crate::app::exposure_refusal(settings, 0) {
            r.warn(format!("{why} (unless the store holds an account)"));
        }
    } else {
        match Store::open(settings).await {
            Err(e) => r.fail(format!("store ({}): {e}", sd.describe())),
            Ok(store) => {
                r.ok(format!("store {}", store.describe()));
                match store.user_count().await {
                    Err(e) => r.fail(e.to_string()),
                    Ok(users) => {
                        if let Some(why) = crate::app::exposure_refusal(settings, users) {
                            r.fail(why);
                        }
                    }
                }
                match catalog::entries(settings, Some(&store)).await {
                    Err(e) => r.fail(e.to_string()),
                    Ok(entries) => {
                        check_tasks(settings, &store, &entries, &mut r).await;
                        if no_connect {
                            r.skip("data source connections (--no-connect)");
                        } else {
                            check_sources(settings, &entries, &mut r).await;
                        }
                    }
                }
                store.close().await;
            }
        }
    }
    if r.failures > 0 {
        bail!(
            "check found {} problem{}",
            r.failures,
            if r.failures == 1 { "" } else { "s" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn check_templates(settings: &Settings, r: &mut Report) {
    let dir = &settings.templates_dir;
    for (name, text) in template::BUILTIN {
        if let Err(e) = template::check(text, MESSAGE_PLACEHOLDERS) {
            r.fail(format!("built-in template {name}: {e}"));
        }
    }
    let Ok(read) = std::fs::read_dir(dir) else {
        r.ok(format!(
            "templates: the built-in ones (no directory {})",
            dir.display()
        ));
        return;
    };
    let mut files: Vec<_> = read
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && template::TemplateRef::is_template_file(&p.to_string_lossy()))
        .collect();
    files.sort();
    for path in files {
        let name = path.display();
        match std::fs::read_to_string(&path) {
            Err(e) => r.fail(format!("template {name}: {e}")),
            Ok(text) => match template::check(&text, MESSAGE_PLACEHOLDERS) {
                Ok(()) => r.ok(format!("template {name}")),
                Err(e) => r.fail(format!("template {name}: {e}")),
            },
        }
    }
}

async fn check_tasks(
    settings: &Settings,
    store: &Store,
    entries: &[catalog::Entry],
    r: &mut Report,
) {
    let names = catalog::names(entries);
    let tasks = match store.tasks().await {
        Ok(t) => t,
        Err(e) => return r.fail(e.to_string()),
    };
    let ctx = Context::new(settings, &names);
    for (i, t) in tasks.iter().enumerate() {
        let errors = validate(&t.spec, &ctx, i);
        if errors.is_empty() {
            r.ok(format!("task {} (id {})", t.spec.name, t.id));
        }
        for e in errors {
            r.fail(format!("{e} (id {})", t.id));
        }
    }
}

/// Connects to each source; reports (`warn`) or fails (`require`) an account that can do
/// more than read, naming its rights.
async fn check_sources(settings: &Settings, entries: &[catalog::Entry], r: &mut Report) {
    let accounts = settings.security.read_only_accounts;
    for entry in entries {
        if entry.shadowed {
            r.warn(format!(
                "data source {} in the store is hidden by the one in the config",
                entry.name
            ));
            continue;
        }
        let result = async {
            let spec = entry.connect_spec()?;
            Source::test(&entry.name, &spec).await.map(|l| (spec, l))
        }
        .await;
        let (spec, tested) = match result {
            Ok(t) => t,
            Err(e) => {
                r.fail(e.to_string());
                continue;
            }
        };
        let latency = tested.latency;
        match tested.judge(&entry.name, accounts) {
            Err(e) => r.fail(e.to_string()),
            Ok(warning) => {
                r.ok(format!(
                    "data source {} ({} {}): SELECT 1 in {:.1} ms",
                    entry.name,
                    spec.kind,
                    spec.location(),
                    latency.as_secs_f64() * 1000.0
                ));
                if let Some(w) = warning {
                    r.warn(format!("data source {}: {w}", entry.name));
                }
            }
        }
    }
}
