//! Scheduling: the [`Scheduler`]'s timer loop (`scheduler.rs`) over the task timers
//! ([`timers`]); each fire is claimed and run (`fire.rs`) through
//! [`crate::run::Executor::run`] under the `max_workers` limit, and every fire leaves one
//! execution row: run, or `skipped` with the reason (overlap, missed beyond the grace,
//! folded into a later fire: `folded.rs`).
//!
//! Several daemons may share a MySQL or PostgreSQL store: fire claims, leases, takeover and
//! crash recovery are in `lease.rs`; fires missed while no daemon ran are caught up in
//! `catchup.rs`; old files and history go daily (`retention.rs`); the rest of the process talks
//! to the loop through [`control`] (status snapshots, runs asked for over HTTP, the systemd
//! watchdog's liveness check).
//!
//! A task never overlaps itself, on one instance or across instances; a run asked for over
//! HTTP holds the task's place on its own instance, so a fire that comes meanwhile is
//! `skipped`. The place is held by a guard: a run that ends in any way, a panic included, frees
//! it (and its lease is no longer renewed).

mod catchup;
pub mod control;
mod fire;
mod folded;
mod lease;
mod retention;
mod scheduler;
pub mod timers;

pub use lease::instance_name;
pub use scheduler::{Options, RELOAD_EVERY, Scheduler};
