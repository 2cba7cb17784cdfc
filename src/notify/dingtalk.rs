//! The DingTalk group-robot client: markdown messages posted to a robot's webhook.
//!
//! - **Signing.** A robot with a secret (`SEC…`) gets `&timestamp=<ms>&sign=<sign>` added to
//!   its webhook's query (the `access_token` stays), where `sign` is the URL-encoded base64
//!   of HMAC-SHA256 keyed by the secret over `timestamp + "\n" + secret` ([`signed_url`]).
//!   Each attempt is signed afresh: DingTalk refuses timestamps more than an hour off.
//! - **Body.** `{"msgtype":"markdown","markdown":{"title","text"},"at":{"atMobiles",
//!   "atUserIds","isAtAll"}}`. DingTalk only notifies an @mobile (or @user id) that also
//!   appears in the text, so `@<mobile>` is appended for each one the text lacks. Text over
//!   20,000 bytes is cut at a character boundary with a visible `…(truncated)` marker.
//! - **Answers.** HTTP 200 with `errcode` 0 is success; any other `errcode` is a failure
//!   carrying `errcode` and `errmsg`.
//! - **Rate limit.** DingTalk takes 20 messages per minute per robot and answers 130101
//!   beyond that. A per-robot limiter (keyed by the webhook without `timestamp`/`sign`)
//!   keeps at most 20 sends in any 60 s window, waiting before sending. If 130101 still
//!   comes back, the robot is held for a delay (60 s by default) and the message is sent
//!   again, up to 3 attempts in all. Nothing else is retried: after a timeout the message
//!   may have been delivered, and a retry could post it twice.
//! - **Secrets.** The webhook's `access_token` and the signing secret never appear in
//!   errors, logs or `Debug` output.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Url;
use serde_json::json;
use sha2::Sha256;
use tokio::time::Instant;

/// Most bytes DingTalk takes in a markdown text; longer text is cut to fit.
pub const MAX_TEXT_BYTES: usize = 20_000;

/// What replaces the end of a text that was too long.
const TRUNCATED_MARKER: &str = "\n\n…(truncated)";

/// DingTalk's `errcode` for "send too fast, exceed 20 times per minute".
pub const ERRCODE_RATE_LIMITED: i64 = 130_101;

/// Default rate limit: messages per window per robot, as DingTalk allows.
const DEFAULT_RATE_MAX: usize = 20;
/// Default rate-limit window.
const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(60);
/// Default number of HTTP attempts when DingTalk answers 130101.
const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Default hold on a robot after a 130101 answer, before the next attempt.
const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(60);

/// How much of an unexpected HTTP answer goes into an error message.
const MAX_ANSWER_IN_ERROR: usize = 200;

/// A robot to post to: webhook URL (with its access_token) and optional signing secret.
///
/// `Debug` shows neither the access token nor the secret. An empty secret means unsigned.
#[derive(Clone, PartialEq, Eq)]
pub struct Robot {
    /// Webhook URL, e.g. `https://oapi.dingtalk.com/robot/send?access_token=…`.
    pub webhook: String,
    /// Signing secret (`SEC…`), when the robot has "additional signature" security.
    pub secret: Option<String>,
}

impl fmt::Debug for Robot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Robot")
            .field("webhook", &masked_webhook(&self.webhook))
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .finish()
    }
}

/// A markdown message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Title: shown in the conversation list and the notification.
    pub title: String,
    /// Markdown text.
    pub text: String,
    /// Mobile numbers to @ (each is also written into the text as `@<mobile>`).
    pub at_mobiles: Vec<String>,
    /// DingTalk user ids to @ (each is also written into the text as `@<user id>`).
    pub at_user_ids: Vec<String>,
    /// @ everyone in the group.
    pub at_all: bool,
}

/// The result of one send: how many HTTP attempts were made, and the service's answer or the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// HTTP requests made (0 when the robot was refused before any request).
    pub attempts: u32,
    /// DingTalk's answer body (e.g. `{"errcode":0,"errmsg":"ok"}`), or why the send failed.
    pub result: Result<String, DingTalkError>,
}

