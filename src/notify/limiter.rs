//! The per-robot sliding-window rate limiter: at most `max` sends in any `window`, and a
//! hold on a robot after DingTalk answered 130101.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Per-robot sliding-window rate limiter.
pub(super) struct Limiter {
    pub(super) max: usize,
    pub(super) window: Duration,
    robots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<RobotState>>>>,
}

/// One robot's recent sends and any hold after a 130101 answer.
#[derive(Default)]
pub(super) struct RobotState {
    sent: VecDeque<Instant>,
    held_until: Option<Instant>,
}

impl Limiter {
    pub(super) fn new(max: usize, window: Duration) -> Limiter {
        Limiter {
            max: max.max(1),
            window,
            robots: Mutex::new(HashMap::new()),
        }
    }

    fn state(&self, key: &str) -> Arc<tokio::sync::Mutex<RobotState>> {
        let mut robots = self.robots.lock().unwrap_or_else(|p| p.into_inner());
        robots.entry(key.to_string()).or_default().clone()
    }

    /// Waits until the robot may send, and records the send. Waiters for one robot go in
    /// turn (the robot's lock is fair).
    pub(super) async fn acquire(&self, key: &str) {
        let state = self.state(key);
        let mut st = state.lock().await;
        loop {
            let now = Instant::now();
            if let Some(until) = st.held_until {
                if until > now {
                    tracing::debug!(
                        wait_ms = (until - now).as_millis() as u64,
                        "DingTalk robot held after 130101"
                    );
                    tokio::time::sleep_until(until).await;
                    continue;
                }
                st.held_until = None;
            }
            while st
                .sent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.window)
            {
                st.sent.pop_front();
            }
            match st.sent.front() {
                Some(oldest) if st.sent.len() >= self.max => {
                    let until = *oldest + self.window;
                    tracing::debug!(
                        wait_ms = (until - now).as_millis() as u64,
                        "DingTalk rate limit: waiting"
                    );
                    tokio::time::sleep_until(until).await;
                }
                _ => {
                    st.sent.push_back(now);
                    return;
                }
            }
        }
    }

    /// Holds the robot: no send before `until`.
    pub(super) async fn hold(&self, key: &str, until: Instant) {
        let state = self.state(key);
        let mut st = state.lock().await;
        st.held_until = Some(st.held_until.map_or(until, |u| u.max(until)));
    }
}
