//! The WeCom robot client against a stand-in WeCom: `tests/stand_ins/wecom.py`, a real HTTP
//! server (Python standard library) that parses the multipart upload as WeCom would, issues
//! media_ids and checks that file messages use them, and answers WeCom's errcodes.

use std::time::{Duration, Instant};

use reportd::notify::wecom::{WeCom, WeComError, WeComMessage, WeComRobot};
use reportd::outbound::Origin;
use sha2::{Digest, Sha256};

use crate::stand_in::{StandIn, assert_clean as clean};

fn stand_in() -> StandIn {
    StandIn::script("wecom.py", &[])
}

/// A robot whose key is `key` (its prefix picks the stand-in's behaviour).
fn robot(s: &StandIn, key: &str) -> WeComRobot {
    WeComRobot {
        webhook: format!("http://127.0.0.1:{}/cgi-bin/webhook/send?key={key}", s.port),
        origin: Origin::Config,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn client() -> WeCom {
    WeCom::new(Duration::from_secs(5)).with_retries(3, Duration::from_millis(100))
}

fn message(text: &str) -> WeComMessage {
    WeComMessage {
        text: text.into(),
        ..WeComMessage::default()
    }
}

#[tokio::test]
async fn wecom_markdown_then_mentions_verified_by_stand_in() {
    let s = stand_in();
    let msg = WeComMessage {
        text: "## Daily sales\n\n| region | total |\n| --- | ---: |\n| east | 1,234 |".into(),
        mentioned_list: vec!["zhangsan".into(), "@all".into()],
        mentioned_mobiles: vec!["13800000001".into()],
    };
    let sent = client().send_markdown(&robot(&s, "ok_md1"), &msg).await;
    assert_eq!(sent.attempts, 2, "markdown, then the text with mentions");
    assert!(sent.result.is_ok(), "{:?}", sent.result);
    let reqs = s.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0]["path"], "/cgi-bin/webhook/send");
    assert_eq!(reqs[0]["body"]["msgtype"], "markdown_v2");
    assert_eq!(reqs[0]["body"]["markdown_v2"]["content"], msg.text.as_str());
    assert_eq!(reqs[0]["answer"]["errcode"], 0);
    let text = &reqs[1]["body"];
    assert_eq!(text["msgtype"], "text");
    assert_eq!(text["text"]["content"], "Daily sales");
    assert_eq!(
        text["text"]["mentioned_list"],
        serde_json::json!(["zhangsan", "@all"])
    );
    assert_eq!(
        text["text"]["mentioned_mobile_list"],
        serde_json::json!(["13800000001"])
    );
    assert_eq!(reqs[1]["answer"]["errcode"], 0);

    // Nobody to @: one message only.
    let sent = client()
        .send_markdown(&robot(&s, "ok_md2"), &message("plain"))
        .await;
    assert_eq!(sent.attempts, 1);
    assert_eq!(s.requests().len(), 3);
}

#[tokio::test]
async fn wecom_file_is_uploaded_as_one_media_part_then_sent() {
    let s = stand_in();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sales 2024-06.xlsx");
    // 300 KB of every byte value, line breaks and boundary look-alikes included.
    let mut data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    data.extend_from_slice(b"\r\n--boundary\r\n");
    std::fs::write(&path, &data).unwrap();

    let sent = client().send_file(&robot(&s, "ok_file"), &path).await;
    assert_eq!(sent.attempts, 2, "upload, then the file message");
    assert!(sent.result.is_ok(), "{:?}", sent.result);
    let reqs = s.requests();
    assert_eq!(reqs.len(), 2);
    let up = &reqs[0];
    assert_eq!(up["path"], "/cgi-bin/webhook/upload_media");
    assert_eq!(up["query"]["type"][0], "file");
    assert_eq!(up["upload_ok"], true, "{up}");
    assert_eq!(up["parts"].as_array().unwrap().len(), 1);
    let part = &up["parts"][0];
    assert_eq!(part["name"], "media");
    assert_eq!(part["filename"], "sales 2024-06.xlsx");
    assert_eq!(part["bytes"], data.len());
    assert_eq!(part["sha256"], hex(&Sha256::digest(&data)), "exact bytes");
    assert!(up["content_length"].is_string(), "sized, not chunked: {up}");
    let send = &reqs[1];
    assert_eq!(send["body"]["msgtype"], "file");
    assert_eq!(send["body"]["file"]["media_id"], up["media_id"]);
    assert_eq!(send["media_ok"], true);
    assert_eq!(send["answer"]["errcode"], 0);
}

#[tokio::test]
async fn wecom_file_over_20_mb_is_refused_before_any_request() {
    let s = stand_in();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.csv");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(20 * 1024 * 1024 + 1).unwrap();
    let sent = client().send_file(&robot(&s, "ok_big"), &path).await;
    assert_eq!(sent.attempts, 0);
    assert_eq!(
        sent.result,
        Err(WeComError::TooLarge {
            bytes: 20 * 1024 * 1024 + 1
        })
    );
    let missing = client()
        .send_file(&robot(&s, "ok_big"), &dir.path().join("gone.csv"))
        .await;
    assert!(
        matches!(missing.result, Err(WeComError::File(_))),
        "{missing:?}"
    );
    assert!(s.requests().is_empty());
}

