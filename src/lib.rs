//! reportd — a daemon for scheduled SQL reports: it loads report tasks from its system store,
//! fires each by its cron expression in its own time zone, streams the results into Excel or
//! CSV files and tells people through DingTalk and e-mail.
//!
//! # Layout
//!
//! - [`app`]: the daemon's composition root: `App::build(settings)` (PID lock, HTTP bind,
//!   store, link key) → `run_until_stopped(shutdown)` (HTTP, systemd, the scheduler).
//! - [`cli`]: the command line (clap derive).
//! - [`clock`]: the scheduler's clock (system, or moved by hand in tests).
//! - [`commands`]: one module per subcommand family (`run`, `supervise`, `task`, …).
//! - [`config`]: `Settings`, the typed `config.yaml`: sections, defaults, `${ENV}`, validation.
//! - [`yaml`]: reading YAML files with `file:line:column` errors.
//! - [`secret`]: `Secret`, strings that never print themselves.
//! - [`logging`]: tracing to stderr and to a size-rotated log file.
//! - [`store`]: the system store (SQLite, MySQL, PostgreSQL): data sources, tasks,
//!   executions, fire claims; migrations embedded per backend.
//! - [`source`]: the databases reports read from: specs, the config+store catalog, pools,
//!   the demo data, and the classifier that lets only one read statement through.
//! - [`export`]: streaming query results into xlsx/csv files: writers, names, temp files.
//! - `retention`: removing old exported files and execution history.
//! - [`panics`]: a caught panic's text, and the hook that sends panics to the log.
//! - [`run`]: THE pipeline: `Executor::run(task, RunContext)`, the only way a task runs
//!   (fire → record → source → export → record → notify), and its one `RunReport`.
//! - [`http`]: the daemon's HTTP server (axum): health, status, metrics, runs on request,
//!   signed download links.
//! - `metrics`: the Prometheus metrics of the process.
//! - [`supervise`]: the PID file, starting the daemon detached, signals, process info,
//!   health probes, the monitor's restart policy, the systemd notify protocol.
//! - `humanize`: `1,000`, `2.5MB`, `3.2s`.
//! - [`task`]: task specs as written in task files, and their validation.
//! - [`schedule`]: the `Scheduler`: timer loop, fires, claims and leases, catch-up, the
//!   retention tick and the control channel; each fire runs through [`run`].
//! - [`notify`]: message templates and their placeholders, download links.

pub mod app;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod export;
pub mod http;
pub(crate) mod humanize;
pub mod logging;
pub(crate) mod metrics;
pub mod model;
pub mod notify;
pub mod panics;
pub(crate) mod retention;
pub mod run;
pub mod schedule;
pub mod shutdown;
pub mod source;
pub mod store;
pub mod supervise;
pub mod task;
pub mod yaml;
