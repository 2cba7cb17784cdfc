//! The per-key sliding-window rate limiter of the robot channels (DingTalk, WeCom, Feishu):
//! at most `max` sends in any `window` (several such limits may hold at once, e.g. Feishu's
//! 100 per minute and 5 per second), and a hold on a key after the service answered that
//! it is rate limited. [`Limiter::paced`] runs a send through the crate's one retry policy
//! with both.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::retry::{Attempted, RetryAction, RetryLogic, RetryPolicy, retry};
use crate::clock::Clock;
use crate::shutdown::Shutdown;

/// Per-key sliding-window rate limiter.
pub(crate) struct Limiter {
    /// `(max, window)` pairs, all of which hold.
    limits: Vec<(usize, Duration)>,
    keys: Mutex<HashMap<String, Arc<tokio::sync::Mutex<KeyState>>>>,
}

/// One key's recent sends and any hold after a rate-limit answer.
#[derive(Default)]
struct KeyState {
    sent: VecDeque<Instant>,
    held_until: Option<Instant>,
}

impl Limiter {
    /// Every `(max, window)` holds at once (`max` at least 1); no limits: no waiting.
    pub(crate) fn new(limits: &[(usize, Duration)]) -> Limiter {
        Limiter {
            limits: limits.iter().map(|&(m, w)| (m.max(1), w)).collect(),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// The `(max, window)` pairs, for `Debug`.
    pub(crate) fn limits(&self) -> &[(usize, Duration)] {
        &self.limits
    }

    fn state(&self, key: &str) -> Arc<tokio::sync::Mutex<KeyState>> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.entry(key.to_string()).or_default().clone()
    }

    /// Waits until the key may send, and records the send. Waiters for one key go in turn
    /// (the key's lock is fair).
    pub(crate) async fn acquire(&self, key: &str) {
        let longest = self
            .limits
            .iter()
            .map(|&(_, w)| w)
            .max()
            .unwrap_or_default();
        let state = self.state(key);
        let mut st = state.lock().await;
        loop {
            let now = Instant::now();
            if let Some(until) = st.held_until {
                if until > now {
                    tracing::debug!(
                        wait_ms = (until - now).as_millis() as u64,
                        "robot held after a rate-limit answer"
                    );
                    tokio::time::sleep_until(until).await;
                    continue;
                }
                st.held_until = None;
            }
            while st
                .sent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= longest)
            {
                st.sent.pop_front();
            }
            match self.free_at(&st.sent, now) {
                Some(until) => {
                    tracing::debug!(
                        wait_ms = (until - now).as_millis() as u64,
                        "rate limit: waiting"
                    );
                    tokio::time::sleep_until(until).await;
                }
                None => {
                    st.sent.push_back(now);
                    return;
                }
            }
        }
    }

    /// When a send may go, if not now: the latest instant at which each full window has
    /// dropped its oldest send.
    fn free_at(&self, sent: &VecDeque<Instant>, now: Instant) -> Option<Instant> {
        let mut until: Option<Instant> = None;
        for &(max, window) in &self.limits {
            let recent: Vec<&Instant> = sent
                .iter()
                .filter(|t| now.duration_since(**t) < window)
                .collect();
            if recent.len() >= max {
                let free = *recent[recent.len() - max] + window;
                until = Some(until.map_or(free, |u| u.max(free)));
            }
        }
        until
    }

    /// Holds the key: no send before `until`.
    pub(crate) async fn hold(&self, key: &str, until: Instant) {
        let state = self.state(key);
        let mut st = state.lock().await;
        st.held_until = Some(st.held_until.map_or(until, |u| u.max(until)));
    }

    /// Runs `op(attempt)` through [`retry`] with `policy` and `logic`: each attempt first
    /// waits its turn at `key`, and a failure that `logic` retries after a hold of its own
    /// ([`RetryAction::RetryAfter`]: the service said "too fast") holds `key` for that long,
    /// so other messages to the same robot wait out the hold too.
    pub(crate) async fn paced<T, E, L, F, Fut>(
        &self,
        key: &str,
        policy: &RetryPolicy,
        logic: &L,
        shutdown: &Shutdown,
        announce: impl FnMut(u32, Duration, &E),
        op: F,
    ) -> Attempted<T, E>
    where
        L: RetryLogic<Error = E>,
        F: Fn(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let op = &op;
        retry(
            policy,
            logic,
            &Clock::System,
            shutdown,
            announce,
            |attempt| async move {
                self.acquire(key).await;
                let result = op(attempt).await;
                if let Err(e) = &result
                    && let RetryAction::RetryAfter(hold) = logic.classify(e)
                    && policy.allows_after(attempt)
                {
                    self.hold(key, Instant::now() + hold).await;
                }
                result
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_limit_holds() {
        // 3 per 600 ms and 2 per 200 ms: sends at 0, 0, 200, then 600 ms.
        let limiter = Limiter::new(&[
            (3, Duration::from_millis(600)),
            (2, Duration::from_millis(200)),
        ]);
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..4 {
            limiter.acquire("k").await;
            at.push((Instant::now() - start).as_millis());
        }
        assert!(at[1] < 50 && (200..300).contains(&at[2]), "{at:?}");
        assert!((600..700).contains(&at[3]), "{at:?}");
        let before = Instant::now();
        limiter.acquire("other").await;
        assert!(
            before.elapsed() < Duration::from_millis(50),
            "other keys do not wait"
        );
    }
}
