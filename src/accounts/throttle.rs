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
//! learn the right one. Guessing from many addresses is bounded by the per-address count and by
//! the password hash's cost. IPv6 clients are counted per /56, the prefix ISPs commonly delegate
//! to one customer (a /64 would give a guesser holding a /48 65,536 addresses, a /56 gives it
//! 256); hosts of one /56 share their counts as the hosts behind one IPv4 NAT do. The address is
//! the client's as `http.trusted_proxies` resolves it ([`crate::http`]).
//!
//! The table is bounded by [`MAX_KEYS`]. When it is full, keys whose failures have all left the
//! window go first, then keys that refuse nothing yet, least recently failed first, and only
//! then keys that refuse logins, those whose refusal ends soonest first; a tenth of the table is
//! freed at once, so the O(n) sweep is amortised. Filling the table from many addresses
//! therefore does not lift a refusal unless [`MAX_KEYS`] refusing keys are made, each of which
//! takes 5 failures (20 for an address) within the window.

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

/// IPv6 clients are counted per /56 (the prefix ISPs commonly delegate to one customer); an
/// IPv4-mapped address as its IPv4 address.
fn address_part(address: &str) -> String {
    match address
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.to_canonical())
    {
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/56", s[0], s[1], s[2], s[3] & 0xff00)
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
        let keys = [
            (pair_key(name, address), MAX_FAILURES_PER_NAME_AND_ADDRESS),
            (address_key(address), MAX_FAILURES_PER_ADDRESS),
        ];
        let new_keys = keys.iter().filter(|(k, _)| !map.contains_key(k)).count();
        if map.len() + new_keys > MAX_KEYS {
            make_room(&mut map, now);
        }
        for (key, max) in keys {
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

/// How many failures refuse logins for `key` (a pair's or an address's).
fn limit_of(key: &str) -> usize {
    if key.starts_with("a:") {
        MAX_FAILURES_PER_ADDRESS
    } else {
        MAX_FAILURES_PER_NAME_AND_ADDRESS
    }
}

/// Frees a tenth of a full table: failures that left the window first, then keys that refuse
/// nothing (least recently failed first), then refusing keys (whose refusal ends soonest first).
fn make_room(map: &mut HashMap<String, VecDeque<Instant>>, now: Instant) {
    map.retain(|_, times| {
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            times.pop_front();
        }
        !times.is_empty()
    });
    let target = MAX_KEYS - MAX_KEYS / 10;
    if map.len() <= target {
        return;
    }
    // Rank: (refusing, the time that matters); the lowest ranks are dropped.
    let mut ranked: Vec<((bool, Instant), &String)> = map
        .iter()
        .filter_map(|(key, times)| {
            let refusing = times.len() >= limit_of(key);
            let at = if refusing {
                // The refusal ends when the oldest failure leaves the window.
                times.front()
            } else {
                times.back()
            };
            Some(((refusing, *at?), key))
        })
        .collect();
    let drop = map.len() - target;
    ranked.select_nth_unstable_by_key(drop - 1, |(rank, _)| *rank);
    let doomed: Vec<String> = ranked[..drop]
        .iter()
        .map(|(_, key)| (*key).clone())
        .collect();
    for key in doomed {
        map.remove(&key);
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
    fn ipv6_is_counted_per_56_and_mapped_ipv4_as_ipv4() {
        let t = Throttle::default();
        let now = Instant::now();
        // One guesser spreading over the /64s of its /56.
        for i in 0..MAX_FAILURES_PER_ADDRESS {
            t.failed(&format!("user{i}"), &format!("2001:db8:1:2{i:02x}::1"), now);
        }
        assert!(t.blocked("x", "2001:db8:1:2ff:ffff::1", now).is_some());
        assert!(t.blocked("x", "2001:db8:1:300::1", now).is_none());
        assert!(t.blocked("x", "2001:db8:1:1ff::1", now).is_none());
        for _ in 0..MAX_FAILURES_PER_NAME_AND_ADDRESS {
            t.failed("ann", "::ffff:10.1.1.1", now);
        }
        assert!(t.blocked("ann", "10.1.1.1", now).is_some());
    }

    /// Blocks `address` (both its address key and a pair key) at `now`.
    fn block(t: &Throttle, address: &str, now: Instant) {
        for i in 0..MAX_FAILURES_PER_ADDRESS {
            t.failed(&format!("user{}", i % 4), address, now);
        }
        assert!(t.blocked("user0", address, now).is_some());
        assert!(t.blocked("fresh", address, now).is_some());
    }

    #[test]
    fn filling_the_table_from_many_addresses_does_not_unblock_a_blocked_address() {
        let t = Throttle::default();
        let start = Instant::now();
        block(&t, "10.0.0.1", start);
        block(&t, "2001:db8:9::1", start);
        // Later, one failure each from far more addresses than the table holds: IPv4 and the
        // /56s of an IPv6 /40.
        let later = start + Duration::from_secs(60);
        for i in 0..(2 * MAX_KEYS) as u32 {
            let address = if i % 2 == 0 {
                std::net::Ipv4Addr::from(0x0b00_0000 + i).to_string()
            } else {
                format!("2001:db8:{:x}:{:x}00::1", 0x100 + (i >> 8) % 0xff, i & 0xff)
            };
            t.failed(&format!("n{i}"), &address, later);
            assert!(t.failures.lock().unwrap().len() <= MAX_KEYS);
        }
        for address in ["10.0.0.1", "2001:db8:9::1"] {
            assert!(t.blocked("user0", address, later).is_some(), "{address}");
            assert!(t.blocked("fresh", address, later).is_some(), "{address}");
        }
        // The newest keys are still counted: the table was not cleared.
        let last = std::net::Ipv4Addr::from(0x0b00_0000 + 2 * MAX_KEYS as u32 - 2).to_string();
        for _ in 1..MAX_FAILURES_PER_NAME_AND_ADDRESS {
            t.failed(&format!("n{}", 2 * MAX_KEYS - 2), &last, later);
        }
        assert!(
            t.blocked(&format!("n{}", 2 * MAX_KEYS - 2), &last, later)
                .is_some()
        );
    }

    #[test]
    fn a_full_table_drops_the_least_recently_failed_counts_first() {
        let t = Throttle::default();
        let t0 = Instant::now();
        let (t1, t2) = (t0 + Duration::from_secs(60), t0 + Duration::from_secs(120));
        // Not refusing yet: 4 failures for one name from one address (2 keys).
        for _ in 1..MAX_FAILURES_PER_NAME_AND_ADDRESS {
            t.failed("ann", "10.0.0.2", t0);
        }
        // Later, one failure each from enough addresses to leave room for 2 keys.
        for i in 0..(MAX_KEYS / 2 - 2) as u32 {
            t.failed(
                "y",
                &std::net::Ipv4Addr::from(0x0c00_0000 + i).to_string(),
                t1,
            );
        }
        for _ in 1..MAX_FAILURES_PER_NAME_AND_ADDRESS {
            t.failed("bob", "10.0.0.3", t2);
        }
        assert_eq!(t.failures.lock().unwrap().len(), MAX_KEYS);
        // The table is full: the next failure frees a tenth, ann's (oldest) among them.
        t.failed("z", "10.0.0.4", t2);
        assert_eq!(
            t.failures.lock().unwrap().len(),
            MAX_KEYS - MAX_KEYS / 10 + 2
        );
        t.failed("ann", "10.0.0.2", t2);
        assert!(t.blocked("ann", "10.0.0.2", t2).is_none());
        t.failed("bob", "10.0.0.3", t2);
        assert!(t.blocked("bob", "10.0.0.3", t2).is_some());
    }
}
