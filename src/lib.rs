//! reportd — a daemon for scheduled SQL reports: it loads report tasks from its system store,
//! fires each by its cron expression in its own time zone, streams the results into Excel or
//! CSV files and tells people through DingTalk and e-mail.
//!
//! # Layout
//!
//! Dependencies point one way (`tests/it/layout.rs` checks that no top-level modules form a
//! cycle):
//!
//! ```text
//! model ← config ← {store, source, export, deliver, notify} ← run ← {schedule, jobs, http, commands} ← app ← main
//! ```
//!
//! - [`model`]: the value types every stage shares, no I/O: tasks, data-source specs,
//!   execution records, templates, cron schedules, `${ENV}`, units, the MIME table, `Secret`.
//! - [`config`]: `Settings`, the typed `config.yaml`, one file per section; sections build
//!   their runtime objects (`export.request(..)`, `email.mailer()`, `dingtalk.robot(..)`).
//! - [`store`]: the system store (SQLite, MySQL, PostgreSQL): data sources, tasks,
//!   executions, fire claims, and the catalog (config + store data sources, one lookup).
//! - [`source`]: the databases reports read from: pools, streamed rows and cells, the demo
//!   data, and the classifier that lets only one read statement through.
//! - [`export`]: streaming rows into xlsx/csv files: writers, names, temp files, placement.
//! - [`deliver`]: storage targets (s3, oss, cos over opendal; sftp; ftp): placed files
//!   uploaded, checksummed, presigned links.
//! - [`notify`]: one folder per channel (`dingtalk/`, `email/`), the notifier that picks
//!   them, templates and download links, and `retry`, the one retry policy of the crate.
//! - [`outbound`]: the one network policy of URLs given by tasks, jobs and test messages:
//!   internal addresses refused when connecting unless `security.outbound_allow` lists them.
//! - [`accounts`]: console and API users on the store: argon2id passwords (bounded), logins
//!   and API tokens (stored hashed), login throttling.
//! - [`run`]: THE pipeline: `Executor::run(task, RunContext)`, the only way a task runs
//!   (slot → record → source → export → record → notify), and its one `RunReport`. Start
//!   reading here.
//! - [`schedule`]: the `Scheduler`: timer loop, fires, claims and leases, catch-up, the
//!   retention tick and the control channel; each fire runs through [`run`].
//! - [`jobs`]: export jobs, the download center: a queue in the store with a fast and a
//!   slow lane, each job run once through [`run`]; counted downloads, expiry, callbacks.
//! - [`task`]: reading task files and validating a task before it is stored.
//! - [`http`]: the daemon's HTTP server (axum): routes, typed `/status` and `/health` bodies,
//!   signed downloads, the hardened hyper server.
//! - [`app`]: the composition root: `App::build(settings)` (refusals, PID lock, HTTP bind,
//!   store, link key) → `run_until_stopped(shutdown)` (HTTP, systemd, the scheduler).
//! - [`commands`]: thin, one module per subcommand family: arguments → `App`, `Executor` or
//!   `Store` → printed lines.
//! - [`supervise`]: the PID file, starting the daemon detached, signals, process info,
//!   health probes, the monitor's restart policy, the systemd notify protocol.
//! - Leaves any layer may use: [`shutdown`] (the one stop signal), [`clock`], [`panics`],
//!   [`memory`] (glibc allocator settings, trimming after bursts), [`yaml`], and the crate-private `metrics` and `humanize`; `retention` (old files and
//!   history) sits on the store. For `main`: [`cli`] (clap) and [`logging`].

pub mod accounts;
pub mod app;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod deliver;
pub mod export;
pub mod http;
pub(crate) mod humanize;
pub mod jobs;
pub mod logging;
pub mod memory;
pub(crate) mod metrics;
pub mod model;
pub mod notify;
pub mod outbound;
pub mod panics;
pub mod private;
pub(crate) mod retention;
pub mod run;
pub mod schedule;
pub mod shutdown;
pub mod source;
pub mod store;
pub mod supervise;
pub mod task;
pub mod yaml;
