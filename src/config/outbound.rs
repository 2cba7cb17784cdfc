//! `security.outbound_allow`: the hosts, addresses and networks that URLs given by a task, an
//! export job or a test message may reach although they are loopback, private, link-local or
//! otherwise internal (see [`crate::outbound`], which applies the rule).
//!
//! ```yaml
//! security:
//!   outbound_allow: [hooks.corp.example, 10.20.0.7, 192.168.40.0/24, "fd00:1::/64"]
//! ```
//!
//! Each entry is a host name (matched exactly, without its subdomains: every address it
//! resolves to is then allowed), an IPv4 or IPv6 address, or a CIDR network. Only the config
//! file sets it; a bad entry is refused at load, named.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, de};

/// One entry of `security.outbound_allow`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowEntry {
    /// A host name, lowercase, in its ASCII (punycode) form, without a trailing dot.
    Host(String),
    /// An address (a `/32` or `/128` network) or a CIDR network.
    Net(IpNet),
}

impl fmt::Display for AllowEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowEntry::Host(h) => f.write_str(h),
            AllowEntry::Net(n) if n.prefix_len() == n.max_prefix_len() => n.addr().fmt(f),
            AllowEntry::Net(n) => n.fmt(f),
        }
    }
}

/// A bad entry of `security.outbound_allow`: the entry and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{entry}` {why}")]
pub struct AllowError {
    /// The entry as written.
    pub entry: String,
    /// What is wrong with it.
    pub why: String,
}

impl std::str::FromStr for AllowEntry {
    type Err = AllowError;

    /// `host`, `address` or `address/prefix`; the error names the entry and says why.
    fn from_str(entry: &str) -> Result<AllowEntry, AllowError> {
        let text = entry.trim();
        let bad = |why: &str| AllowError {
            entry: entry.to_string(),
            why: why.to_string(),
        };
        if text.is_empty() {
            return Err(bad("is empty: give a host name, an address or a CIDR"));
        }
        if let Some((addr, _)) = text
            .split_once('/')
            .filter(|(addr, _)| addr.parse::<IpAddr>().is_ok())
        {
            let net: IpNet = text
                .parse()
                .map_err(|_| bad("is not a CIDR network (like 10.0.0.0/8 or fd00::/8)"))?;
            if net.trunc() != net {
                return Err(bad(&format!(
                    "has bits set after the prefix: write {} (or the address {addr} alone)",
                    net.trunc()
                )));
            }
            return Ok(AllowEntry::Net(net));
        }
        let bare = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(AllowEntry::Net(IpNet::from(ip)));
        }
        // The URL parser's own reading, so `2130706433`, `0x7f.1` and `ＥＸＡＭＰＬＥ.com`
        // mean here what they mean in a URL.
        match url::Host::parse(text.trim_end_matches('.')) {
            Ok(url::Host::Ipv4(ip)) => Ok(AllowEntry::Net(IpNet::from(IpAddr::V4(ip)))),
            Ok(url::Host::Ipv6(ip)) => Ok(AllowEntry::Net(IpNet::from(IpAddr::V6(ip)))),
            Ok(url::Host::Domain(name)) if is_host_name(&name) => Ok(AllowEntry::Host(name)),
            _ => Err(bad(
                "is not a host name, an address or a CIDR (no scheme, port, path or wildcard)",
            )),
        }
    }
}

/// Letters, digits, `-`, `_` and dots between labels.
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// `security.outbound_allow`: what URLs from tasks, jobs and test messages may reach although
/// it is internal. Empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundAllow(Vec<AllowEntry>);

