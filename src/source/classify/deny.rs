//! Server functions and tables that a report never needs and that reach beyond reading this
//! database's rows: functions that read or write server files, reach other servers, run SQL
//! given as text, take locks or signal other sessions, or change server state; tables that
//! hold password hashes. Refused per database family, whatever the spelling: any case,
//! schema-qualified (`pg_catalog.pg_read_file`), quoted (`"dblink"`, `` `load_file` ``,
//! PostgreSQL's `U&"…"` escapes). A name counts as a call when `(` follows it, so a column
//! `sleep_lock` or a string `'pg_read_file'` is fine; on PostgreSQL also after a `.`, because
//! `('/etc/passwd'::text).pg_read_file` is a call in attribute notation.
//!
//! Text cannot see inside the account's own functions and views: the account rights report
//! (`super::super::rights`) and `security.read_only_accounts` are the wall for those.

use super::Refusal;
use crate::model::datasource::Dialect;
use crate::source::sqllex::{Kind, Token};

/// A function name (lower case), whether it is a prefix, and why it is refused.
type Rule = (&'static str, bool, &'static str);

const READS_FILES: &str = "reads server files";
const WRITES_FILES: &str = "writes server files";
const REACHES_SERVERS: &str = "reaches other servers";
const RUNS_TEXT: &str = "runs SQL given as text";
const LOCKS: &str = "takes locks that other sessions wait for";
const SIGNALS: &str = "disturbs other sessions";
const CHANGES_SERVER: &str = "changes the server's state";
const RUNS_PROGRAMS: &str = "runs programs on the server";
const BURNS: &str = "keeps the server busy on purpose";
const WAITS: &str = "waits on replication";
const WRITES_SEQUENCE: &str = "changes a sequence";
const SECRETS: &str = "reads the server's secrets";
const READS_PAGES: &str = "reads raw data pages, past row and column rights";

/// MySQL, MariaDB and AnalyticDB. `SLEEP` stays allowed: the run's timeout stops the query
/// on the server (`max_statement_time` / `KILL QUERY`), and the cancel and timeout tests
/// use it.
const MYSQL_FUNCTIONS: &[Rule] = &[
    ("load_file", false, READS_FILES),
    ("get_lock", false, LOCKS),
    ("release_lock", false, LOCKS),
    ("release_all_locks", false, LOCKS),
    ("is_free_lock", false, LOCKS),
    ("is_used_lock", false, LOCKS),
    ("service_get_read_locks", false, LOCKS),
    ("service_get_write_locks", false, LOCKS),
    ("service_release_locks", false, LOCKS),
    ("version_tokens_", true, LOCKS),
    ("benchmark", false, BURNS),
    ("master_pos_wait", false, WAITS),
    ("source_pos_wait", false, WAITS),
    ("master_gtid_wait", false, WAITS),
    ("wait_for_executed_gtid_set", false, WAITS),
    ("wait_until_sql_thread_after_gtids", false, WAITS),
    ("nextval", false, WRITES_SEQUENCE),
    ("setval", false, WRITES_SEQUENCE),
    // lib_mysqludf_sys and similar UDFs.
    ("sys_exec", false, RUNS_PROGRAMS),
    ("sys_eval", false, RUNS_PROGRAMS),
    ("sys_get", false, RUNS_PROGRAMS),
    ("sys_set", false, RUNS_PROGRAMS),
    ("lib_mysqludf_", true, RUNS_PROGRAMS),
    // MariaDB's Spider engine runs SQL on other servers through these UDFs.
    ("spider_", true, REACHES_SERVERS),
    ("http_get", false, REACHES_SERVERS),
    ("http_post", false, REACHES_SERVERS),
    ("http_put", false, REACHES_SERVERS),
    ("http_delete", false, REACHES_SERVERS),
    ("keyring_key_", true, SECRETS),
    ("audit_log_", true, READS_FILES),
    ("group_replication_", true, CHANGES_SERVER),
    ("asynchronous_connection_failover_", true, CHANGES_SERVER),
];

