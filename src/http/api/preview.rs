//! `POST /api/preview` (editor): the first rows of a query, through the same read-only guard
//! as reports (a write is refused before anything is sent), with the date macros of a run
//! expanded, at most 1000 rows and `http.preview_max_bytes` of cell text (streamed a row at a
//! time: the rest is never fetched) and a time limit. At most `http.max_previews` run at once
//! (`http.max_previews_per_user` per user; more get 429), and each holds one of its data
//! source's `max_connections` slots ([`crate::source::slots`]).
//! `POST /api/cron/next` (viewer): the next fires of a cron expression, as the scheduler
//! computes them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Editor, Viewer};
use super::error::{ApiError, ApiJson, ErrorBody};
use crate::export::naming::render_sql;
use crate::http::AppState;
use crate::http::previews::Ticket;
use crate::model::cron::Schedule;
use crate::model::units::TimeZone;
use crate::source::cell::Cell;
use crate::source::query::{Chunk, QueryHandle, QueryOptions};
use crate::source::slots::Slot;
use crate::source::{Source, SourceError, classify};
use crate::store::catalog;

/// Default rows of a preview.
pub const DEFAULT_ROWS: i64 = 100;
/// Most rows of a preview.
pub const MAX_ROWS: i64 = 1000;
/// Longest a preview query may run (less when `http.request_timeout` is shorter).
const MAX_QUERY_TIME: Duration = Duration::from_secs(30);
/// Longest text of one cell in a preview (longer text is cut, marked with `…`).
const MAX_CELL_CHARS: usize = 10_000;
/// Longest a preview waits for one of its data source's connection slots.
const SLOT_WAIT: Duration = Duration::from_secs(5);
/// Default and most fire times of a cron preview.
const DEFAULT_FIRES: i64 = 5;
const MAX_FIRES: i64 = 100;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(preview))
        .routes(routes!(cron_next))
}

/// A query to preview.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// Data source name.
    pub data_source: String,
    /// One read statement; date macros (`{today}`, `{yesterday}`, ...) are expanded.
    pub sql: String,
    /// Rows to return (1-1000, default 100).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// The first rows of a query.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PreviewResult {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows: numbers as numbers where exact, decimals, dates and times as strings.
    #[schema(value_type = Vec<Vec<Object>>)]
    pub rows: Vec<Vec<serde_json::Value>>,
    /// The answer was cut: there were more rows than `limit`, or the rows' text reached
    /// `http.preview_max_bytes`.
    pub truncated: bool,
    /// How long the query took.
    pub elapsed_ms: u64,
}

/// A cron expression to preview.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CronRequest {
    /// 5 fields (Vixie) or 6 with leading seconds.
    pub cron: String,
    /// IANA zone; default `scheduler.timezone`.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Fire times to return (1-100, default 5).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub count: Option<i64>,
}

/// The next fire times.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CronFires {
    /// RFC 3339 with the zone's offset.
    pub fires: Vec<String>,
}

/// A cell as JSON: integers and floats as numbers (non-finite ones as text), decimals as
/// their exact text, dates and times as ISO text.
pub fn cell_json(cell: Cell) -> serde_json::Value {
    use serde_json::Value;
    match cell {
        Cell::Null => Value::Null,
        Cell::Bool(b) => Value::Bool(b),
        Cell::Int(i) => Value::from(i),
        Cell::Number(f) => serde_json::Number::from_f64(f)
            .map_or_else(|| Value::String(f.to_string()), Value::Number),
        Cell::Decimal(v, scale) => Value::String(format!("{v:.*}", usize::from(scale))),
        Cell::Text(t) => Value::String(cut(t)),
        Cell::Date(d) => Value::String(d.format("%Y-%m-%d").to_string()),
        Cell::DateTime(dt) => Value::String(dt.format("%Y-%m-%d %H:%M:%S%.f").to_string()),
        Cell::Time(t) => Value::String(t.format("%H:%M:%S%.f").to_string()),
    }
}

fn cut(mut t: String) -> String {
    if let Some((i, _)) = t.char_indices().nth(MAX_CELL_CHARS) {
        t.truncate(i);
        t.push('…');
    }
    t
}

/// A failed query as an API error: the server's refusal of the statement is about `sql`;
/// not reaching the server is 502.
fn query_error(e: SourceError) -> ApiError {
    let text = e.to_string();
    let text = text.lines().next().unwrap_or_default().to_string();
    match &e {
        SourceError::Refused { .. } => ApiError::invalid("sql", text),
        SourceError::Database {
            cause:
                sqlx::Error::Database(_) | sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_),
            ..
        } => ApiError::invalid("sql", text),
        SourceError::Config { .. } | SourceError::NotReadOnly { .. } => {
            ApiError::invalid("data_source", text)
        }
        _ => ApiError::new(StatusCode::BAD_GATEWAY, text),
    }
}

/// The first rows of a read query.
#[utoipa::path(post, path = "/api/preview", tag = "preview", request_body = PreviewRequest,
    responses((status = 200, body = PreviewResult), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "More previews than `http.max_previews` (in all or per user) run, or every connection of the data source is in use"),
        (status = 502, body = ErrorBody)))]
