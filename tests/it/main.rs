//! Integration tests: the store suite against SQLite, MariaDB and PostgreSQL, and the real
//! `reportd` binary driven as an operator would (config errors, task files, data sources,
//! check, logging, the scheduler), the DingTalk, WeCom, Feishu and webhook clients against stand-ins of those services,
//! e-mail against a real SMTP server, download links, the supervisor (start, status, monitor,
//! stop), the HTTP endpoints and systemd integration.

mod accounts;
mod alerts;
mod api_auth;
mod api_contract;
mod api_daemon;
mod api_exports;
mod api_resources;
mod api_tasks;
mod app;
mod browser;
mod cancel;
mod channels;
mod check;
mod cleanup;
mod config;
mod console;
mod console_editor;
mod cron;
mod daemon;
mod datasource;
mod dingtalk;
mod downloads;
mod email;
mod export;
mod feishu;
mod ha;
mod helpers;
mod jobs_cli;
mod layout;
mod logging;
mod notify;
mod pools;
mod reports;
mod safety_accounts;
mod safety_bounds;
mod safety_config;
mod safety_export;
mod safety_http;
mod safety_identity;
mod safety_jobs;
mod safety_limits;
mod safety_outbound;
mod safety_run;
mod safety_secrets;
mod safety_sql;
mod safety_surface;
mod scheduler;
mod secrets;
mod split;
mod stand_in;
mod storage;
mod store;
mod store_jobs;
mod supervise;
mod systemd;
mod tasks;
mod webhook;
mod wecom;