/// PostgreSQL. `pg_sleep` (and `_for`, `_until`) stays allowed, as `SLEEP` on MySQL.
const PG_FUNCTIONS: &[Rule] = &[
    ("pg_read_file", false, READS_FILES),
    ("pg_read_binary_file", false, READS_FILES),
    ("pg_ls_", true, READS_FILES),
    ("pg_stat_file", false, READS_FILES),
    ("pg_logdir_ls", false, READS_FILES),
    ("pg_show_all_file_settings", false, READS_FILES),
    ("pg_hba_file_rules", false, READS_FILES),
    ("pg_ident_file_mappings", false, READS_FILES),
    ("pg_file_", true, WRITES_FILES),
    // Large objects (each by name: `lo_id` is a fine column name).
    ("lo_import", false, READS_FILES),
    ("lo_export", false, WRITES_FILES),
    ("lo_get", false, READS_FILES),
    ("lo_put", false, WRITES_FILES),
    ("lo_from_bytea", false, WRITES_FILES),
    ("lo_open", false, READS_FILES),
    ("lo_close", false, READS_FILES),
    ("lo_creat", false, WRITES_FILES),
    ("lo_create", false, WRITES_FILES),
    ("lo_unlink", false, WRITES_FILES),
    ("lo_truncate", true, WRITES_FILES),
    ("lo_lseek", true, READS_FILES),
    ("lo_tell", true, READS_FILES),
    ("lo_manage", false, WRITES_FILES),
    ("loread", false, READS_FILES),
    ("lowrite", false, WRITES_FILES),
    ("dblink", true, REACHES_SERVERS),
    ("query_to_xml", true, RUNS_TEXT),
    ("cursor_to_xml", true, RUNS_TEXT),
    ("table_to_xml", true, RUNS_TEXT),
    ("schema_to_xml", true, RUNS_TEXT),
    ("database_to_xml", true, RUNS_TEXT),
    ("ts_stat", false, RUNS_TEXT),
    ("ts_rewrite", false, RUNS_TEXT),
    ("query_export_to_s3", false, REACHES_SERVERS),
    ("table_import_from_s3", false, REACHES_SERVERS),
    ("pg_background_", true, RUNS_TEXT),
    // tablefunc: the query is text (`crosstab2`..`crosstab4` and `crosstab_hash` are called
    // only, below, so a `r.crosstab_report` column stays a column).
    ("crosstab", false, RUNS_TEXT),
    ("crosstab2", false, RUNS_TEXT),
    ("crosstab3", false, RUNS_TEXT),
    ("crosstab4", false, RUNS_TEXT),
    ("connectby", false, RUNS_TEXT),
    // pgRouting: every function takes its edges as SQL text.
    ("pgr_", true, RUNS_TEXT),
    // pgsql-http: the one-argument forms, callable as `('url'::text).http_get` too.
    ("http", false, REACHES_SERVERS),
    ("http_get", false, REACHES_SERVERS),
    ("http_head", false, REACHES_SERVERS),
    ("http_delete", false, REACHES_SERVERS),
    // pageinspect.
    ("get_raw_page", false, READS_PAGES),
    ("page_header", false, READS_PAGES),
    ("page_checksum", false, READS_PAGES),
    ("fsm_page_contents", false, READS_PAGES),
    ("heap_page_items", false, READS_PAGES),
    ("heap_page_item_attrs", false, READS_PAGES),
    ("tuple_data_split", false, READS_PAGES),
    ("bt_metap", false, READS_PAGES),
    ("bt_page_stats", false, READS_PAGES),
    ("bt_multi_page_stats", false, READS_PAGES),
    ("bt_page_items", false, READS_PAGES),
    ("brin_page_type", false, READS_PAGES),
    ("brin_metapage_info", false, READS_PAGES),
    ("brin_revmap_data", false, READS_PAGES),
    ("brin_page_items", false, READS_PAGES),
    ("gin_metapage_info", false, READS_PAGES),
    ("gin_page_opaque_info", false, READS_PAGES),
    ("gin_leafpage_items", false, READS_PAGES),
    ("gist_page_opaque_info", false, READS_PAGES),
    ("gist_page_items", false, READS_PAGES),
    ("gist_page_items_bytea", false, READS_PAGES),
    ("hash_page_type", false, READS_PAGES),
    ("hash_page_stats", false, READS_PAGES),
    ("hash_page_items", false, READS_PAGES),
    ("hash_bitmap_info", false, READS_PAGES),
    ("hash_metapage_info", false, READS_PAGES),
    ("pg_terminate_backend", false, SIGNALS),
    ("pg_cancel_backend", false, SIGNALS),
    ("pg_notify", false, SIGNALS),
    ("pg_advisory", true, LOCKS),
    ("pg_try_advisory", true, LOCKS),
    ("pg_reload_conf", false, CHANGES_SERVER),
    ("pg_rotate_logfile", true, CHANGES_SERVER),
    ("set_config", false, CHANGES_SERVER),
    ("pg_logical_emit_message", false, CHANGES_SERVER),
    ("pg_logical_slot_", true, CHANGES_SERVER),
    ("pg_replication_origin_", true, CHANGES_SERVER),
    ("pg_replication_slot_advance", false, CHANGES_SERVER),
    ("pg_create_", true, CHANGES_SERVER),
    ("pg_drop_replication_slot", false, CHANGES_SERVER),
    ("pg_copy_", true, CHANGES_SERVER),
    ("pg_sync_replication_slots", false, CHANGES_SERVER),
    ("pg_switch_wal", false, CHANGES_SERVER),
    ("pg_switch_xlog", false, CHANGES_SERVER),
    ("pg_wal_replay_", true, CHANGES_SERVER),
    ("pg_xlog_replay_", true, CHANGES_SERVER),
    ("pg_promote", false, CHANGES_SERVER),
    ("pg_start_backup", false, CHANGES_SERVER),
    ("pg_stop_backup", false, CHANGES_SERVER),
    ("pg_backup_start", false, CHANGES_SERVER),
    ("pg_backup_stop", false, CHANGES_SERVER),
    ("pg_stat_reset", true, CHANGES_SERVER),
    ("pg_stat_statements_reset", false, CHANGES_SERVER),
    ("pg_log_backend_memory_contexts", false, CHANGES_SERVER),
    ("pg_log_standby_snapshot", false, CHANGES_SERVER),
    ("pg_import_system_collations", false, CHANGES_SERVER),
    ("pg_buffercache_evict", true, CHANGES_SERVER),
    ("setval", false, WRITES_SEQUENCE),
    ("nextval", false, WRITES_SEQUENCE),
];

