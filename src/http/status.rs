//! `GET /status` and the health check behind `GET /health`: the daemon's state as typed
//! bodies, [`StatusBody`] and [`HealthBody`]. The handlers serialize them and `reportd status`
//! (in [`crate::commands`]) parses the same types, so the two sides cannot drift apart.
//!
//! Never a secret: names, counts, times and the store's description (no password).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration as Span, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::{AppState, PROBE_WAIT};
use crate::schedule::control::{self, Snapshot};

/// How many next fires `/status` lists.
const NEXT_FIRES_SHOWN: usize = 10;

/// The body of `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HealthBody {
    /// The scheduler loop and the store answer.
    pub healthy: bool,
    /// The daemon's process id.
    pub pid: u32,
    /// Why not healthy (absent when healthy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl HealthBody {
    /// Why a refused health check failed: the `reason` of the answer's `body` when it is a
    /// [`HealthBody`], else the body's text (it came from something else).
    pub fn reason_in(body: &str) -> String {
        serde_json::from_str::<HealthBody>(body)
            .ok()
            .and_then(|b| b.reason)
            .unwrap_or_else(|| body.trim().to_string())
    }
}

/// The body of `GET /status` (200 when healthy, else 503). A part the daemon could not
/// learn (the loop or the store does not answer) is `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusBody {
    /// The scheduler loop and the store answer.
    pub healthy: bool,
    /// The daemon's process id.
    pub pid: u32,
    /// reportd's version.
    pub version: String,
    /// This daemon's `host:pid` (from the scheduler loop).
    pub instance: Option<String>,
    /// When the daemon started.
    pub started_at: DateTime<Utc>,
    /// Seconds since then.
    pub uptime_seconds: i64,
    /// The scheduler loop.
    pub scheduler: SchedulerStatus,
    /// The system store.
    pub store: StoreStatus,
    /// Tasks in the store.
    pub tasks: Option<TaskCounts>,
    /// Data sources (config and store, by name).
    pub data_sources: Option<usize>,
    /// Executions running in this daemon (the length of `running`).
    pub active_executions: Option<usize>,
    /// Executions running (or waiting to retry) in this daemon.
    pub running: Option<Vec<RunningExecution>>,
    /// The executions of the last 24 hours.
    pub last_24h: Option<SuccessRate>,
    /// The next fires, earliest first.
    pub next_fires: Option<Vec<NextFire>>,
}

/// The scheduler loop's part of [`StatusBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SchedulerStatus {
    /// The loop answered.
    pub alive: bool,
    /// Enabled tasks with a timer.
    pub scheduled_tasks: Option<usize>,
}

/// The system store's part of [`StatusBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoreStatus {
    /// The store's description (backend and place, no secret).
    pub backend: String,
    /// `SELECT 1` answered.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
}

/// How many tasks there are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskCounts {
    /// All tasks.
    pub total: usize,
    /// The enabled ones.
    pub enabled: usize,
}

/// How the executions of a period ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SuccessRate {
    /// Executions that succeeded.
    pub success: i64,
    /// Executions that ended (neither running nor skipped).
    pub ended: i64,
    /// `success/ended`, e.g. `9/10`.
    pub success_rate: String,
    /// Executions by status.
    pub by_status: BTreeMap<String, i64>,
}

impl SuccessRate {
    /// The rate of `counts` (executions by status).
    pub fn from_counts(counts: impl IntoIterator<Item = (String, i64)>) -> SuccessRate {
        let by_status: BTreeMap<String, i64> = counts.into_iter().collect();
        let success = by_status.get("success").copied().unwrap_or(0);
        // Runs that ended; running, skipped and cancelled ones are neither a success nor a
        // failure.
        let ended: i64 = by_status
            .iter()
            .filter(|(s, _)| !matches!(s.as_str(), "running" | "skipped" | "cancelled"))
            .map(|(_, n)| n)
            .sum();
        SuccessRate {
            success,
            ended,
            success_rate: format!("{success}/{ended}"),
            by_status,
        }
    }
}

