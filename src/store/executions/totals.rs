//! How many executions each filter of the log selected when last counted. A page of the log
//! reports its total; counting is a scan of an index (tens of milliseconds at 100,000 rows on
//! MariaDB), so a total counted less than [`FRESH`] ago, with no execution written by this
//! process since, is reported again instead of counted again. Writes by other processes (the
//! CLI, other daemons on the store) show in the total at most [`FRESH`] later; the rows of a
//! page are always read anew.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a total is reported without counting again.
pub(crate) const FRESH: Duration = Duration::from_secs(1);

/// Filters remembered at most (the oldest is forgotten first).
const KEPT: usize = 64;

/// The last totals counted, per filter, and a counter of this process's execution writes.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    writes: AtomicU64,
    counted: Mutex<Vec<Counted>>,
}

#[derive(Debug)]
struct Counted {
    key: String,
    total: u64,
    at: Instant,
    writes: u64,
}

impl Totals {
    /// Records that this process wrote executions: every remembered total is stale.
    pub(crate) fn changed(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }

    /// The count of writes so far; read before counting, given back to [`Totals::remember`].
    pub(crate) fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// The total of `key` when it can be reported without counting: counted less than
    /// [`FRESH`] ago, with no write since.
    pub(crate) fn fresh(&self, key: &str) -> Option<u64> {
        let writes = self.writes();
        let counted = self.counted.lock().ok()?;
        counted
            .iter()
            .find(|c| c.key == key && c.writes == writes && c.at.elapsed() < FRESH)
            .map(|c| c.total)
    }

    /// The last total of `key`, however old: a hint for planning a page while counting.
    pub(crate) fn hint(&self, key: &str) -> Option<u64> {
        let counted = self.counted.lock().ok()?;
        counted.iter().find(|c| c.key == key).map(|c| c.total)
    }

    /// Remembers `total` for `key`, counted after `writes` writes.
    pub(crate) fn remember(&self, key: String, total: u64, writes: u64, at: Instant) {
        if let Ok(mut counted) = self.counted.lock() {
            counted.retain(|c| c.key != key);
            if counted.len() >= KEPT {
                counted.remove(0);
            }
            counted.push(Counted {
                key,
                total,
                at,
                writes,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_total_is_fresh_until_a_write_or_a_second_passes() {
        let t = Totals::default();
        assert_eq!(t.fresh("all"), None);
        let w = t.writes();
        t.remember("all".into(), 7, w, Instant::now());
        assert_eq!(t.fresh("all"), Some(7));
        assert_eq!(t.fresh("failed"), None);
        t.changed();
        assert_eq!(t.fresh("all"), None, "a write makes it stale");
        assert_eq!(t.hint("all"), Some(7), "still a hint");
        let w = t.writes();
        t.remember("all".into(), 8, w, Instant::now() - FRESH);
        assert_eq!(t.fresh("all"), None, "too old");
        assert_eq!(t.hint("all"), Some(8));
    }

    #[test]
    fn a_count_raced_by_a_write_is_not_fresh() {
        let t = Totals::default();
        let before = t.writes();
        t.changed();
        t.remember("all".into(), 7, before, Instant::now());
        assert_eq!(t.fresh("all"), None);
    }

    #[test]
    fn at_most_kept_filters_are_remembered() {
        let t = Totals::default();
        for i in 0..=KEPT {
            t.remember(format!("k{i}"), i as u64, 0, Instant::now());
        }
        assert_eq!(t.hint("k0"), None, "the oldest is forgotten");
        assert_eq!(t.hint(&format!("k{KEPT}")), Some(KEPT as u64));
    }
}