/// Why a DingTalk send failed. Messages are one line and never contain the webhook's
/// access token or the signing secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DingTalkError {
    /// The webhook is not an `http(s)://` URL with a host. The URL itself is not repeated.
    #[error("bad DingTalk webhook URL: {0}")]
    BadWebhook(String),
    /// No answer within the client's timeout.
    #[error("DingTalk request timed out after {} ms", .0.as_millis())]
    Timeout(Duration),
    /// Connection or other transport failure.
    #[error("DingTalk request failed: {0}")]
    Http(String),
    /// An HTTP status other than 2xx, with the start of the answer.
    #[error("DingTalk answered HTTP {status}: {body}")]
    Status {
        /// HTTP status code.
        status: u16,
        /// Start of the answer body, on one line.
        body: String,
    },
    /// A 2xx answer that is not DingTalk's JSON.
    #[error("DingTalk answer is not valid: {0}")]
    BadAnswer(String),
    /// DingTalk refused the message (`errcode` ≠ 0), e.g. 310000 "sign not match" or
    /// 130101 "send too fast".
    #[error("DingTalk errcode {errcode}: {errmsg}")]
    Api {
        /// DingTalk's error code.
        errcode: i64,
        /// DingTalk's error message.
        errmsg: String,
    },
}

impl DingTalkError {
    /// Replaces every occurrence of the given sensitive strings with `***`, and line breaks
    /// with spaces, in the error's text.
    fn scrubbed(self, sensitive: &[String]) -> Self {
        let s = |text: String| scrub(&text, sensitive);
        match self {
            DingTalkError::BadWebhook(m) => DingTalkError::BadWebhook(s(m)),
            DingTalkError::Timeout(d) => DingTalkError::Timeout(d),
            DingTalkError::Http(m) => DingTalkError::Http(s(m)),
            DingTalkError::Status { status, body } => DingTalkError::Status {
                status,
                body: s(body),
            },
            DingTalkError::BadAnswer(m) => DingTalkError::BadAnswer(s(m)),
            DingTalkError::Api { errcode, errmsg } => DingTalkError::Api {
                errcode,
                errmsg: s(errmsg),
            },
        }
    }
}

/// One client for the whole process (reqwest::Client reused), with a per-robot rate limiter.
///
/// Cloning is cheap and shares the connection pool and the limiter.
#[derive(Clone)]
pub struct DingTalk {
    /// The HTTP client, or why it could not be built (reported by every send).
    client: Result<reqwest::Client, String>,
    timeout: Duration,
    limiter: Arc<Limiter>,
    max_attempts: u32,
    retry_delay: Duration,
}

impl fmt::Debug for DingTalk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DingTalk")
            .field("timeout", &self.timeout)
            .field("rate_max", &self.limiter.max)
            .field("rate_window", &self.limiter.window)
            .field("max_attempts", &self.max_attempts)
            .field("retry_delay", &self.retry_delay)
            .finish_non_exhaustive()
    }
}