/// PostgreSQL prefixes refused only where `(` follows: as words they begin ordinary column
/// names (`t.http_status`, `r.crosstab_report`), which PostgreSQL reads before any function.
const PG_CALLED_PREFIXES: &[Rule] = &[
    ("crosstab", true, RUNS_TEXT),
    ("http_", true, REACHES_SERVERS),
];

/// Schemas whose every function is refused on PostgreSQL: pg_cron's `cron.schedule` runs
/// SQL outside this transaction later; RDS's `aws_s3`/`aws_lambda` and pg_net's `net` reach
/// other servers; orafce's `utl_file` reads and writes server files.
const PG_SCHEMAS: &[(&str, &str)] = &[
    ("cron", RUNS_TEXT),
    ("net", REACHES_SERVERS),
    ("utl_file", WRITES_FILES),
    ("aws_s3", REACHES_SERVERS),
    ("aws_lambda", REACHES_SERVERS),
    ("aws_commons", REACHES_SERVERS),
];

/// SQLite (the shell's and common extensions' functions, should one be loaded).
const SQLITE_FUNCTIONS: &[Rule] = &[
    ("load_extension", false, "loads code into the server"),
    ("readfile", false, READS_FILES),
    ("writefile", false, WRITES_FILES),
    ("edit", false, RUNS_PROGRAMS),
    ("fsdir", false, READS_FILES),
    ("zipfile", false, READS_FILES),
    ("fts3_tokenizer", false, "loads code into the server"),
];

const HASHES: &str = "holds password hashes";
const PASSWORDS: &str = "holds passwords of other servers";

/// MySQL tables, always named with their schema `mysql`.
const MYSQL_TABLES: &[(&str, &str)] = &[
    ("user", HASHES),
    ("global_priv", HASHES),
    ("password_history", HASHES),
    ("servers", PASSWORDS),
    ("slave_master_info", PASSWORDS),
];

