//! What the HTTP channels (DingTalk, WeCom, Feishu, generic webhooks) share: the client,
//! checking a webhook URL, one POST and its answer, and keeping a URL's token and a signing
//! secret out of errors, logs and `Debug` output.

use std::sync::Arc;

use reqwest::Url;

use super::text::{excerpt, one_line};
use crate::outbound::{self, Origin, Policy, Refused};

/// Most bytes of an answer that are read.
const MAX_ANSWER_BYTES: usize = 64 << 10;

/// The `User-Agent` of every request.
pub(crate) const USER_AGENT: &str = concat!("reportd/", env!("CARGO_PKG_VERSION"));

/// Why a client could not be built or a URL is refused: a few words on one line, never the
/// URL itself. Each channel puts it in its own error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Reason(pub(crate) String);

/// An HTTP client whose every request (connect and answer) is bounded by `timeout`, checked
/// by `policy` when given ([`outbound::Client`]), or why it could not be built.
pub(crate) fn client(
    timeout: std::time::Duration,
    policy: Option<Arc<Policy>>,
) -> Result<outbound::Client, Reason> {
    let builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(USER_AGENT)
        // A webhook that redirects is refused, not followed (a POST would become a GET).
        .redirect(reqwest::redirect::Policy::none());
    outbound::Client::build(builder, policy).map_err(|e| Reason(error_chain(&e.without_url())))
}

/// A channel's two clients: one for the config's own robots (trusted), one under the
/// outbound policy for URLs from tasks, jobs and test messages. Separate connection pools,
/// so a task's request never rides a trusted connection.
#[derive(Clone)]
pub(crate) struct Clients<E> {
    trusted: Result<outbound::Client, E>,
    checked: Result<outbound::Client, E>,
}

impl<E: Clone> Clients<E> {
    /// Both clients bounded by `timeout`; `error` names one that cannot be built.
    pub(crate) fn new(
        timeout: std::time::Duration,
        policy: Arc<Policy>,
        error: impl Fn(String) -> E,
    ) -> Clients<E> {
        Clients {
            trusted: client(timeout, None).map_err(|r| error(r.0)),
            checked: client(timeout, Some(policy)).map_err(|r| error(r.0)),
        }
    }

    /// The first error of building the clients, if any.
    pub(crate) fn error(&self) -> Option<&E> {
        self.trusted.as_ref().err().or(self.checked.as_ref().err())
    }

    /// The client for a URL from `origin`, checked against `url` (an address host is never
    /// resolved, so it is checked here; a name is checked when the request resolves it).
    pub(crate) fn for_url(&self, origin: Origin, url: &Url) -> Result<&outbound::Client, E>
    where
        E: From<Refused>,
    {
        let client = match origin {
            Origin::Config => &self.trusted,
            Origin::User => &self.checked,
        };
        let client = client.as_ref().map_err(Clone::clone)?;
        client.check(url)?;
        Ok(client)
    }
}