pub async fn preview(
    State(state): State<AppState>,
    Editor(caller): Editor,
    ApiJson(body): ApiJson<PreviewRequest>,
) -> Result<Json<PreviewResult>, ApiError> {
    let limit = body.limit.unwrap_or(DEFAULT_ROWS);
    if !(1..=MAX_ROWS).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("limit must be 1 to {MAX_ROWS}, not {limit}"),
        ));
    }
    let limit = limit as usize;
    let name = body.data_source;
    let entry = catalog::lookup(&state.settings, Some(&state.store), &name)
        .await?
        .ok_or_else(|| ApiError::invalid("data_source", format!("no data source {name:?}")))?;
    let tz = state.settings.scheduler.timezone.0;
    let sql = render_sql(&body.sql, Utc::now().with_timezone(&tz))
        .map_err(|e| ApiError::invalid("sql", e.to_string()))?;
    // A split query previews as one reader reads it whole.
    let sql = sql.replace(crate::model::split::PLACEHOLDER, "(1=1)");
    // Refused before a connection is made (the stream checks again).
    classify::check(&sql, entry.spec.kind.dialect())
        .map_err(|r| ApiError::invalid("sql", format!("data source {name}: {r}")))?;
    let spec = entry.connect_spec().map_err(query_error)?;
    let ticket = state
        .previews
        .start(&caller.name, &state.settings.http)
        .map_err(|e| ApiError::too_many(e.to_string(), 1))?;
    let request_timeout = Duration::from_secs(state.settings.http.request_timeout);
    let timeout = MAX_QUERY_TIME.min(
        request_timeout
            .saturating_sub(Duration::from_secs(1))
            .max(Duration::from_secs(1)),
    );
    let slot = state
        .previews
        .sources
        .take(&name, &spec, SLOT_WAIT.min(timeout))
        .await
        .map_err(|e| ApiError::too_many(e.to_string(), 1))?;
    // The slot stands for the query's connection; both are held until the query is over on
    // the server, should this handler be dropped before (see [`Query`]).
    let hold = (ticket, slot);
    let accounts = state.settings.security.read_only_accounts;
    let source = Source::open(&name, &spec, accounts)
        .await
        .map_err(query_error)?;
    let max_bytes = usize::try_from(state.settings.http.preview_max_bytes.0).unwrap_or(usize::MAX);
    run(
        source,
        hold,
        &name,
        &sql,
        Bounds {
            limit,
            max_bytes,
            timeout,
        },
        tz,
    )
    .await
    .map(Json)
}

/// What a preview holds while its query runs: its place among `http.max_previews` and one of
/// its data source's `max_connections` slots.
type Hold = (Ticket, Slot);

/// A preview's query, read by a task of its own. However the preview ends (answered, cut,
/// out of time, or its handler dropped because the client went away), the reader is stopped,
/// the server is told to stop the query, and only then are the preview's ticket and slot
/// freed: a client giving up on previews leaves no query running beyond `http.max_previews`
/// and `max_connections`.
struct Query {
    source: Source,
    handle: QueryHandle,
    /// The reader, until it ended by itself.
    reader: Option<JoinHandle<Result<u64, SourceError>>>,
    /// Freed once the query is over.
    hold: Option<Hold>,
}

impl Query {
    /// Waits for the reader to end by itself.
    async fn finish(&mut self) -> Option<Result<Result<u64, SourceError>, JoinError>> {
        let ended = self.reader.as_mut()?.await;
        self.reader = None;
        Some(ended)
    }

    /// Ends the query (see [`Query::stop`]) and waits for that.
    async fn end(mut self, rows_in: bool) {
        if let Some(stopping) = self.stop(rows_in) {
            let _ = stopping.await;
        }
    }

    /// Stops the reader if it still runs and the query on the server, closes the source, then
    /// frees the hold, in a task of its own (that goes on should the caller be dropped).
    /// `rows_in`: the query sent its rows, so the reader still holds its connection and the
    /// server is asked first; otherwise the reader is dropped first, so that the query's
    /// server-side id is known for good when the server is asked.
    fn stop(&mut self, rows_in: bool) -> Option<JoinHandle<()>> {
        let hold = self.hold.take()?;
        let (source, handle, reader) =
            (self.source.clone(), self.handle.clone(), self.reader.take());
        Some(tokio::spawn(async move {
            if let Some(reader) = reader {
                if rows_in {
                    source.cancel(&handle).await;
                }
                reader.abort();
                let _ = reader.await;
                if !rows_in {
                    source.cancel(&handle).await;
                }
            }
            drop(hold);
        }))
    }
}

impl Drop for Query {
    fn drop(&mut self) {
        if tokio::runtime::Handle::try_current().is_ok() {
            self.stop(false);
        } else if let Some(reader) = &self.reader {
            reader.abort();
        }
    }
}

/// How much of a query a preview takes.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    /// Rows.
    limit: usize,
    /// Cell text, bytes.
    max_bytes: usize,
    /// Time.
    timeout: Duration,
}

