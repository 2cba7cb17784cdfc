//! Login throttling, in memory: after [`MAX_FAILURES_PER_NAME`] failed logins for one name, or
//! [`MAX_FAILURES_PER_ADDRESS`] from one address, within [`WINDOW`], further attempts are
//! refused (429) until the oldest failure leaves the window. A success clears the name's
//! failures. The table is bounded: the oldest keys are dropped past [`MAX_KEYS`].

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins for one name within [`WINDOW`] before it is throttled.
pub const MAX_FAILURES_PER_NAME: usize = 5;
/// Failed logins from one address within [`WINDOW`] before it is throttled.
pub const MAX_FAILURES_PER_ADDRESS: usize = 20;
/// How long a failure counts.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Names and addresses remembered at most.
pub const MAX_KEYS: usize = 10_000;

/// Failed logins per name and per address.
#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

fn name_key(name: &str) -> String {
    // Names longer than any account's are cut: they only need to be told apart.
    let cut: String = name.chars().take(80).collect();
    format!("n:{}", cut.to_lowercase())
}

/// IPv6 clients are counted per /64 (one host usually holds a whole /64).
fn address_key(address: &str) -> String {
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("a:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        _ => format!("a:{}", address.chars().take(64).collect::<String>()),
    }
}

impl Throttle {
    /// `Some(wait)` when a login for `name` from `address` must be refused now.
    pub fn blocked(&self, name: &str, address: &str, now: Instant) -> Option<Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        [
            (name_key(name), MAX_FAILURES_PER_NAME),
            (address_key(address), MAX_FAILURES_PER_ADDRESS),
        ]
        .into_iter()
        .filter_map(|(key, max)| {
            let times = map.get_mut(&key)?;
            while times
                .front()
                .is_some_and(|t| now.duration_since(*t) >= WINDOW)
            {
                times.pop_front();
            }
            (times.len() >= max).then(|| {
                let oldest = times.front().copied().unwrap_or(now);
                WINDOW.saturating_sub(now.duration_since(oldest))
            })
        })
        .max()
    }

    /// Records a failed login.
    pub fn failed(&self, name: &str, address: &str, now: Instant) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEYS {
            map.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < WINDOW)
            });
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        for key in [name_key(name), address_key(address)] {
            let times = map.entry(key).or_default();
            times.push_back(now);
            if times.len() > MAX_FAILURES_PER_ADDRESS {
                times.pop_front();
            }
        }
    }

    /// Records a successful login: the name's failures are forgotten.
    pub fn succeeded(&self, name: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&name_key(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_a_name_after_five_failures_then_lets_go() {
        let t = Throttle::default();
        let start = Instant::now();
        for _ in 0..MAX_FAILURES_PER_NAME {
            assert!(t.blocked("ann", "10.0.0.1", start).is_none());
            t.failed("ann", "10.0.0.1", start);
        }
        assert!(t.blocked("ANN", "10.0.0.2", start).is_some());
        assert!(t.blocked("bob", "10.0.0.1", start).is_none());
        assert!(t.blocked("ann", "10.0.0.1", start + WINDOW).is_none());
    }

    #[test]
    fn blocks_an_address_trying_many_names() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..MAX_FAILURES_PER_ADDRESS {
            t.failed(&format!("user{i}"), "10.0.0.9", now);
        }
        assert!(t.blocked("someone", "10.0.0.9", now).is_some());
        assert!(t.blocked("someone", "10.0.0.8", now).is_none());
    }

    #[test]
    fn ipv6_is_counted_per_64() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..MAX_FAILURES_PER_ADDRESS {
            t.failed(&format!("user{i}"), &format!("2001:db8:1:2::{i:x}"), now);
        }
        assert!(t.blocked("x", "2001:db8:1:2:ffff::1", now).is_some());
        assert!(t.blocked("x", "2001:db8:1:3::1", now).is_none());
    }
}
