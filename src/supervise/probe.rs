//! Asking a running daemon over its HTTP server (`http.bind`) whether it is healthy and what it
//! is doing, from the supervisor's plain (non-async) code: a [`Probe`] has a small
//! single-threaded runtime of its own for its requests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// A client of one daemon's HTTP server.
#[derive(Debug)]
pub struct Probe {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
}

impl Probe {
    /// A client for the server on `bind` (an unspecified address is reached on loopback), each
    /// request limited to `timeout`.
    ///
    /// # Errors
    /// The runtime or the HTTP client cannot be built.
    pub fn new(bind: SocketAddr, timeout: Duration) -> std::io::Result<Probe> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .no_proxy()
            .build()
            .map_err(std::io::Error::other)?;
        let ip = match bind.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        Ok(Probe {
            runtime,
            client,
            base: format!("http://{}", SocketAddr::new(ip, bind.port())),
        })
    }

    /// The server's base URL, e.g. `http://127.0.0.1:5002`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /health`: the PID of the process that answered 200.
    ///
    /// # Errors
    /// Why not healthy: the daemon's own reason for a 503, or why there was no answer.
    pub fn health(&self) -> Result<Option<u32>, String> {
        let url = format!("{}/health", self.base);
        self.runtime.block_on(async {
            match self.client.get(&url).send().await {
                Ok(r) if r.status().is_success() => {
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    let pid = body["pid"].as_u64().and_then(|p| u32::try_from(p).ok());
                    Ok(pid)
                }
                Ok(r) => {
                    let code = r.status();
                    let body = r.text().await.unwrap_or_default();
                    let reason = serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| v["reason"].as_str().map(str::to_string))
                        .unwrap_or_else(|| body.trim().to_string());
                    Err(format!("{code}: {reason}"))
                }
                Err(e) => Err(format!("{url}: {}", without_url(&e))),
            }
        })
    }

    /// `GET /status`, as JSON.
    ///
    /// # Errors
    /// No answer, not 200, or not JSON; the message names the URL.
    pub fn status(&self) -> Result<serde_json::Value, String> {
        let url = format!("{}/status", self.base);
        self.runtime.block_on(async {
            let r = self
                .client
                .get(&url)
                .send()
                .await
                .map_err(|e| format!("{url}: {}", without_url(&e)))?;
            let code = r.status();
            let v: serde_json::Value = r.json().await.map_err(|e| format!("{url}: {e}"))?;
            if code.is_success() {
                Ok(v)
            } else {
                Err(format!("{url}: {code}"))
            }
        })
    }
}

/// The error's own text (reqwest repeats the URL otherwise).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}