/// PostgreSQL catalogs, with or without `pg_catalog.`.
const PG_TABLES: &[(&str, &str)] = &[
    ("pg_shadow", HASHES),
    ("pg_authid", HASHES),
    ("pg_user_mapping", PASSWORDS),
    ("pg_user_mappings", PASSWORDS),
    ("pg_subscription", PASSWORDS),
    ("pg_file_settings", READS_FILES),
    ("pg_hba_file_rules", READS_FILES),
    ("pg_ident_file_mappings", READS_FILES),
];

/// Checks every name in `t` (the statement's tokens) against the family's lists.
///
/// # Errors
/// [`Refusal::Function`] or [`Refusal::Table`] naming the first one found.
pub fn scan(sql: &str, t: &[Token], dialect: Dialect) -> Result<(), Refusal> {
    show_of_secrets(sql, t)?;
    let mut i = 0;
    while i < t.len() {
        let Some((name, next)) = name_at(sql, t, i, dialect) else {
            i += 1;
            continue;
        };
        let called = t.get(next).is_some_and(|n| n.kind == Kind::Punct(b'('));
        let qualifier = qualifier_of(sql, t, i, dialect);
        if called {
            function(&name, qualifier.as_deref(), dialect, true)?;
        } else {
            // PostgreSQL reads `(expr).f` and `t.col.f` as `f(expr)`: a dotted name may be a
            // call of a one-argument function.
            if dialect == Dialect::Postgres && after_dot(t, i) {
                function(&name, None, dialect, false)?;
            }
            table(&name, qualifier.as_deref(), dialect)?;
        }
        i = next.max(i + 1);
    }
    Ok(())
}

/// A refused call of `name` (as written, unquoted), if it is one; `called` when `(` follows
/// (not a PostgreSQL attribute-notation call).
fn function(
    name: &str,
    qualifier: Option<&str>,
    dialect: Dialect,
    called: bool,
) -> Result<(), Refusal> {
    let (rules, called_only) = match dialect {
        Dialect::MySql => (MYSQL_FUNCTIONS, &[][..]),
        Dialect::Postgres => (PG_FUNCTIONS, PG_CALLED_PREFIXES),
        Dialect::Sqlite => (SQLITE_FUNCTIONS, &[][..]),
    };
    let called_only = if called { called_only } else { &[][..] };
    let lower = name.to_ascii_lowercase();
    let hit = rules.iter().chain(called_only).find(|(rule, prefix, _)| {
        if *prefix {
            lower.starts_with(rule)
        } else {
            lower == *rule
        }
    });
    let why = hit.map(|(_, _, why)| *why).or_else(|| {
        let q = qualifier?.to_ascii_lowercase();
        (dialect == Dialect::Postgres)
            .then(|| {
                PG_SCHEMAS
                    .iter()
                    .find(|(s, _)| *s == q)
                    .map(|(_, why)| *why)
            })
            .flatten()
    });
    match why {
        Some(why) => Err(Refusal::Function {
            name: shown(name),
            why,
        }),
        None => Ok(()),
    }
}

/// A refused table `name`, if it is one.
fn table(name: &str, qualifier: Option<&str>, dialect: Dialect) -> Result<(), Refusal> {
    let found = match dialect {
        Dialect::MySql => qualifier
            .filter(|q| q.eq_ignore_ascii_case("mysql"))
            .and_then(|_| {
                MYSQL_TABLES
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
            })
            .map(|(n, why)| (format!("mysql.{n}"), *why)),
        Dialect::Postgres => PG_TABLES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(n, why)| ((*n).to_string(), *why)),
        Dialect::Sqlite => None,
    };
    match found {
        Some((name, why)) => Err(Refusal::Table { name, why }),
        None => Ok(()),
    }
}

