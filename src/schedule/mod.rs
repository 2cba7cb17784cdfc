//! Scheduling: cron parsing and next-fire computation ([`cron`]), and the daemon's timer
//! loop ([`daemon`]) over the task timers ([`timers`]): fire claims and leases, worker limit,
//! overlap and misfire handling, live reload, graceful shutdown, crash recovery and takeover;
//! and the requests other parts of the process send to that loop ([`control`]).

pub mod control;
pub mod daemon;
pub mod timers;
