//! Panics turned into records: the text of a caught panic, and a process hook that sends
//! every panic to the log (file and stderr) as one line instead of the default stderr
//! message, so that a run's panic is in the log file next to the run it ended.
//!
//! Runs catch their own panics ([`crate::run`]); this hook only decides where the text
//! goes. With `RUST_BACKTRACE` set, the backtrace follows as a `debug` event (shown with
//! `-vv` or `logging.level: DEBUG`), so the error itself stays one line.

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

thread_local! {
    /// Set while this thread runs code under [`quietly`].
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

static QUIET_HOOK: Once = Once::new();

/// Wraps the current panic hook (once per process) so that a panic on a thread inside
/// [`quietly`] is only a `debug` event; every other panic goes to the hook as before.
fn install_quiet_hook() {
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                let at = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                tracing::debug!(at, panic = %message(info.payload()), "caught and reported as an error");
            } else {
                previous(info);
            }
        }));
    });
}

/// A panic caught by [`quietly`]; displays as the panic's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Panicked(pub String);

/// Runs `f`; a panic in it is caught and comes back as its text, printed nowhere (the caller
/// reports it as an ordinary error). For code whose libraries panic on bad input: the xlsx
/// writer on a full disk, sqlx decoding a value it cannot represent.
///
/// # Errors
/// The panic's text.
pub fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, Panicked> {
    install_quiet_hook();
    let was = QUIET.with(|q| q.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result.map_err(|payload| Panicked(message(payload.as_ref())))
}

/// The text a panic was raised with (`panic!("...")`, `expect`, a failed `Display`…).
pub fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Sends panics to the log as one `error` event (message, place, thread) from now on.
/// Call it once logging is set up, before any [`quietly`]: before that the default hook is the
/// only witness.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let text = message(info.payload()).replace('\n', " ");
        let place = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        tracing::error!(panic = %text, at = %place, thread = %thread, "panicked");
        let backtrace = Backtrace::capture();
        if backtrace.status() == BacktraceStatus::Captured {
            tracing::debug!(backtrace = %backtrace, "backtrace of the panic");
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_of_both_payload_kinds() {
        let e = std::panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(message(e.as_ref()), "plain");
        let n = 3;
        let e = std::panic::catch_unwind(|| panic!("with {n}")).unwrap_err();
        assert_eq!(message(e.as_ref()), "with 3");
    }

    #[test]
    fn quietly_catches_and_resets_its_flag() {
        assert_eq!(quietly(|| 7), Ok(7));
        assert_eq!(
            quietly(|| -> () { panic!("boom") }),
            Err(Panicked("boom".to_string()))
        );
        assert!(!QUIET.with(Cell::get), "the flag is reset");
    }
}