/// `url` parsed, checked to be `http(s)://` with a host, without its fragment. The error
/// says why in a few words and never repeats the URL.
pub(crate) fn checked_url(url: &str) -> Result<Url, Reason> {
    let mut url = Url::parse(url.trim()).map_err(|e| Reason(format!("not a URL ({e})")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(Reason(format!(
            "scheme `{}` is not http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Reason("no host".into()));
    }
    url.set_fragment(None);
    Ok(url)
}

/// Why an HTTP exchange brought no usable answer; each channel names it in its own error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No answer within the timeout.
    Timeout,
    /// Connection or other transport failure, one line, without the URL.
    Http(String),
    /// An HTTP status other than 2xx, with the start of the answer.
    Status {
        /// HTTP status code.
        status: u16,
        /// Start of the answer body, on one line.
        body: String,
    },
    /// A 2xx answer that is not JSON.
    BadAnswer(String),
    /// The outbound policy refused the host when connecting ([`Refused`], one line).
    Refused(String),
}

/// Sends `request`: its status and whole answer text, whatever the status.
pub(crate) async fn exchange(request: reqwest::RequestBuilder) -> Result<(u16, String), Failure> {
    let transport = |e: reqwest::Error| {
        if let Some(refused) = Refused::find(&e) {
            Failure::Refused(refused.to_string())
        } else if e.is_timeout() {
            Failure::Timeout
        } else {
            Failure::Http(error_chain(&e.without_url()))
        }
    };
    let mut response = request.send().await.map_err(transport)?;
    let status = response.status().as_u16();
    // The services answer a few hundred bytes; a receiver that sends more is not read on.
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        let room = MAX_ANSWER_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ANSWER_BYTES {
            break;
        }
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Sends `request` and expects a 2xx JSON answer: the answer's text and its JSON.
pub(crate) async fn exchange_json(
    request: reqwest::RequestBuilder,
) -> Result<(String, serde_json::Value), Failure> {
    let (status, text) = exchange(request).await?;
    if !(200..300).contains(&status) {
        return Err(Failure::Status {
            status,
            body: excerpt(&text),
        });
    }
    match serde_json::from_str(&text) {
        Ok(answer) => Ok((text, answer)),
        Err(e) => Err(Failure::BadAnswer(format!("{e}: {}", excerpt(&text)))),
    }
}

/// The service's code and message in a JSON answer (`errcode`/`errmsg`, `code`/`msg`…),
/// the message cut short on one line; `None` when the answer has no such code.
pub(crate) fn service_code(
    answer: &serde_json::Value,
    code_field: &str,
    msg_field: &str,
) -> Option<(i64, String)> {
    let code = answer.get(code_field)?.as_i64()?;
    let msg = answer.get(msg_field).and_then(|m| m.as_str()).unwrap_or("");
    Some((code, excerpt(msg)))
}

/// What a receiver's answer is replaced by where it must not be shown.
pub(crate) const NOT_SHOWN: &str = "(answer not shown)";

/// An error and its sources, `: `-separated, on one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    one_line(&out)
}

/// Where a webhook keeps its token besides the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    /// Only in query values (DingTalk's `access_token`, WeCom's `key`, most webhooks).
    InQuery,
    /// Also the last path segment (Feishu's `/open-apis/bot/v2/hook/<token>`).
    InLastSegment,
}

/// What must never show: the URL as given, every query value, the password of the URL,
/// the last path segment when it is the token, and the secret. Longest first.
pub(crate) fn sensitive_strings(url: &str, token: Token, secret: Option<&str>) -> Vec<String> {
    let mut parts = Vec::new();
    if let Ok(parsed) = Url::parse(url.trim()) {
        parts.extend(parsed.query_pairs().map(|(_, v)| v.into_owned()));
        if let Some(q) = parsed.query() {
            let raw = q.split('&').filter_map(|p| p.split_once('='));
            parts.extend(raw.map(|(_, v)| v.to_string()));
        }
        parts.extend(parsed.password().map(String::from));
        if token == Token::InLastSegment {
            parts.extend(last_segment(&parsed).map(String::from));
        }
    }
    // Tiny values (`&x=1`) would mangle messages; tokens are long.
    parts.retain(|v| v.len() >= 4);
    let mut out = vec![url.trim().to_string()];
    out.extend(parts);
    out.extend(secret.map(String::from));
    out.retain(|s| !s.is_empty());
    // Longest first, so a string containing another is replaced whole.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

fn last_segment(url: &Url) -> Option<&str> {
    url.path_segments()?.rfind(|s| !s.is_empty())
}

/// `text` with every sensitive string replaced by `***`, on one line.
pub(crate) fn scrub(text: &str, sensitive: &[String]) -> String {
    let mut out = one_line(text);
    for s in sensitive {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

/// The URL with its query (and, for [`Token::InLastSegment`], its last path segment)
/// masked and without user info, for `Debug`.
pub(crate) fn masked_url(url: &str, token: Token) -> String {
    match Url::parse(url.trim()) {
        Ok(parsed) => {
            let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
            let query = if parsed.query().is_some() { "?***" } else { "" };
            let host = parsed.host_str().unwrap_or("");
            let mut path = parsed.path().to_string();
            if token == Token::InLastSegment
                && let Some(seg) = last_segment(&parsed)
                && let Some(at) = path.rfind(seg)
            {
                path.replace_range(at..at + seg.len(), "***");
            }
            format!("{}://{host}{port}{path}{query}", parsed.scheme())
        }
        Err(_) => "***".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feishu_style_tokens_are_masked_and_listed() {
        let url = "https://open.feishu.cn/open-apis/bot/v2/hook/0a1b2c3d-tok?x=queryval";
        assert_eq!(
            masked_url(url, Token::InLastSegment),
            "https://open.feishu.cn/open-apis/bot/v2/hook/***?***"
        );
        let s = sensitive_strings(url, Token::InLastSegment, Some("s3cret"));
        assert!(s.contains(&"0a1b2c3d-tok".to_string()), "{s:?}");
        assert!(s.contains(&"queryval".to_string()) && s.contains(&"s3cret".to_string()));
        assert!(!sensitive_strings(url, Token::InQuery, None).contains(&"0a1b2c3d-tok".into()));
        assert_eq!(scrub("bad 0a1b2c3d-tok\nand s3cret", &s), "bad *** and ***");
    }

    #[test]
    fn only_http_urls_with_a_host_pass() {
        assert!(checked_url("http://127.0.0.1:9/x#frag").is_ok_and(|u| u.fragment().is_none()));
        for bad in ["ftp://h/x?key=k3y", "h/x?key=k3y", "http://", ""] {
            let e = checked_url(bad).unwrap_err();
            assert!(!e.0.contains("k3y"), "{e}");
        }
    }
}