/// MySQL and MariaDB statements that show more than this database's rows: password hashes
/// (`SHOW GRANTS`, `SHOW CREATE USER`, and the binary log, which records `CREATE USER` and
/// `SET PASSWORD`), other sessions' SQL (`SHOW PROCESSLIST`, `SHOW ENGINE … STATUS`,
/// `EXPLAIN FOR CONNECTION`, MariaDB's `SHOW EXPLAIN|ANALYZE FOR`), and replication state
/// with the accounts it uses. Other families have none of these statements.
fn show_of_secrets(sql: &str, t: &[Token]) -> Result<(), Refusal> {
    const HASHES_SHOWN: &str = "shows password hashes";
    const LOG_SHOWN: &str = "shows logged statements, password changes among them";
    const SQL_SHOWN: &str = "shows other sessions' SQL";
    const REPLICATION_SHOWN: &str = "shows replication state and the accounts it uses";
    let word = |i: usize, kw: &str| {
        t.get(i).is_some_and(|tok| {
            tok.kind == Kind::Word && sql[tok.start..tok.end].eq_ignore_ascii_case(kw)
        })
    };
    let explain = ["EXPLAIN", "DESCRIBE", "DESC"]
        .into_iter()
        .any(|w| word(0, w));
    if explain && (1..t.len()).any(|i| word(i, "FOR") && word(i + 1, "CONNECTION")) {
        return Err(Refusal::Table {
            name: "EXPLAIN FOR CONNECTION".into(),
            why: SQL_SHOWN,
        });
    }
    if !word(0, "SHOW") {
        return Ok(());
    }
    let full = usize::from(word(1, "FULL"));
    let (name, why) = if word(1, "GRANTS") {
        ("SHOW GRANTS", HASHES_SHOWN)
    } else if word(1, "CREATE") && word(2, "USER") {
        ("SHOW CREATE USER", HASHES_SHOWN)
    } else if word(1, "BINLOG") && word(2, "EVENTS") {
        ("SHOW BINLOG EVENTS", LOG_SHOWN)
    } else if word(1, "RELAYLOG") {
        ("SHOW RELAYLOG EVENTS", LOG_SHOWN)
    } else if word(1 + full, "PROCESSLIST") {
        ("SHOW PROCESSLIST", SQL_SHOWN)
    } else if word(1, "ENGINE") {
        ("SHOW ENGINE ... STATUS", SQL_SHOWN)
    } else if word(1, "EXPLAIN") || word(1, "ANALYZE") {
        ("SHOW EXPLAIN FOR", SQL_SHOWN)
    } else if let Some(w) = ["SLAVE", "REPLICA", "REPLICAS", "MASTER", "BINARY", "BINLOG"]
        .into_iter()
        .find(|w| word(1, w))
        .or_else(|| (word(1, "ALL") && (word(2, "SLAVES") || word(2, "REPLICAS"))).then_some("ALL"))
    {
        // SLAVE|REPLICA [STATUS|HOSTS], REPLICAS, MASTER|BINLOG STATUS, BINARY LOG STATUS,
        // MASTER|BINARY LOGS, MariaDB's ALL SLAVES|REPLICAS STATUS.
        let name = match w {
            "SLAVE" => "SHOW SLAVE ...",
            "REPLICA" | "REPLICAS" => "SHOW REPLICA ...",
            "MASTER" => "SHOW MASTER ...",
            "BINARY" => "SHOW BINARY LOG ...",
            "BINLOG" => "SHOW BINLOG STATUS",
            _ => "SHOW ALL SLAVES STATUS",
        };
        (name, REPLICATION_SHOWN)
    } else {
        return Ok(());
    };
    Err(Refusal::Table {
        name: name.into(),
        why,
    })
}

