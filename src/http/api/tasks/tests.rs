//! Unit tests of the task bodies.

use super::body::*;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::model::secret::Secret;
use crate::model::task::TaskSpec;

#[test]
fn indexes_count_from_zero() {
    assert_eq!(zero_based("sheets[1].name"), "sheets[0].name");
    assert_eq!(zero_based("sheets[12].sql"), "sheets[11].sql");
    assert_eq!(zero_based("cron"), "cron");
    assert_eq!(zero_based("a[x]"), "a[x]");
}

#[test]
fn unknown_keys_are_named() {
    let base = json!({"name": "t", "data_source": "d", "cron": "* * * * *", "sql": "SELECT 1"});
    let mut body = base.clone();
    body["bogus"] = json!(1);
    let e = parse_spec(body).unwrap_err();
    assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e.field.as_deref(), Some("bogus"), "{}", e.error);
    let mut body = base.clone();
    body["notify"] = json!({"dingtalk": {"hook": "x"}});
    let e = parse_spec(body).unwrap_err();
    assert_eq!(
        e.field.as_deref(),
        Some("notify.dingtalk.hook"),
        "{}",
        e.error
    );
    let mut body = base.clone();
    body["retries"] = json!("two");
    let e = parse_spec(body).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("retries"), "{}", e.error);
    let mut body = base.clone();
    body["id"] = json!(7);
    body["last_run"] = Value::Null;
    assert_eq!(parse_spec(body).unwrap().name, "t");
    let e = parse_spec(json!([1])).unwrap_err();
    assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[test]
fn masks_secrets_and_keeps_them() {
    let stored: TaskSpec = serde_json::from_value(json!({
        "name": "t", "data_source": "d", "cron": "* * * * *", "sql": "SELECT 1",
        "notify": {"dingtalk": {"webhook": "https://x/robot?access_token=s3cr3t", "secret": "${DT_SECRET}"}}
    }))
    .unwrap();
    let shown = stored.clone().masked();
    let d = shown.notify.dingtalk.as_ref().unwrap();
    assert_eq!(d.webhook.as_ref().unwrap().expose(), MASK);
    assert_eq!(d.secret.as_ref().unwrap().expose(), "${DT_SECRET}");
    let mut sent = stored.clone();
    sent.notify.dingtalk.as_mut().unwrap().webhook = Some(Secret::new(MASK));
    assert_eq!(keep_masked(sent, &stored), stored);
    let mut other = stored.clone();
    other.cron = "0 9 * * *".into();
    other.notify.dingtalk.as_mut().unwrap().webhook = Some(Secret::new("https://y"));
    assert_eq!(changed_keys(&stored, &other), ["cron", "notify"]);
}

#[test]
fn every_channel_secret_is_masked_and_kept() {
    let stored: TaskSpec = serde_json::from_value(json!({
        "name": "t", "data_source": "d", "cron": "* * * * *", "sql": "SELECT 1",
        "notify": {
            "wecom": {"webhook": "https://q/send?key=w3c0m"},
            "feishu": {"webhook": "https://f/hook/f3ishu", "secret": "fs-s3cret"},
            "webhook": {"url": "https://h/in?token=h00k", "secret": "hk-s3cret"}
        }
    }))
    .unwrap();
    let shown = serde_json::to_string(&stored.clone().masked()).unwrap();
    for secret in ["w3c0m", "f3ishu", "fs-s3cret", "h00k", "hk-s3cret"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    let back: TaskSpec = serde_json::from_str(&shown).unwrap();
    assert_eq!(keep_masked(back, &stored), stored);
}