impl DingTalk {
    /// A client whose every request (connect and answer) is bounded by `timeout`, limited
    /// to 20 messages per 60 s per robot, making up to 3 attempts 60 s apart on 130101.
    pub fn new(timeout: Duration) -> DingTalk {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("reportd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| error_chain(&e.without_url()));
        if let Err(e) = &client {
            tracing::error!(error = %e, "cannot build the DingTalk HTTP client");
        }
        DingTalk {
            client,
            timeout,
            limiter: Arc::new(Limiter::new(DEFAULT_RATE_MAX, DEFAULT_RATE_WINDOW)),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            retry_delay: DEFAULT_RETRY_DELAY,
        }
    }

    /// Allows at most `max` sends (at least 1) per robot in any `window`; replaces the limiter
    /// and its history.
    pub fn with_rate_limit(mut self, max: usize, window: Duration) -> DingTalk {
        self.limiter = Arc::new(Limiter::new(max, window));
        self
    }

    /// Makes up to `max_attempts` HTTP attempts (at least 1) when DingTalk answers 130101,
    /// holding the robot for `delay` before each new attempt.
    pub fn with_retries(mut self, max_attempts: u32, delay: Duration) -> DingTalk {
        self.max_attempts = max_attempts.max(1);
        self.retry_delay = delay;
        self
    }

    /// Posts `msg` as markdown to `robot`: waits for the robot's rate limit, signs the URL
    /// when the robot has a secret, and retries on 130101 as configured. Never panics;
    /// the outcome, including the number of attempts, is in the returned [`Sent`].
    pub async fn send(&self, robot: &Robot, msg: &Message) -> Sent {
        let secret = robot.secret.as_deref().filter(|s| !s.is_empty());
        let sensitive = sensitive_strings(robot);
        let refused = |e: DingTalkError| {
            let e = e.scrubbed(&sensitive);
            tracing::warn!(title = %msg.title, error = %e, "DingTalk message not sent");
            Sent {
                attempts: 0,
                result: Err(e),
            }
        };
        let base = match base_url(&robot.webhook) {
            Ok(url) => url,
            Err(e) => return refused(e),
        };
        let client = match &self.client {
            Ok(c) => c,
            Err(e) => return refused(DingTalkError::Http(e.clone())),
        };
        let key = base.to_string();
        let body = message_body(msg);
        let mut attempts = 0;
        loop {
            self.limiter.acquire(&key).await;
            attempts += 1;
            let result = self.post_once(client, &base, secret, &body).await;
            match result {
                Err(DingTalkError::Api { errcode, .. })
                    if errcode == ERRCODE_RATE_LIMITED && attempts < self.max_attempts =>
                {
                    tracing::warn!(
                        title = %msg.title,
                        attempts,
                        delay_ms = self.retry_delay.as_millis() as u64,
                        "DingTalk rate limit hit (130101), retrying after the delay"
                    );
                    self.limiter
                        .hold(&key, Instant::now() + self.retry_delay)
                        .await;
                }
                Ok(answer) => {
                    tracing::info!(title = %msg.title, attempts, "DingTalk message sent");
                    return Sent {
                        attempts,
                        result: Ok(answer),
                    };
                }
                Err(e) => {
                    let e = e.scrubbed(&sensitive);
                    tracing::warn!(title = %msg.title, attempts, error = %e, "DingTalk message failed");
                    return Sent {
                        attempts,
                        result: Err(e),
                    };
                }
            }
        }
    }

    /// One HTTP attempt: sign (fresh timestamp), post, read and judge the answer.
    async fn post_once(
        &self,
        client: &reqwest::Client,
        base: &Url,
        secret: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<String, DingTalkError> {
        let url = match secret {
            Some(secret) => sign_url(base.clone(), secret, now_ms()).to_string(),
            None => base.to_string(),
        };
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                DingTalkError::Timeout(self.timeout)
            } else {
                DingTalkError::Http(error_chain(&e.without_url()))
            }
        };
        let response = client
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let text = response.text().await.map_err(transport)?;
        if !status.is_success() {
            return Err(DingTalkError::Status {
                status: status.as_u16(),
                body: excerpt(&text),
            });
        }
        let answer: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| DingTalkError::BadAnswer(format!("{e}: {}", excerpt(&text))))?;
        let Some(errcode) = answer.get("errcode").and_then(|c| c.as_i64()) else {
            return Err(DingTalkError::BadAnswer(format!(
                "no errcode: {}",
                excerpt(&text)
            )));
        };
        if errcode == 0 {
            Ok(text)
        } else {
            let errmsg = answer
                .get("errmsg")
                .and_then(|m| m.as_str())
                .unwrap_or("")
                .to_string();
            Err(DingTalkError::Api {
                errcode,
                errmsg: excerpt(&errmsg),
            })
        }
    }
}

/// The signed URL (pub for tests): webhook + `&timestamp=<ms>&sign=<urlencoded base64
/// HMAC-SHA256(key=secret, data=timestamp+"\n"+secret)>`, keeping the webhook's existing
/// query (access_token).
///
/// A `timestamp` or `sign` already in the webhook is replaced. Fails when the webhook is
/// not an `http(s)://` URL with a host.
pub fn signed_url(webhook: &str, secret: &str, timestamp_ms: i64) -> Result<String, DingTalkError> {
    Ok(sign_url(base_url(webhook)?, secret, timestamp_ms).to_string())
}

/// Adds `timestamp` and `sign` to a webhook already checked by [`base_url`].
fn sign_url(mut url: Url, secret: &str, timestamp_ms: i64) -> Url {
    let sign = sign(secret, timestamp_ms);
    let query = match url.query() {
        Some(q) if !q.is_empty() => format!("{q}&timestamp={timestamp_ms}&sign={sign}"),
        _ => format!("timestamp={timestamp_ms}&sign={sign}"),
    };
    url.set_query(Some(&query));
    url
}

/// URL-encoded base64 of HMAC-SHA256(key = secret, data = timestamp + "\n" + secret).
fn sign(secret: &str, timestamp_ms: i64) -> String {
    // HMAC takes keys of any length: `new_from_slice` cannot fail here.
    let b64 = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    utf8_percent_encode(&b64, NON_ALPHANUMERIC).to_string()
}

