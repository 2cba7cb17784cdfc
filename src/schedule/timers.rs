//! The daemon's timers: one per enabled task, on its next fire, kept in a queue ordered by
//! time so the loop finds the earliest in O(log n) however many tasks are loaded.
//!
//! A timer keeps the cron expression as text and parses it when it computes a fire (a few
//! microseconds): a parsed croner pattern holds about 5 KB (its year table), which for 10,000
//! tasks would be most of the daemon's memory.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::model::cron::{Schedule, check_min_interval};
use crate::store::TaskRecord;

/// One task's timer.
#[derive(Debug)]
pub struct Timer {
    /// The task.
    pub record: Arc<TaskRecord>,
    /// Its zone.
    pub tz: Tz,
    /// Its next fire, if it fires again.
    pub next: Option<DateTime<Utc>>,
}

impl Timer {
    /// The latest fire at or before `at`.
    pub fn last_fire(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule()?
            .last_fire(self.tz, at)
            .map(|d| d.with_timezone(&Utc))
    }

    /// The first fire after `at`.
    pub fn next_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule()?
            .next_fire(self.tz, at)
            .map(|d| d.with_timezone(&Utc))
    }

    /// The parsed expression (it parsed when the timer was made).
    fn schedule(&self) -> Option<Schedule> {
        Schedule::parse(&self.record.spec.cron).ok()
    }
}

/// Fires listed one by one in a [`Folded`]; later ones are summed up in one range.
pub const FOLDED_LISTED: usize = 100;

/// Fires of a task folded into a later one (missed during a stall, or while no daemon ran),
/// in time order: each gets a `skipped` record naming the execution they were folded into.
/// The first [`FOLDED_LISTED`] are listed one by one; the rest, however many, are one range,
/// so a long outage leaves a bounded number of records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Folded {
    /// The first fires, one by one.
    pub listed: Vec<DateTime<Utc>>,
    /// The first and the last of the fires after those.
    pub rest: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Folded {
    /// Adds the next fire (later than every fire added before).
    pub fn push(&mut self, at: DateTime<Utc>) {
        match &mut self.rest {
            Some((_, last)) => *last = at,
            None if self.listed.len() < FOLDED_LISTED => self.listed.push(at),
            None => self.rest = Some((at, at)),
        }
    }

    /// True when no fire was folded.
    pub fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    /// True when [`FOLDED_LISTED`] fires are listed: later ones go to `rest`.
    pub fn full(&self) -> bool {
        self.listed.len() >= FOLDED_LISTED
    }
}

/// A fire that fell due.
#[derive(Debug)]
pub struct Due {
    /// The task.
    pub record: Arc<TaskRecord>,
    /// The fire time (the latest due one).
    pub at: DateTime<Utc>,
    /// Earlier due fires folded into this one (after a stall).
    pub coalesced: u32,
    /// Those fires.
    pub folded: Folded,
}

/// The timers of the loaded tasks.
#[derive(Debug, Default)]
pub struct Timers {
    by_task: HashMap<i64, Timer>,
    queue: BTreeSet<(DateTime<Utc>, i64)>,
}

