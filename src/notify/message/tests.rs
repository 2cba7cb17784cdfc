//! Unit tests of message rendering: the shipped templates, failures, alerts and recoveries,
//! `{table}` within a channel's size limit.

use super::*;
use crate::model::alert::AlertState;
use chrono::TimeZone;

fn facts(status: ExecutionStatus) -> Facts {
    let at = Utc.with_ymd_and_hms(2026, 11, 23, 1, 0, 0).unwrap();
    Facts {
        task_id: 7,
        task_name: "订单日报".into(),
        execution_id: 42,
        status,
        error: (status != ExecutionStatus::Success)
            .then(|| "Unknown column 'x' <in> field list".into()),
        scheduled_at: at,
        started_at: at + chrono::Duration::seconds(2),
        tz: Tz::Asia__Shanghai,
        rows: 1000,
        bytes: 2_621_440,
        files: vec![PathBuf::from("exports/2026-11-23/订单日报_20261123.xlsx")],
        sheets: vec![("订单".into(), 1000)],
        elapsed: Duration::from_millis(3210),
        download_url: Some("https://r.example.com/files/a.xlsx?expires=1&sig=x".into()),
        preview: Preview::default(),
        alert: None,
        execution: None,
    }
}

fn templates() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates")
}

#[test]
fn built_in_email_templates_without_a_directory_and_an_own_html_without_its_txt() {
    let f = facts(ExecutionStatus::Success);
    let none = Path::new("/nonexistent/templates");
    let builtin = email(&f, None, None, none).unwrap();
    assert!(builtin.html.contains("订单日报"), "{}", builtin.html);
    assert!(builtin.text.contains("1,000"), "{}", builtin.text);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("email_report.html"),
        "<p>own {task_name}</p>",
    )
    .unwrap();
    let own = email(&f, None, None, dir.path()).unwrap();
    assert_eq!(own.html, "<p>own 订单日报</p>");
    assert_eq!(
        own.text.trim(),
        "own 订单日报",
        "the HTML as text, not the built-in .txt"
    );
}

#[test]
fn the_shipped_report_templates_render_every_placeholder() {
    let f = facts(ExecutionStatus::Success);
    let d = markdown(&f, Markdown::DingTalk, None, &templates(), 0).unwrap();
    assert_eq!(d.title, "订单日报 执行完成");
    for want in [
        "2026-11-23 09:00:02",
        "1,000",
        "2.5MB",
        "3.2秒",
        "订单日报_20261123.xlsx",
        "(https://r.example.com/files/a.xlsx?expires=1&sig=x)",
    ] {
        assert!(d.text.contains(want), "{want} in {}", d.text);
    }
    let e = email(&f, None, None, &templates()).unwrap();
    assert_eq!(e.subject, "订单日报 2026-11-23");
    assert!(
        e.html
            .contains("href=\"https://r.example.com/files/a.xlsx?expires=1&amp;sig=x\""),
        "{}",
        e.html
    );
    // One sheet: no line of each sheet's rows (the total says it all).
    assert!(!e.html.contains("各表行数"), "{}", e.html);
    assert!(
        e.text
            .contains("下载:     https://r.example.com/files/a.xlsx?expires=1&sig=x"),
        "{}",
        e.text
    );
    assert!(
        !e.html.contains('{') || e.html.contains("{ font-family"),
        "no placeholder left"
    );
}

#[test]
fn failures_use_the_failure_templates_with_the_error_escaped_in_html() {
    let f = facts(ExecutionStatus::Failed);
    let d = markdown(
        &f,
        Markdown::DingTalk,
        Some("custom {task_name}"),
        &templates(),
        0,
    )
    .unwrap();
    assert_eq!(d.title, "订单日报 执行失败");
    assert!(
        d.text.contains("> Unknown column 'x' ＜in＞ field list"),
        "{}",
        d.text
    );
    let e = email(&f, Some("{task_name} 日报"), None, &templates()).unwrap();
    assert_eq!(e.subject, "[失败] 订单日报 日报");
    assert!(
        e.html
            .contains("Unknown column &#39;x&#39; &lt;in&gt; field list")
    );
    assert!(
        e.text.contains("Unknown column 'x' <in> field list"),
        "{}",
        e.text
    );
    assert!(e.text.contains("订单日报 执行失败"));
    assert!(!e.text.replace("<in>", "").contains('<'), "{}", e.text);
}

