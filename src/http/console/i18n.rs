//! The console's two languages: Chinese by default, English when `Accept-Language` prefers it
//! (q-values respected), overridden by `?lang=en|zh` or the `reportd_lang` cookie. One table.

use axum::http::{HeaderMap, header};

/// The cookie that keeps a chosen language.
pub const LANG_COOKIE: &str = "reportd_lang";

/// A page's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// 中文 (the default).
    #[default]
    Zh,
    /// English.
    En,
}

impl Lang {
    /// `zh` or `en`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// The `lang` attribute of `<html>`.
    pub fn html(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// `zh` or `en` (anything else: none).
    pub fn parse(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The other language.
    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    /// The text of `key` (the key itself when the table lacks it).
    pub fn t(self, key: &str) -> &str {
        TABLE
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or(key, |(_, zh, en)| match self {
                Lang::Zh => zh,
                Lang::En => en,
            })
    }
}

/// The `lang` of a query string, when given.
pub fn from_query(query: Option<&str>) -> Option<Lang> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "lang")
        .and_then(|(_, v)| Lang::parse(v))
}

/// The language of a request: `?lang=`, else the cookie, else `Accept-Language`.
pub fn pick(headers: &HeaderMap, query: Option<&str>) -> Lang {
    if let Some(l) = from_query(query) {
        return l;
    }
    if let Some(l) = crate::http::api::auth::cookie(headers, LANG_COOKIE).and_then(Lang::parse) {
        return l;
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map_or(Lang::Zh, accept_language)
}

/// The best of zh and en by an `Accept-Language` value; Chinese unless English ranks higher.
pub fn accept_language(value: &str) -> Lang {
    let (mut zh, mut en) = (-1.0_f32, -1.0_f32);
    for part in value.split(',') {
        let mut pieces = part.split(';');
        let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = pieces
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let primary = tag.split('-').next().unwrap_or("");
        match primary {
            "zh" => zh = zh.max(q),
            "en" => en = en.max(q),
            _ => {}
        }
    }
    if en > 0.0 && en > zh {
        Lang::En
    } else {
        Lang::Zh
    }
}

/// (key, 中文, English).
const TABLE: &[(&str, &str, &str)] = &[
    ("app", "reportd 控制台", "reportd console"),
    ("nav.overview", "概览", "Overview"),
    ("nav.tasks", "任务", "Tasks"),
    ("nav.sources", "数据源", "Data sources"),
    ("nav.logs", "执行日志", "Execution log"),
    ("nav.exports", "导出任务", "Export jobs"),
    ("nav.users", "用户", "Users"),
    ("nav.audit", "审计", "Audit"),
    ("logout", "退出", "Log out"),
    ("login", "登录", "Log in"),
    ("username", "用户名", "User name"),
    ("password", "密码", "Password"),
    ("setup", "初始化", "First-run setup"),
    (
        "setup.help",
        "创建第一个管理员账号。",
        "Create the first admin account.",
    ),
    (
        "setup.done",
        "已有用户：请登录。",
        "Users exist already: please log in.",
    ),
    (
        "setup.bad",
        "初始化链接无效或已使用。",
        "The setup link is invalid or was used.",
    ),
    ("role", "角色", "Role"),
    ("health", "健康", "Health"),
    ("healthy", "正常", "healthy"),
    ("unhealthy", "异常", "unhealthy"),
    ("uptime", "运行时长", "Uptime"),
    ("running", "正在执行", "Running now"),
    ("elapsed", "已用时", "Elapsed"),
    ("next_fires", "下次触发", "Next fires"),
    ("rate24", "24 小时成功率", "24 h success rate"),
    ("failures", "最近失败", "Recent failures"),
    ("none", "无", "none"),
    ("task", "任务", "Task"),
    ("name", "名称", "Name"),
    ("enabled", "启用", "Enabled"),
    ("next_fire", "下次触发", "Next fire"),
    ("last_result", "最近结果", "Last result"),
    ("run_now", "立即执行", "Run now"),
    ("search", "搜索", "Search"),
    ("details", "详情", "Details"),
    ("new_task", "新建任务", "New task"),
    ("sheet_name", "工作表名称", "Sheet name"),
    ("preview", "预览", "Preview"),
    ("add_sheet", "添加工作表", "Add sheet"),
    ("remove_sheet", "移除工作表", "Remove sheet"),
    ("output", "输出", "Output"),
    ("filename", "文件名模板", "File name"),
    (
        "report_title",
        "标题行（仅 xlsx，可选）",
        "Title row (xlsx, optional)",
    ),
    ("timeout", "超时（秒）", "Timeout (s)"),
    ("retries", "重试次数", "Retries"),
    ("send_test", "发送测试消息", "Send test message"),
    ("alert", "告警", "Alert"),
    ("storage", "存储", "Storage"),
    ("saved", "已保存", "Saved"),
    ("description", "说明", "Description"),
    ("data_source", "数据源", "Data source"),
    ("cron", "Cron", "Cron"),
    ("timezone", "时区", "Time zone"),
    ("sheets", "工作表", "Sheets"),
    ("split", "分段并行读取", "Split read"),
    (
        "split_column",
        "主键列（如 o.id）",
        "key column (e.g. o.id)",
    ),
    ("split_readers", "并行数", "readers"),
    ("split_chunk_rows", "每段行数", "rows per range"),
    ("all_fields", "全部字段", "All fields"),
    ("type", "类型", "Type"),
    ("location", "位置", "Location"),
    ("origin", "来源", "Origin"),
    ("test", "测试连接", "Test connection"),
    ("edit", "编辑", "Edit"),
    ("delete", "删除", "Delete"),
    ("add", "添加", "Add"),
    ("save", "保存", "Save"),
    ("host", "主机", "Host"),
    ("port", "端口", "Port"),
    ("database", "数据库", "Database"),
    ("pw_keep", "留空则不修改", "leave empty to keep"),
    ("status", "状态", "Status"),
    ("from", "起始日期", "From"),
    ("to", "结束日期", "To"),
    ("filter", "筛选", "Filter"),
    ("any", "全部", "any"),
    ("started", "开始时间", "Started"),
    ("duration", "耗时", "Duration"),
    ("rows", "行数", "Rows"),
    ("size", "大小", "Size"),
    ("error", "错误", "Error"),
    ("notifications", "通知", "Notifications"),
    ("files", "文件", "Files"),
    ("cancel", "取消", "Cancel"),
    ("prev", "上一页", "Previous"),
    ("next", "下一页", "Next"),
    ("lane", "通道", "Lane"),
    ("downloads", "下载次数", "Downloads"),
    ("new_export", "新建导出", "New export"),
    ("format", "格式", "Format"),
    ("submit", "提交", "Submit"),
    ("created_by", "创建者", "Created by"),
    ("created", "创建时间", "Created"),
    (
        "forbidden",
        "无权访问此页面。",
        "You may not see this page.",
    ),
    ("add_user", "添加用户", "Add user"),
    ("remove", "移除", "Remove"),
    ("when", "时间", "When"),
    ("actor", "操作人", "Who"),
    ("action", "操作", "Action"),
    ("object", "对象", "Object"),
    ("address", "地址", "Address"),
    ("total", "共", "Total"),
    ("yes", "是", "yes"),
    ("no", "否", "no"),
    ("store", "系统库", "Store"),
    ("sources_up", "数据源", "Data sources"),
    ("tasks_count", "任务数", "Tasks"),
    ("up", "可连接", "up"),
    ("down", "不可用", "down"),
    ("st.success", "成功", "success"),
    ("st.failed", "失败", "failed"),
    ("st.running", "执行中", "running"),
    ("st.timeout", "超时", "timeout"),
    ("st.interrupted", "中断", "interrupted"),
    ("st.skipped", "跳过", "skipped"),
    ("st.cancelled", "已取消", "cancelled"),
    ("st.queued", "排队中", "queued"),
    ("st.done", "完成", "done"),
    ("st.expired", "已过期", "expired"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_respects_q_values() {
        assert_eq!(accept_language("en-US,en;q=0.9"), Lang::En);
        assert_eq!(accept_language("zh-CN,zh;q=0.9,en;q=0.8"), Lang::Zh);
        assert_eq!(accept_language("zh;q=0.5,en;q=0.8"), Lang::En);
        assert_eq!(accept_language("fr"), Lang::Zh);
        assert_eq!(accept_language("en;q=0"), Lang::Zh);
        assert_eq!(from_query(Some("a=1&lang=en")), Some(Lang::En));
        assert_eq!(Lang::En.t("nav.tasks"), "Tasks");
    }
}
