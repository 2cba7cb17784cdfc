//! `reportd jobs list|show|cancel`: the export jobs (the download center) from the command
//! line. Times are shown in `scheduler.timezone`; a job's callback is only said to exist,
//! its URL and secret are never printed.

use anyhow::bail;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::process::ExitCode;

use super::{audit, cli_user, open_store, print_json, table, wait_ended};
use crate::cli::JobsCommand;
use crate::config::Settings;
use crate::humanize;
use crate::jobs::JobView;
use crate::jobs::callback;
use crate::model::job::{Job, JobCancel, JobStatus};
use crate::store::JobFilter;

/// Runs `reportd jobs ...`.
///
/// # Errors
/// An unknown job, one that already finished (cancel), store errors.
pub async fn dispatch(settings: &Settings, command: JobsCommand) -> anyhow::Result<ExitCode> {
    match command {
        JobsCommand::List {
            status,
            limit,
            json,
        } => list(settings, status, limit, json).await,
        JobsCommand::Show { id, json } => show(settings, id, json).await,
        JobsCommand::Cancel { id } => cancel(settings, id).await,
    }
}

/// A job in JSON as the API shows it (the callback only as `"callback": true`), without
/// signed links.
fn shown(job: &Job) -> JobView {
    JobView::new(job, None, false)
}

/// `2024-05-01 09:00:00` in `tz`.
fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string()
}

async fn list(
    settings: &Settings,
    status: Option<JobStatus>,
    limit: u32,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let filter = JobFilter {
        status,
        created_by: None,
        limit: limit.max(1),
        offset: 0,
    };
    let (jobs, total) = store.jobs(&filter).await?;
    if json {
        print_json(&jobs.iter().map(shown).collect::<Vec<_>>())?;
        return Ok(ExitCode::SUCCESS);
    }
    if jobs.is_empty() {
        println!("no export jobs");
        return Ok(ExitCode::SUCCESS);
    }
    let tz = settings.scheduler.timezone.0;
    let mut t = table(&[
        "ID",
        "STATUS",
        "LANE",
        "ROWS",
        "SIZE",
        "CREATED BY",
        "CREATED",
        "FILES / DOWNLOADS",
    ]);
    for j in &jobs {
        let downloads: u64 = j.files.iter().map(|f| f.downloads).sum();
        t.add_row(vec![
            j.id.to_string(),
            j.status.to_string(),
            j.lane.to_string(),
            j.rows.map(humanize::thousands).unwrap_or_default(),
            j.bytes.map(humanize::bytes).unwrap_or_default(),
            j.created_by.clone(),
            local(j.created_at, tz),
            if j.files.is_empty() {
                String::new()
            } else {
                format!("{} / {downloads}", j.files.len())
            },
        ]);
    }
    println!("{t}");
    if total > jobs.len() as u64 {
        eprintln!(
            "{} of {total} jobs shown (newest first; --limit for more)",
            jobs.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(settings: &Settings, id: i64, json: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let Some(job) = store.job(id).await? else {
        bail!("no export job {id} (see `reportd jobs list`)");
    };
    if json {
        print_json(&shown(&job))?;
        return Ok(ExitCode::SUCCESS);
    }
    let tz = settings.scheduler.timezone.0;
    let time = |t: Option<DateTime<Utc>>| t.map(|t| local(t, tz)).unwrap_or_default();
    let mut lines: Vec<(&str, String)> = vec![
        ("id", job.id.to_string()),
        ("status", job.status.to_string()),
        (
            "lane",
            match job.estimate {
                Some(n) => format!("{} (estimate {} rows)", job.lane, humanize::thousands(n)),
                None => job.lane.to_string(),
            },
        ),
        ("created by", job.created_by.clone()),
        ("created", local(job.created_at, tz)),
        ("started", time(job.started_at)),
        ("finished", time(job.finished_at)),
        ("expires", time(job.expires_at)),
        (
            "rows",
            job.rows.map(humanize::thousands).unwrap_or_default(),
        ),
        ("size", job.bytes.map(humanize::bytes).unwrap_or_default()),
        ("attempts", job.attempts.to_string()),
        ("instance", job.instance.clone().unwrap_or_default()),
        (
            "execution",
            job.execution_id.map(|e| e.to_string()).unwrap_or_default(),
        ),
        (
            "cancel asked by",
            job.cancel_requested_by.clone().unwrap_or_default(),
        ),
        ("error", job.error.clone().unwrap_or_default()),
        (
            "callback",
            if job.callback.is_some() { "yes" } else { "no" }.into(),
        ),
        ("data source", job.spec.data_source.clone()),
        ("format", job.spec.format.extension().to_string()),
        ("filename", job.spec.filename.clone().unwrap_or_default()),
        ("task", job.spec.task.clone().unwrap_or_default()),
        (
            "timeout",
            job.spec
                .timeout
                .map(|s| format!("{s}s"))
                .unwrap_or_default(),
        ),
    ];
    lines.retain(|(_, v)| !v.is_empty());
    for (label, value) in lines {
        println!("{:<16}{value}", format!("{label}:"));
    }
    println!("sheets:");
    for s in &job.spec.sheets {
        println!("  {}: {}", s.name, s.sql.replace('\n', " "));
    }
    if !job.files.is_empty() {
        println!("files:");
        for f in &job.files {
            let last = f
                .last_download_at
                .map(|t| format!(", last {}", local(t, tz)))
                .unwrap_or_default();
            println!(
                "  {}  {}  {}  {} downloads{last}  {}",
                f.index,
                f.name,
                humanize::bytes(f.bytes),
                f.downloads,
                f.path
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn cancel(settings: &Settings, id: i64) -> anyhow::Result<ExitCode> {
    let store = open_store(settings).await?;
    let by = format!("{} (cli)", cli_user());
    let object = format!("export job {id}");
    match store.cancel_job(id, &by).await? {
        JobCancel::Cancelled => {
            audit(&store, "export.cancel", &object, None).await;
            println!("job {id}: cancelled");
            if let Some(job) = store.job(id).await? {
                callback::send(settings, &store, None, &job).await;
            }
            return Ok(ExitCode::SUCCESS);
        }
        JobCancel::Requested(execution) => {
            let detail = execution.map(|e| serde_json::json!({ "execution": e }));
            audit(&store, "export.cancel", &object, detail).await;
            eprintln!("cancel asked for job {id} (running)");
        }
        JobCancel::Finished(status) => bail!("job {id} already finished ({status})"),
        JobCancel::Unknown => bail!("no export job {id} (see `reportd jobs list`)"),
    }
    wait_ended(&format!("job {id}"), || async {
        let status = store.job(id).await?.map(|j| j.status);
        Ok(status.map(|s| (s == JobStatus::Running, s.to_string())))
    })
    .await
}
