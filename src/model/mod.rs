//! The value types every stage shares, with no I/O: tasks as written in task files, data
//! source specs, execution records, message and file-name templates, cron schedules, `${ENV}`
//! expansion, units (sizes, zones, levels), paths, [`secret::Secret`] and the sealing of secrets at rest ([`sealed`]). Everything else in
//! the crate depends on this module; it depends on nothing of the crate.

pub mod alert;
pub mod cron;
pub mod datasource;
pub mod delivery;
pub mod env;
pub mod execution;
pub mod job;
pub mod mime;
pub mod path;
pub mod plain;
pub mod role;
pub mod sealed;
pub mod secret;
pub mod split;
pub mod table;
pub mod task;
pub mod template;
pub mod units;