#[test]
fn inline_templates_and_plain_text_bodies() {
    let f = facts(ExecutionStatus::Success);
    let e = email(&f, None, Some("{rows_count} rows <b>"), &templates()).unwrap();
    assert_eq!(e.text, "1,000 rows <b>");
    assert_eq!(e.html, "<pre>1,000 rows &lt;b&gt;</pre>");
    assert_eq!(
        f.render("{date:%Y%m%d} {execution_time:%H:%M}", false),
        "20261123 09:00"
    );
}

fn with_rows(n: usize) -> Facts {
    use crate::model::table::Value;
    let mut f = facts(ExecutionStatus::Success);
    f.preview = Preview {
        columns: vec!["城市".into(), "金额".into()],
        rows: (0..n)
            .map(|i| {
                vec![
                    Value::Text(format!("城市{i}")),
                    Value::Number(format!("{i}.50")),
                ]
            })
            .collect(),
    };
    f.sheets = vec![("订单".into(), 5000)];
    f
}

#[test]
fn tables_lose_rows_rather_than_break_the_size_limit() {
    let f = with_rows(100);
    let full = f.render("{table}", false);
    assert_eq!(full.lines().filter(|l| l.ends_with(".50 |")).count(), 100);
    assert!(full.len() > 2048);
    let fitted = f.render_within("## 报表\n\n{table}\n\n尾注", 2048, str::len);
    assert!(fitted.len() <= 2048, "{}", fitted.len());
    assert!(fitted.ends_with("尾注"), "the text after the table stays");
    let shown = fitted.lines().filter(|l| l.ends_with(".50 |")).count();
    assert!(shown > 10 && shown < 100, "{shown}");
    assert!(
        fitted.contains(&format!("（显示前 {shown} 行，共 5,000 行）")),
        "{fitted}"
    );
    // Every row is whole: no row is cut in the middle.
    assert!(
        fitted
            .lines()
            .filter(|l| l.starts_with('|'))
            .all(|l| l.ends_with(" |"))
    );
    let m = markdown(&f, Markdown::WeCom, Some("{table}"), &templates(), 0).unwrap();
    assert!(m.text.len() <= Markdown::WeCom.limit());
}

#[test]
fn alerts_and_recoveries_have_their_own_templates_and_subjects() {
    let mut f = with_rows(2);
    f.alert = Some(AlertFacts {
        state: AlertState::Triggered,
        condition: "value > 100".into(),
        value: "150".into(),
    });
    assert_eq!(f.kind(), Kind::Alert);
    for channel in [Markdown::DingTalk, Markdown::WeCom, Markdown::Feishu] {
        let m = markdown(&f, channel, None, &templates(), 0).unwrap();
        assert_eq!(m.title, "订单日报 告警");
        assert!(
            m.text.contains("value > 100") && m.text.contains("150"),
            "{}",
            m.text
        );
        assert!(m.text.contains("| 城市0 | 0.50 |"), "{}", m.text);
    }
    let own = markdown(
        &f,
        Markdown::DingTalk,
        Some("mine {alert_value}"),
        &templates(),
        0,
    );
    assert_eq!(
        own.unwrap().text,
        "mine 150",
        "the task's template renders the alert"
    );
    let e = email(&f, None, None, &templates()).unwrap();
    assert_eq!(e.subject, "[告警] 订单日报 2026-11-23");
    assert!(
        e.html.contains("<table") && e.html.contains("城市1"),
        "{}",
        e.html
    );
    f.alert.as_mut().unwrap().state = AlertState::Ok;
    assert_eq!(f.kind(), Kind::Recovery);
    let own = markdown(&f, Markdown::DingTalk, Some("mine"), &templates(), 0).unwrap();
    assert_eq!(own.title, "订单日报 已恢复");
    assert!(
        own.text.contains("不再成立"),
        "the recovery template, not the task's"
    );
    assert!(
        email(&f, None, None, &templates())
            .unwrap()
            .subject
            .starts_with("[恢复] ")
    );
}

