//! The generic webhook client against a stand-in receiver: `tests/stand_ins/webhook.py`, a
//! real HTTP server (Python standard library) that recomputes `X-Reportd-Signature` over the
//! timestamp and the raw body, logs every request as JSON lines and answers as told.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reportd::config::OutboundAllow;
use reportd::notify::retry::RetryPolicy;
use reportd::notify::webhook::{Webhook, WebhookError, WebhookTarget};
use reportd::outbound::Policy;

use crate::stand_in::StandIn;

/// Checks the error is one line without the URL's token or the secret.
fn assert_clean(err: &WebhookError) -> String {
    crate::stand_in::assert_clean(err, &["qt0ken-5150", SECRET])
}

const SECRET: &str = "whT3stSecretValue0123456789";
const BODY: &[u8] =
    br#"{"event":"execution.finished","task":{"id":7,"name":"Daily sales"},"files":[]}"#;

fn stand_in() -> StandIn {
    StandIn::script("webhook.py", &[SECRET])
}

/// A target at `path` (its first segment picks the stand-in's behaviour), with a token in
/// the query that must never show.
fn target(s: &StandIn, path: &str, secret: Option<&str>) -> WebhookTarget {
    WebhookTarget {
        url: format!("http://127.0.0.1:{}/{path}?token=qt0ken-5150", s.port),
        secret: secret.map(String::from),
    }
}

/// The outbound policy of the tests: the stand-ins listen on 127.0.0.1.
fn loopback() -> Arc<Policy> {
    Arc::new(Policy::new(&OutboundAllow::parse(&["127.0.0.1"]).unwrap()))
}

fn client(max_attempts: u32) -> Webhook {
    Webhook::new(
        Duration::from_secs(5),
        RetryPolicy::exponential(max_attempts, Duration::from_millis(100)),
        loopback(),
    )
}

#[tokio::test]
async fn webhook_signed_post_verified_by_stand_in() {
    let s = stand_in();
    let sent = client(3)
        .post(
            &target(&s, "ok/hook", Some(SECRET)),
            "exec-42-finished",
            BODY,
        )
        .await;
    assert_eq!((sent.attempts, sent.result), (1, Ok(200)));
    let reqs = s.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r["sig_ok"], true, "signature verified by the stand-in: {r}");
    assert_eq!(r["content_type"], "application/json");
    assert!(
        r["user_agent"].as_str().unwrap().starts_with("reportd/"),
        "{r}"
    );
    assert_eq!(r["delivery"], "exec-42-finished");
    assert_eq!(r["raw_len"], BODY.len(), "the body as given");
    assert_eq!(r["body"]["task"]["name"], "Daily sales");

    // Unsigned: no signature header, the timestamp still there.
    let sent = client(3)
        .post(&target(&s, "ok/plain", None), "d2", BODY)
        .await;
    assert_eq!(sent.result, Ok(200));
    let r = &s.requests()[1];
    assert!(
        r["signature"].is_null() && r["timestamp"].is_string(),
        "{r}"
    );
}

#[tokio::test]
async fn webhook_5xx_is_retried_with_back_off_then_ok() {
    let s = stand_in();
    let started = Instant::now();
    let sent = client(4)
        .post(&target(&s, "fail500_2/x", Some(SECRET)), "d-retry", BODY)
        .await;
    assert_eq!((sent.attempts, sent.result), (3, Ok(200)));
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "waits 100 then 200 ms"
    );
    let reqs = s.requests();
    let statuses: Vec<u64> = reqs.iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [500, 500, 200]);
    assert!(
        reqs.iter().all(|r| r["delivery"] == "d-retry"),
        "same delivery id"
    );
    assert!(
        reqs.iter().all(|r| r["sig_ok"] == true),
        "each attempt signed"
    );
}

#[tokio::test]
async fn webhook_gives_up_after_the_attempts() {
    let s = stand_in();
    let sent = client(3)
        .post(&target(&s, "always503", Some(SECRET)), "d", BODY)
        .await;
    assert_eq!(sent.attempts, 3);
    let err = sent.result.unwrap_err();
    assert!(
        // The receiver's answer is the log's, not the task's record (the URL is a user's).
        matches!(&err, WebhookError::Status { status: 503, body } if body == "(answer not shown)"),
        "{err:?}"
    );
    assert_clean(&err);
    assert_eq!(s.requests().len(), 3);
}

#[tokio::test]
async fn webhook_4xx_is_not_retried() {
    let s = stand_in();
    let sent = client(3)
        .post(&target(&s, "status400", Some(SECRET)), "d", BODY)
        .await;
    assert_eq!(sent.attempts, 1);
    let err = sent.result.unwrap_err();
    assert!(
        matches!(err, WebhookError::Status { status: 400, .. }),
        "{err:?}"
    );
    let shown = assert_clean(&err);
    assert!(shown.contains("HTTP 400"), "{shown}");
    assert_eq!(s.requests().len(), 1);
}

#[tokio::test]
async fn webhook_timeouts_are_retried_then_reported() {
    let s = stand_in();
    let hook = Webhook::new(
        Duration::from_secs(1),
        RetryPolicy::exponential(2, Duration::from_millis(100)),
        loopback(),
    );
    let started = Instant::now();
    let sent = hook
        .post(&target(&s, "slow", Some(SECRET)), "d", BODY)
        .await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    assert_eq!(sent.attempts, 2);
    let err = sent.result.unwrap_err();
    assert_eq!(err, WebhookError::Timeout(Duration::from_secs(1)));
    assert_clean(&err);
    assert_eq!(s.requests().len(), 2);
}

#[tokio::test]
async fn webhook_refused_connections_are_retried_and_bad_urls_refused() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let t = WebhookTarget {
        url: format!("http://127.0.0.1:{port}/in?token=qt0ken-5150"),
        secret: Some(SECRET.into()),
    };
    let sent = client(2).post(&t, "d", BODY).await;
    assert_eq!(sent.attempts, 2);
    let err = sent.result.unwrap_err();
    assert!(matches!(err, WebhookError::Http(_)), "{err:?}");
    assert_clean(&err);

    let bad = WebhookTarget {
        url: "ftp://hooks.example/in?token=qt0ken-5150".into(),
        secret: None,
    };
    let sent = client(2).post(&bad, "d", BODY).await;
    assert_eq!(sent.attempts, 0);
    let err = sent.result.unwrap_err();
    assert!(matches!(err, WebhookError::BadUrl(_)), "{err:?}");
    assert_clean(&err);
}