/// The name at token `i` (a word or a quoted name, unquoted) and the index of the token
/// after it (after a PostgreSQL `UESCAPE 'c'` clause too). Strings are not names.
fn name_at(sql: &str, t: &[Token], i: usize, dialect: Dialect) -> Option<(String, usize)> {
    let tok = &t[i];
    let text = &sql[tok.start..tok.end];
    match tok.kind {
        Kind::Word => {
            // PostgreSQL's `U&"..."`: the `U` is the start of the quoted name that follows.
            if dialect == Dialect::Postgres && unicode_prefix(sql, t, i) {
                return None;
            }
            Some((text.to_string(), i + 1))
        }
        Kind::Quoted => {
            let quote = text.as_bytes()[0];
            match quote {
                b'"' | b'`' => {
                    let inner = &text[1..text.len() - 1];
                    let doubled = if quote == b'"' { "\"\"" } else { "``" };
                    let plain = inner.replace(doubled, &(quote as char).to_string());
                    if dialect == Dialect::Postgres && i >= 2 && unicode_prefix(sql, t, i - 2) {
                        return Some(unicode_name(sql, t, i, &plain));
                    }
                    Some((plain, i + 1))
                }
                b'[' => Some((text[1..text.len() - 1].to_string(), i + 1)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// True when tokens `i`, `i + 1`, `i + 2` are `U`, `&` and a `"name"`, touching.
fn unicode_prefix(sql: &str, t: &[Token], i: usize) -> bool {
    let (Some(u), Some(amp), Some(q)) = (t.get(i), t.get(i + 1), t.get(i + 2)) else {
        return false;
    };
    u.kind == Kind::Word
        && sql[u.start..u.end].eq_ignore_ascii_case("u")
        && amp.kind == Kind::Punct(b'&')
        && u.end == amp.start
        && q.kind == Kind::Quoted
        && amp.end == q.start
        && sql.as_bytes()[q.start] == b'"'
}

/// A `U&"..."` name decoded (`\XXXX`, `\+XXXXXX`, or another escape character given by a
/// following `UESCAPE 'c'`), and the index of the token after it.
fn unicode_name(sql: &str, t: &[Token], i: usize, raw: &str) -> (String, usize) {
    let mut escape = '\\';
    let mut next = i + 1;
    if let (Some(kw), Some(lit)) = (t.get(i + 1), t.get(i + 2))
        && kw.kind == Kind::Word
        && sql[kw.start..kw.end].eq_ignore_ascii_case("uescape")
        && lit.kind == Kind::Quoted
    {
        let body = &sql[lit.start + 1..lit.end - 1];
        if let Some(c) = body.chars().next() {
            escape = c;
        }
        next = i + 3;
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != escape {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&escape) {
            chars.next();
            out.push(escape);
            continue;
        }
        let width = if chars.peek() == Some(&'+') {
            chars.next();
            6
        } else {
            4
        };
        let hex: String = chars.by_ref().take(width).collect();
        match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
            Some(decoded) => out.push(decoded),
            None => {
                // Not an escape the server accepts (it refuses the query): keep the text.
                out.push(escape);
                out.push_str(&hex);
            }
        }
    }
    (out, next)
}

/// True when the token before `i` is a `.` (the `U&` of a quoted name is skipped).
fn after_dot(t: &[Token], i: usize) -> bool {
    let before = if i >= 3 && t[i - 1].kind == Kind::Punct(b'&') {
        i - 2
    } else {
        i
    };
    before >= 1 && t[before - 1].kind == Kind::Punct(b'.')
}

/// The schema before the name at `i` (`schema.name`, `db.schema.name`), if any. The name
/// at `i` may be the quoted token of a `U&"name"` (its `U&` is skipped); the schema may be
/// a `U&"schema"`, with a `UESCAPE 'c'` clause too.
fn qualifier_of(sql: &str, t: &[Token], i: usize, dialect: Dialect) -> Option<String> {
    let unicode = |at: usize| dialect == Dialect::Postgres && unicode_prefix(sql, t, at);
    let start = if i >= 2 && unicode(i - 2) { i - 2 } else { i };
    if start < 2 || t[start - 1].kind != Kind::Punct(b'.') {
        return None;
    }
    let before = start - 2;
    // `U&"schema" UESCAPE 'c' .`: the quoted schema is three tokens before the dot.
    let escaped = before >= 4
        && t[before].kind == Kind::Quoted
        && t[before - 1].kind == Kind::Word
        && sql[t[before - 1].start..t[before - 1].end].eq_ignore_ascii_case("uescape")
        && unicode(before - 4);
    let at = if escaped { before - 2 } else { before };
    name_at(sql, t, at, dialect).map(|(n, _)| n)
}

/// A name as shown in a refusal: at most 64 characters.
fn shown(name: &str) -> String {
    match name.char_indices().nth(64) {
        Some((cut, _)) => format!("{}...", &name[..cut]),
        None => name.to_string(),
    }
}
