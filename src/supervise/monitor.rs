//! The restart policy of `reportd monitor`: each restart waits a back-off (1 s, doubling up
//! to 60 s, back to 1 s once the daemon has stayed up for a while), and at most a budget of
//! restarts fits in a sliding window (5 in 10 minutes); past it the monitor gives up.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The first back-off.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest back-off.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Restarts allowed in [`WINDOW`].
pub const BUDGET: usize = 5;
/// The window of the budget.
pub const WINDOW: Duration = Duration::from_secs(600);
/// Up this long after a restart, the daemon counts as stable: the back-off starts over.
pub const STABLE_AFTER: Duration = Duration::from_secs(120);

/// The restart budget is spent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{restarts} restarts within {minutes} minutes; giving up", minutes = .window.as_secs() / 60)]
pub struct BudgetSpent {
    /// Restarts made in the window.
    pub restarts: usize,
    /// The window.
    pub window: Duration,
}

/// Back-off and budget.
#[derive(Debug)]
pub struct RestartPolicy {
    backoff: Duration,
    recent: VecDeque<Instant>,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            backoff: FIRST_BACKOFF,
            recent: VecDeque::new(),
        }
    }
}

impl RestartPolicy {
    /// A restart is needed at `now`: how long to wait before it, or [`BudgetSpent`].
    ///
    /// # Errors
    /// [`BUDGET`] restarts happened within [`WINDOW`] already.
    pub fn next(&mut self, now: Instant) -> Result<Duration, BudgetSpent> {
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= BUDGET {
            return Err(BudgetSpent {
                restarts: self.recent.len(),
                window: WINDOW,
            });
        }
        self.recent.push_back(now);
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Ok(wait)
    }

    /// The daemon was found healthy at `now`: once it has been up [`STABLE_AFTER`] since the
    /// last restart, the back-off starts over.
    pub fn healthy(&mut self, now: Instant) {
        if self
            .recent
            .back()
            .is_none_or(|t| now.duration_since(*t) >= STABLE_AFTER)
        {
            self.backoff = FIRST_BACKOFF;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_doubling_and_gives_up_past_the_budget() {
        let mut p = RestartPolicy::default();
        let t0 = Instant::now();
        let waits: Vec<u64> = (0..5)
            .map(|i| p.next(t0 + Duration::from_secs(i)).unwrap().as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16]);
        let spent = p.next(t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(spent.restarts, 5);
        assert_eq!(spent.to_string(), "5 restarts within 10 minutes; giving up");
        // Once the first restarts leave the window, restarts are allowed again.
        assert!(p.next(t0 + WINDOW + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn backoff_caps_at_a_minute_and_resets_when_stable() {
        let mut p = RestartPolicy::default();
        let mut t = Instant::now();
        let mut last = Duration::ZERO;
        for _ in 0..9 {
            t += WINDOW; // keep within the budget
            last = p.next(t).unwrap();
        }
        assert_eq!(last, MAX_BACKOFF);
        p.healthy(t + Duration::from_secs(5));
        assert_eq!(p.next(t + Duration::from_secs(6)).unwrap(), MAX_BACKOFF);
        p.healthy(t + Duration::from_secs(6) + STABLE_AFTER);
        assert_eq!(
            p.next(t + Duration::from_secs(7) + STABLE_AFTER).unwrap(),
            FIRST_BACKOFF
        );
    }
}
