//! `{table}`: the first rows of a report as a markdown table (DingTalk, WeCom, Feishu) or an
//! HTML table (e-mail). Numeric columns are right-aligned, long cells are cut, and a line
//! under the table says how many of how many rows it shows. Fitting a message into a
//! channel's size limit is the caller's job: it asks for fewer rows ([`Table::rows`]).

use std::fmt::Write as _;

use super::message::escape_html;
use crate::model::table::{Preview, Value};

/// Most characters of a cell; longer ones end in `…`.
pub const MAX_CELL_CHARS: usize = 40;

/// A preview and how many rows the query returned in all.
#[derive(Debug, Clone, Copy)]
pub struct Table<'a> {
    /// The rows kept.
    pub preview: &'a Preview,
    /// Rows of the query in all.
    pub total: u64,
}

impl Table<'_> {
    /// The rows a table can show at most.
    pub fn rows(&self) -> usize {
        self.preview.rows.len()
    }

    /// True for a column whose shown values are all numbers (NULLs aside), at least one.
    fn numeric(&self, column: usize, rows: usize) -> bool {
        let mut any = false;
        for row in self.preview.rows.iter().take(rows) {
            match row.get(column) {
                Some(Value::Number(_)) => any = true,
                Some(Value::Null) | None => {}
                Some(Value::Text(_)) => return false,
            }
        }
        any
    }

    /// The line under a table that does not show every row, or under an empty result.
    fn footer(&self, shown: usize) -> Option<String> {
        if self.preview.columns.is_empty() || self.total == 0 {
            Some("（无数据）".into())
        } else if (shown as u64) < self.total {
            Some(format!(
                "（显示前 {} 行，共 {} 行）",
                shown,
                crate::humanize::thousands(self.total)
            ))
        } else {
            None
        }
    }

    /// The first `rows` rows as a markdown table.
    pub fn markdown(&self, rows: usize) -> String {
        let columns = &self.preview.columns;
        let rows = rows.min(self.rows());
        let mut out = String::new();
        if !columns.is_empty() {
            out.push('|');
            for c in columns {
                let _ = write!(out, " {} |", markdown_cell(c));
            }
            out.push_str("\n|");
            for i in 0..columns.len() {
                out.push_str(if self.numeric(i, rows) {
                    " ---: |"
                } else {
                    " :--- |"
                });
            }
            for row in self.preview.rows.iter().take(rows) {
                out.push_str("\n|");
                for v in row {
                    let _ = write!(out, " {} |", markdown_cell(v.text()));
                }
            }
        }
        if let Some(f) = self.footer(rows) {
            if !out.is_empty() {
                out.push_str("\n\n");
            }
            out.push_str(&f);
        }
        out
    }

    /// The first `rows` rows as an HTML table (cells escaped).
    pub fn html(&self, rows: usize) -> String {
        const CELL: &str = "padding:4px 8px;border:1px solid #ddd";
        let columns = &self.preview.columns;
        let rows = rows.min(self.rows());
        let mut out = String::new();
        if !columns.is_empty() {
            out.push_str("<table style=\"border-collapse:collapse\">\n<tr>");
            for c in columns {
                let _ = write!(
                    out,
                    "<th style=\"{CELL};background:#f5f5f5\">{}</th>",
                    escape_html(&cut(c))
                );
            }
            out.push_str("</tr>\n");
            let align: Vec<bool> = (0..columns.len()).map(|i| self.numeric(i, rows)).collect();
            for row in self.preview.rows.iter().take(rows) {
                out.push_str("<tr>");
                for (i, v) in row.iter().enumerate() {
                    let right = if align.get(i) == Some(&true) {
                        ";text-align:right"
                    } else {
                        ""
                    };
                    let _ = write!(
                        out,
                        "<td style=\"{CELL}{right}\">{}</td>",
                        escape_html(&cut(v.text()))
                    );
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</table>");
        }
        if let Some(f) = self.footer(rows) {
            let _ = write!(out, "\n<p>{}</p>", escape_html(&f));
        }
        out
    }
}

/// A cell cut to [`MAX_CELL_CHARS`], on one line.
fn cut(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match one_line.char_indices().nth(MAX_CELL_CHARS) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}

/// A cell for a markdown table: cut to [`MAX_CELL_CHARS`], made inert ([`markdown_text`]).
fn markdown_cell(s: &str) -> String {
    markdown_text(&cut(s))
}

/// Text from the data (a cell, a database's error) made inert in a message on every markdown
/// channel: on one line, and `| < > [ ] * `` ` `` as their full-width forms, so that it can
/// neither end a table cell, nor @ anyone (`<@id>`, `<at id=all>`), nor make a link or a
/// format. (Backslash escapes are not honoured by every robot's renderer.)
pub fn markdown_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '|' => '｜',
            '<' => '＜',
            '>' => '＞',
            '[' => '［',
            ']' => '］',
            '*' => '＊',
            '`' => '｀',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preview() -> Preview {
        Preview {
            columns: vec!["城市".into(), "订单|数".into()],
            rows: vec![
                vec![Value::Text("北京".into()), Value::Number("1200".into())],
                vec![Value::Text("<b>上海</b>".into()), Value::Null],
                vec![Value::Text("x".repeat(60)), Value::Number("7.50".into())],
            ],
        }
    }

    #[test]
    fn markdown_tables_align_numbers_escape_and_cut_cells() {
        let p = preview();
        let t = Table {
            preview: &p,
            total: 3,
        };
        let md = t.markdown(10);
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines[0], "| 城市 | 订单｜数 |");
        assert_eq!(lines[1], "| :--- | ---: |");
        assert_eq!(lines[2], "| 北京 | 1200 |");
        assert_eq!(lines[3], "| ＜b＞上海＜/b＞ |  |");
        assert!(
            lines[4].contains(&format!("{}…", "x".repeat(40))),
            "{}",
            lines[4]
        );
        assert_eq!(lines.len(), 5, "{md}");
        let cut = Table {
            preview: &p,
            total: 1234,
        }
        .markdown(1);
        assert!(cut.ends_with("（显示前 1 行，共 1,234 行）"), "{cut}");
        assert_eq!(cut.lines().filter(|l| l.starts_with('|')).count(), 3);
    }

    #[test]
    fn html_tables_escape_every_cell() {
        let p = preview();
        let html = Table {
            preview: &p,
            total: 3,
        }
        .html(10);
        assert!(html.contains("&lt;b&gt;上海&lt;/b&gt;"), "{html}");
        assert!(!html.contains("<b>"));
        assert!(html.contains("text-align:right\">1200</td>"), "{html}");
        let empty = Preview::default();
        let none = Table {
            preview: &empty,
            total: 0,
        };
        assert_eq!(none.markdown(10), "（无数据）");
        assert_eq!(none.html(10), "\n<p>（无数据）</p>");
    }
}
