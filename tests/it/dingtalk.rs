//! The DingTalk robot client against a stand-in DingTalk: `tests/stand_ins/dingtalk.py`, a
//! real HTTP server (Python standard library) that recomputes the signature independently,
//! logs every request as JSON lines and answers as DingTalk does.

use std::time::{Duration, Instant};

use reportd::notify::dingtalk::{DingTalk, DingTalkError, Message, Robot};
use reportd::outbound::Origin;
use reportd::shutdown::Shutdown;
use serde_json::Value;

pub const SECRET: &str = "SECd1ngTalkT3stSecretValue0123456789";

pub use crate::stand_in::StandIn;

impl StandIn {
    /// The DingTalk stand-in, checking signatures with [`SECRET`].
    pub fn start() -> StandIn {
        StandIn::script("dingtalk.py", &[SECRET])
    }

    /// A robot whose access token is `token` (its prefix picks the stand-in's behaviour).
    fn robot(&self, token: &str, secret: Option<&str>) -> Robot {
        Robot {
            webhook: format!(
                "http://127.0.0.1:{}/robot/send?access_token={token}",
                self.port
            ),
            secret: secret.map(String::from),
            origin: Origin::Config,
        }
    }
}

fn message(text: &str) -> Message {
    Message {
        title: "Daily sales".into(),
        text: text.into(),
        at_mobiles: vec![],
        at_user_ids: vec![],
        at_all: false,
    }
}

fn client() -> DingTalk {
    DingTalk::new(Duration::from_secs(5)).with_retries(3, Duration::from_millis(100))
}

/// The error's `Display` and `Debug`, checked to be one line without the token or secret.
fn assert_clean(err: &DingTalkError, token: &str) -> String {
    let shown = format!("{err} | {err:?}");
    assert!(!shown.contains(token), "token leaked: {shown}");
    assert!(!shown.contains(SECRET), "secret leaked: {shown}");
    assert!(!err.to_string().contains('\n'), "not one line: {err}");
    shown
}

#[tokio::test]
async fn dingtalk_signed_markdown_verified_by_stand_in() {
    let stand_in = StandIn::start();
    let token = "ok_5f0c2e9a7b";
    let robot = stand_in.robot(token, Some(SECRET));
    let msg = Message {
        at_mobiles: vec!["13800000001".into(), "13900000002".into()],
        at_user_ids: vec!["manager01".into()],
        at_all: false,
        ..message("## Daily sales\n\n1,234 rows, see @13800000001")
    };
    let sent = client().send(&robot, &msg).await;
    assert_eq!(sent.attempts, 1);
    let answer: Value = serde_json::from_str(sent.result.as_ref().unwrap()).unwrap();
    assert_eq!(answer["errcode"], 0);

    let reqs = stand_in.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r["path"], "/robot/send");
    assert_eq!(r["query"]["access_token"][0], token, "access_token kept");
    assert_eq!(r["signed"], true);
    assert_eq!(
        r["sign_ok"], true,
        "signature verified by the stand-in: {r}"
    );
    let b = &r["body"];
    assert_eq!(b["msgtype"], "markdown");
    assert_eq!(b["markdown"]["title"], "Daily sales");
    let text = b["markdown"]["text"].as_str().unwrap();
    assert!(text.starts_with("## Daily sales\n\n1,234 rows, see @13800000001"));
    assert_eq!(text.matches("@13800000001").count(), 1, "{text}");
    assert!(text.contains("@13900000002"), "{text}");
    assert!(text.contains("@manager01"), "{text}");
    assert_eq!(
        b["at"]["atMobiles"],
        serde_json::json!(["13800000001", "13900000002"])
    );
    assert_eq!(b["at"]["atUserIds"], serde_json::json!(["manager01"]));
    assert_eq!(b["at"]["isAtAll"], false);
}

#[tokio::test]
async fn dingtalk_unsigned_robot_and_at_all() {
    let stand_in = StandIn::start();
    let robot = stand_in.robot("ok_unsigned", None);
    let msg = Message {
        at_all: true,
        ..message("everyone")
    };
    let sent = client().send(&robot, &msg).await;
    assert_eq!(sent.attempts, 1);
    assert!(sent.result.is_ok(), "{:?}", sent.result);
    let reqs = stand_in.requests();
    assert_eq!(reqs[0]["signed"], false);
    assert!(reqs[0]["query"].get("timestamp").is_none());
    assert_eq!(reqs[0]["body"]["at"]["isAtAll"], true);
    assert_eq!(reqs[0]["body"]["markdown"]["text"], "everyone");
}