impl Timers {
    /// Timers for the enabled tasks among `records`, each on its next fire after `now`.
    /// A task whose cron expression does not parse, or fires more often than `min_interval`
    /// seconds (`scheduler.min_interval`; stored before the limit was set or lowered), is
    /// logged and left out.
    pub fn new(
        records: Vec<TaskRecord>,
        default_tz: Tz,
        min_interval: u64,
        now: DateTime<Utc>,
    ) -> Timers {
        let mut timers = Timers::default();
        for record in records.into_iter().filter(|r| r.spec.enabled) {
            let tz = record.spec.zone(crate::model::units::TimeZone(default_tz));
            let checked = Schedule::parse(&record.spec.cron)
                .map_err(|e| e.to_string())
                .and_then(|s| {
                    check_min_interval(&s, &record.spec.cron, tz, min_interval)
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = checked {
                tracing::error!(task = %record.spec.name, error = %e, "task not scheduled");
                continue;
            }
            let mut timer = Timer {
                tz,
                record: Arc::new(record),
                next: None,
            };
            timer.next = timer.next_after(now);
            if let Some(at) = timer.next {
                timers.queue.insert((at, timer.record.id));
            }
            timers.by_task.insert(timer.record.id, timer);
        }
        timers
    }

    /// How many tasks are scheduled.
    pub fn len(&self) -> usize {
        self.by_task.len()
    }

    /// True when no task is scheduled.
    pub fn is_empty(&self) -> bool {
        self.by_task.is_empty()
    }

    /// The earliest next fire of all.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// The timer of one task.
    pub fn get(&self, task_id: i64) -> Option<&Timer> {
        self.by_task.get(&task_id)
    }

    /// The timers with a next fire, earliest first.
    pub fn upcoming(&self) -> impl Iterator<Item = &Timer> {
        self.queue.iter().filter_map(|(_, id)| self.by_task.get(id))
    }

    /// All timers, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Timer> {
        self.by_task.values()
    }

    /// Takes the fires due at `now` and moves their timers on. Normally one fire per task is
    /// due; after a stall (suspend, overload) several may be: they coalesce into the latest.
    pub fn take_due(&mut self, now: DateTime<Utc>) -> Vec<Due> {
        let mut due = Vec::new();
        while let Some(&(at, id)) = self.queue.first() {
            if at > now {
                break;
            }
            self.queue.pop_first();
            let Some(timer) = self.by_task.get_mut(&id) else {
                continue;
            };
            let (mut latest, mut coalesced) = (at, 0);
            let mut folded = Folded::default();
            let mut next = timer.next_after(at);
            while let Some(n) = next.filter(|n| *n <= now) {
                folded.push(latest);
                latest = n;
                coalesced += 1;
                next = timer.next_after(n);
            }
            timer.next = next;
            if let Some(n) = next {
                self.queue.insert((n, id));
            }
            due.push(Due {
                record: timer.record.clone(),
                at: latest,
                coalesced,
                folded,
            });
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::task::TaskSpec;
    use chrono::TimeZone;

    fn record(id: i64, cron: &str) -> TaskRecord {
        let spec: TaskSpec = serde_yaml::from_str(&format!(
            "name: t{id}\ndata_source: demo\ncron: \"{cron}\"\nsql: SELECT 1\n"
        ))
        .unwrap();
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        TaskRecord {
            id,
            spec,
            created_at: t,
            updated_at: t,
        }
    }

    #[test]
    fn due_fires_come_in_time_order_and_stalls_coalesce() {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 1, 0, 0).unwrap();
        let tasks = vec![record(1, "*/10 * * * * *"), record(2, "5 * * * * *")];
        let mut timers = Timers::new(tasks, Tz::UTC, 1, now);
        assert_eq!(timers.len(), 2);
        assert_eq!(timers.next_wake(), Some(now + chrono::Duration::seconds(5)));
        let due = timers.take_due(now + chrono::Duration::seconds(5));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].record.id, 2);
        // A 35 s stall: task 1 was due at :10 :20 :30 :40, one run of :40.
        let due = timers.take_due(now + chrono::Duration::seconds(40));
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].record.id, due[0].coalesced), (1, 3));
        assert_eq!(due[0].at, now + chrono::Duration::seconds(40));
        let s = |n| now + chrono::Duration::seconds(n);
        assert_eq!(due[0].folded.listed, [s(10), s(20), s(30)]);
        assert_eq!(due[0].folded.rest, None);
        assert_eq!(
            timers.next_wake(),
            Some(now + chrono::Duration::seconds(50))
        );
    }

    #[test]
    fn past_the_listed_fires_the_rest_is_one_range() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut f = Folded::default();
        for n in 0..(FOLDED_LISTED as i64 + 50) {
            f.push(t + chrono::Duration::seconds(n));
        }
        assert_eq!(f.listed.len(), FOLDED_LISTED);
        let rest = f.rest.unwrap();
        assert_eq!(rest.0, t + chrono::Duration::seconds(FOLDED_LISTED as i64));
        assert_eq!(
            rest.1,
            t + chrono::Duration::seconds(FOLDED_LISTED as i64 + 49)
        );
    }

    #[test]
    fn disabled_and_unparsable_tasks_get_no_timer() {
        let mut off = record(1, "* * * * *");
        off.spec.enabled = false;
        let timers = Timers::new(vec![off, record(2, "bogus")], Tz::UTC, 1, Utc::now());
        assert!(timers.is_empty());
        assert_eq!(timers.next_wake(), None);
    }
}