/// An execution in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunningExecution {
    /// Task id.
    pub task_id: i64,
    /// Task name.
    pub task: String,
    /// The fire it belongs to.
    pub scheduled_at: DateTime<Utc>,
    /// `cron`, `manual`, …
    pub trigger: String,
}

impl From<&control::ActiveRun> for RunningExecution {
    fn from(r: &control::ActiveRun) -> Self {
        RunningExecution {
            task_id: r.task_id,
            task: r.task.clone(),
            scheduled_at: r.scheduled_at,
            trigger: r.trigger.clone(),
        }
    }
}

/// A task's next fire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NextFire {
    /// Task id.
    pub task_id: i64,
    /// Task name.
    pub task: String,
    /// When.
    pub at: DateTime<Utc>,
}

impl From<&control::NextFire> for NextFire {
    fn from(f: &control::NextFire) -> Self {
        NextFire {
            task_id: f.task_id,
            task: f.task.clone(),
            at: f.at,
        }
    }
}

impl StatusBody {
    /// Asks the scheduler loop, the store and the catalog (at the same time where it can).
    pub(crate) async fn gather(state: &AppState, now: DateTime<Utc>) -> StatusBody {
        let ((snapshot, store_error), tasks, sources, last_24h) = tokio::join!(
            probe(state, NEXT_FIRES_SHOWN),
            state.store.task_counts(),
            crate::store::catalog::entries(&state.settings, Some(&state.store)),
            state.store.execution_counts_since(now - Span::hours(24)),
        );
        let (tasks, sources) = (tasks.ok(), sources.ok());
        let last_24h = last_24h.ok().map(SuccessRate::from_counts);
        let s = snapshot.as_ref();
        StatusBody {
            healthy: snapshot.is_some() && store_error.is_none(),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            instance: s.map(|s| s.instance.clone()),
            started_at: state.started_at,
            uptime_seconds: (now - state.started_at).num_seconds().max(0),
            scheduler: SchedulerStatus {
                alive: s.is_some(),
                scheduled_tasks: s.map(|s| s.scheduled_tasks),
            },
            store: StoreStatus {
                backend: state.store.describe().to_string(),
                ok: store_error.is_none(),
                error: store_error,
            },
            tasks: tasks.map(|(total, enabled)| TaskCounts { total, enabled }),
            data_sources: sources.map(|s| crate::store::catalog::names(&s).len()),
            active_executions: s.map(|s| s.running.len()),
            running: s.map(|s| s.running.iter().map(RunningExecution::from).collect()),
            last_24h,
            next_fires: s.map(|s| s.next_fires.iter().map(NextFire::from).collect()),
        }
    }
}

/// `GET /status`: [`StatusBody`], 200 when healthy, else 503.
pub(super) async fn status(State(state): State<AppState>) -> Response {
    let body = StatusBody::gather(&state, Utc::now()).await;
    let code = if body.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// Asks the scheduler loop for a snapshot (with `next` next fires) and the store for
/// `SELECT 1` at the same time, [`PROBE_WAIT`] each: the snapshot (`None`: the loop does not
/// answer) and the store's error, if any.
async fn probe(state: &AppState, next: usize) -> (Option<Snapshot>, Option<String>) {
    let store = async {
        match tokio::time::timeout(PROBE_WAIT, state.store.ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("no answer within {}s", PROBE_WAIT.as_secs())),
        }
    };
    tokio::join!(state.control.snapshot(PROBE_WAIT, next), store)
}

