//! The process's memory and glibc's allocator. glibc keeps freed memory in per-thread arenas
//! (the tokio workers, the blocking threads, one thread per SQLite connection) and gives
//! little of it back on its own: after a burst of API requests the daemon kept ~6 MB it no
//! longer used (SQLite store, measured). Two remedies, both no-ops off glibc:
//! [`return_large_blocks`] once, and [`trim_when_quiet`] under the HTTP server.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Makes blocks of 4 MiB and more come from mmap and go back to the system when freed. glibc's
/// mmap threshold otherwise grows with the largest block freed: after a few logins every
/// blocking thread would hold argon2's 19 MiB (hundreds of MB measured after a login burst).
pub fn return_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        // SAFETY: mallopt only changes allocator parameters; any value is valid to pass.
        ONCE.call_once(|| unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        });
    }
}

/// Gives the free memory of every arena back to the system (`malloc_trim(0)`); a few
/// milliseconds at most for a heap of this daemon's size.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it is safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Follows `activity` (a count of work done, e.g. requests served) every `tick`, and trims
/// once after each stretch of work, at the first tick that finds the count unchanged. Runs
/// until dropped.
pub async fn trim_when_quiet(activity: Arc<AtomicU64>, tick: Duration) {
    let mut quiet = Quiet::new(activity.load(Ordering::Relaxed));
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if quiet.tick(activity.load(Ordering::Relaxed)) {
            // Off the runtime's workers: it takes each arena's lock in turn.
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    }
}

/// When to trim: at the first tick without work after ticks with work.
#[derive(Debug)]
struct Quiet {
    seen: u64,
    worked: bool,
}

impl Quiet {
    fn new(seen: u64) -> Quiet {
        Quiet {
            seen,
            worked: false,
        }
    }

    /// True when the work just stopped: time to trim.
    fn tick(&mut self, count: u64) -> bool {
        let moved = count != self.seen;
        self.seen = count;
        if moved {
            self.worked = true;
            false
        } else {
            std::mem::take(&mut self.worked)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_after_each_stretch_of_work() {
        let mut q = Quiet::new(0);
        assert!(!q.tick(0), "no work yet");
        assert!(!q.tick(3), "working");
        assert!(!q.tick(9), "still working");
        assert!(q.tick(9), "the work stopped");
        assert!(!q.tick(9), "once");
        assert!(!q.tick(10));
        assert!(q.tick(10));
    }
}
