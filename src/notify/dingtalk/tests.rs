//! Unit tests of signing, message bodies and error scrubbing.

use std::time::Duration;

use serde_json::json;

use super::body::{MAX_TEXT_BYTES, message_body, prepare_text};
use super::robot::sensitive_strings;
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
        origin: crate::outbound::Origin::Config,
    };
    assert_send(dt.send(&robot, &Message::default()));
}

#[test]
fn errors_are_scrubbed_and_one_line() {
    let robot = Robot {
        webhook: WEBHOOK.into(),
        secret: Some("SECsecret".into()),
        origin: crate::outbound::Origin::Config,
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

#[test]
fn only_130101_is_retried_after_the_hold() {
    let logic = RateLimitedOnly {
        hold: Duration::from_secs(60),
    };
    let api = |errcode| DingTalkError::Api {
        errcode,
        errmsg: String::new(),
    };
    assert_eq!(
        logic.classify(&api(ERRCODE_RATE_LIMITED)),
        RetryAction::RetryAfter(Duration::from_secs(60))
    );
    assert_eq!(logic.classify(&api(310_000)), RetryAction::DontRetry);
    assert_eq!(
        logic.classify(&DingTalkError::Timeout(Duration::from_secs(1))),
        RetryAction::DontRetry,
        "a timed-out message may have been delivered"
    );
}