#[tokio::test]
async fn dingtalk_errcode_is_a_failure_with_code_and_message() {
    let stand_in = StandIn::start();
    let dt = client();

    // The stand-in refuses this token whatever the signature.
    let token = "fail_9a8b7c6d5e";
    let sent = dt
        .send(&stand_in.robot(token, Some(SECRET)), &message("x"))
        .await;
    assert_eq!(
        sent.attempts, 1,
        "errcodes other than 130101 are not retried"
    );
    let err = sent.result.unwrap_err();
    assert_eq!(
        err,
        DingTalkError::Api {
            errcode: 310000,
            errmsg: "sign not match".into()
        }
    );
    let shown = assert_clean(&err, token);
    assert!(shown.contains("310000") && shown.contains("sign not match"));

    // A wrong secret: the stand-in's own check fails, DingTalk's answer comes back.
    let token = "ok_wrongsecret42";
    let wrong = "SECnotTheRightOne";
    let sent = dt
        .send(&stand_in.robot(token, Some(wrong)), &message("x"))
        .await;
    let err = sent.result.unwrap_err();
    assert!(
        matches!(
            &err,
            DingTalkError::Api {
                errcode: 310000,
                ..
            }
        ),
        "{err:?}"
    );
    let shown = assert_clean(&err, token);
    assert!(!shown.contains(wrong));
    let reqs = stand_in.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1]["signed"], true);
    assert_eq!(reqs[1]["sign_ok"], false);
}

#[tokio::test]
async fn dingtalk_rate_limited_answer_is_retried_then_succeeds() {
    let stand_in = StandIn::start();
    let dt = client();
    let started = Instant::now();
    let sent = dt
        .send(&stand_in.robot("limited2_abc", Some(SECRET)), &message("x"))
        .await;
    assert_eq!(sent.attempts, 3);
    assert!(sent.result.is_ok(), "{:?}", sent.result);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "waited the retry delay twice"
    );
    let reqs = stand_in.requests();
    assert_eq!(reqs.len(), 3);
    assert!(
        reqs.iter().all(|r| r["sign_ok"] == true),
        "each attempt signed"
    );
    assert_eq!(reqs[0]["answer"]["errcode"], 130101);
    assert_eq!(reqs[2]["answer"]["errcode"], 0);

    // Still limited after the last attempt: the 130101 failure comes back.
    let token = "limited5_def";
    let sent = dt
        .send(&stand_in.robot(token, Some(SECRET)), &message("x"))
        .await;
    assert_eq!(sent.attempts, 3);
    let err = sent.result.unwrap_err();
    assert!(
        matches!(&err, DingTalkError::Api { errcode: 130101, errmsg } if errmsg.contains("too fast")),
        "{err:?}"
    );
    assert_clean(&err, token);
}

#[tokio::test]
async fn dingtalk_hold_after_130101_ends_at_shutdown() {
    let stand_in = StandIn::start();
    let stop = Shutdown::new();
    let dt = DingTalk::new(Duration::from_secs(5))
        .with_retries(3, Duration::from_secs(60))
        .with_shutdown(stop.clone());
    let trigger = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.trigger("interrupted (daemon shutdown)");
    });
    let started = Instant::now();
    let sent = dt
        .send(&stand_in.robot("limited5_ghi", Some(SECRET)), &message("x"))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the 60 s hold was cut short: {:?}",
        started.elapsed()
    );
    assert_eq!((sent.attempts, sent.stopped), (1, true));
    assert!(
        matches!(
            &sent.result,
            Err(DingTalkError::Api {
                errcode: 130101,
                ..
            })
        ),
        "{:?}",
        sent.result
    );
    assert_eq!(stand_in.requests().len(), 1);
}

#[tokio::test]
async fn dingtalk_timeout_fails_fast() {
    let stand_in = StandIn::start();
    let dt = DingTalk::new(Duration::from_millis(500));
    let token = "slow_77aa";
    let started = Instant::now();
    let sent = dt
        .send(&stand_in.robot(token, Some(SECRET)), &message("x"))
        .await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert_eq!(sent.attempts, 1, "a timeout is not retried");
    let err = sent.result.unwrap_err();
    assert_eq!(err, DingTalkError::Timeout(Duration::from_millis(500)));
    assert_clean(&err, token);
}

