//! Unit tests of the webhook signature, retry logic, targets and error texts.

use crate::model::env::TASK_ENV_PREFIX;
use std::time::Duration;

use super::*;
use crate::model::secret::Secret;
use crate::model::task::WebhookNotify;

#[test]
fn signature_matches_an_independent_vector() {
    // Computed independently with Python's standard library:
    // python3 -c 'import hmac,hashlib; print("sha256="+hmac.new(b"whs3cret",b"1700000000."+b"{\"event\":\"x\"}",hashlib.sha256).hexdigest())'
    assert_eq!(
        signature("whs3cret", 1_700_000_000, br#"{"event":"x"}"#),
        "sha256=6eb3dd85efdd5050a23e5180e93265c0a60aeb2f2315242215ee16c3cb51c96d"
    );
}

#[test]
fn retried_on_5xx_429_timeouts_and_connections_only() {
    let status = |status| WebhookError::Status {
        status,
        body: String::new(),
    };
    for e in [
        status(500),
        status(503),
        status(429),
        WebhookError::Timeout(Duration::from_secs(1)),
        WebhookError::Http("connection refused".into()),
    ] {
        assert_eq!(Transient.classify(&e), RetryAction::Retry, "{e}");
    }
    for e in [status(400), status(404), WebhookError::BadUrl("x".into())] {
        assert_eq!(Transient.classify(&e), RetryAction::DontRetry, "{e}");
    }
}

#[test]
fn target_expands_and_hides_its_secrets() {
    let n = WebhookNotify {
        url: Secret::new("https://hooks.example/in?token=t0ken-abc"),
        secret: Some(Secret::new("whs3cret")),
    };
    let t = n.target(TASK_ENV_PREFIX).unwrap();
    assert_eq!(t.secret.as_deref(), Some("whs3cret"));
    let debug = format!("{t:?}");
    assert!(
        !debug.contains("t0ken-abc") && !debug.contains("whs3cret"),
        "{debug}"
    );
    assert!(debug.contains("https://hooks.example/in?***"), "{debug}");
    let err = WebhookError::Status {
        status: 400,
        body: "bad token t0ken-abc".into(),
    }
    .scrubbed(&t.sensitive());
    assert_eq!(err.to_string(), "webhook answered HTTP 400: bad token ***");
    let unset = WebhookNotify {
        url: Secret::new("${REPORTD_TASK_TEST_UNSET_WEBHOOK_URL}"),
        secret: None,
    };
    assert!(matches!(
        unset.target(TASK_ENV_PREFIX),
        Err(WebhookError::Env(_))
    ));
}

#[test]
fn settings_make_an_exponential_policy() {
    let settings = crate::config::WebhookSettings::default();
    let hook = settings.client(&std::sync::Arc::default());
    assert_eq!(
        hook.policy,
        RetryPolicy::exponential(3, Duration::from_secs(5))
    );
    assert_eq!(hook.timeout, Duration::from_secs(10));
}
