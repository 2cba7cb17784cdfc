//! What the robot clients (DingTalk, WeCom, Feishu) share: one HTTP client, the request
//! timeout, the per-robot [`Limiter`], how often and how long apart a rate-limited send is
//! tried again, and the shutdown that ends such a hold early. Each channel keeps its own
//! [`RetryLogic`] (which answer means "too fast") and its own public builder methods.
//! [`pick`] chooses a task's robot: its own, or the config's.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use super::http::Clients;
use super::limiter::Limiter;
use super::retry::{Attempted, RetryLogic, RetryPolicy};
use crate::model::env::{self, EnvError};
use crate::model::secret::Secret;
use crate::outbound::{self, Origin, Policy, Refused};
use crate::shutdown::Shutdown;

/// Default number of HTTP attempts when a service answers "too fast".
const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Default hold on a robot after a "too fast" answer, before the next attempt.
const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(60);

/// A robot channel's client core. Cloning is cheap and shares the connection pool and the
/// limiter.
#[derive(Clone)]
pub(crate) struct RobotClient<E> {
    /// The HTTP clients (trusted, checked), or why they could not be built (reported by
    /// every send).
    clients: Clients<E>,
    pub(crate) timeout: Duration,
    limiter: Arc<Limiter>,
    max_attempts: u32,
    pub(crate) retry_delay: Duration,
    /// Ends a hold early (never triggered unless a channel's `with_shutdown`).
    shutdown: Shutdown,
}

impl<E: Clone + fmt::Display + From<Refused>> RobotClient<E> {
    /// Every request bounded by `timeout`, sends paced by `limits` per robot, up to 3
    /// attempts 60 s apart on a "too fast" answer; a robot a task gave is reached under
    /// `policy`. `http_error` names a client that cannot be built (logged now, reported by
    /// every send).
    pub(crate) fn new(
        channel: &str,
        timeout: Duration,
        limits: &[(usize, Duration)],
        http_error: impl Fn(String) -> E,
        policy: Arc<Policy>,
    ) -> RobotClient<E> {
        let clients = Clients::new(timeout, policy, http_error);
        if let Some(e) = clients.error() {
            tracing::error!(channel, error = %e, "cannot build the HTTP client");
        }
        RobotClient {
            clients,
            timeout,
            limiter: Arc::new(Limiter::new(limits)),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retry_delay: DEFAULT_RETRY_DELAY,
            shutdown: Shutdown::new(),
        }
    }

    /// The HTTP client for a robot from `origin` at `url`, or why there is none (no client,
    /// or the policy refuses the URL's address).
    pub(crate) fn http(&self, origin: Origin, url: &Url) -> Result<&outbound::Client, E> {
        self.clients.for_url(origin, url)
    }

    /// Replaces the limiter (and its history).
    pub(crate) fn set_rate_limits(&mut self, limits: &[(usize, Duration)]) {
        self.limiter = Arc::new(Limiter::new(limits));
    }

    /// Up to `max_attempts` (at least 1), `delay` apart, on a "too fast" answer.
    pub(crate) fn set_retries(&mut self, max_attempts: u32, delay: Duration) {
        self.max_attempts = max_attempts.max(1);
        self.retry_delay = delay;
    }

    /// The shutdown that ends a hold early.
    pub(crate) fn set_shutdown(&mut self, shutdown: Shutdown) {
        self.shutdown = shutdown;
    }

    /// `Debug` of the channel's client: timeout, limits, retries.
    pub(crate) fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (rate_max, rate_window) = self.limiter.limits().first().copied().unwrap_or_default();
        f.debug_struct(name)
            .field("timeout", &self.timeout)
            .field("rate_max", &rate_max)
            .field("rate_window", &rate_window)
            .field("rate_limits", &self.limiter.limits())
            .field("max_attempts", &self.max_attempts)
            .field("retry_delay", &self.retry_delay)
            .finish_non_exhaustive()
    }

    /// Runs `op` at `key`'s pace, retried as `logic` says within the attempts, a "too fast"
    /// answer holding the robot ([`Limiter::paced`]).
    pub(crate) async fn paced<T, L, F, Fut>(
        &self,
        key: &str,
        logic: &L,
        announce: impl FnMut(u32, Duration, &E),
        op: F,
    ) -> Attempted<T, E>
    where
        L: RetryLogic<Error = E>,
        F: Fn(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let policy = RetryPolicy::fixed(self.max_attempts, self.retry_delay);
        self.limiter
            .paced(key, &policy, logic, &self.shutdown, announce, op)
            .await
    }
}

/// A send refused before any attempt.
pub(crate) fn refused<T, E>(error: E) -> Attempted<T, E> {
    Attempted {
        attempts: 0,
        result: Err(error),
        stopped: false,
    }
}

/// The webhook, signing secret and origin a task posts with: its own webhook with its own
/// secret (the config's secret signs only the config's robot), checked by the outbound policy
/// ([`Origin::User`]), else the config's `webhook` and `secret`, trusted ([`Origin::Config`],
/// even with the task's own secret: the URL is the operator's).
/// A task's values may be one whole `${ENV}` reference to a variable starting with `prefix`
/// ([`env::expand_task`]); the config's
/// were expanded when it was loaded. The webhook is empty when neither names one.
///
/// # Errors
/// A task's `${ENV}` reference that is not set, or one inside a longer value.
pub(crate) fn pick(
    own_webhook: Option<&Secret>,
    own_secret: Option<&Secret>,
    webhook: &Secret,
    secret: &Secret,
    prefix: &str,
) -> Result<(String, Option<String>, Origin), EnvError> {
    let own = |v: Option<&Secret>| {
        v.filter(|s| !s.is_empty())
            .map(|s| env::expand_task(s.expose(), prefix))
            .transpose()
    };
    let (webhook, secret, origin) = match own(own_webhook)? {
        Some(w) => (w, own(own_secret)?.unwrap_or_default(), Origin::User),
        None => (
            webhook.expose().to_string(),
            own(own_secret)?.unwrap_or_else(|| secret.expose().to_string()),
            Origin::Config,
        ),
    };
    Ok((
        webhook,
        (!secret.trim().is_empty()).then_some(secret),
        origin,
    ))
}