#[tokio::test]
async fn dingtalk_limiter_spaces_sends_per_robot() {
    let stand_in = StandIn::start();
    let window = Duration::from_secs(2);
    let dt = client().with_rate_limit(3, window);
    let robot = stand_in.robot("ok_limiter", Some(SECRET));
    let other = stand_in.robot("ok_other", Some(SECRET));
    let msgs: Vec<Message> = (0..5).map(|i| message(&format!("message {i}"))).collect();

    let started = Instant::now();
    let sends = msgs.iter().map(|m| dt.send(&robot, m));
    let (sent, other_sent) = tokio::join!(futures_util::future::join_all(sends), async {
        // Another robot has its own budget: not held up by the first.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let s = dt.send(&other, &message("other")).await;
        (s, started.elapsed())
    });
    let elapsed = started.elapsed();
    assert!(sent.iter().all(|s| s.attempts == 1 && s.result.is_ok()));
    assert!(other_sent.0.result.is_ok());
    assert!(other_sent.1 < Duration::from_secs(1), "{:?}", other_sent.1);
    assert!(elapsed >= window, "5 sends at 3 per 2 s took {elapsed:?}");

    let times: Vec<f64> = stand_in
        .requests()
        .iter()
        .filter(|r| r["token"] == "ok_limiter")
        .map(|r| r["time"].as_f64().unwrap())
        .collect();
    assert_eq!(times.len(), 5);
    assert!(
        times[2] - times[0] < 1.0,
        "the first 3 go at once: {times:?}"
    );
    for i in 0..2 {
        // At most 3 in any 2 s window: the (i+3)-th waits 2 s after the i-th.
        assert!(
            times[i + 3] - times[i] >= 1.9,
            "sends {i} and {} too close: {times:?}",
            i + 3
        );
    }
}

#[tokio::test]
async fn dingtalk_long_text_is_truncated_to_20000_bytes() {
    let stand_in = StandIn::start();
    // 30,000 bytes: 3-byte characters with ASCII mixed in so the cut point is arbitrary.
    let text: String = "销售额 sales ".repeat(30_000 / 16 + 1);
    let text = &text[..text.floor_char_boundary(30_000)];
    assert!(text.len() > 29_990);
    let msg = Message {
        at_mobiles: vec!["13800000001".into()],
        ..message(text)
    };
    let sent = client()
        .send(&stand_in.robot("ok_long", Some(SECRET)), &msg)
        .await;
    assert!(sent.result.is_ok(), "{:?}", sent.result);
    let reqs = stand_in.requests();
    assert_eq!(reqs[0]["sign_ok"], true);
    let got = reqs[0]["body"]["markdown"]["text"].as_str().unwrap();
    assert!(got.len() <= 20_000, "{} bytes", got.len());
    assert!(got.len() > 19_900, "{} bytes", got.len());
    assert!(got.contains("…(truncated)"));
    assert!(
        got.ends_with("@13800000001"),
        "the @mobile survives the cut"
    );
    assert!(text.starts_with(got.split("\n\n…(truncated)").next().unwrap()));
}

#[tokio::test]
async fn dingtalk_transport_and_answer_errors_hide_secrets() {
    let stand_in = StandIn::start();
    let dt = client();

    let token = "status500_1122";
    let sent = dt
        .send(&stand_in.robot(token, Some(SECRET)), &message("x"))
        .await;
    let err = sent.result.unwrap_err();
    assert!(
        matches!(&err, DingTalkError::Status { status: 500, body } if body == "internal error second line"),
        "{err:?}"
    );
    assert_clean(&err, token);

    let token = "notjson_3344";
    let sent = dt
        .send(&stand_in.robot(token, Some(SECRET)), &message("x"))
        .await;
    let err = sent.result.unwrap_err();
    assert!(matches!(err, DingTalkError::BadAnswer(_)), "{err:?}");
    assert_clean(&err, token);

    // The stand-in echoes the token in its errmsg: it is masked.
    let token = "echo_5566deadbeef";
    let sent = dt
        .send(&stand_in.robot(token, Some(SECRET)), &message("x"))
        .await;
    let err = sent.result.unwrap_err();
    assert_eq!(
        err.to_string(),
        "DingTalk errcode 400: token *** is not allowed"
    );
    assert_clean(&err, token);

    // Nobody listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let token = "ok_refused_7788";
    let robot = Robot {
        webhook: format!("http://127.0.0.1:{port}/robot/send?access_token={token}"),
        secret: Some(SECRET.into()),
        origin: Origin::Config,
    };
    let sent = dt.send(&robot, &message("x")).await;
    assert_eq!(sent.attempts, 1);
    let err = sent.result.unwrap_err();
    assert!(matches!(err, DingTalkError::Http(_)), "{err:?}");
    assert_clean(&err, token);

    // Not a URL: refused before any request.
    let robot = Robot {
        webhook: "oapi.dingtalk.com/robot/send?access_token=ok_badurl_99".into(),
        secret: Some(SECRET.into()),
        origin: Origin::Config,
    };
    let sent = dt.send(&robot, &message("x")).await;
    assert_eq!(sent.attempts, 0);
    let err = sent.result.unwrap_err();
    assert!(matches!(err, DingTalkError::BadWebhook(_)), "{err:?}");
    assert_clean(&err, "ok_badurl_99");
}
