//! WeCom, Feishu and the generic webhook end to end, through `reportd task run` and `reportd
//! notify test`, against the stand-ins (which check what they get as the real services do):
//! one run sends to every channel at once; WeCom gets the markdown table and the file itself
//! (uploaded, its bytes those of the report); Feishu a signed card with the download button;
//! the webhook a signed body whose execution is the one `logs --json` shows; a failure goes
//! out on every channel; the outcomes are recorded.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::{Backend, DEMO_SOURCE, Workdir};
use crate::stand_in::StandIn;

const FEISHU_SECRET: &str = "fs-s3cret-for-tests";
const HOOK_SECRET: &str = "hk-s3cret-for-tests";

struct Services {
    wecom: StandIn,
    feishu: StandIn,
    hook: StandIn,
}

impl Services {
    fn start() -> Services {
        Services {
            wecom: StandIn::script("wecom.py", &[]),
            feishu: StandIn::script("feishu.py", &[FEISHU_SECRET, "reportd"]),
            hook: StandIn::script("webhook.py", &[HOOK_SECRET]),
        }
    }
}

fn setup(s: &Services) -> Workdir {
    let config = format!(
        "{DEMO_SOURCE}wecom:\n  webhook_url: \"http://127.0.0.1:{}/cgi-bin/webhook/send?key=ok_wecomkey123\"\nfeishu:\n  webhook_url: \"http://127.0.0.1:{}/open-apis/bot/v2/hook/signed_feishutoken\"\n  secret: \"{FEISHU_SECRET}\"\nwebhook:\n  retry_delay: 0\nhttp:\n  file_server_url: \"https://reports.example.com\"\n",
        s.wecom.port, s.feishu.port
    );
    let w = Workdir::new(Backend::Sqlite, &config);
    w.write(
        "t.yaml",
        &format!(
            r#"tasks:
  - name: 城市订单
    data_source: demo
    cron: "0 9 * * *"
    sql: SELECT city, COUNT(*) AS orders FROM orders GROUP BY city ORDER BY city
    notify:
      preview_rows: 3
      wecom: {{ mentioned_list: ["zhangsan"] }}
      feishu: {{}}
      webhook: {{ url: "http://127.0.0.1:{port}/ok/in", secret: "{HOOK_SECRET}" }}
  - name: broken
    data_source: demo
    cron: "0 9 * * *"
    sql: SELECT no_such_column FROM orders
    notify:
      wecom: {{ attach: false }}
      feishu: {{}}
      webhook: {{ url: "http://127.0.0.1:{port}/ok/in", secret: "{HOOK_SECRET}" }}
"#,
            port = s.hook.port
        ),
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    w
}

fn last_run(w: &Workdir, task: &str) -> Value {
    let runs: Vec<Value> =
        serde_json::from_str(&w.ok(&["logs", "--task", task, "--json"])).unwrap();
    runs[0].clone()
}

#[test]
fn one_run_reaches_wecom_feishu_and_the_webhook_as_each_specifies() {
    let s = Services::start();
    let w = setup(&s);
    let out = w.cmd(&["task", "run", "城市订单"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let run = last_run(&w, "城市订单");
    let file = w.path().join(run["files"][0].as_str().unwrap());
    let report = std::fs::read(&file).unwrap();
    let outcomes: Vec<(String, bool)> = run["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["channel"].as_str().unwrap().into(), n["ok"] == true))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("wecom".to_string(), true),
            ("feishu".to_string(), true),
            ("webhook".to_string(), true)
        ],
        "{run:#}"
    );

    // WeCom: markdown_v2 with the table, the mention message, the file uploaded and sent.
    let wecom = s.wecom.requests();
    let kinds: Vec<&str> = wecom.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["send", "send", "upload", "send"], "{wecom:#?}");
    let md = wecom[0]["body"]["markdown_v2"]["content"].as_str().unwrap();
    for want in [
        "## 📊 城市订单 执行完成",
        "| city | orders |",
        "| :--- | ---: |",
        "（显示前 3 行，共",
    ] {
        assert!(md.contains(want), "{want} in {md}");
    }
    assert_eq!(wecom[1]["body"]["text"]["mentioned_list"][0], "zhangsan");
    let upload = &wecom[2];
    assert_eq!(upload["upload_ok"], true, "{upload:#}");
    let part = &upload["parts"][0];
    assert_eq!(part["name"], "media");
    assert_eq!(
        part["filename"],
        file.file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(part["bytes"], report.len());
    assert_eq!(part["sha256"], hex(&Sha256::digest(&report)));
    assert_eq!(wecom[3]["body"]["msgtype"], "file");
    assert_eq!(wecom[3]["media_ok"], true);

    // Feishu: a signed card with the table and the download button.
    let feishu = s.feishu.requests();
    assert_eq!(feishu.len(), 1);
    assert_eq!(feishu[0]["sign_ok"], true, "{:#}", feishu[0]);
    let card = &feishu[0]["body"]["card"];
    assert_eq!(card["header"]["title"]["content"], "城市订单 执行完成");
    assert_eq!(card["header"]["template"], "green");
    assert_eq!(card["schema"], "2.0", "tables render in JSON 2.0 cards");
    let text = card["body"]["elements"][0]["content"].as_str().unwrap();
    assert!(text.contains("| city | orders |"), "{text}");
    let url = card["body"]["elements"][1]["behaviors"][0]["default_url"]
        .as_str()
        .unwrap();
    assert!(
        url.starts_with("https://reports.example.com/files/"),
        "{url}"
    );

    // Webhook: signed, the execution as logs --json shows it, the file with its size.
    let hook = s.hook.requests();
    assert_eq!(hook.len(), 1);
    assert_eq!(hook[0]["sig_ok"], true, "{:#}", hook[0]);
    let body = &hook[0]["body"];
    assert_eq!(body["event"], "execution.finished");
    assert_eq!(body["task"]["name"], "城市订单");
    assert_eq!(body["execution"]["id"], run["id"]);
    assert_eq!(body["execution"]["status"], "success");
    assert_eq!(body["execution"]["rows"], run["rows"]);
    assert_eq!(body["files"][0]["bytes"], report.len());
    assert!(
        body["files"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://reports.example.com/files/")
    );
    assert_eq!(
        hook[0]["delivery"],
        format!("{}-execution.finished", run["id"])
    );
}

#[test]
fn a_failure_goes_out_on_every_channel() {
    let s = Services::start();
    let w = setup(&s);
    w.fails(&["task", "run", "broken"], 1);
    let md = s.wecom.requests()[0]["body"]["markdown_v2"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        md.contains("执行失败") && md.contains("no_such_column"),
        "{md}"
    );
    assert_eq!(s.wecom.requests().len(), 1, "no file for a failure");
    let card = &s.feishu.requests()[0]["body"]["card"];
    assert_eq!(card["header"]["template"], "red");
    assert_eq!(
        card["body"]["elements"].as_array().unwrap().len(),
        1,
        "no button"
    );
    let body = &s.hook.requests()[0]["body"];
    assert_eq!(body["execution"]["status"], "failed");
    assert!(
        body["execution"]["error"]
            .as_str()
            .unwrap()
            .contains("no_such_column")
    );
    assert_eq!(body["files"], serde_json::json!([]));
}

#[test]
fn notify_test_reaches_each_new_channel() {
    let s = Services::start();
    let w = setup(&s);
    let out = w.ok(&["notify", "test", "wecom"]);
    assert!(out.starts_with("wecom: sent (attempts 1): "), "{out}");
    assert_eq!(s.wecom.requests()[0]["body"]["msgtype"], "markdown_v2");
    let out = w.ok(&["notify", "test", "feishu"]);
    assert!(out.starts_with("feishu: sent"), "{out}");
    assert_eq!(s.feishu.requests()[0]["sign_ok"], true);
    let out = w.ok(&["notify", "test", "webhook", "--task", "城市订单"]);
    assert_eq!(out.trim(), "webhook: sent (attempts 1): HTTP 200");
    assert_eq!(s.hook.requests()[0]["sig_ok"], true);
    assert_eq!(s.hook.requests()[0]["body"]["event"], "test");
    let err = w.fails(&["notify", "test", "webhook"], 1);
    assert!(err.contains("--task"), "{err}");
    let err = w.fails(&["notify", "test", "webhook", "--task", "nope"], 1);
    assert!(err.contains("nope"), "{err}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn task_show_masks_every_channel_secret() {
    let s = Services::start();
    let w = setup(&s);
    w.write(
        "secret.yaml",
        r#"tasks:
  - name: secretive
    data_source: demo
    cron: "0 9 * * *"
    sql: SELECT 1
    notify:
      dingtalk: { webhook: "https://d/robot/send?access_token=DTTOKEN1", secret: SECDT1 }
      wecom: { webhook: "https://q/cgi-bin/webhook/send?key=WECOMKEY1" }
      feishu: { webhook: "https://f/open-apis/bot/v2/hook/FSTOKEN1", secret: FSSECRET1 }
      webhook: { url: "https://h/in?token=HOOKTOKEN1", secret: "${REPORTD_TASK_HOOK_SECRET:-}" }
"#,
    );
    w.ok(&["task", "apply", "-f", "secret.yaml"]);
    for args in [
        &["task", "show", "secretive"][..],
        &["task", "show", "secretive", "--json"],
    ] {
        let shown = w.ok(args);
        for secret in [
            "DTTOKEN1",
            "SECDT1",
            "WECOMKEY1",
            "FSTOKEN1",
            "FSSECRET1",
            "HOOKTOKEN1",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(
            shown.contains("${REPORTD_TASK_HOOK_SECRET:-}"),
            "a reference shows: {shown}"
        );
    }
}

#[test]
fn the_webhook_hears_of_every_run_and_of_alerts_as_alerts() {
    let s = Services::start();
    let w = setup(&s);
    w.write(
        "alert.yaml",
        &format!(
            r#"tasks:
  - name: watched
    data_source: demo
    cron: "0 9 * * *"
    sql: SELECT COUNT(*) AS n FROM orders
    output: {{ format: none }}
    alert: {{ condition: "value > 0" }}
    notify:
      webhook: {{ url: "http://127.0.0.1:{}/ok/alerts", secret: "{HOOK_SECRET}" }}
"#,
            s.hook.port
        ),
    );
    w.ok(&["task", "apply", "-f", "alert.yaml"]);
    w.ok(&["task", "run", "watched"]);
    w.ok(&["task", "run", "watched"]);
    let events: Vec<Value> = s
        .hook
        .requests()
        .iter()
        .map(|r| r["body"]["event"].clone())
        .collect();
    assert_eq!(events, ["alert.triggered", "execution.finished"]);
    let second = &s.hook.requests()[1]["body"]["execution"];
    assert_eq!(second["alert"], "triggered", "{second:#}");
    assert!(s.hook.requests().iter().all(|r| r["sig_ok"] == true));
}
