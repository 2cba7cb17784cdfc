//! Nothing silent: fires folded into a later one (missed while the loop was held up, say by a
//! store that stopped answering, or while no daemon ran) each leave a `skipped` execution
//! naming the execution they were folded into. Each is claimed first, as a fire is, so with
//! several daemons on one store a folded fire is recorded once, and a fire another daemon
//! ran is not recorded as missed.

use chrono::{DateTime, SecondsFormat, Utc};

use super::fire::record_skip;
use super::lease::{claim, close};
use super::scheduler::Scheduler;
use super::timers::Folded;
use crate::model::execution::Trigger;
use crate::store::TaskRecord;

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Records each fire of `folded` as `skipped`, folded into execution `into` (the run, or the
/// skip, of the fire they were folded into).
pub(super) async fn record_folded(
    s: &Scheduler,
    record: &TaskRecord,
    folded: &Folded,
    trigger: Trigger,
    into: i64,
) {
    if folded.is_empty() {
        return;
    }
    for at in &folded.listed {
        let reason = format!(
            "missed fire at {}; folded into execution {into}",
            stamp(*at)
        );
        skip_once(s, record, *at, trigger, reason).await;
    }
    if let Some((first, last)) = folded.rest {
        let reason = format!(
            "missed fires from {} to {} (not recorded one by one); folded into execution {into}",
            stamp(first),
            stamp(last)
        );
        skip_once(s, record, first, trigger, reason).await;
    }
}

/// Claims the fire at `at` and records it skipped; nothing when another daemon has it.
async fn skip_once(
    s: &Scheduler,
    record: &TaskRecord,
    at: DateTime<Utc>,
    trigger: Trigger,
    reason: String,
) {
    if claim(s, record, at).await {
        record_skip(s, record, at, trigger, reason).await;
        close(s, record.id, at).await;
    }
}