impl OutboundAllow {
    /// The entries parsed from their text.
    ///
    /// # Errors
    /// The first bad entry, named, and why.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<OutboundAllow, AllowError> {
        entries
            .iter()
            .map(|e| e.as_ref().parse())
            .collect::<Result<Vec<_>, _>>()
            .map(OutboundAllow)
    }

    /// The entries.
    pub fn entries(&self) -> &[AllowEntry] {
        &self.0
    }

    /// True when `host` (a URL's host name, as the URL parser gives it) is listed by name.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        self.0
            .iter()
            .any(|e| matches!(e, AllowEntry::Host(h) if h.eq_ignore_ascii_case(host)))
    }

    /// True when `ip` is listed, alone or inside a network. An IPv4-mapped IPv6 address
    /// (`::ffff:a.b.c.d`) is the IPv4 address it maps, and the other way round.
    pub fn allows_addr(&self, ip: IpAddr) -> bool {
        let same = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(v4) => Some(IpAddr::V6(v4.to_ipv6_mapped())),
        };
        self.0.iter().any(|e| match e {
            AllowEntry::Net(n) => n.contains(&ip) || same.is_some_and(|s| n.contains(&s)),
            AllowEntry::Host(_) => false,
        })
    }
}

impl<'de> Deserialize<'de> for OutboundAllow {
    /// A list of strings (`${ENV}` expanded); null is empty.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<OutboundAllow, D::Error> {
        let raw = Option::<Vec<String>>::deserialize(d)?.unwrap_or_default();
        let expanded = raw
            .iter()
            .map(|e| crate::model::env::expand(e))
            .collect::<Result<Vec<_>, _>>()
            .map_err(de::Error::custom)?;
        OutboundAllow::parse(&expanded)
            .map_err(|e| de::Error::custom(format!("security.outbound_allow: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(entries: &[&str]) -> OutboundAllow {
        OutboundAllow::parse(entries).unwrap()
    }

    #[test]
    fn names_addresses_and_networks_are_read() {
        let a = allow(&[
            "Hooks.Example.COM.",
            "127.0.0.1",
            "[::1]",
            "10.20.0.0/16",
            "fd00:1::/64",
            "2130706433",
        ]);
        assert_eq!(
            a.entries()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "hooks.example.com",
                "127.0.0.1",
                "::1",
                "10.20.0.0/16",
                "fd00:1::/64",
                "127.0.0.1"
            ]
        );
        assert!(a.allows_host("hooks.example.com") && a.allows_host("HOOKS.example.com."));
        assert!(!a.allows_host("a.hooks.example.com") && !a.allows_host("example.com"));
        for ip in [
            "127.0.0.1",
            "::1",
            "10.20.255.1",
            "fd00:1::9",
            "::ffff:127.0.0.1",
        ] {
            assert!(a.allows_addr(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.2",
            "::2",
            "10.21.0.1",
            "fd00:2::9",
            "::ffff:10.21.0.1",
        ] {
            assert!(!a.allows_addr(ip.parse().unwrap()), "{ip}");
        }
        // A listed name allows no address, and an address no name.
        assert!(
            !a.allows_host("127.0.0.2")
                && !allow(&["localhost"]).allows_addr([127, 0, 0, 1].into())
        );
        // A mapped entry covers the IPv4 address, and the IPv4 entry the mapped one.
        assert!(allow(&["::ffff:192.168.1.0/120"]).allows_addr([192, 168, 1, 9].into()));
        assert!(OutboundAllow::default().entries().is_empty());
    }

    #[test]
    fn a_bad_entry_is_named() {
        for (entry, why) in [
            ("", "is empty"),
            ("10.0.0.1/8", "write 10.0.0.0/8"),
            ("10.0.0.0/33", "not a CIDR"),
            ("10.0.0.0/x", "not a CIDR"),
            ("http://h.example", "not a host name"),
            ("h.example:8080", "not a host name"),
            ("*.example.com", "not a host name"),
            ("h .example", "not a host name"),
        ] {
            let e = OutboundAllow::parse(&["127.0.0.1", entry])
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("`{entry}`")) && e.contains(why),
                "{entry}: {e}"
            );
        }
    }
}
