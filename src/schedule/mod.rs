//! Scheduling: cron parsing and next-fire computation ([`cron`]), and the daemon's timer
//! loop ([`daemon`]): one timer per task, fire claims, worker limit, overlap and misfire
//! handling, live reload, graceful shutdown and crash recovery.

pub mod cron;
pub mod daemon;
