//! Integration tests: the store suite against SQLite, MariaDB and PostgreSQL, and the real
//! `reportd` binary driven as an operator would (config errors, task files, data sources,
//! check, logging), and e-mail through a real SMTP server (tests/stand_ins/smtp.py).

mod check;
mod config;
mod cron;
mod daemon;
mod datasource;
mod email;
mod export;
mod ha;
mod helpers;
mod logging;
mod scheduler;
mod store;
mod tasks;