/// The webhook parsed and checked, without fragment and without any `timestamp`/`sign`:
/// the URL posted to when unsigned, and the rate limiter's key.
fn base_url(webhook: &str) -> Result<Url, DingTalkError> {
    let mut url = Url::parse(webhook.trim())
        .map_err(|e| DingTalkError::BadWebhook(format!("not a URL ({e})")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(DingTalkError::BadWebhook(format!(
            "scheme `{}` is not http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(DingTalkError::BadWebhook("no host".into()));
    }
    url.set_fragment(None);
    if url
        .query_pairs()
        .any(|(k, _)| k == "timestamp" || k == "sign")
    {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != "timestamp" && k != "sign")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        url.set_query(None);
        if !kept.is_empty() {
            url.query_pairs_mut().extend_pairs(kept);
        }
    }
    Ok(url)
}

/// What must never show: the webhook as given, every query value (the access token) and
/// the secret.
fn sensitive_strings(robot: &Robot) -> Vec<String> {
    let mut query_values = Vec::new();
    if let Ok(url) = Url::parse(robot.webhook.trim()) {
        query_values.extend(url.query_pairs().map(|(_, v)| v.into_owned()));
        if let Some(q) = url.query() {
            let raw = q.split('&').filter_map(|p| p.split_once('='));
            query_values.extend(raw.map(|(_, v)| v.to_string()));
        }
    }
    // Tiny values (`&x=1`) would mangle messages; access tokens are long.
    query_values.retain(|v| v.len() >= 4);
    let mut out = vec![robot.webhook.trim().to_string()];
    out.extend(query_values);
    out.extend(robot.secret.clone());
    out.retain(|s| !s.is_empty());
    // Longest first, so a string containing another is replaced whole.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// `text` with every sensitive string replaced by `***`, on one line.
fn scrub(text: &str, sensitive: &[String]) -> String {
    let mut out = one_line(text);
    for s in sensitive {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

/// The webhook with its query masked, for `Debug`.
fn masked_webhook(webhook: &str) -> String {
    match Url::parse(webhook.trim()) {
        Ok(url) => {
            let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
            let query = if url.query().is_some() { "?***" } else { "" };
            let host = url.host_str().unwrap_or("");
            format!("{}://{host}{port}{}{query}", url.scheme(), url.path())
        }
        Err(_) => "***".into(),
    }
}

/// The JSON body DingTalk expects for a markdown message.
fn message_body(msg: &Message) -> serde_json::Value {
    let mobiles = clean_list(&msg.at_mobiles);
    let user_ids = clean_list(&msg.at_user_ids);
    let mentions: Vec<&str> = mobiles.iter().chain(&user_ids).copied().collect();
    json!({
        "msgtype": "markdown",
        "markdown": { "title": msg.title, "text": prepare_text(&msg.text, &mentions) },
        "at": { "atMobiles": mobiles, "atUserIds": user_ids, "isAtAll": msg.at_all },
    })
}

/// Trimmed, non-empty, without repeats, in order.
fn clean_list(items: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::with_capacity(items.len());
    for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// The text with `@<mention>` appended for each mention it lacks, cut (with the marker)
/// so that the whole stays within [`MAX_TEXT_BYTES`].
fn prepare_text(text: &str, mentions: &[&str]) -> String {
    let full = mention_suffix(text, mentions);
    if text.len() + full.len() <= MAX_TEXT_BYTES {
        return format!("{text}{full}");
    }
    // Room for the worst case (every mention cut away), then only what is missing.
    let worst = mention_suffix("", mentions);
    let budget = MAX_TEXT_BYTES.saturating_sub(worst.len() + TRUNCATED_MARKER.len());
    let kept = &text[..text.floor_char_boundary(budget)];
    let suffix = mention_suffix(kept, mentions);
    format!("{kept}{TRUNCATED_MARKER}{suffix}")
}

/// `\n\n@a @b` for the mentions not in `text`, or empty.
fn mention_suffix(text: &str, mentions: &[&str]) -> String {
    let missing: Vec<String> = mentions
        .iter()
        .filter(|m| !mentions_in(text, m))
        .map(|m| format!("@{m}"))
        .collect();
    if missing.is_empty() {
        String::new()
    } else {
        format!("\n\n{}", missing.join(" "))
    }
}

/// Whether `text` has `@<mention>` not followed by more of a longer id (so `@138` is not
/// found in `@1380000`).
fn mentions_in(text: &str, mention: &str) -> bool {
    let needle = format!("@{mention}");
    text.match_indices(&needle).any(|(at, _)| {
        !text[at + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-')
    })
}

/// Per-robot sliding-window rate limiter.
struct Limiter {
    max: usize,
    window: Duration,
    robots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<RobotState>>>>,
}

/// One robot's recent sends and any hold after a 130101 answer.
#[derive(Default)]
struct RobotState {
    sent: VecDeque<Instant>,
    held_until: Option<Instant>,
}

impl Limiter {
    fn new(max: usize, window: Duration) -> Limiter {
        Limiter {
            max: max.max(1),
            window,
            robots: Mutex::new(HashMap::new()),
        }
    }

    fn state(&self, key: &str) -> Arc<tokio::sync::Mutex<RobotState>> {
        let mut robots = self.robots.lock().unwrap_or_else(|p| p.into_inner());
        robots.entry(key.to_string()).or_default().clone()
    }

    /// Waits until the robot may send, and records the send. Waiters for one robot go in
    /// turn (the robot's lock is fair).
    async fn acquire(&self, key: &str) {
        let state = self.state(key);
        let mut st = state.lock().await;
        loop {
            let now = Instant::now();
            if let Some(until) = st.held_until {
                if until > now {
                    tracing::debug!(
                        wait_ms = (until - now).as_millis() as u64,
                        "DingTalk robot held after 130101"
                    );
                    tokio::time::sleep_until(until).await;
                    continue;
                }
                st.held_until = None;
            }
            while st
                .sent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= self.window)
            {
                st.sent.pop_front();
            }
            match st.sent.front() {
                Some(oldest) if st.sent.len() >= self.max => {
                    let until = *oldest + self.window;
                    tracing::debug!(
                        wait_ms = (until - now).as_millis() as u64,
                        "DingTalk rate limit: waiting"
                    );
                    tokio::time::sleep_until(until).await;
                }
                _ => {
                    st.sent.push_back(now);
                    return;
                }
            }
        }
    }

    /// Holds the robot: no send before `until`.
    async fn hold(&self, key: &str, until: Instant) {
        let state = self.state(key);
        let mut st = state.lock().await;
        st.held_until = Some(st.held_until.map_or(until, |u| u.max(until)));
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// An error and its sources, `: `-separated, on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
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

/// Line breaks and tabs become spaces.
fn one_line(s: &str) -> String {
    s.split(['\r', '\n', '\t'])
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The start of an answer, on one line, for an error message.
fn excerpt(s: &str) -> String {
    one_line(&truncate_chars(s, MAX_ANSWER_IN_ERROR))
}

/// At most `max` characters of `s`, with `…` when cut.
fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEBHOOK: &str = "https://oapi.dingtalk.com/robot/send?access_token=abc123";

    #[test]
    fn signed_url_matches_independent_vectors() {
        // Expected values computed independently with Python's standard library:
        // python3 -c 'import hmac,hashlib,base64,urllib.parse as u; s,t="SEC0123456789abcdef","1700000000000"; print(u.quote_plus(base64.b64encode(hmac.new(s.encode(),(t+"\n"+s).encode(),hashlib.sha256).digest())))'
        // -> TSZbRFUuvaSQaRKUpF970OPCb2%2FLcQAP3wOvwZIzBZk%3D
        assert_eq!(
            signed_url(WEBHOOK, "SEC0123456789abcdef", 1_700_000_000_000).unwrap(),
            "https://oapi.dingtalk.com/robot/send?access_token=abc123\
             &timestamp=1700000000000&sign=TSZbRFUuvaSQaRKUpF970OPCb2%2FLcQAP3wOvwZIzBZk%3D"
        );
        // Same one-liner with s,t="SECtest-secret","1577836800000" (a sign with a '+'):
        // -> FB7sLe8N4QcQ%2BfBdSaDMTAP88LH5DYHJUN2PZRtruKw%3D
        assert_eq!(
            signed_url(WEBHOOK, "SECtest-secret", 1_577_836_800_000).unwrap(),
            "https://oapi.dingtalk.com/robot/send?access_token=abc123\
             &timestamp=1577836800000&sign=FB7sLe8N4QcQ%2BfBdSaDMTAP88LH5DYHJUN2PZRtruKw%3D"
        );
    }

    #[test]
    fn signed_url_without_query_and_with_stale_signature() {
        let plain = signed_url(
            "http://127.0.0.1:9/hook",
            "SECtest-secret",
            1_577_836_800_000,
        );
        assert_eq!(
            plain.unwrap(),
            "http://127.0.0.1:9/hook?timestamp=1577836800000\
             &sign=FB7sLe8N4QcQ%2BfBdSaDMTAP88LH5DYHJUN2PZRtruKw%3D"
        );
        let stale = format!("{WEBHOOK}&timestamp=1&sign=old#frag");
        let url = signed_url(&stale, "SECtest-secret", 1_577_836_800_000).unwrap();
        assert!(url.starts_with(&format!("{WEBHOOK}&timestamp=1577836800000&sign=FB7s")));
        assert_eq!(url.matches("timestamp=").count(), 1, "{url}");
        assert!(!url.contains('#'));
    }

    #[test]
    fn bad_webhooks_are_refused_without_echoing_them() {
        for bad in [
            "oapi.dingtalk.com/robot/send?access_token=tok3n",
            "ftp://host/robot?access_token=tok3n",
            "",
        ] {
            let err = signed_url(bad, "SECx", 1).unwrap_err();
            assert!(matches!(err, DingTalkError::BadWebhook(_)), "{err:?}");
            assert!(!err.to_string().contains("tok3n"), "{err}");
        }
    }

    #[test]
    fn body_has_markdown_and_mentions() {
        let msg = Message {
            title: "Daily".into(),
            text: "report for @13800000001 done".into(),
            at_mobiles: vec![
                "13800000001".into(),
                "138".into(),
                " 13900000002 ".into(),
                "".into(),
            ],
            at_user_ids: vec!["user-1".into()],
            at_all: true,
        };
        let body = message_body(&msg);
        assert_eq!(body["msgtype"], "markdown");
        assert_eq!(body["markdown"]["title"], "Daily");
        assert_eq!(
            body["markdown"]["text"],
            "report for @13800000001 done\n\n@138 @13900000002 @user-1"
        );
        assert_eq!(
            body["at"]["atMobiles"],
            json!(["13800000001", "138", "13900000002"])
        );
        assert_eq!(body["at"]["atUserIds"], json!(["user-1"]));
        assert_eq!(body["at"]["isAtAll"], true);
    }

    #[test]
    fn long_text_is_cut_at_a_char_boundary_with_marker() {
        // 3-byte characters, so a byte budget rarely falls on a boundary.
        let text = "汉".repeat(10_000);
        let out = prepare_text(&text, &["13800000000"]);
        assert!(out.len() <= MAX_TEXT_BYTES, "{}", out.len());
        assert!(out.len() > MAX_TEXT_BYTES - 40, "{}", out.len());
        assert!(out.contains("…(truncated)"));
        assert!(out.ends_with("@13800000000"));
        let exact = "a".repeat(MAX_TEXT_BYTES);
        assert_eq!(prepare_text(&exact, &[]), exact);
        let over = "a".repeat(MAX_TEXT_BYTES + 1);
        assert!(prepare_text(&over, &[]).len() <= MAX_TEXT_BYTES);
    }

    #[test]
    fn send_future_is_send() {
        fn assert_send<T: Send>(_: T) {}
        let dt = DingTalk::new(Duration::from_secs(1));
        let robot = Robot {
            webhook: WEBHOOK.into(),
            secret: None,
        };
        assert_send(dt.send(&robot, &Message::default()));
    }

    #[test]
    fn errors_are_scrubbed_and_one_line() {
        let robot = Robot {
            webhook: WEBHOOK.into(),
            secret: Some("SECsecret".into()),
        };
        let err = DingTalkError::Api {
            errcode: 400,
            errmsg: "bad abc123\nwith SECsecret".into(),
        }
        .scrubbed(&sensitive_strings(&robot));
        assert_eq!(err.to_string(), "DingTalk errcode 400: bad *** with ***");
        let debug = format!("{robot:?}");
        assert!(
            !debug.contains("abc123") && !debug.contains("SECsecret"),
            "{debug}"
        );
        assert!(
            debug.contains("oapi.dingtalk.com/robot/send?***"),
            "{debug}"
        );
    }
}
