//! Scheduling: cron parsing and next-fire computation ([`cron`]). The timer loop and fire
//! claims build on these.

pub mod cron;
