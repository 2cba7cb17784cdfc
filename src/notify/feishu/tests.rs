//! Unit tests of Feishu signing, cards, answers and error texts.

use crate::model::env::TASK_ENV_PREFIX;
use std::time::Duration;

use serde_json::json;

use super::card::{card_json, message_body};
use super::*;
use crate::config::FeishuSettings;
use crate::model::secret::Secret;
use crate::model::task::FeishuNotify;

const WEBHOOK: &str = "https://open.feishu.cn/open-apis/bot/v2/hook/5d6e7f80-tok3n-9a0b";

#[test]
fn sign_matches_independent_vectors() {
    // Expected values computed independently with Python's standard library:
    // python3 -c 'import hmac,hashlib,base64; s,t="SECfeishu-test-0123","1700000000"; print(base64.b64encode(hmac.new((t+"\n"+s).encode(),b"",hashlib.sha256).digest()).decode())'
    // -> w6nj4TCWOefQyCVQYHBXGmqPHMPxczS7hOU+yJsoIqQ=
    assert_eq!(
        sign("SECfeishu-test-0123", 1_700_000_000),
        "w6nj4TCWOefQyCVQYHBXGmqPHMPxczS7hOU+yJsoIqQ="
    );
    // Same one-liner with s,t="abc","1599360473":
    // -> cgtpJzI2j6bUDggbdGYjskCK3FPgKpTkwosfWsMzKqM=
    assert_eq!(
        sign("abc", 1_599_360_473),
        "cgtpJzI2j6bUDggbdGYjskCK3FPgKpTkwosfWsMzKqM="
    );
}

#[test]
fn card_has_header_markdown_and_button() {
    let card = FeishuCard {
        title: "Daily sales".into(),
        markdown: "**1,234** rows".into(),
        color: CardColor::Red,
        button: Some(("Download".into(), "https://r.example/d/1".into())),
    };
    let body = message_body(&card_json(&card), Some((1_700_000_000, "s1g".into())));
    assert_eq!(
        body,
        json!({
            "timestamp": "1700000000",
            "sign": "s1g",
            "msg_type": "interactive",
            "card": {
                "schema": "2.0",
                "config": {"width_mode": "fill"},
                "header": {"title": {"tag": "plain_text", "content": "Daily sales"}, "template": "red"},
                "body": {"elements": [
                    {"tag": "markdown", "content": "**1,234** rows"},
                    {"tag": "button", "text": {"tag": "plain_text", "content": "Download"},
                        "type": "primary",
                        "behaviors": [{"type": "open_url", "default_url": "https://r.example/d/1"}]},
                ]},
            },
        })
    );
    let plain = message_body(&card_json(&FeishuCard::default()), None);
    assert!(plain.get("sign").is_none() && plain.get("timestamp").is_none());
    assert_eq!(
        plain["card"]["body"]["elements"].as_array().unwrap().len(),
        1
    );
    assert_eq!(plain["card"]["header"]["template"], "blue");
}

#[test]
fn long_markdown_is_cut_so_the_body_fits() {
    // Quotes and line breaks grow when escaped: the cut must allow for it.
    let card = FeishuCard {
        markdown: "\"销售\"\n".repeat(5_000),
        ..FeishuCard::default()
    };
    let body = message_body(&card_json(&card), Some((1_700_000_000, sign("s", 1))));
    let len = serde_json::to_vec(&body).unwrap().len();
    assert!(len <= MAX_BODY_BYTES, "{len}");
    assert!(len > MAX_BODY_BYTES - 400, "{len}");
    let md = body["card"]["body"]["elements"][0]["content"]
        .as_str()
        .unwrap();
    assert!(md.ends_with("…(truncated)"));
}

