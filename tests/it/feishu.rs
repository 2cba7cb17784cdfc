//! The Feishu bot client against a stand-in Feishu: `tests/stand_ins/feishu.py`, a real HTTP
//! server (Python standard library) that recomputes Feishu's signature independently, logs
//! every request as JSON lines and answers Feishu's codes.

use std::time::{Duration, Instant};

use reportd::notify::feishu::{CardColor, Feishu, FeishuBot, FeishuCard, FeishuError};
use reportd::outbound::Origin;

use crate::stand_in::{StandIn, assert_clean as clean};

const SECRET: &str = "SECfe1shuT3stSecretValue42";
const KEYWORD: &str = "reportd";

fn stand_in() -> StandIn {
    StandIn::script("feishu.py", &[SECRET, KEYWORD])
}

/// A bot whose token is `token` (its prefix picks the stand-in's behaviour).
fn bot(s: &StandIn, token: &str, secret: Option<&str>) -> FeishuBot {
    FeishuBot {
        webhook: format!("http://127.0.0.1:{}/open-apis/bot/v2/hook/{token}", s.port),
        secret: secret.map(String::from),
        origin: Origin::Config,
    }
}

fn client() -> Feishu {
    Feishu::new(Duration::from_secs(5)).with_retries(3, Duration::from_millis(100))
}

fn card(title: &str) -> FeishuCard {
    FeishuCard {
        title: title.into(),
        markdown: "**1,234** rows\n| a | b |".into(),
        color: CardColor::Green,
        button: Some((
            "Download".into(),
            "https://reports.example/d/1?sig=x".into(),
        )),
    }
}

#[tokio::test]
async fn feishu_signed_card_verified_by_stand_in() {
    let s = stand_in();
    let sent = client()
        .send(
            &bot(&s, "signed_4e5f6a7b", Some(SECRET)),
            &card("Daily sales"),
        )
        .await;
    assert_eq!(sent.attempts, 1);
    assert!(sent.result.is_ok(), "{:?}", sent.result);
    let reqs = s.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r["signed"], true);
    assert_eq!(
        r["sign_ok"], true,
        "signature verified by the stand-in: {r}"
    );
    assert_eq!(r["answer"]["code"], 0);
    let b = &r["body"];
    assert!(
        b["timestamp"].as_str().unwrap().len() == 10,
        "Unix seconds as a string: {b}"
    );
    assert_eq!(b["msg_type"], "interactive");
    assert_eq!(b["card"]["header"]["title"]["content"], "Daily sales");
    assert_eq!(b["card"]["header"]["template"], "green");
    assert_eq!(
        b["card"]["body"]["elements"][0]["content"],
        "**1,234** rows\n| a | b |"
    );
    let button = &b["card"]["body"]["elements"][1];
    assert_eq!(button["tag"], "button");
    assert_eq!(
        button["behaviors"][0]["default_url"],
        "https://reports.example/d/1?sig=x"
    );
    assert_eq!(button["text"]["content"], "Download");
}

#[tokio::test]
async fn feishu_unsigned_bot_and_old_style_answer() {
    let s = stand_in();
    let sent = client().send(&bot(&s, "old_1", None), &card("x")).await;
    let answer = sent.result.unwrap();
    assert!(answer.contains("StatusCode"), "{answer}");
    let reqs = s.requests();
    assert_eq!(reqs[0]["signed"], false);
    assert!(reqs[0]["body"].get("sign").is_none());
}

