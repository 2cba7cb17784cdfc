//! Login throttling, in memory. Failures are counted per (name, address) and per address:
//! after [`MAX_FAILURES_PER_NAME_AND_ADDRESS`] failed logins for one name from one address, or
//! [`MAX_FAILURES_PER_ADDRESS`] from one address whatever the names, within [`WINDOW`],
//! further attempts from that address (for that name, or at all) are refused (429) until the
//! oldest failure leaves the window. A success clears its (name, address) failures, not the
//! address's (a guesser cannot reset its count by logging in to an account of its own).
//!
//! There is deliberately no per-name count across addresses: it could only refuse the right
//! password from the owner's address because of guesses made elsewhere (the lockout this
//! design removes), and refusing only wrong guesses would not slow a guesser, who would still
//! learn the right one. Guessing from many addresses is bounded by the per-address count (IPv6
//! per /64) and by the password hash's cost. The address is the client's as
//! `http.trusted_proxies` resolves it ([`crate::http`]). The table is bounded: the oldest keys
//! are dropped past [`MAX_KEYS`].

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins for one name from one address within [`WINDOW`] before that pair is throttled.
pub const MAX_FAILURES_PER_NAME_AND_ADDRESS: usize = 5;
/// Failed logins from one address within [`WINDOW`] before it is throttled.
pub const MAX_FAILURES_PER_ADDRESS: usize = 20;
/// How long a failure counts.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Names and addresses remembered at most.
pub const MAX_KEYS: usize = 10_000;

/// Failed logins per (name, address) and per address.
#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// The key of one name from one address.
fn pair_key(name: &str, address: &str) -> String {
    // Names longer than any account's are cut: they only need to be told apart.
    let cut: String = name.chars().take(80).collect();
    format!("p:{}|{}", address_part(address), cut.to_lowercase())
}

/// The key of one address.
fn address_key(address: &str) -> String {
    format!("a:{}", address_part(address))
}

/// IPv6 clients are counted per /64 (one host usually holds a whole /64); an IPv4-mapped
/// address as its IPv4 address.
fn address_part(address: &str) -> String {
    match address
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.to_canonical())
    {
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(v4) => v4.to_string(),
        Err(_) => address.chars().take(64).collect(),
    }
}

impl Throttle {
    /// `Some(wait)` when a login for `name` from `address` must be refused now.
    pub fn blocked(&self, name: &str, address: &str, now: Instant) -> Option<Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        [
            (pair_key(name, address), MAX_FAILURES_PER_NAME_AND_ADDRESS),
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
        for (key, max) in [
            (pair_key(name, address), MAX_FAILURES_PER_NAME_AND_ADDRESS),
            (address_key(address), MAX_FAILURES_PER_ADDRESS),
        ] {
            let times = map.entry(key).or_default();
            times.push_back(now);
            if times.len() > max {
                times.pop_front();
            }
        }
    }

    /// Records a successful login: the failures of this name from this address are forgotten.
    pub fn succeeded(&self, name: &str, address: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&pair_key(name, address));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_a_name_from_one_address_after_five_failures_then_lets_go() {
        let t = Throttle::default();
        let start = Instant::now();
        for _ in 0..MAX_FAILURES_PER_NAME_AND_ADDRESS {
            assert!(t.blocked("ann", "10.0.0.1", start).is_none());
            t.failed("ann", "10.0.0.1", start);
        }
        assert!(t.blocked("ANN", "10.0.0.1", start).is_some());
        // Not from another address, nor for another name.
        assert!(t.blocked("ann", "10.0.0.2", start).is_none());
        assert!(t.blocked("bob", "10.0.0.1", start).is_none());
        assert!(t.blocked("ann", "10.0.0.1", start + WINDOW).is_none());
    }

    #[test]
    fn guesses_from_many_addresses_never_lock_the_name() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..200 {
            t.failed("admin", &format!("10.0.{}.{}", i / 250, i % 250), now);
        }
        assert!(t.blocked("admin", "192.168.1.1", now).is_none());
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
    fn a_success_clears_the_pair_not_the_address() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..MAX_FAILURES_PER_ADDRESS - 1 {
            t.failed(&format!("user{i}"), "10.0.0.9", now);
        }
        t.failed("mine", "10.0.0.9", now);
        t.succeeded("mine", "10.0.0.9");
        assert!(t.blocked("other", "10.0.0.9", now).is_some());
    }

    #[test]
    fn ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let t = Throttle::default();
        let now = Instant::now();
        for i in 0..MAX_FAILURES_PER_ADDRESS {
            t.failed(&format!("user{i}"), &format!("2001:db8:1:2::{i:x}"), now);
        }
        assert!(t.blocked("x", "2001:db8:1:2:ffff::1", now).is_some());
        assert!(t.blocked("x", "2001:db8:1:3::1", now).is_none());
        for _ in 0..MAX_FAILURES_PER_NAME_AND_ADDRESS {
            t.failed("ann", "::ffff:10.1.1.1", now);
        }
        assert!(t.blocked("ann", "10.1.1.1", now).is_some());
    }
}
