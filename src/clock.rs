//! The scheduler's clock: what time it is and sleeping until a wall-clock time. In production
//! it is the system clock; tests of the timer loop use a [`ManualClock`] that they move by
//! hand, so DST changes, missed fires, back-offs and timeouts are checked without waiting.

use chrono::{DateTime, Duration as Span, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The longest single sleep on the system clock. Tokio sleeps on the monotonic clock, which
/// does not follow wall-clock steps (NTP, suspend); waking at least this often keeps a long
/// sleep honest.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// A clock: the system's, or a manual one.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// `Utc::now()` and tokio timers.
    #[default]
    System,
    /// Time moves only when the test moves it.
    Manual(ManualClock),
}

impl Clock {
    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Manual(m) => m.now(),
        }
    }

    /// Resolves once the clock reads `at` or later.
    pub async fn sleep_until(&self, at: DateTime<Utc>) {
        match self {
            Clock::System => loop {
                let Ok(left) = (at - Utc::now()).to_std() else {
                    return;
                };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(MAX_SLEEP)).await;
            },
            Clock::Manual(m) => {
                let mut rx = m.tx.subscribe();
                let _ = rx.wait_for(|now| *now >= at).await;
            }
        }
    }

    /// Resolves after `d` has passed on this clock.
    pub async fn sleep(&self, d: Duration) {
        self.sleep_until(later(self.now(), d)).await;
    }
}

/// `t + d`, saturating at the end of time.
pub fn later(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    Span::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A clock moved by hand (tests). Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    tx: Arc<watch::Sender<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: DateTime<Utc>) -> ManualClock {
        ManualClock {
            tx: Arc::new(watch::Sender::new(start)),
        }
    }

    /// The time it reads.
    pub fn now(&self) -> DateTime<Utc> {
        *self.tx.borrow()
    }

    /// Sets the time (never backwards); sleepers due by then wake.
    pub fn set(&self, t: DateTime<Utc>) {
        self.tx.send_if_modified(|now| {
            let later = t > *now;
            if later {
                *now = t;
            }
            later
        });
    }

    /// Moves the time forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.set(later(self.now(), d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test]
    async fn manual_sleepers_wake_when_the_time_comes() {
        let start = Utc.with_ymd_and_hms(2026, 3, 8, 6, 0, 0).unwrap();
        let m = ManualClock::new(start);
        let clock = Clock::Manual(m.clone());
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(start + Span::seconds(60)).await }
        });
        m.advance(Duration::from_secs(59));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        m.set(start); // never backwards
        assert_eq!(clock.now(), start + Span::seconds(59));
        m.advance(Duration::from_secs(1));
        sleeper.await.unwrap();
    }

    #[tokio::test]
    async fn system_sleep_until_the_past_returns_at_once() {
        Clock::System
            .sleep_until(Utc::now() - Span::seconds(5))
            .await;
    }
}
