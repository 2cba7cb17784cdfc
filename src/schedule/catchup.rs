//! Fires missed while no daemon ran: at start, the latest missed fire of each task runs once
//! (trigger `catch-up`) if it is within `scheduler.misfire_grace_time`, else it is recorded as
//! `skipped`. Several missed fires of a task coalesce into one; each earlier one is recorded
//! `skipped`, folded into that one's execution (`folded.rs`).

use chrono::{DateTime, Duration as Span, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

use super::fire::{fire, record_skip};
use super::folded::record_folded;
use super::lease::{claim, close};
use super::scheduler::Scheduler;
use super::timers::{Folded, Timer, Timers};
use crate::config::Settings;
use crate::model::execution::Trigger;

/// Runs or skips the missed fires of `timers`' tasks.
pub(super) async fn catch_up(s: &Arc<Scheduler>, timers: &Timers, jobs: &mut JoinSet<()>) {
    let now = s.clock().now();
    let grace = grace(&s.settings());
    for timer in timers.iter() {
        let record = &timer.record;
        let since = match s.store().last_claimed_fire(record.id).await {
            Ok(last) => last.unwrap_or(record.created_at).max(record.created_at),
            Err(e) => {
                tracing::error!(task = %record.spec.name, error = %e, "could not check for missed fires");
                continue;
            }
        };
        let Some(missed) = timer.last_fire(now) else {
            continue;
        };
        if missed <= since {
            continue;
        }
        let folded = missed_before(timer, since, missed);
        if now - missed <= grace {
            fire(s, jobs, record.clone(), missed, Trigger::CatchUp, folded);
        } else {
            let reason = format!(
                "missed while no daemon was running; {}s late, beyond scheduler.misfire_grace_time ({}s)",
                (now - missed).num_seconds(),
                grace.num_seconds()
            );
            if claim(s, record, missed).await {
                if let Some(id) = record_skip(s, record, missed, Trigger::CatchUp, reason).await {
                    record_folded(s, record, &folded, Trigger::CatchUp, id).await;
                }
                close(s, record.id, missed).await;
            }
        }
    }
}

/// The fires of `timer` after `since` and before `missed`, folded into `missed`: the first
/// ones one by one, the rest as one range (found without walking it).
fn missed_before(timer: &Timer, since: DateTime<Utc>, missed: DateTime<Utc>) -> Folded {
    let mut folded = Folded::default();
    let mut next = timer.next_after(since);
    while let Some(at) = next.filter(|at| *at < missed) {
        if folded.full() {
            let last = timer
                .last_fire(missed - Span::microseconds(1))
                .unwrap_or(at)
                .max(at);
            folded.rest = Some((at, last));
            break;
        }
        folded.push(at);
        next = timer.next_after(at);
    }
    folded
}

/// `scheduler.misfire_grace_time` as a span (saturating; the config bounds it).
pub(super) fn grace(settings: &Settings) -> Span {
    span(Duration::from_secs(settings.scheduler.misfire_grace_time))
}

/// `d` as a span (saturating).
pub(super) fn span(d: Duration) -> Span {
    Span::from_std(d).unwrap_or(Span::MAX)
}
