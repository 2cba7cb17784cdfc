//! Asking a running daemon over its HTTP server (`http.bind`) whether it is healthy and what it
//! is doing, from the supervisor's plain (non-async) code: a [`Probe`] has a small
//! single-threaded runtime of its own for its requests. The bodies are read as the caller's
//! types (the daemon's, `crate::http::status`), so this module stays a leaf.

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// A client of one daemon's HTTP server.
#[derive(Debug)]
pub struct Probe {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
    /// Sent as `Authorization: Bearer` (`http.token`), for a daemon whose `/status` is not
    /// public. Never shown.
    token: Option<crate::model::secret::Secret>,
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
            token: None,
        })
    }

    /// This probe, sending `token` as `Authorization: Bearer` (none when empty).
    #[must_use]
    pub fn with_token(mut self, token: &str) -> Probe {
        self.token = (!token.is_empty()).then(|| crate::model::secret::Secret::new(token));
        self
    }

    /// The server's base URL, e.g. `http://127.0.0.1:5002`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /health`: the body of a 200 answer, as `T` (`None` when it is not a `T`).
    ///
    /// # Errors
    /// Why not healthy: an answer other than 200 ([`ProbeError::Refused`], with the daemon's
    /// body), or no answer.
    pub fn health<T: DeserializeOwned>(&self) -> Result<Option<T>, ProbeError> {
        let url = format!("{}/health", self.base);
        self.runtime.block_on(async {
            let r = self.send(&url).await?;
            if r.status().is_success() {
                return Ok(r.json().await.ok());
            }
            Err(refused(url, r).await)
        })
    }

    /// `GET /status`: the body of a 200 answer, as `T`.
    ///
    /// # Errors
    /// No answer, not 200, or not a `T`; the message names the URL.
    pub fn status<T: DeserializeOwned>(&self) -> Result<T, ProbeError> {
        let url = format!("{}/status", self.base);
        self.runtime.block_on(async {
            let r = self.send(&url).await?;
            if !r.status().is_success() {
                return Err(refused(url, r).await);
            }
            r.json()
                .await
                .map_err(|source| ProbeError::Body { url, source })
        })
    }

    /// `GET url`.
    async fn send(&self, url: &str) -> Result<reqwest::Response, ProbeError> {
        let mut request = self.client.get(url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        request.send().await.map_err(|e| ProbeError::NoAnswer {
            url: url.to_string(),
            reason: without_url(&e),
        })
    }
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The request got no answer (no connection, timed out, …).
    #[error("{url}: {reason}")]
    NoAnswer {
        /// What was asked.
        url: String,
        /// Why there was no answer.
        reason: String,
    },
    /// The answer was not 200.
    #[error("{url}: {code}")]
    Refused {
        /// What was asked.
        url: String,
        /// The answer's status.
        code: StatusCode,
        /// The answer's body (the daemon says why in it).
        body: String,
    },
    /// A 200 answer whose body is not what was expected.
    #[error("{url}: {source}")]
    Body {
        /// What was asked.
        url: String,
        /// The decoding error.
        source: reqwest::Error,
    },
}

/// The [`ProbeError::Refused`] for answer `r`.
async fn refused(url: String, r: reqwest::Response) -> ProbeError {
    let code = r.status();
    let body = r.text().await.unwrap_or_default();
    ProbeError::Refused { url, code, body }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::io::{Read as _, Write as _};
    use std::net::TcpListener;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Body {
        pid: u32,
    }

    /// A server on loopback that answers one request with `status` and `body`.
    fn answer_once(status: &'static str, body: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(reply.as_bytes());
        });
        addr
    }

    #[test]
    fn a_200_is_read_as_the_callers_type() {
        let probe = Probe::new(
            answer_once("200 OK", r#"{"pid":7}"#),
            Duration::from_secs(5),
        );
        let body: Option<Body> = probe.unwrap().health().unwrap();
        assert_eq!(body, Some(Body { pid: 7 }));
    }

    #[test]
    fn another_answer_keeps_its_code_and_body() {
        let addr = answer_once("503 Service Unavailable", r#"{"reason":"down"}"#);
        let probe = Probe::new(addr, Duration::from_secs(5)).unwrap();
        match probe.status::<Body>() {
            Err(ProbeError::Refused { code, body, url }) => {
                assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
                assert_eq!(body, r#"{"reason":"down"}"#);
                assert_eq!(url, format!("http://{addr}/status"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_answer_names_the_url_once() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let probe = Probe::new(addr, Duration::from_secs(5)).unwrap();
        let e = probe.health::<Body>().unwrap_err();
        assert!(matches!(e, ProbeError::NoAnswer { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.starts_with(&format!("http://{addr}/health: cannot connect")),
            "{text}"
        );
        assert_eq!(text.matches("http://").count(), 1, "{text}");
    }
}
