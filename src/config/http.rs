//! `http`: the daemon's status and download server.

use ipnet::IpNet;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};

use crate::model::secret::Secret;
use crate::model::units::ByteSize;

/// `http`: the daemon's status and download server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Listen address (default `127.0.0.1:5002`).
    #[serde(deserialize_with = "socket_addr")]
    pub bind: SocketAddr,
    /// Bearer token for write endpoints.
    #[serde(deserialize_with = "crate::model::env::secret")]
    pub token: Secret,
    /// Public base URL for download links.
    #[serde(deserialize_with = "crate::model::env::opt_string")]
    pub file_server_url: Option<String>,
    /// Lifetime of a download link, seconds (default 7 days).
    pub link_expiry: u64,
    /// Seconds a client has to send a request's headers, idle keep-alive included (1-30,
    /// default 10): slower connections are closed.
    pub header_timeout: u64,
    /// Seconds a request may take, reading its body included (1-3600, default 60);
    /// `POST /tasks/{id}/run?wait=true` waits for the run instead; also the longest a client
    /// may leave its answer unread.
    pub request_timeout: u64,
    /// Connections served at once (1-65536, default 256); more wait to be accepted.
    pub max_connections: u64,
    /// Largest request body (1KB-16MB, default 64KB); larger ones get 413.
    pub max_body_size: ByteSize,
    /// Largest preview answer (1KB-1GB, default 8MB), counted as the rows' text: the
    /// query stops there and the answer says `truncated`.
    pub preview_max_bytes: ByteSize,
    /// Previews running at once in all (1-1024, default 8); more get 429.
    pub max_previews: u64,
    /// Previews one user runs at once (1-1024, default 2; `max_previews` caps them too);
    /// more get 429.
    pub max_previews_per_user: u64,
    /// Connections from one client address at once (1-65536, default 32; IPv6 per /64); more
    /// are closed as soon as they are accepted. Peers in `trusted_proxies` are not capped.
    pub max_connections_per_address: u64,
    /// Proxies (CIDRs such as `10.0.0.0/8` or addresses) whose `X-Forwarded-For` is believed:
    /// the client is the right-most entry that is not one of them (default none: the header
    /// is ignored).
    #[serde(deserialize_with = "networks")]
    pub trusted_proxies: Vec<IpNet>,
    /// Whether `/status` and `/metrics` answer without a login or `http.token` (default: true
    /// when `bind` is a loopback address and `trusted_proxies` is empty, else false: behind a
    /// reverse proxy on the same host every client reaches a loopback bind). `/health` is
    /// always open.
    pub public_status: Option<bool>,
    /// Host names (besides `localhost`, IP addresses and the host of `file_server_url`) that
    /// requests may name in `Host`; others get 421 (DNS rebinding). Kept in lower case.
    #[serde(deserialize_with = "host_names")]
    pub allowed_hosts: Vec<String>,
    /// Mark the login cookies `Secure` (set when the console is served over HTTPS).
    pub secure_cookies: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 5002)),
            token: Secret::default(),
            file_server_url: None,
            link_expiry: 7 * 86_400,
            header_timeout: 10,
            request_timeout: 60,
            max_connections: 256,
            max_body_size: ByteSize(64 << 10),
            preview_max_bytes: ByteSize(8 << 20),
            max_previews: 8,
            max_previews_per_user: 2,
            max_connections_per_address: 32,
            trusted_proxies: Vec::new(),
            public_status: None,
            allowed_hosts: Vec::new(),
            secure_cookies: false,
        }
    }
}

fn socket_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = crate::model::env::string(d)?;
    s.parse().map_err(|_| {
        serde::de::Error::custom(format!("{s:?} is not an address such as 127.0.0.1:5002"))
    })
}

impl HttpSettings {
    /// Whether `/status` and `/metrics` are open: `public_status`, or by default whether the
    /// server listens on loopback only and no proxy forwards to it.
    pub fn status_is_public(&self) -> bool {
        self.public_status
            .unwrap_or_else(|| self.bind.ip().is_loopback() && self.trusted_proxies.is_empty())
    }

    /// True when `peer` is one of `trusted_proxies`.
    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted_proxies.iter().any(|n| n.contains(&peer))
    }
}

/// CIDRs or plain addresses (a host route: `/32` or `/128`).
fn networks<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    let items = Vec::<String>::deserialize(d)?;
    items
        .iter()
        .map(|s| {
            let s = s.trim();
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{:?} is not a network such as 10.0.0.0/8, 192.168.1.5 or fd00::/8",
                        s.chars().take(100).collect::<String>()
                    ))
                })
        })
        .collect()
}

/// Host names without scheme, port or path, in lower case (a trailing dot dropped).
fn host_names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let items = Vec::<String>::deserialize(d)?;
    items
        .iter()
        .map(|s| {
            let name = s.trim().trim_end_matches('.').to_ascii_lowercase();
            let plain = !name.is_empty()
                && name.len() <= 253
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
            if plain {
                Ok(name)
            } else {
                Err(serde::de::Error::custom(format!(
                    "{:?} is not a host name such as reports.example.com (no scheme, port or path)",
                    s.chars().take(100).collect::<String>()
                )))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(yaml: &str) -> HttpSettings {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn status_is_public_by_default_only_on_loopback_without_proxies() {
        assert!(settings("bind: 127.0.0.1:5002").status_is_public());
        assert!(settings("bind: '[::1]:5002'").status_is_public());
        assert!(!settings("bind: 0.0.0.0:5002").status_is_public());
        // A reverse proxy on the same host forwards every client to the loopback bind.
        let proxied = settings("bind: 127.0.0.1:5002\ntrusted_proxies: [127.0.0.1]");
        assert!(!proxied.status_is_public());
        let opened = "bind: 127.0.0.1:5002\ntrusted_proxies: [127.0.0.1]\npublic_status: true";
        assert!(settings(opened).status_is_public());
        let closed = "bind: 127.0.0.1:5002\npublic_status: false";
        assert!(!settings(closed).status_is_public());
    }
}
