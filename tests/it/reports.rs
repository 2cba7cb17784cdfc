//! Reports as a data team receives them, through `reportd task run` and `reportd export`:
//! the xlsx read back with calamine (values, number formats, header style, fonts) and its
//! XML parts (page setup, print titles, footer, frozen panes), the file named after the
//! data's day (`{yesterday:%Y%m%d}`), the title row, each sheet's rows in the execution
//! record and in the DingTalk message received by the stand-in.

use calamine::{Data, HorizontalAlignment, Reader, Xlsx, open_workbook};
use chrono::Datelike;
use serde_json::{Value, json};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::api_daemon::Daemon;
use crate::dingtalk::{SECRET, StandIn};
use crate::helpers::{Backend, DEMO_SOURCE, Workdir, files_under};

/// The text of one part of an xlsx file (`xl/worksheets/sheet1.xml`).
fn part(path: &Path, name: &str) -> String {
    let file = std::fs::File::open(path).unwrap();
    let mut zip = zip::ZipArchive::new(file).unwrap();
    let mut entry = zip.by_name(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut text = String::new();
    entry.read_to_string(&mut text).unwrap();
    text
}

/// The one `.xlsx` under `dir`.
fn the_xlsx(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "xlsx"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

fn shanghai_day(days_back: i64) -> chrono::NaiveDate {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        - chrono::Duration::days(days_back)
}

const TASK: &str = r#"tasks:
  - name: 日报
    data_source: demo
    cron: "0 9 * * *"
    sheets:
      - name: 订单明细
        sql: >-
          SELECT id, order_no, 13800000000 + id AS contact, customer, city, product, qty,
                 amount, status, created_at, paid_at
          FROM orders ORDER BY id LIMIT 888
      - name: 城市汇总
        sql: SELECT city AS 城市, COUNT(*) AS 订单数 FROM orders GROUP BY city ORDER BY city
    output:
      filename: "日报_{yesterday:%Y%m%d}.xlsx"
      title: "{task_name}（{yesterday}）"
    notify:
      dingtalk: {}
"#;

#[test]
fn a_report_is_formatted_titled_named_by_its_day_and_ready_to_print() {
    let ding = StandIn::start();
    let config = format!(
        "{DEMO_SOURCE}dingtalk:\n  webhook_url: \"http://127.0.0.1:{}/robot/send?access_token=ok_reports\"\n  secret: \"{SECRET}\"\n",
        ding.port
    );
    let w = Workdir::new(Backend::Sqlite, &config);
    w.write("t.yaml", TASK);
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    w.ok(&["task", "run", "日报"]);

    // Named after the data's day (yesterday), in the run day's directory.
    let path = the_xlsx(&w.path().join("exports"));
    let yesterday = shanghai_day(1);
    assert_eq!(
        path.file_name().unwrap().to_string_lossy(),
        format!("日报_{}.xlsx", yesterday.format("%Y%m%d"))
    );

    let mut book: Xlsx<_> = open_workbook(&path).unwrap();
    assert_eq!(book.sheet_names(), ["订单明细", "城市汇总"]);
    let detail = book.worksheet_range("订单明细").unwrap();
    let cities = book.worksheet_range("城市汇总").unwrap();
    // The title, then the header, then the rows.
    let title = format!("日报（{}）", yesterday.format("%Y-%m-%d"));
    assert_eq!(detail.get_value((0, 0)), Some(&Data::String(title.clone())));
    assert_eq!(cities.get_value((0, 0)), Some(&Data::String(title)));
    assert_eq!(detail.get_value((1, 0)), Some(&Data::String("id".into())));
    assert_eq!(detail.get_value((1, 6)), Some(&Data::String("qty".into())));
    assert_eq!(detail.get_value((2, 0)), Some(&Data::Float(1.0)));
    assert_eq!(
        detail.get_value((2, 2)),
        Some(&Data::Float(13_800_000_001.0))
    );
    assert_eq!(detail.height(), 2 + 888);
    let city_rows = cities.height() as u64 - 2;
    assert!(city_rows >= 2, "{city_rows}");

    // Number formats: counts and amounts grouped, names (id, phone-like numbers) plain.
    let styles = book.worksheet_style("订单明细").unwrap();
    let format_of = |r: u32, c: u32| {
        styles
            .get((r, c))
            .and_then(|s| s.number_format.as_ref())
            .map_or("General".to_string(), |f| f.format_code.clone())
    };
    assert_eq!(format_of(2, 6), "#,##0", "qty");
    assert_eq!(format_of(2, 7), "#,##0.00##", "amount (REAL)");
    assert_eq!(format_of(2, 0), "General", "id");
    assert_eq!(format_of(2, 2), "General", "a 11-digit number is a name");
    assert_eq!(format_of(2, 9), "yyyy-mm-dd hh:mm:ss", "created_at");
    assert_eq!(format_of(500, 6), "#,##0", "every row, not only the first");

    // The header: bold 等线 on the fill, thin borders, centred; numbers' headers right.
    let header = styles.get((1, 3)).expect("customer header style");
    let font = header.font.as_ref().unwrap();
    assert_eq!(font.name.as_deref(), Some("等线"));
    assert!(font.is_bold());
    let fill = header.fill.as_ref().unwrap();
    let c = fill.foreground_color.unwrap();
    assert_eq!((c.red, c.green, c.blue), (0xD9, 0xE1, 0xF2));
    let borders = header.borders.as_ref().unwrap();
    assert_eq!(borders.bottom.style, calamine::BorderStyle::Thin);
    assert_eq!(borders.left.style, calamine::BorderStyle::Thin);
    let align = |r: u32, c: u32| {
        styles
            .get((r, c))
            .and_then(|s| s.alignment.as_ref())
            .map(|a| a.horizontal)
    };
    assert_eq!(
        align(1, 3),
        Some(HorizontalAlignment::Center),
        "text header"
    );
    assert_eq!(align(1, 6), Some(HorizontalAlignment::Right), "qty header");
    assert_eq!(align(1, 0), Some(HorizontalAlignment::Right), "id header");
    let title_font = styles.get((0, 0)).and_then(|s| s.font.clone()).unwrap();
    assert!(title_font.is_bold() && title_font.size == Some(14.0));
    assert_eq!(title_font.name.as_deref(), Some("等线"));

    // Every cell's font: the workbook default is 等线 (GB2312 charset), never Calibri.
    let styles_xml = part(&path, "xl/styles.xml");
    assert!(
        styles_xml.contains(r#"<name val="等线"/><family val="2"/><charset val="134"/>"#),
        "{styles_xml}"
    );
    assert!(!styles_xml.contains("Calibri"), "{styles_xml}");

    // Printing: the wide sheet in landscape, the narrow one portrait; both one page wide,
    // A4, the sheet name and page number in the footer; the header (row 2) frozen, filtered
    // and repeated on every printed page.
    let wide = part(&path, "xl/worksheets/sheet1.xml");
    let narrow = part(&path, "xl/worksheets/sheet2.xml");
    for (name, xml) in [("wide", &wide), ("narrow", &narrow)] {
        assert!(
            xml.contains(r#"<pageSetUpPr fitToPage="1"/>"#),
            "{name}: {xml}"
        );
        assert!(xml.contains(r#"paperSize="9""#), "{name}");
        assert!(xml.contains(r#"fitToHeight="0""#), "{name}");
        assert!(
            xml.contains("<oddFooter>&amp;L&amp;A&amp;R&amp;P / &amp;N</oddFooter>"),
            "{name}"
        );
        assert!(
            xml.contains(
                r#"<pane ySplit="2" topLeftCell="A3" activePane="bottomLeft" state="frozen"/>"#
            ),
            "{name}: {xml}"
        );
    }
    assert!(wide.contains(r#"orientation="landscape""#), "{wide}");
    assert!(!narrow.contains("landscape"), "{narrow}");
    assert!(wide.contains(r#"<autoFilter ref="A2:K890"/>"#), "{wide}");
    let workbook = part(&path, "xl/workbook.xml");
    assert!(
        workbook.contains(
            r#"<definedName name="_xlnm.Print_Titles" localSheetId="0">订单明细!$2:$2</definedName>"#
        ),
        "{workbook}"
    );
    assert!(
        workbook.contains(
            r#"<definedName name="_xlnm.Print_Titles" localSheetId="1">城市汇总!$2:$2</definedName>"#
        ),
        "{workbook}"
    );

    // Rows per sheet: kept by the execution, listed by the default message; the total stays.
    let runs: Vec<Value> =
        serde_json::from_str(&w.ok(&["logs", "--task", "日报", "--json"])).unwrap();
    assert_eq!(
        runs[0]["sheets"],
        serde_json::json!([
            {"name": "订单明细", "rows": 888},
            {"name": "城市汇总", "rows": city_rows}
        ])
    );
    assert_eq!(runs[0]["rows"], 888 + city_rows);
    let reqs = ding.requests();
    let text = reqs[0]["body"]["markdown"]["text"].as_str().unwrap();
    for want in [
        format!("**数据行数**: {}", 888 + city_rows),
        format!("**各表行数**: 订单明细 888 行，城市汇总 {city_rows} 行"),
    ] {
        assert!(text.contains(&want), "{want} in {text}");
    }
}

#[test]
fn export_font_is_the_font_of_every_cell_and_is_checked() {
    let w = Workdir::new(
        Backend::Sqlite,
        &format!("{DEMO_SOURCE}export:\n  font: 微软雅黑\n"),
    );
    w.ok(&[
        "export",
        "--source",
        "demo",
        "--sql",
        "SELECT city, COUNT(*) AS n FROM orders GROUP BY city",
        "-o",
        "out.xlsx",
    ]);
    let path = w.path().join("out.xlsx");
    let styles_xml = part(&path, "xl/styles.xml");
    assert!(
        styles_xml.contains(r#"<name val="微软雅黑"/>"#),
        "{styles_xml}"
    );
    assert!(!styles_xml.contains("Calibri") && !styles_xml.contains("等线"));
    // No title unless asked: the header is the first row.
    let mut book: Xlsx<_> = open_workbook(&path).unwrap();
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    assert_eq!(range.get_value((0, 0)), Some(&Data::String("city".into())));
    let sheet = part(&path, "xl/worksheets/sheet1.xml");
    assert!(sheet.contains(r#"ySplit="1""#), "{sheet}");

    for (font, why) in [
        ("\"\"", "export.font: is empty"),
        (
            "一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一二",
            "longer than 31 characters",
        ),
        ("\"Dengxian\\u200b\"", "export.font: "),
    ] {
        let bad = Workdir::new(
            Backend::Sqlite,
            &format!("{DEMO_SOURCE}export:\n  font: {font}\n"),
        );
        let err = bad.fails(&["check", "--no-connect"], 1);
        assert!(err.contains(why), "{font}: {err}");
        assert!(
            err.contains("config.yaml:"),
            "names the file and line: {err}"
        );
    }
}

#[test]
fn titles_and_date_macros_in_names_are_checked_when_applied() {
    let w = Workdir::sqlite_with_demo();
    let task = |output: &str| {
        format!(
            "tasks:\n  - name: t\n    data_source: demo\n    cron: \"0 9 * * *\"\n    sql: SELECT 1 AS x\n    output: {output}\n"
        )
    };
    for (output, why) in [
        (
            r#"{ format: csv, title: "x" }"#,
            "output.title: only an xlsx file has a title row",
        ),
        (
            r#"{ title: "{rows_count}" }"#,
            "unknown placeholder {rows_count}",
        ),
        (r#"{ title: "  " }"#, "output.title: is empty"),
        (r#"{ filename: "r_{yesterday:%Q}" }"#, "bad date format"),
        (
            r#"{ filename: "r_{rows_count}" }"#,
            "unknown placeholder {rows_count}",
        ),
    ] {
        w.write("t.yaml", &task(output));
        let err = w.fails(&["task", "apply", "-f", "t.yaml"], 1);
        assert!(err.contains(why), "{output}: {err}");
    }
    w.write(
        "t.yaml",
        &task(r#"{ filename: "r_{last_month_start:%Y%m}_{week_start}", title: "{task_name} {month_start:%m月}" }"#),
    );
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    w.ok(&["task", "run", "t"]);
    let path = the_xlsx(&w.path().join("exports"));
    let today = shanghai_day(0);
    let month_start = today.with_day0(0).unwrap();
    let last_month_start = (month_start - chrono::Duration::days(1))
        .with_day0(0)
        .unwrap();
    let week_start =
        today - chrono::Duration::days(i64::from(today.weekday().num_days_from_monday()));
    assert_eq!(
        path.file_name().unwrap().to_string_lossy(),
        format!(
            "r_{}_{}.xlsx",
            last_month_start.format("%Y%m"),
            week_start.format("%Y-%m-%d")
        )
    );
    let mut book: Xlsx<_> = open_workbook(&path).unwrap();
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    assert_eq!(
        range.get_value((0, 0)),
        Some(&Data::String(format!("t {}", month_start.format("%m月"))))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_log_shows_each_sheets_rows_and_durations_in_the_pages_language() {
    let d = Daemon::start(Backend::Sqlite, "").await;
    let (s, task) = d
        .call(
            "POST",
            "/api/tasks",
            Some(json!({"name": "两表", "data_source": "demo", "cron": "0 9 * * *",
                "sheets": [
                    {"name": "订单明细", "sql": "SELECT id, amount FROM orders ORDER BY id LIMIT 1234"},
                    {"name": "城市汇总", "sql": "SELECT city, COUNT(*) AS n FROM orders GROUP BY city"}
                ]})),
        )
        .await;
    assert_eq!(s, 201, "{task}");
    let (s, ran) = d
        .call(
            "POST",
            &format!("/api/tasks/{}/run", task["id"]),
            Some(json!({})),
        )
        .await;
    assert!((200..300).contains(&s), "{ran}");
    let id = ran["execution_id"].as_i64().unwrap();
    let run = d
        .until_not(
            &format!("/api/logs/{id}"),
            &["running"],
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(run["status"], "success", "{run}");
    let cities = run["sheets"][1]["rows"].as_u64().unwrap();
    assert_eq!(run["sheets"][0], json!({"name": "订单明细", "rows": 1234}));
    assert_eq!(run["rows"], 1234 + cities);

    let token = d.login("ann", "viewer").await;
    let page = |lang: &'static str| {
        let (d, token) = (&d, token.clone());
        async move {
            let r = d
                .http
                .get(format!("{}/logs?lang={lang}", d.base))
                .header("cookie", format!("reportd_session={token}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    let zh = page("zh").await;
    let total = format!("{}", 1234 + cities);
    let grouped = format!("{},{}", &total[..1], &total[1..]);
    assert!(
        zh.contains(&format!(">{grouped} <")),
        "total with separators: {zh}"
    );
    assert!(
        zh.contains(&format!(
            r#"<div class="muted sheet-rows">订单明细 1,234 · 城市汇总 {cities}</div>"#
        )),
        "{zh}"
    );
    let duration = |html: &str| {
        let cell = html
            .split("data-label=\"")
            .find(|c| c.starts_with("耗时\"") || c.starts_with("Duration\""))
            .unwrap()
            .to_string();
        cell[cell.find('>').unwrap() + 1..cell.find("</td>").unwrap()].to_string()
    };
    let d_zh = duration(&zh);
    assert!(d_zh.ends_with('秒') && !d_zh.ends_with('s'), "{d_zh}");
    let en = page("en").await;
    let d_en = duration(&en);
    assert!(d_en.ends_with('s') && !d_en.contains('秒'), "{d_en}");
}
