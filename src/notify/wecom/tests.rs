//! Unit tests of WeCom bodies, URLs, error texts and retry logic.

use crate::model::env::TASK_ENV_PREFIX;
use std::time::Duration;

use serde_json::json;

use super::body::{file_body, markdown_body, mention_body};
use super::robot::upload_url;
use super::*;
use crate::config::WeComSettings;
use crate::model::secret::Secret;
use crate::model::task::WeComNotify;

const WEBHOOK: &str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k3y-693a91f6";

fn robot() -> WeComRobot {
    WeComRobot {
        webhook: WEBHOOK.into(),
        origin: crate::outbound::Origin::Config,
    }
}

#[test]
fn markdown_is_cut_to_4096_bytes_with_marker() {
    let msg = WeComMessage {
        text: "销售额 ".repeat(2000),
        ..WeComMessage::default()
    };
    let body = markdown_body(&msg);
    assert_eq!(body["msgtype"], "markdown_v2");
    let content = body["markdown_v2"]["content"].as_str().unwrap();
    assert!(content.len() <= MAX_MARKDOWN_BYTES, "{}", content.len());
    assert!(content.len() > MAX_MARKDOWN_BYTES - 20, "{}", content.len());
    assert!(content.ends_with("…(truncated)"));
    let short = WeComMessage {
        text: "| a | b |".into(),
        ..WeComMessage::default()
    };
    assert_eq!(markdown_body(&short)["markdown_v2"]["content"], "| a | b |");
}

#[test]
fn mentions_go_in_a_text_message_with_the_first_line() {
    let mut msg = WeComMessage {
        text: "\n## Daily sales\n\n| a |".into(),
        ..WeComMessage::default()
    };
    assert_eq!(mention_body(&msg), None, "no mentions, no text message");
    msg.mentioned_list = vec!["zhangsan".into(), " @all ".into(), "zhangsan".into()];
    msg.mentioned_mobiles = vec!["13800000001".into(), "".into()];
    assert_eq!(
        mention_body(&msg).unwrap(),
        json!({"msgtype": "text", "text": {
            "content": "Daily sales",
            "mentioned_list": ["zhangsan", "@all"],
            "mentioned_mobile_list": ["13800000001"],
        }})
    );
    msg.text = "x".repeat(500);
    let long = mention_body(&msg).unwrap();
    assert_eq!(
        long["text"]["content"].as_str().unwrap().chars().count(),
        200
    );
    assert_eq!(
        file_body("m1"),
        json!({"msgtype": "file", "file": {"media_id": "m1"}})
    );
}

#[test]
fn upload_url_sits_next_to_send() {
    let send = robot().send_url().unwrap();
    assert_eq!(
        upload_url(&send).as_str(),
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/upload_media?key=k3y-693a91f6&type=file"
    );
}

#[test]
fn bad_webhooks_are_refused_without_echoing_the_key() {
    for bad in [
        "qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k3y-693a91f6",
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/other?key=k3y-693a91f6",
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?nokey=k3y-693a91f6",
    ] {
        let r = WeComRobot {
            webhook: bad.into(),
            origin: crate::outbound::Origin::Config,
        };
        let err = r.send_url().unwrap_err();
        assert!(matches!(err, WeComError::BadWebhook(_)), "{err:?}");
        assert!(!err.to_string().contains("k3y-693a91f6"), "{err}");
    }
}

#[test]
fn errors_name_well_known_codes_and_hide_the_key() {
    let api = |errcode: i64, errmsg: &str| WeComError::Api {
        errcode,
        errmsg: errmsg.into(),
    };
    let shown = api(93000, "invalid webhook url, key k3y-693a91f6\nhint")
        .scrubbed(&robot().sensitive())
        .to_string();
    assert_eq!(
        shown,
        "WeCom errcode 93000 (invalid webhook key): invalid webhook url, key *** hint"
    );
    assert!(
        api(45009, "api freq out of limit")
            .to_string()
            .contains("rate limited")
    );
    assert!(api(40058, "").to_string().contains("too long"));
    assert!(api(40008, "").to_string().contains("invalid message type"));
    let debug = format!("{:?}", robot());
    assert!(!debug.contains("k3y-693a91f6"), "{debug}");
    assert!(debug.contains("/cgi-bin/webhook/send?***"), "{debug}");
}

#[test]
fn only_45009_is_retried_after_the_hold() {
    let logic = RateLimitedOnly {
        hold: Duration::from_secs(60),
    };
    let api = |errcode| WeComError::Api {
        errcode,
        errmsg: String::new(),
    };
    assert_eq!(
        logic.classify(&api(ERRCODE_RATE_LIMITED)),
        RetryAction::RetryAfter(Duration::from_secs(60))
    );
    assert_eq!(logic.classify(&api(93000)), RetryAction::DontRetry);
    assert_eq!(
        logic.classify(&WeComError::Timeout(Duration::from_secs(1))),
        RetryAction::DontRetry
    );
}

#[test]
fn robot_comes_from_the_task_else_the_settings() {
    let settings = WeComSettings {
        webhook_url: Secret::new(WEBHOOK),
        ..WeComSettings::default()
    };
    assert_eq!(
        settings.robot(None, TASK_ENV_PREFIX).unwrap().webhook,
        WEBHOOK
    );
    let own = WeComNotify {
        webhook: Some(Secret::new("https://h/cgi-bin/webhook/send?key=own")),
        ..WeComNotify::default()
    };
    assert!(
        settings
            .robot(Some(&own), TASK_ENV_PREFIX)
            .unwrap()
            .webhook
            .ends_with("key=own")
    );
    assert_eq!(
        WeComSettings::default().robot(None, TASK_ENV_PREFIX),
        Err(WeComError::NoWebhook)
    );
}

#[test]
fn send_futures_are_send() {
    fn assert_send<T: Send>(_: T) {}
    let wecom = WeCom::new(Duration::from_secs(1));
    let r = robot();
    assert_send(wecom.send_markdown(&r, &WeComMessage::default()));
    assert_send(wecom.send_file(&r, std::path::Path::new("x")));
}
