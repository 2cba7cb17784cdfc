//! The HTTP surface's guards, as middleware:
//!
//! - [`check_host`]: a request whose `Host` names a host other than `localhost`, a name in
//!   `http.allowed_hosts` or the host of `http.file_server_url` gets 421, so a page on another
//!   site cannot reach the daemon through DNS rebinding. IP literals are always accepted (a
//!   rebinding attack needs a name), as is a request without `Host`; `/health` is never
//!   refused (load balancers probe it with their own names; it shows no more than a PID);
//! - [`status_login`]: with `http.public_status` off, `/status` and `/metrics` need a login
//!   (session cookie or bearer token) or `http.token`;
//! - [`api_headers`]: API answers and downloads carry `X-Content-Type-Options: nosniff` and
//!   `Cache-Control: no-store`;
//! - [`secure_cookies`]: with `http.secure_cookies`, every cookie set is marked `Secure`.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use super::AppState;
use super::api::auth::authenticate;
use super::api::error::ApiError;
use crate::config::HttpSettings;

/// The host names requests may name besides IP literals.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    names: HashSet<String>,
}

impl HostPolicy {
    /// `localhost`, `http.allowed_hosts` and the host of `http.file_server_url`.
    pub fn new(http: &HttpSettings) -> HostPolicy {
        let mut names: HashSet<String> = http.allowed_hosts.iter().cloned().collect();
        names.insert("localhost".into());
        if let Some(host) = http
            .file_server_url
            .as_deref()
            .and_then(|u| reqwest::Url::parse(u).ok())
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        {
            names.insert(host);
        }
        HostPolicy { names }
    }

    /// True when a request may carry this `Host` value.
    pub fn allows(&self, value: &str) -> bool {
        let value = value.trim();
        if let Some(rest) = value.strip_prefix('[') {
            // An IPv6 literal, `[::1]:5002`.
            return rest
                .split_once(']')
                .is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok());
        }
        let host = match value.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => value,
        };
        let host = host.trim_end_matches('.');
        if host.parse::<IpAddr>().is_ok() {
            return true;
        }
        self.names.contains(&host.to_ascii_lowercase())
    }
}

/// Refuses (421) a request whose `Host` is not allowed, but never `/health`.
pub async fn check_host(
    State(policy): State<Arc<HostPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path() != "/health" {
        let refused = request
            .headers()
            .get_all(header::HOST)
            .iter()
            .find(|v| v.to_str().map_or(true, |h| !policy.allows(h)));
        if let Some(host) = refused {
            let shown: String = String::from_utf8_lossy(host.as_bytes())
                .chars()
                .take(100)
                .collect();
            tracing::warn!(host = %shown, path = %request.uri().path(), "request for another host refused (421)");
            return ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "this server does not answer for host {shown:?}: call it by its address, localhost or a name in http.allowed_hosts"
                ),
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// With `http.public_status` off: a login or `http.token` first (401 otherwise).
pub async fn status_login(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.settings.http.status_is_public() {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    if let Err(e) = authenticate(&parts, &state).await {
        return e.into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

/// `nosniff` and `no-store` on an API answer or a download.
pub async fn api_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Marks every `Set-Cookie` of the answer `Secure` when `http.secure_cookies` is set.
pub async fn secure_cookies(State(secure): State<bool>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if !secure {
        return response;
    }
    let h = response.headers_mut();
    let cookies: Vec<HeaderValue> = h.get_all(header::SET_COOKIE).iter().cloned().collect();
    if cookies.is_empty() {
        return response;
    }
    h.remove(header::SET_COOKIE);
    for c in cookies {
        let marked = match c.to_str() {
            Ok(text)
                if !text
                    .split(';')
                    .any(|a| a.trim().eq_ignore_ascii_case("secure")) =>
            {
                HeaderValue::from_str(&format!("{text}; Secure")).unwrap_or(c)
            }
            _ => c,
        };
        h.append(header::SET_COOKIE, marked);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_addresses_localhost_and_listed_names_only() {
        let http = HttpSettings {
            allowed_hosts: vec!["reports.example.com".into()],
            file_server_url: Some("https://Files.Example.com:8443/dl".into()),
            ..HttpSettings::default()
        };
        let p = HostPolicy::new(&http);
        for ok in [
            "127.0.0.1:5002",
            "10.1.2.3",
            "[::1]:5002",
            "[fe80::1]",
            "localhost",
            "LOCALHOST:5002",
            "localhost.",
            "Reports.Example.com:443",
            "files.example.com",
        ] {
            assert!(p.allows(ok), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:5002",
            "localhost.evil.example",
            "2130706433",
            "[evil.example]",
            "",
            "127.0.0.1.nip.io",
        ] {
            assert!(!p.allows(refused), "{refused}");
        }
    }
}
