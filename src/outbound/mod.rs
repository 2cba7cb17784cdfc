//! The one network policy of every URL the daemon calls for a task, an export job, a test
//! message (and an HTTP source): internal addresses are refused unless the operator lists
//! them in `security.outbound_allow`.
//!
//! - **Who gave the URL.** [`Origin::Config`]: the operator's own robots in config.yaml (and
//!   the SMTP server) are trusted and not checked. [`Origin::User`]: a URL from a task (file
//!   or API), a job's callback or a test message is checked. A task that names no webhook of
//!   its own posts to the config's robot, trusted; a task's own webhook is checked.
//! - **What is internal** ([`address::internal`]): loopback, unspecified (`0.0.0.0` reaches
//!   this host), private (RFC 1918, CGNAT `100.64/10`, unique-local `fc00::/7`), link-local
//!   (`169.254/16` with the cloud metadata service, `fe80::/10`), multicast, broadcast,
//!   reserved, documentation and benchmarking ranges, and every IPv6 form that carries such
//!   an IPv4 address (mapped, compatible, translated, NAT64, 6to4).
//! - **Checked when connecting.** A [`Client`] made with a [`Policy`] resolves names itself
//!   and connects only to the addresses it checked: a name with any refused address is
//!   refused whole, and a second answer from DNS (rebinding) is never used unchecked. Hosts
//!   written as addresses, in any spelling the URL parser reads (`2130706433`, `0x7f.1`,
//!   `127.1`, `[::ffff:127.0.0.1]`), are checked before the request, since they are never
//!   resolved. No proxy from the environment (it would connect instead of us) and no
//!   redirects.
//! - **Allowed.** A host name in the list allows every address it resolves to; an address or
//!   CIDR allows those addresses, whatever name led there.

pub mod address;
mod resolve;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;

use crate::config::OutboundAllow;

/// Who gave a URL, and so whether the policy applies to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    /// The operator's config.yaml: trusted, not checked.
    Config,
    /// A task, an export job or a test message: checked.
    #[default]
    User,
}

/// Why a host may not be reached: one line naming the host and why, never the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("host {host} {why}; add it to security.outbound_allow to allow it")]
pub struct Refused {
    /// The URL's host as written in the URL (an IPv6 address in brackets).
    pub host: String,
    /// `is a loopback address`, `resolves to a private address` (the address itself is not
    /// named: an editor must not map internal names through refusals).
    pub why: String,
}

impl Refused {
    /// The refusal inside an error's chain of sources (a refusal at connect time comes back
    /// wrapped by the HTTP client).
    pub fn find<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
        let mut next = Some(error);
        while let Some(e) = next {
            if let Some(r) = e.downcast_ref::<Refused>() {
                return Some(r);
            }
            next = e.source();
        }
        None
    }
}

/// The policy: what the allow list lets through besides public addresses.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    allow: OutboundAllow,
}

impl Policy {
    /// The policy of `security.outbound_allow`.
    pub fn new(allow: &OutboundAllow) -> Policy {
        Policy {
            allow: allow.clone(),
        }
    }

    /// Why `ip` may not be reached, or `None` when it may.
    fn refusal(&self, ip: IpAddr) -> Option<String> {
        address::internal(ip).filter(|_| !self.allow.allows_addr(ip))
    }

    /// The URL's host when it is an address (never resolved, so checked here); a host name
    /// is checked when it is resolved.
    ///
    /// # Errors
    /// The address is internal and not allowed.
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(url::Host::Domain(_)) | None => return Ok(()),
        };
        match self.refusal(ip) {
            Some(why) => Err(Refused {
                host: url.host_str().unwrap_or_default().to_string(),
                why: format!("is {why}"),
            }),
            None => Ok(()),
        }
    }

    /// Every address `host` resolved to: all allowed when the name is listed, else each one
    /// public or listed.
    ///
    /// # Errors
    /// The first address that is internal and not allowed.
    pub fn check_resolved(&self, host: &str, addrs: &[SocketAddr]) -> Result<(), Refused> {
        if self.allow.allows_host(host) {
            return Ok(());
        }
        for addr in addrs {
            if let Some(why) = self.refusal(addr.ip()) {
                return Err(Refused {
                    host: host.to_string(),
                    why: format!("resolves to {why}"),
                });
            }
        }
        Ok(())
    }
}

/// An HTTP client under the policy (or a trusted one without): requests are made through
/// [`Client::post`], which checks the URL. Cloning is cheap and shares the connections.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    policy: Option<Arc<Policy>>,
}

impl Client {
    /// `builder` made into a client: with `policy`, resolving through the policy, without
    /// any proxy and without following redirects; without, as `builder` says (trusted).
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn build(
        builder: reqwest::ClientBuilder,
        policy: Option<Arc<Policy>>,
    ) -> reqwest::Result<Client> {
        let builder = match &policy {
            Some(p) => builder
                .dns_resolver(resolve::Checked::new(p.clone()))
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none()),
            None => builder,
        };
        Ok(Client {
            http: builder.build()?,
            policy,
        })
    }

    /// Whether `url` may be requested (its host when written as an address; a name is
    /// checked when the request resolves it).
    ///
    /// # Errors
    /// The host is an internal address, not allowed.
    pub fn check(&self, url: &Url) -> Result<(), Refused> {
        match &self.policy {
            Some(p) => p.check_url(url),
            None => Ok(()),
        }
    }

    /// A POST to `url`, checked first.
    ///
    /// # Errors
    /// As [`Client::check`].
    pub fn post(&self, url: &Url) -> Result<reqwest::RequestBuilder, Refused> {
        self.check(url)?;
        Ok(self.http.post(url.clone()))
    }
}

#[cfg(test)]
mod tests;
