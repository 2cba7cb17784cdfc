//! The one retry policy of the crate: how many attempts, and how long to wait between them.
//! Every channel (DingTalk's 130101 answers, transient SMTP failures, and the channels to come)
//! and whole-run retries of a task go through [`retry`]; each says only which of its failures
//! are worth another attempt ([`RetryLogic`]), after the style of vector's `RetryLogic`.
//!
//! The waits run on a [`Clock`] (so tests move time by hand) and end early on a [`Shutdown`]:
//! a stopping daemon does not sit out a back-off.

use std::future::Future;
use std::time::Duration;

use crate::clock::Clock;
use crate::shutdown::Shutdown;

/// The longest wait between two attempts (a day, the bound `config` puts on back-offs).
pub const MAX_DELAY: Duration = Duration::from_secs(86_400);

/// How many attempts, and the waits between them: `base`, then `base × factor`, then
/// `base × factor²`…, never more than [`MAX_DELAY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (at least 1).
    pub max_attempts: u32,
    /// The wait after the first failed attempt.
    pub base: Duration,
    /// How much each wait grows (1: fixed waits).
    pub factor: u32,
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub const fn once() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            base: Duration::ZERO,
            factor: 1,
        }
    }

    /// `max_attempts` attempts, `delay` apart.
    pub const fn fixed(max_attempts: u32, delay: Duration) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base: delay,
            factor: 1,
        }
    }

    /// `max_attempts` attempts; waits of `base`, 2 × `base`, 4 × `base`…
    pub const fn exponential(max_attempts: u32, base: Duration) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base,
            factor: 2,
        }
    }

    /// The wait after failed attempt `attempt` (1-based), before the next one.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let grow = self
            .factor
            .saturating_pow(attempt.saturating_sub(1).min(32));
        self.base.saturating_mul(grow).min(MAX_DELAY)
    }

    /// True when another attempt may follow attempt `attempt` (1-based).
    pub fn allows_after(&self, attempt: u32) -> bool {
        attempt < self.max_attempts.max(1)
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAction {
    /// Try again after the policy's wait.
    Retry,
    /// Try again after this wait instead (e.g. a service's own hold).
    RetryAfter(Duration),
    /// Give up: another attempt cannot help, or could do harm (a message posted twice).
    DontRetry,
}

/// Which failures of an operation are worth another attempt.
pub trait RetryLogic {
    /// The failure of one attempt.
    type Error;
    /// Classifies a failed attempt.
    fn classify(&self, error: &Self::Error) -> RetryAction;
}

/// How a retried operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempted<T, E> {
    /// Attempts made (at least 1).
    pub attempts: u32,
    /// The last attempt's result.
    pub result: Result<T, E>,
    /// True when a shutdown ended a wait, so a retry that was due did not happen.
    pub stopped: bool,
}

/// Runs `op(attempt)` (1-based) until it succeeds, `logic` says not to retry, the policy's
/// attempts are used up, or `shutdown` comes during a wait. `announce(attempt, wait, error)`
/// is called before each wait (for the log line).
pub async fn retry<T, E, L, F, Fut>(
    policy: &RetryPolicy,
    logic: &L,
    clock: &Clock,
    shutdown: &Shutdown,
    mut announce: impl FnMut(u32, Duration, &E),
    mut op: F,
) -> Attempted<T, E>
where
    L: RetryLogic<Error = E>,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 1;
    loop {
        let result = op(attempt).await;
        let error = match &result {
            Ok(_) => return done(attempt, result, false),
            Err(e) => e,
        };
        let wait = match logic.classify(error) {
            RetryAction::DontRetry => return done(attempt, result, false),
            RetryAction::Retry => policy.delay_after(attempt),
            RetryAction::RetryAfter(d) => d.min(MAX_DELAY),
        };
        if !policy.allows_after(attempt) {
            return done(attempt, result, false);
        }
        announce(attempt, wait, error);
        tokio::select! {
            () = clock.sleep(wait) => {}
            _ = shutdown.wait() => return done(attempt, result, true),
        }
        attempt += 1;
    }
}

fn done<T, E>(attempts: u32, result: Result<T, E>, stopped: bool) -> Attempted<T, E> {
    Attempted {
        attempts,
        result,
        stopped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    struct Odd;
    impl RetryLogic for Odd {
        type Error = u32;
        fn classify(&self, e: &u32) -> RetryAction {
            if e % 2 == 1 {
                RetryAction::Retry
            } else {
                RetryAction::DontRetry
            }
        }
    }

    #[test]
    fn waits_grow_by_the_factor_and_stop_at_a_day() {
        let p = RetryPolicy::exponential(5, Duration::from_secs(30));
        let waits: Vec<u64> = (1..=4).map(|a| p.delay_after(a).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240]);
        assert_eq!(p.delay_after(40), MAX_DELAY);
        assert_eq!(
            RetryPolicy::fixed(3, Duration::from_secs(5)).delay_after(3),
            Duration::from_secs(5)
        );
        assert!(!RetryPolicy::once().allows_after(1));
    }

    #[tokio::test]
    async fn retries_only_what_the_logic_allows_and_within_the_attempts() {
        let calls = Cell::new(0);
        let policy = RetryPolicy::fixed(3, Duration::from_millis(10));
        let clock = Clock::System;
        let stop = Shutdown::new();
        let out = retry(
            &policy,
            &Odd,
            &clock,
            &stop,
            |_, _, _| {},
            |n| {
                calls.set(calls.get() + 1);
                async move { Err::<(), u32>(if n < 2 { 1 } else { 2 }) }
            },
        )
        .await;
        assert_eq!((out.attempts, out.result, out.stopped), (2, Err(2), false));
        let out = retry(
            &policy,
            &Odd,
            &clock,
            &stop,
            |_, _, _| {},
            |_| async { Err::<(), u32>(1) },
        )
        .await;
        assert_eq!(out.attempts, 3);
        stop.trigger("stop");
        let out = retry(
            &policy,
            &Odd,
            &clock,
            &stop,
            |_, _, _| {},
            |_| async { Err::<(), u32>(1) },
        )
        .await;
        assert_eq!((out.attempts, out.stopped), (1, true));
        assert_eq!(calls.get(), 2);
    }
}