/// The bytes a cell adds to the answer: its text (a string's length, a number's digits).
fn cell_bytes(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::String(s) => s.len(),
        serde_json::Value::Null => 4,
        serde_json::Value::Bool(_) => 5,
        serde_json::Value::Number(n) => n.to_string().len(),
        other => other.to_string().len(),
    }
}

/// Streams `sql` until `limit + 1` rows have come or the rows' text reaches `max_bytes`
/// (then stops the query), or it ends. Rows come one at a time, so that what is held besides
/// the answer is a few rows, however wide.
async fn run(
    source: Source,
    hold: Hold,
    name: &str,
    sql: &str,
    bounds: Bounds,
    tz: chrono_tz::Tz,
) -> Result<PreviewResult, ApiError> {
    let Bounds {
        limit,
        max_bytes,
        timeout,
    } = bounds;
    let started = Instant::now();
    let opts = QueryOptions {
        chunk_rows: 1,
        // The server stops it too, a little later, should this process not.
        timeout: Some(timeout + Duration::from_secs(1)),
        tz,
        recycle: Default::default(),
        marks: Default::default(),
    };
    let handle = QueryHandle::default();
    let (tx, mut rx) = mpsc::channel::<Chunk>(2);
    let reader = {
        let (source, name, sql, handle) = (
            source.clone(),
            name.to_string(),
            sql.to_string(),
            handle.clone(),
        );
        tokio::spawn(async move { source.stream(&name, &sql, &opts, &tx, &handle).await })
    };
    let mut query = Query {
        source,
        handle,
        reader: Some(reader),
        hold: Some(hold),
    };
    let collect = async {
        let mut columns: Vec<String> = Vec::new();
        let mut rows: Vec<Vec<serde_json::Value>> = Vec::new();
        let mut bytes: usize = 0;
        while let Some(chunk) = rx.recv().await {
            match chunk {
                Chunk::Columns(c) => {
                    bytes = c.iter().map(String::len).sum();
                    columns = c;
                }
                Chunk::Rows(batch) => {
                    let width = columns.len().max(1);
                    let mut cells = batch.cells.into_iter();
                    for _ in 0..batch.rows {
                        if rows.len() == limit {
                            return (columns, rows, true);
                        }
                        // Counted as the row is built: a row that would pass the limit is
                        // left out, and so is the rest.
                        let mut row = Vec::with_capacity(width);
                        for cell in cells.by_ref().take(width) {
                            let value = cell_json(cell);
                            bytes = bytes.saturating_add(cell_bytes(&value));
                            if bytes > max_bytes {
                                return (columns, rows, true);
                            }
                            row.push(value);
                        }
                        rows.push(row);
                    }
                }
                Chunk::Sheet(_) | Chunk::Encoded(_) => {}
            }
        }
        (columns, rows, false)
    };
    let collected = tokio::time::timeout(timeout, collect).await;
    let (columns, rows, truncated) = match collected {
        Ok(done) => done,
        Err(_) => {
            // Out of time: the reader is stopped and the server told to stop the query.
            query.end(false).await;
            return Err(ApiError::invalid(
                "sql",
                format!(
                    "data source {name}: the query ran longer than {} s (the preview's limit)",
                    timeout.as_secs()
                ),
            ));
        }
    };
    if truncated {
        // Enough rows: the rest is not read, and the server stops the query.
        query.end(true).await;
    } else {
        let ended = query.finish().await;
        query.end(false).await;
        match ended {
            Some(Ok(Ok(_))) => {}
            Some(Ok(Err(e))) => return Err(query_error(e)),
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    format!("data source {name}: the query stopped unexpectedly"),
                ));
            }
        }
    }
    Ok(PreviewResult {
        columns,
        rows,
        truncated,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// The next fire times of a cron expression.
#[utoipa::path(post, path = "/api/cron/next", tag = "cron", request_body = CronRequest,
    responses((status = 200, body = CronFires), (status = 422, body = ErrorBody)))]
pub async fn cron_next(
    State(state): State<AppState>,
    _viewer: Viewer,
    ApiJson(body): ApiJson<CronRequest>,
) -> Result<Json<CronFires>, ApiError> {
    let count = body.count.unwrap_or(DEFAULT_FIRES);
    if !(1..=MAX_FIRES).contains(&count) {
        return Err(ApiError::invalid(
            "count",
            format!("count must be 1 to {MAX_FIRES}, not {count}"),
        ));
    }
    let schedule =
        Schedule::parse(&body.cron).map_err(|e| ApiError::invalid("cron", e.to_string()))?;
    crate::task::validate::check_fires(&schedule, &body.cron)
        .map_err(|e| ApiError::invalid("cron", e.to_string()))?;
    let zone = match &body.timezone {
        Some(z) => z
            .parse::<TimeZone>()
            .map_err(|e| ApiError::invalid("timezone", e.to_string()))?,
        None => state.settings.scheduler.timezone,
    };
    let fires = schedule
        .next_fires(zone.0, Utc::now(), count as usize)
        .into_iter()
        .map(|f| f.to_rfc3339())
        .collect();
    Ok(Json(CronFires { fires }))
}
