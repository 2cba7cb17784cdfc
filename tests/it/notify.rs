//! Notifications end to end, through `reportd task run` and `reportd notify test`: a task with
//! both channels delivers a signed markdown message (checked by the stand-in DingTalk) and an
//! e-mail over STARTTLS whose attachment opens with the right rows; a failing task delivers a
//! failure notice with the database's error; a report over the attachment cap arrives as a
//! link; every outcome is in `reportd logs`.

use calamine::{Data, Reader, Xlsx};
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::Value;
use std::io::Cursor;

use crate::dingtalk::{SECRET, StandIn};
use crate::email::{Pki, SmtpServer};
use crate::helpers::{Backend, DEMO_SOURCE, Workdir};

const SENDER: &str = "reports@example.com";
const PASSWORD: &str = "n0tify-Pa55";

fn setup(ding: &StandIn, smtp: &SmtpServer, pki: &Pki) -> Workdir {
    let config = format!(
        "{DEMO_SOURCE}dingtalk:\n  webhook_url: \"http://127.0.0.1:{}/robot/send?access_token=ok_e2e\"\n  secret: \"{SECRET}\"\nemail:\n  smtp_server: localhost\n  smtp_port: {}\n  security: starttls\n  username: {SENDER}\n  password: \"{PASSWORD}\"\n  from_name: 报表机器人\n  ca_file: \"{}\"\n  max_attachment_size: 200KB\n  retry_delay: 0\nhttp:\n  file_server_url: \"https://reports.example.com\"\n",
        ding.port,
        smtp.port,
        pki.ca().display()
    );
    let w = Workdir::new(Backend::Sqlite, &config);
    w.write(
        "t.yaml",
        r#"tasks:
  - name: 订单明细
    data_source: demo
    cron: "0 9 * * *"
    sql: SELECT id, city FROM orders ORDER BY id LIMIT 7
    notify:
      dingtalk: { at_mobiles: ["13800138000"] }
      email: { to: [ops@example.com], cc: [boss@example.com], bcc: [audit@example.com] }
  - name: broken
    data_source: demo
    cron: "0 9 * * *"
    sql: SELECT no_such_column FROM orders
    notify:
      dingtalk: {}
      email: { to: [ops@example.com] }
  - name: big
    data_source: demo
    cron: "0 9 * * *"
    output: { format: csv }
    sql: >-
      WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000)
      SELECT x, 'padding padding padding padding' AS pad FROM c
    notify:
      email: { to: [ops@example.com] }
  - name: empty
    data_source: demo
    cron: "0 9 * * *"
    sql: SELECT id FROM orders WHERE id < 0
    notify:
      skip_empty: true
      dingtalk: {}
"#,
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    w
}

fn history(w: &Workdir, task: &str) -> Value {
    let runs: Vec<Value> =
        serde_json::from_str(&w.ok(&["logs", "--task", task, "--json"])).unwrap();
    runs[0].clone()
}

