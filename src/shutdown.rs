//! One shutdown handle for the whole process: the scheduler loop, running executions, the HTTP
//! server and the systemd pings all wait on clones of the same [`Shutdown`]. It is latched (a
//! job started after shutdown began still sees it) and carries the first reason given, which
//! ends up in the log and in the records of interrupted executions. A [`Shutdown::child`] is
//! stopped with its parent and can also be stopped on its own (a fire whose lease was lost).

use std::future::Future;
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;

/// A cloneable, latched stop signal with a reason.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    reason: Arc<OnceLock<String>>,
    parent: Option<Arc<OnceLock<String>>>,
}

impl Shutdown {
    /// A handle nothing has triggered yet.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// A handle triggered by SIGTERM or SIGINT (the handlers are installed now, so a signal that
    /// comes before anything waits is not lost).
    pub fn on_signals() -> Shutdown {
        let shutdown = Shutdown::new();
        let signals = signals();
        let trigger = shutdown.clone();
        tokio::spawn(async move { trigger.trigger(signals.await) });
        shutdown
    }

    /// Stops everything waiting on this handle (and its children). The first reason wins.
    pub fn trigger(&self, reason: impl Into<String>) {
        let _ = self.reason.set(reason.into());
        self.token.cancel();
    }

    /// True once triggered (here or on a parent).
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves with the reason once triggered; at once when it already is.
    pub async fn wait(&self) -> String {
        self.token.cancelled().await;
        self.reason_now()
    }

    /// [`Shutdown::wait`] as a `'static` future, for spawned tasks and servers.
    pub fn wait_owned(&self) -> impl Future<Output = String> + Send + 'static + use<> {
        let me = self.clone();
        async move { me.wait().await }
    }

    /// A handle stopped with this one, or on its own by its own [`Shutdown::trigger`].
    pub fn child(&self) -> Shutdown {
        Shutdown {
            token: self.token.child_token(),
            reason: Arc::default(),
            parent: Some(self.reason.clone()),
        }
    }

    fn reason_now(&self) -> String {
        self.reason
            .get()
            .or_else(|| self.parent.as_ref().and_then(|p| p.get()))
            .cloned()
            .unwrap_or_else(|| "interrupted".to_string())
    }
}

/// Resolves with `interrupted (SIGTERM)` or `interrupted (SIGINT)`.
fn signals() -> impl Future<Output = String> + Send + 'static {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::terminate()).and_then(|t| Ok((t, signal(SignalKind::interrupt())?)))
    };
    async move {
        #[cfg(unix)]
        if let Ok((mut term, mut int)) = handlers {
            return tokio::select! {
                _ = int.recv() => "interrupted (SIGINT)".to_string(),
                _ = term.recv() => "interrupted (SIGTERM)".to_string(),
            };
        }
        let _ = tokio::signal::ctrl_c().await;
        "interrupted (SIGINT)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn latched_first_reason_wins_and_children_follow_their_parent() {
        let s = Shutdown::new();
        let child = s.child();
        let lone = s.child();
        lone.trigger("lease lost");
        assert_eq!(lone.wait().await, "lease lost");
        assert!(!s.is_triggered() && !child.is_triggered());
        s.trigger("interrupted (SIGTERM)");
        s.trigger("second");
        assert_eq!(s.wait().await, "interrupted (SIGTERM)");
        assert_eq!(child.wait().await, "interrupted (SIGTERM)");
        // A waiter that comes late still resolves.
        assert_eq!(s.clone().wait_owned().await, "interrupted (SIGTERM)");
    }
}