/// Why the daemon is not healthy, if it is not.
pub(super) async fn unhealthy(state: &AppState) -> Option<String> {
    match probe(state, 0).await {
        (None, _) => Some("the scheduler loop does not answer".into()),
        (Some(_), Some(e)) => Some(format!("store {}: {e}", state.store.describe())),
        (Some(_), None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn running_and_skipped_fires_are_not_counted_as_ended() {
        let rate = SuccessRate::from_counts([
            ("success".to_string(), 3),
            ("failed".to_string(), 1),
            ("running".to_string(), 2),
            ("skipped".to_string(), 5),
        ]);
        assert_eq!((rate.success, rate.ended), (3, 4));
        assert_eq!(rate.success_rate, "3/4");
        assert_eq!(rate.by_status.len(), 4);
        assert_eq!(SuccessRate::from_counts([]).success_rate, "0/0");
    }

    #[test]
    fn a_healthy_answer_has_no_reason() {
        let ok = HealthBody {
            healthy: true,
            pid: 7,
            reason: None,
        };
        assert_eq!(
            serde_json::to_value(&ok).unwrap(),
            json!({ "healthy": true, "pid": 7 })
        );
        let sick: HealthBody =
            serde_json::from_str(r#"{"healthy":false,"pid":7,"reason":"store x: down"}"#).unwrap();
        assert_eq!(sick.reason.as_deref(), Some("store x: down"));
        let body = serde_json::to_string(&sick).unwrap();
        assert_eq!(HealthBody::reason_in(&body), "store x: down");
        assert_eq!(HealthBody::reason_in(" Bad Gateway\n"), "Bad Gateway");
    }

    #[test]
    fn the_status_body_keeps_its_wire_names_and_reads_back_as_itself() {
        let body = StatusBody {
            healthy: true,
            pid: 42,
            version: "1.0.0".into(),
            instance: Some("host:42".into()),
            started_at: at("2026-01-01T00:00:00Z"),
            uptime_seconds: 60,
            scheduler: SchedulerStatus {
                alive: true,
                scheduled_tasks: Some(1),
            },
            store: StoreStatus {
                backend: "sqlite x.db".into(),
                ok: true,
                error: None,
            },
            tasks: Some(TaskCounts {
                total: 2,
                enabled: 1,
            }),
            data_sources: Some(1),
            active_executions: Some(1),
            running: Some(vec![RunningExecution {
                task_id: 1,
                task: "orders".into(),
                scheduled_at: at("2026-01-01T00:01:00Z"),
                trigger: "cron".into(),
            }]),
            last_24h: Some(SuccessRate::from_counts([("success".to_string(), 1)])),
            next_fires: Some(vec![NextFire {
                task_id: 1,
                task: "orders".into(),
                at: at("2026-01-01T00:02:00Z"),
            }]),
        };
        let wire = serde_json::to_value(&body).unwrap();
        assert_eq!(
            wire,
            json!({
                "healthy": true,
                "pid": 42,
                "version": "1.0.0",
                "instance": "host:42",
                "started_at": "2026-01-01T00:00:00Z",
                "uptime_seconds": 60,
                "scheduler": { "alive": true, "scheduled_tasks": 1 },
                "store": { "backend": "sqlite x.db", "ok": true, "error": null },
                "tasks": { "total": 2, "enabled": 1 },
                "data_sources": 1,
                "active_executions": 1,
                "running": [{
                    "task_id": 1,
                    "task": "orders",
                    "scheduled_at": "2026-01-01T00:01:00Z",
                    "trigger": "cron",
                }],
                "last_24h": {
                    "success": 1,
                    "ended": 1,
                    "success_rate": "1/1",
                    "by_status": { "success": 1 },
                },
                "next_fires": [{ "task_id": 1, "task": "orders", "at": "2026-01-01T00:02:00Z" }],
            })
        );
        let back: StatusBody = serde_json::from_value(wire).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn what_the_daemon_could_not_learn_is_null() {
        let body: StatusBody = serde_json::from_value(json!({
            "healthy": false,
            "pid": 42,
            "version": "1.0.0",
            "instance": null,
            "started_at": "2026-01-01T00:00:00Z",
            "uptime_seconds": 0,
            "scheduler": { "alive": false, "scheduled_tasks": null },
            "store": { "backend": "sqlite x.db", "ok": false, "error": "locked" },
            "tasks": null,
            "data_sources": null,
            "active_executions": null,
            "running": null,
            "last_24h": null,
            "next_fires": null,
        }))
        .unwrap();
        assert!(body.running.is_none() && body.tasks.is_none());
        assert_eq!(body.store.error.as_deref(), Some("locked"));
    }
}