#[test]
fn task_run_notifies_both_channels_and_records_the_outcomes() {
    let pki = Pki::new();
    let smtp = SmtpServer::start("starttls", &pki, Some((SENDER, PASSWORD)));
    let ding = StandIn::start();
    let w = setup(&ding, &smtp, &pki);

    // Success: both channels.
    let out = w.cmd(&["task", "run", "订单明细"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("notified: dingtalk") && err.contains("notified: email"),
        "{err}"
    );
    let reqs = ding.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0]["sign_ok"], true,
        "signed as DingTalk specifies: {}",
        reqs[0]
    );
    let md = &reqs[0]["body"]["markdown"];
    assert_eq!(md["title"], "订单明细 执行完成");
    let text = md["text"].as_str().unwrap();
    for want in [
        "**数据行数**: 7",
        "@13800138000",
        "https://reports.example.com/files/",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
    let mails = smtp.received();
    assert_eq!(mails.len(), 1);
    let mut rcpts = mails[0].rcpt_tos.clone();
    rcpts.sort();
    assert_eq!(
        rcpts,
        ["audit@example.com", "boss@example.com", "ops@example.com"]
    );
    let mail = MessageParser::default().parse(&mails[0].raw).unwrap();
    assert!(mail.subject().unwrap().starts_with("订单明细 "));
    assert!(mail.body_text(0).unwrap().contains("数据行数: 7"));
    let attachment = mail.attachments().next().expect("the report is attached");
    assert!(
        attachment
            .attachment_name()
            .unwrap()
            .starts_with("订单明细_")
    );
    let mut book = Xlsx::new(Cursor::new(attachment.contents().to_vec())).unwrap();
    let sheet = book.worksheet_range_at(0).unwrap().unwrap();
    assert_eq!(sheet.height(), 8, "header + 7 rows");
    assert_eq!(sheet.get((0, 0)), Some(&Data::String("id".into())));
    assert_eq!(sheet.get((1, 0)), Some(&Data::Float(1.0)));
    let run = history(&w, "订单明细");
    assert_eq!(run["status"], "success");
    let channels: Vec<(&str, bool)> = run["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["channel"].as_str().unwrap(), n["ok"].as_bool().unwrap()))
        .collect();
    assert_eq!(channels, [("dingtalk", true), ("email", true)]);
    let table = w.ok(&["logs", "--task", "订单明细"]);
    assert!(table.contains("dingtalk ok, email ok"), "{table}");

    // Failure: the failure notice, with the database's error, on both channels.
    w.fails(&["task", "run", "broken"], 1);
    let reqs = ding.requests();
    let md = &reqs[1]["body"]["markdown"];
    assert_eq!(md["title"], "broken 执行失败");
    assert!(
        md["text"]
            .as_str()
            .unwrap()
            .contains("no such column: no_such_column"),
        "{md}"
    );
    let mails = smtp.received();
    let mail = MessageParser::default().parse(&mails[1].raw).unwrap();
    assert_eq!(
        mail.subject().unwrap(),
        format!("[失败] broken {}", today())
    );
    assert!(
        mail.body_text(0)
            .unwrap()
            .contains("no such column: no_such_column")
    );
    assert_eq!(mail.attachments().count(), 0);
    assert_eq!(
        history(&w, "broken")["notifications"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Over the cap: no attachment, the link and the reason instead.
    w.ok(&["task", "run", "big"]);
    let mails = smtp.received();
    let mail = MessageParser::default().parse(&mails[2].raw).unwrap();
    assert_eq!(mail.attachments().count(), 0);
    let body = mail.body_text(0).unwrap();
    assert!(
        body.contains("附件未随邮件发送") && body.contains("email.max_attachment_size"),
        "{body}"
    );
    assert!(
        body.contains("https://reports.example.com/files/"),
        "{body}"
    );

    // skip_empty: nothing sent, nothing recorded.
    w.ok(&["task", "run", "empty"]);
    assert_eq!(ding.requests().len(), 2);
    assert_eq!(history(&w, "empty")["notifications"], serde_json::json!([]));
}

fn today() -> String {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%d")
        .to_string()
}

#[test]
fn notify_test_prints_the_services_answer() {
    let pki = Pki::new();
    let smtp = SmtpServer::start("starttls", &pki, Some((SENDER, PASSWORD)));
    let ding = StandIn::start();
    let w = setup(&ding, &smtp, &pki);
    let out = w.ok(&["notify", "test", "dingtalk", "--task", "订单明细"]);
    // The status and the service's code, never the receiver's answer.
    assert_eq!(out.trim(), "dingtalk: sent (attempts 1): errcode 0");
    assert_eq!(ding.requests()[0]["sign_ok"], true);
    assert_eq!(
        ding.requests()[0]["body"]["at"]["atMobiles"],
        serde_json::json!(["13800138000"])
    );
    let out = w.ok(&["notify", "test", "email", "--to", "someone@example.com"]);
    assert!(out.starts_with("email: sent (attempts 1): "), "{out}");
    assert_eq!(smtp.received()[0].rcpt_tos, ["someone@example.com"]);

    // A wrong webhook token is refused by the service: exit 1 with its answer.
    let bad = format!(
        "{}dingtalk:\n  webhook_url: \"http://127.0.0.1:{}/robot/send?access_token=fail_x\"\n",
        DEMO_SOURCE, ding.port
    );
    let w2 = Workdir::new(Backend::Sqlite, &bad);
    let err = w2.fails(&["notify", "test", "dingtalk"], 1);
    assert!(err.contains("310000") && !err.contains("fail_x"), "{err}");
}
