//! Previews running at once: at most `http.max_previews` in all and
//! `http.max_previews_per_user` per user (more are answered 429 at once, not queued), and
//! the data sources' connection slots that previews and connection tests share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::HttpSettings;
use crate::source::slots::SourceSlots;

/// The previews running now, and the data sources' slots.
#[derive(Debug, Clone, Default)]
pub struct Previews {
    running: Arc<Mutex<Running>>,
    /// At most `max_connections` previews and tests on a data source at once.
    pub sources: SourceSlots,
}

#[derive(Debug, Default)]
struct Running {
    total: u64,
    per_user: HashMap<String, u64>,
}

/// A running preview; dropping it ends it.
#[derive(Debug)]
pub struct Ticket {
    running: Arc<Mutex<Running>>,
    user: String,
}

/// A preview over one of the caps; the message names the cap and its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TooMany {
    /// The caller runs `http.max_previews_per_user` already.
    #[error(
        "{user} already runs {max} previews at once (http.max_previews_per_user); wait for one to finish"
    )]
    User {
        /// The caller.
        user: String,
        /// The cap.
        max: u64,
    },
    /// `http.max_previews` run already.
    #[error("{max} previews are running (http.max_previews); try again shortly")]
    Total {
        /// The cap.
        max: u64,
    },
}

impl Previews {
    /// Starts a preview for `user`.
    ///
    /// # Errors
    /// [`TooMany`] when the user's or everyone's cap is reached.
    pub fn start(&self, user: &str, http: &HttpSettings) -> Result<Ticket, TooMany> {
        let mut r = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let mine = r.per_user.get(user).copied().unwrap_or(0);
        if mine >= http.max_previews_per_user {
            return Err(TooMany::User {
                user: user.to_string(),
                max: http.max_previews_per_user,
            });
        }
        if r.total >= http.max_previews {
            return Err(TooMany::Total {
                max: http.max_previews,
            });
        }
        r.total += 1;
        *r.per_user.entry(user.to_string()).or_default() += 1;
        Ok(Ticket {
            running: self.running.clone(),
            user: user.to_string(),
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut r = self.running.lock().unwrap_or_else(|e| e.into_inner());
        r.total = r.total.saturating_sub(1);
        if let Some(n) = r.per_user.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                r.per_user.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_user_and_in_all() {
        let http = HttpSettings {
            max_previews: 3,
            max_previews_per_user: 2,
            ..HttpSettings::default()
        };
        let p = Previews::default();
        let a1 = p.start("a", &http).unwrap();
        let _a2 = p.start("a", &http).unwrap();
        assert!(matches!(
            p.start("a", &http),
            Err(TooMany::User { max: 2, .. })
        ));
        let _b1 = p.start("b", &http).unwrap();
        assert!(matches!(
            p.start("c", &http),
            Err(TooMany::Total { max: 3 })
        ));
        drop(a1);
        let _c1 = p.start("c", &http).unwrap();
        assert!(p.start("a", &http).is_err());
    }
}