#[test]
fn answers_old_and_new_and_named_codes() {
    assert!(judge(200, r#"{"code":0,"msg":"success","data":{}}"#).is_ok());
    assert!(judge(200, r#"{"StatusCode":0,"StatusMessage":"success"}"#).is_ok());
    let err = judge(200, r#"{"code":19024,"msg":"Key Words Not Found"}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Feishu code 19024 (keyword not found: the message lacks the bot's keyword): Key Words Not Found"
    );
    let err = judge(400, r#"{"code":9499,"msg":"Bad Request"}"#).unwrap_err();
    assert_eq!(
        err,
        FeishuError::Api {
            code: 9499,
            msg: "Bad Request".into()
        }
    );
    assert!(
        judge(200, r#"{"code":19022,"msg":"x"}"#)
            .unwrap_err()
            .to_string()
            .contains("ip not allowed")
    );
    assert!(
        judge(200, r#"{"code":19021,"msg":"x"}"#)
            .unwrap_err()
            .to_string()
            .contains("signature")
    );
    assert!(
        judge(200, r#"{"code":11232,"msg":"x"}"#)
            .unwrap_err()
            .to_string()
            .contains("frequency limited")
    );
    assert!(matches!(
        judge(502, "gateway"),
        Err(FeishuError::Status { status: 502, .. })
    ));
    assert!(matches!(
        judge(200, "<html>"),
        Err(FeishuError::BadAnswer(_))
    ));
}

#[test]
fn token_and_secret_never_show() {
    let bot = FeishuBot {
        webhook: WEBHOOK.into(),
        secret: Some("SECfeishu-secret".into()),
        origin: crate::outbound::Origin::Config,
    };
    let err = FeishuError::Api {
        code: 19021,
        msg: "hook 5d6e7f80-tok3n-9a0b with SECfeishu-secret".into(),
    }
    .scrubbed(&bot.sensitive());
    assert!(err.to_string().ends_with(": hook *** with ***"), "{err}");
    let debug = format!("{bot:?}");
    assert!(
        !debug.contains("tok3n") && !debug.contains("SECfeishu"),
        "{debug}"
    );
    assert!(debug.contains("/open-apis/bot/v2/hook/***"), "{debug}");
}

#[test]
fn only_11232_is_retried_after_the_hold() {
    let logic = RateLimitedOnly {
        hold: Duration::from_secs(60),
    };
    let api = |code| FeishuError::Api {
        code,
        msg: String::new(),
    };
    assert_eq!(
        logic.classify(&api(CODE_RATE_LIMITED)),
        RetryAction::RetryAfter(Duration::from_secs(60))
    );
    assert_eq!(logic.classify(&api(19021)), RetryAction::DontRetry);
    assert_eq!(
        logic.classify(&FeishuError::Timeout(Duration::from_secs(1))),
        RetryAction::DontRetry
    );
}

#[test]
fn bot_comes_from_the_task_else_the_settings() {
    let settings = FeishuSettings {
        webhook_url: Secret::new(WEBHOOK),
        secret: Secret::new("SECdefault"),
        ..FeishuSettings::default()
    };
    let bot = settings.bot(None, TASK_ENV_PREFIX).unwrap();
    assert_eq!(
        (bot.webhook.as_str(), bot.secret.as_deref()),
        (WEBHOOK, Some("SECdefault"))
    );
    let own = FeishuNotify {
        secret: Some(Secret::new("SECown")),
        ..FeishuNotify::default()
    };
    assert_eq!(
        settings
            .bot(Some(&own), TASK_ENV_PREFIX)
            .unwrap()
            .secret
            .as_deref(),
        Some("SECown")
    );
    // A task's own webhook is never signed with the config's secret.
    let elsewhere = FeishuNotify {
        webhook: Some(Secret::new("https://other.example/open-apis/bot/v2/hook/t")),
        ..FeishuNotify::default()
    };
    assert_eq!(
        settings
            .bot(Some(&elsewhere), TASK_ENV_PREFIX)
            .unwrap()
            .secret,
        None
    );
    assert_eq!(
        FeishuSettings::default().bot(None, TASK_ENV_PREFIX),
        Err(FeishuError::NoWebhook)
    );
}

#[test]
fn send_future_is_send() {
    fn assert_send<T: Send>(_: T) {}
    let feishu = Feishu::new(Duration::from_secs(1));
    let bot = FeishuBot {
        webhook: WEBHOOK.into(),
        secret: None,
        origin: crate::outbound::Origin::Config,
    };
    assert_send(feishu.send(&bot, &FeishuCard::default()));
}
