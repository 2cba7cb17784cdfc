//! `http`: the daemon's status and download server.

use serde::Deserialize;
use std::net::SocketAddr;

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
        }
    }
}

fn socket_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = crate::model::env::string(d)?;
    s.parse().map_err(|_| {
        serde::de::Error::custom(format!("{s:?} is not an address such as 127.0.0.1:5002"))
    })
}
