//! The completion callback of a job (`callback: {url, secret}`): `export.finished` in the
//! generic-webhook format, `{"event","job":{…as the API shows it…},"execution":{…as logs
//! --json…}|null,"task":{"id","name"}|null,"files":[{"name","url","bytes"}]}`, signed and
//! retried like a task's webhook (`webhook.timeout`, `max_attempts`, `retry_delay`), for
//! done, failed and cancelled jobs. The delivery id is `job-<id>-export.finished`.

use serde::Serialize;

use super::view::JobView;
use crate::config::Settings;
use crate::model::execution::Execution;
use crate::model::job::Job;
use crate::notify::event::{EventFile, EventTask};
use crate::notify::links::LinkSigner;
use crate::outbound::Policy;
use crate::store::Store;

/// The event of a finished job.
pub const EVENT: &str = "export.finished";

/// The callback's body.
#[derive(Debug, Serialize)]
struct Body {
    event: &'static str,
    job: JobView,
    execution: Option<Execution>,
    task: Option<EventTask>,
    files: Vec<EventFile>,
}

/// Posts `export.finished` for `job` to its callback; the outcome is logged. `links` signs
/// the files' links (when `http.file_server_url` is set).
pub async fn send(settings: &Settings, store: &Store, links: Option<&LinkSigner>, job: &Job) {
    let Some(callback) = &job.callback else {
        return;
    };
    let target = match callback.target(&settings.security.task_env_prefix) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(job = job.id, error = %e, "export job callback not sent");
            return;
        }
    };
    let execution = match job.execution_id {
        Some(id) => store.execution(id).await.ok().flatten(),
        None => None,
    };
    let task = match &job.spec.task {
        Some(name) => store
            .task_named(name)
            .await
            .ok()
            .flatten()
            .map(|t| EventTask {
                id: t.id,
                name: t.spec.name,
            }),
        None => None,
    };
    let view = JobView::new(job, links, true);
    let files = view
        .files
        .iter()
        .map(|f| EventFile {
            name: f.name.clone(),
            url: f.link.clone(),
            bytes: f.bytes,
        })
        .collect();
    let body = Body {
        event: EVENT,
        job: view,
        execution,
        task,
        files,
    };
    let bytes = match serde_json::to_vec(&body) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(job = job.id, error = %e, "cannot encode the export job callback");
            return;
        }
    };
    let delivery = format!("job-{}-{EVENT}", job.id);
    let outbound = std::sync::Arc::new(Policy::new(&settings.security.outbound_allow));
    let sent = settings
        .webhook
        .client(&outbound)
        .post(&target, &delivery, &bytes)
        .await;
    match sent.result {
        Ok(status) => tracing::info!(
            job = job.id,
            status,
            attempts = sent.attempts,
            "export job callback delivered"
        ),
        Err(e) => {
            tracing::warn!(job = job.id, attempts = sent.attempts, error = %e, "export job callback failed")
        }
    }
}