#[tokio::test]
async fn wecom_errcodes_are_named_on_one_line_without_the_key() {
    let s = stand_in();
    let key = "invalid_7e1f0c9b";
    let sent = client().send_markdown(&robot(&s, key), &message("x")).await;
    assert_eq!(
        sent.attempts, 1,
        "errcodes other than 45009 are not retried"
    );
    let err = sent.result.unwrap_err();
    assert!(
        matches!(err, WeComError::Api { errcode: 93000, .. }),
        "{err:?}"
    );
    let shown = clean(&err, &[key]);
    assert!(shown.contains("93000 (invalid webhook key)"), "{shown}");

    let key = "toolong_5a5a";
    let err = client()
        .send_markdown(&robot(&s, key), &message("x"))
        .await
        .result
        .unwrap_err();
    let shown = clean(&err, &[key]);
    assert!(
        shown.contains("40058 (bad parameter or content too long)"),
        "{shown}"
    );

    // A refused upload: no file message follows.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    std::fs::write(&path, "a,b\n1,2\n").unwrap();
    let sent = client().send_file(&robot(&s, "invalid_up"), &path).await;
    assert!(
        matches!(sent.result, Err(WeComError::Api { errcode: 93000, .. })),
        "{sent:?}"
    );
    assert_eq!(sent.attempts, 1, "no file message after a failed upload");

    let key = "status500_2b2b";
    let err = client()
        .send_markdown(&robot(&s, key), &message("x"))
        .await
        .result
        .unwrap_err();
    assert!(
        matches!(&err, WeComError::Status { status: 500, body } if body == "internal error second line"),
        "{err:?}"
    );
    clean(&err, &[key]);
    assert_eq!(s.requests().len(), 4);
}

#[tokio::test]
async fn wecom_long_markdown_is_cut_to_4096_bytes() {
    let s = stand_in();
    let text = "| 华东 | 1,234 |\n".repeat(600);
    let sent = client()
        .send_markdown(&robot(&s, "ok_long"), &message(&text))
        .await;
    assert!(sent.result.is_ok(), "{:?}", sent.result);
    let reqs = s.requests();
    let bytes = reqs[0]["content_bytes"].as_u64().unwrap();
    assert!(bytes <= 4096 && bytes > 4000, "{bytes}");
    let content = reqs[0]["body"]["markdown_v2"]["content"].as_str().unwrap();
    assert!(content.ends_with("…(truncated)"));
}

#[tokio::test]
async fn wecom_rate_limited_answer_is_retried_after_the_hold() {
    let s = stand_in();
    let started = Instant::now();
    let sent = client()
        .send_markdown(&robot(&s, "limited2_aa"), &message("x"))
        .await;
    assert_eq!(sent.attempts, 3);
    assert!(sent.result.is_ok(), "{:?}", sent.result);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "held twice"
    );
    let answers: Vec<i64> = s
        .requests()
        .iter()
        .map(|r| r["answer"]["errcode"].as_i64().unwrap())
        .collect();
    assert_eq!(answers, [45009, 45009, 0]);

    let key = "limited9_bb";
    let sent = client().send_markdown(&robot(&s, key), &message("x")).await;
    assert_eq!(sent.attempts, 3);
    let err = sent.result.unwrap_err();
    let shown = clean(&err, &[key]);
    assert!(shown.contains("45009 (rate limited"), "{shown}");
}

#[tokio::test]
async fn wecom_limiter_spaces_sends_per_robot() {
    let s = stand_in();
    let wecom = client().with_rate_limit(2, Duration::from_secs(1));
    let r = robot(&s, "ok_pace");
    let msgs: Vec<WeComMessage> = (0..3).map(|i| message(&format!("m{i}"))).collect();
    let sent =
        futures_util::future::join_all(msgs.iter().map(|m| wecom.send_markdown(&r, m))).await;
    assert!(sent.iter().all(|s| s.result.is_ok()));
    let times: Vec<f64> = s
        .requests()
        .iter()
        .map(|r| r["time"].as_f64().unwrap())
        .collect();
    assert_eq!(times.len(), 3);
    assert!(times[1] - times[0] < 0.5, "{times:?}");
    assert!(
        times[2] - times[0] >= 0.95,
        "the third waits out the window: {times:?}"
    );
}

#[tokio::test]
async fn wecom_timeout_fails_fast_and_is_not_retried() {
    let s = stand_in();
    let key = "slow_31";
    let started = Instant::now();
    let sent = WeCom::new(Duration::from_secs(1))
        .send_markdown(&robot(&s, key), &message("x"))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(sent.attempts, 1);
    let err = sent.result.unwrap_err();
    assert_eq!(err, WeComError::Timeout(Duration::from_secs(1)));
    clean(&err, &[key]);
    assert_eq!(s.requests().len(), 1);
}