#[test]
fn a_link_to_nowhere_is_left_out() {
    let mut f = facts(ExecutionStatus::Success);
    f.download_url = None;
    let d = markdown(&f, Markdown::DingTalk, None, &templates(), 0).unwrap();
    assert!(!d.text.contains("下载报表"), "{}", d.text);
    assert!(d.text.contains("**数据行数**: 1,000"));
    let own = markdown(
        &f,
        Markdown::WeCom,
        Some("a [x]() b\n[y]()\nc"),
        &templates(),
        0,
    );
    assert_eq!(own.unwrap().text, "a [x]() b\nc");
}

#[test]
fn values_from_the_data_cannot_format_link_or_mention() {
    let mut f = with_rows(1);
    let evil = "[点我](http://evil.example) <at id=all></at> <@zhangsan> **x** | y\n## z";
    f.alert = Some(AlertFacts {
        state: AlertState::Triggered,
        condition: "value is not null".into(),
        value: evil.into(),
    });
    for channel in [Markdown::DingTalk, Markdown::WeCom, Markdown::Feishu] {
        let m = markdown(&f, channel, None, &templates(), 0).unwrap();
        for raw in ["[点我]", "<at", "<@", "**x**", "| y", "\n## z"] {
            assert!(!m.text.contains(raw), "{raw} in {}", m.text);
        }
        assert!(
            m.text
                .contains("［点我］(http://evil.example) ＜at id=all＞＜/at＞"),
            "{}",
            m.text
        );
    }
}

#[test]
fn feishu_tables_are_measured_as_json() {
    use crate::model::table::Value;
    let mut f = with_rows(0);
    // Quotes and backslashes double when written as JSON.
    let cell = Value::Text("\"\\".repeat(20));
    f.preview = Preview {
        columns: vec!["a".into(), "b".into(), "c".into(), "d".into()],
        rows: vec![vec![cell; 4]; 100],
    };
    f.sheets = vec![("s".into(), 100)];
    let m = markdown(&f, Markdown::Feishu, Some("{table}"), &templates(), 0).unwrap();
    let json = serde_json::to_string(&m.text).unwrap().len();
    assert!(json <= Markdown::Feishu.limit(), "{json}");
    assert!(
        json > Markdown::Feishu.limit() - 200,
        "as many rows as fit: {json}"
    );
    assert!(
        m.text
            .lines()
            .filter(|l| l.starts_with('|'))
            .all(|l| l.ends_with(" |"))
    );
}

#[test]
fn several_sheets_list_their_rows_and_one_sheet_does_not() {
    let mut f = facts(ExecutionStatus::Success);
    f.sheets = vec![("订单明细".into(), 888), ("城市汇总".into(), 1_200)];
    f.rows = 2_088;
    assert_eq!(
        f.value("sheet_rows", None).unwrap(),
        "订单明细 888 行，城市汇总 1,200 行"
    );
    assert_eq!(f.value("rows_count", None).unwrap(), "2,088");
    for channel in [Markdown::DingTalk, Markdown::WeCom, Markdown::Feishu] {
        let m = markdown(&f, channel, None, &templates(), 0).unwrap();
        assert!(
            m.text.contains("订单明细 888 行，城市汇总 1,200 行"),
            "{channel:?}: {}",
            m.text
        );
    }
    let e = email(&f, None, None, &templates()).unwrap();
    assert!(
        e.html
            .contains("<td>订单明细 888 行，城市汇总 1,200 行</td>"),
        "{}",
        e.html
    );
    assert!(
        e.text
            .contains("各表行数: 订单明细 888 行，城市汇总 1,200 行"),
        "{}",
        e.text
    );

    // One sheet: the total says it all; the line goes, in shipped and own templates alike.
    let one = facts(ExecutionStatus::Success);
    let d = markdown(&one, Markdown::DingTalk, None, &templates(), 0).unwrap();
    assert!(!d.text.contains("各表行数"), "{}", d.text);
    assert!(
        d.text.contains("**数据行数**: 1,000\n- **文件大小**"),
        "{}",
        d.text
    );
    let own = one.render("a\nrows: {sheet_rows}\nb {rows_count}", false);
    assert_eq!(own, "a\nb 1,000");
    let e = email(&one, None, None, &templates()).unwrap();
    assert!(!e.html.contains("各表行数") && !e.text.contains("各表行数"));
}
