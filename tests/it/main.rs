//! Integration tests: the store suite against SQLite, MariaDB and PostgreSQL, and the real
//! `reportd` binary driven as an operator would (config errors, task files, data sources,
//! check, logging).

mod check;
mod config;
mod cron;
mod daemon;
mod datasource;
mod downloads;
mod export;
mod ha;
mod helpers;
mod logging;
mod scheduler;
mod store;
mod tasks;
