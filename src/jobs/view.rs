//! A job as it is shown (DESIGN.md, Export jobs): `GET /api/exports`, `reportd jobs show
//! --json` and the `export.finished` callback. The callback's URL and secret are never shown;
//! a file's signed link only to those who may download it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::Path;
use utoipa::ToSchema;

use crate::model::job::{Job, JobFile};
use crate::model::task::SheetSpec;
use crate::notify::links::LinkSigner;

/// One file of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FileView {
    /// File name.
    pub name: String,
    /// Download URL behind the login: `/api/exports/{id}/files/{index}`.
    pub url: String,
    /// A signed link that works without a login until the job expires (when
    /// `http.file_server_url` is set and the viewer may download).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Size in bytes.
    pub bytes: u64,
    /// Downloads so far (through either URL).
    pub downloads: u64,
    /// The last download.
    pub last_download_at: Option<DateTime<Utc>>,
    /// SHA-256 of the file, lower-case hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// MD5 of the file, lower-case hex (the seed's download records).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
}

/// A job.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct JobView {
    /// Job id.
    pub id: i64,
    /// `queued running done failed cancelled expired`.
    pub status: String,
    /// `fast` or `slow`.
    pub lane: String,
    /// The row estimate the lane was chosen by.
    pub estimate: Option<u64>,
    /// The task it runs the queries of, if one.
    pub task: Option<String>,
    /// The data source.
    pub data_source: String,
    /// Its queries, one sheet each: `[{"name", "sql"}]`.
    #[schema(value_type = Vec<Object>)]
    pub sheets: Vec<SheetSpec>,
    /// Its file-name template, when one was given.
    pub filename: Option<String>,
    /// `xlsx` or `csv`.
    pub format: String,
    /// Rows exported.
    pub rows: Option<u64>,
    /// Bytes written.
    pub bytes: Option<u64>,
    /// Its files (done jobs).
    pub files: Vec<FileView>,
    /// Why it failed, or who cancelled it.
    pub error: Option<String>,
    /// Who asked for it to be cancelled while it ran.
    pub cancel_requested_by: Option<String>,
    /// Who asked.
    pub created_by: String,
    /// The caller asked for it (their account, by id): the console offers them its cancel.
    #[serde(skip)]
    pub mine: bool,
    /// Queued at.
    pub created_at: DateTime<Utc>,
    /// Its run started at.
    pub started_at: Option<DateTime<Utc>>,
    /// Finished at.
    pub finished_at: Option<DateTime<Utc>>,
    /// Its files go at (done jobs).
    pub expires_at: Option<DateTime<Utc>>,
    /// The execution row of its run (`GET /api/logs/{id}`).
    pub execution_id: Option<i64>,
    /// Runs started (2 when a restart re-queued it).
    pub attempts: u32,
    /// A callback is set (its URL is never shown).
    pub callback: bool,
}

impl JobView {
    /// How `job` is shown; signed links (from `links`) only when `with_links`.
    pub fn new(job: &Job, links: Option<&LinkSigner>, with_links: bool) -> JobView {
        let signer = links.filter(|_| with_links);
        JobView {
            id: job.id,
            status: job.status.to_string(),
            lane: job.lane.to_string(),
            estimate: job.estimate,
            task: job.spec.task.clone(),
            data_source: job.spec.data_source.clone(),
            sheets: job.spec.sheets.clone(),
            filename: job.spec.filename.clone(),
            format: job.spec.format.extension().to_string(),
            rows: job.rows,
            bytes: job.bytes,
            files: job
                .files
                .iter()
                .map(|f| file_view(job, f, signer))
                .collect(),
            error: job.error.clone(),
            cancel_requested_by: job.cancel_requested_by.clone(),
            created_by: job.created_by.clone(),
            mine: false,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            expires_at: job.expires_at,
            execution_id: job.execution_id,
            attempts: job.attempts,
            callback: job.callback.is_some(),
        }
    }
}

/// The API path of file `index` of job `id`.
pub fn file_url(id: i64, index: u32) -> String {
    format!("/api/exports/{id}/files/{index}")
}

fn file_view(job: &Job, f: &JobFile, links: Option<&LinkSigner>) -> FileView {
    let live = job.status == crate::model::job::JobStatus::Done;
    FileView {
        name: f.name.clone(),
        url: file_url(job.id, f.index),
        link: links
            .filter(|_| live)
            .zip(job.expires_at)
            .and_then(|(l, until)| l.url_until(Path::new(&f.path), until.timestamp())),
        bytes: f.bytes,
        downloads: f.downloads,
        last_download_at: f.last_download_at,
        sha256: f.sha256.clone(),
        md5: f.md5.clone(),
    }
}