#[tokio::test]
async fn feishu_codes_are_named_on_one_line_without_secrets() {
    let s = stand_in();
    let f = client();

    // A wrong secret: the stand-in's own check fails.
    let (token, wrong) = ("ok_wrong_c0ffee", "SECnotTheRightOne");
    let sent = f.send(&bot(&s, token, Some(wrong)), &card("x")).await;
    assert_eq!(sent.attempts, 1, "codes other than 11232 are not retried");
    let err = sent.result.unwrap_err();
    assert!(
        matches!(err, FeishuError::Api { code: 19021, .. }),
        "{err:?}"
    );
    let shown = clean(&err, &[token, wrong, SECRET]);
    assert!(shown.contains("signature or timestamp invalid"), "{shown}");
    // A bot with signing on, sent unsigned.
    let err = f
        .send(&bot(&s, "signed_nosig", None), &card("x"))
        .await
        .result
        .unwrap_err();
    assert!(
        matches!(err, FeishuError::Api { code: 19021, .. }),
        "{err:?}"
    );

    let token = "keyword_d00d";
    let err = f
        .send(&bot(&s, token, Some(SECRET)), &card("x"))
        .await
        .result
        .unwrap_err();
    let shown = clean(&err, &[token, SECRET]);
    assert!(
        shown.contains("19024 (keyword not found: the message lacks the bot's keyword)"),
        "{shown}"
    );
    let with_keyword = f
        .send(&bot(&s, token, Some(SECRET)), &card("reportd: sales"))
        .await;
    assert!(with_keyword.result.is_ok(), "{:?}", with_keyword.result);

    let token = "ip_beef";
    let err = f
        .send(&bot(&s, token, Some(SECRET)), &card("x"))
        .await
        .result
        .unwrap_err();
    let shown = clean(&err, &[token, SECRET]);
    assert!(shown.contains("19022 (ip not allowed"), "{shown}");

    let token = "status500_f00";
    let err = f
        .send(&bot(&s, token, Some(SECRET)), &card("x"))
        .await
        .result
        .unwrap_err();
    assert!(
        matches!(&err, FeishuError::Status { status: 500, .. }),
        "{err:?}"
    );
    clean(&err, &[token, SECRET]);

    let answers: Vec<Option<i64>> = s
        .requests()
        .iter()
        .map(|r| r["answer"]["code"].as_i64())
        .collect();
    assert_eq!(
        answers,
        [
            Some(19021),
            Some(19021),
            Some(19024),
            Some(0),
            Some(19022),
            None
        ]
    );
}

#[tokio::test]
async fn feishu_frequency_limit_is_retried_after_the_hold() {
    let s = stand_in();
    let started = Instant::now();
    let sent = client()
        .send(&bot(&s, "limited2_x", Some(SECRET)), &card("x"))
        .await;
    assert_eq!(sent.attempts, 3);
    assert!(sent.result.is_ok(), "{:?}", sent.result);
    assert!(started.elapsed() >= Duration::from_millis(200));
    let reqs = s.requests();
    assert!(
        reqs.iter().all(|r| r["sign_ok"] == true),
        "each attempt signed"
    );
    let codes: Vec<i64> = reqs
        .iter()
        .map(|r| r["answer"]["code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [11232, 11232, 0]);

    let token = "limited9_y";
    let err = client()
        .send(&bot(&s, token, Some(SECRET)), &card("x"))
        .await
        .result
        .unwrap_err();
    let shown = clean(&err, &[token, SECRET]);
    assert!(shown.contains("11232 (frequency limited"), "{shown}");
}

#[tokio::test]
async fn feishu_limiter_keeps_the_per_second_limit() {
    let s = stand_in();
    let f =
        client().with_rate_limit(&[(100, Duration::from_secs(60)), (2, Duration::from_secs(1))]);
    let b = bot(&s, "ok_pace", Some(SECRET));
    let cards: Vec<FeishuCard> = (0..4).map(|i| card(&format!("c{i}"))).collect();
    let sent = futures_util::future::join_all(cards.iter().map(|c| f.send(&b, c))).await;
    assert!(sent.iter().all(|s| s.result.is_ok()));
    let times: Vec<f64> = s
        .requests()
        .iter()
        .map(|r| r["time"].as_f64().unwrap())
        .collect();
    assert_eq!(times.len(), 4);
    assert!(times[1] - times[0] < 0.5, "{times:?}");
    assert!(times[2] - times[0] >= 0.95, "2 per second: {times:?}");
    assert!(times[3] - times[1] >= 0.95, "2 per second: {times:?}");
}

#[tokio::test]
async fn feishu_long_markdown_keeps_the_body_within_20000_bytes() {
    let s = stand_in();
    let c = FeishuCard {
        markdown: "| \"华东\" | 1,234 |\n".repeat(2_000),
        ..card("long")
    };
    let sent = client().send(&bot(&s, "ok_long", Some(SECRET)), &c).await;
    assert!(sent.result.is_ok(), "{:?}", sent.result);
    let r = &s.requests()[0];
    assert_eq!(r["sign_ok"], true);
    let len = r["raw_len"].as_u64().unwrap();
    assert!(len <= 20_000 && len > 19_000, "{len}");
    let md = r["body"]["card"]["body"]["elements"][0]["content"]
        .as_str()
        .unwrap();
    assert!(md.ends_with("…(truncated)"));
}

#[tokio::test]
async fn feishu_timeout_fails_fast() {
    let s = stand_in();
    let token = "slow_9";
    let started = Instant::now();
    let sent = Feishu::new(Duration::from_secs(1))
        .send(&bot(&s, token, Some(SECRET)), &card("x"))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(sent.attempts, 1);
    let err = sent.result.unwrap_err();
    assert_eq!(err, FeishuError::Timeout(Duration::from_secs(1)));
    clean(&err, &[token, SECRET]);
}
