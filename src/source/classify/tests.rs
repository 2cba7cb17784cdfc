//! Tests of statement classification.

use super::*;

const ALL: [Dialect; 3] = [Dialect::MySql, Dialect::Postgres, Dialect::Sqlite];

fn ok_on(d: Dialect, sql: &str) {
    if let Err(e) = check(sql, d) {
        panic!("{d:?} refused {sql:?}: {e}");
    }
}

fn ok(sql: &str) {
    for d in ALL {
        ok_on(d, sql);
    }
}

fn refused_on(d: Dialect, sql: &str) -> String {
    match check(sql, d) {
        Ok(()) => panic!("{d:?} accepted {sql:?}"),
        Err(e) => e.to_string(),
    }
}

/// Refused on every dialect; returns the MySQL message.
fn refused(sql: &str) -> String {
    for d in [Dialect::Postgres, Dialect::Sqlite] {
        refused_on(d, sql);
    }
    assert!(check_any(sql).is_err(), "check_any accepted {sql:?}");
    refused_on(Dialect::MySql, sql)
}

#[test]
fn reads_of_every_shape_pass() {
    ok("SELECT 1");
    ok("select * from orders where note = 'DROP TABLE orders; --'");
    ok("  -- the daily report\n/* block */ SELECT 1;  -- done\n");
    ok("SELECT 1 ;");
    ok("SELECT 1; /* trailing */ -- comment");
    ok("(SELECT 1) UNION (SELECT 2)");
    ok("((SELECT a FROM t)) UNION ALL (SELECT b FROM u) ORDER BY 1");
    ok("WITH x AS (SELECT 1 AS a) SELECT * FROM x");
    ok(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT * FROM n",
    );
    ok("with a as (select 1), b (c) as (values (2)) select * from a, b");
    ok("WITH a AS (WITH b AS (SELECT 1) SELECT * FROM b) (SELECT * FROM a)");
    ok("SHOW TABLES");
    ok("show create table t");
    ok("EXPLAIN SELECT * FROM t");
    ok("EXPLAIN (SELECT 1) UNION (SELECT 2)");
    ok("DESC t");
    ok("DESCRIBE db.t col");
    ok("VALUES (1), (2)");
    ok("TABLE t");
    ok("SELECT \"delete\", `update` FROM t");
    ok("SELECT REPLACE(name, 'a', 'b'), CAST(x AS CHAR CHARACTER SET utf8mb4) FROM t");
    ok("SELECT SUBSTRING(s FROM 1 FOR 3) FROM t");
    ok("SELECT last_update, updated_into FROM t");
    ok("SELECT 'it''s', \"a\"\"b\" FROM t");
}

#[test]
fn dialect_specific_reads_pass() {
    ok_on(Dialect::MySql, "# report\nSELECT 1");
    ok_on(Dialect::MySql, "SELECT 1 -- x\n");
    ok_on(Dialect::MySql, "SELECT /*+ MAX_EXECUTION_TIME(1000) */ 1");
    ok_on(Dialect::MySql, "EXPLAIN FORMAT=JSON SELECT 1");
    ok_on(Dialect::MySql, "EXPLAIN ANALYZE SELECT 1");
    ok_on(Dialect::MySql, "EXPLAIN FORMAT = 'TREE' SELECT 1");
    ok_on(Dialect::MySql, "EXPLAIN ANALYZE FORMAT=TREE SELECT 1");
    ok("DESC text");
    ok("DESCRIBE `order` `id`");
    ok_on(Dialect::MySql, "SELECT 'a\\\\b', 'c\\nd' FROM t");
    ok_on(Dialect::MySql, "VALUES ROW(1, 2)");
    ok_on(Dialect::Postgres, "SELECT $$DROP TABLE t; $$, $x$ ' $x$");
    ok_on(Dialect::Postgres, "SELECT E'it\\'s; DROP'");
    ok_on(Dialect::Postgres, "SELECT 'C:\\temp' AS path");
    ok_on(Dialect::Postgres, "SELECT $1::int, a$b FROM t");
    ok_on(Dialect::Postgres, "EXPLAIN (ANALYZE, FORMAT JSON) SELECT 1");
    ok_on(
        Dialect::Postgres,
        "WITH x AS MATERIALIZED (SELECT 1), y AS NOT MATERIALIZED (SELECT 2) SELECT 1",
    );
    ok_on(
        Dialect::Postgres,
        "WITH RECURSIVE t(id) AS (SELECT 1 UNION SELECT id + 1 FROM t) \
         SEARCH DEPTH FIRST BY id, x SET ord CYCLE id SET c USING p SELECT * FROM t",
    );
    ok_on(Dialect::Postgres, "SELECT 1 # 2");
    ok_on(Dialect::Sqlite, "SELECT [order] FROM [my table]");
    ok_on(Dialect::Sqlite, "EXPLAIN QUERY PLAN SELECT 1");
}

#[test]
fn writes_are_refused_naming_the_kind() {
    for (sql, kind) in [
        ("DROP TABLE t", "DROP"),
        ("truncate t", "TRUNCATE"),
        ("ALTER TABLE t ADD c INT", "ALTER"),
        ("RENAME TABLE t TO u", "RENAME"),
        ("CREATE USER x IDENTIFIED BY 'p'", "CREATE"),
        ("GRANT ALL ON *.* TO x", "GRANT"),
        ("REVOKE ALL ON t FROM x", "REVOKE"),
        ("INSERT INTO t VALUES (1)", "INSERT"),
        ("UPDATE t SET a = 1", "UPDATE"),
        ("DELETE FROM t", "DELETE"),
        ("REPLACE t VALUES (1)", "REPLACE"),
        ("CALL p()", "CALL"),
        ("DO SLEEP(1)", "DO"),
        ("SET @a = 1", "SET"),
        ("LOAD DATA INFILE 'x' INTO TABLE t", "LOAD"),
        ("LOCK TABLES t WRITE", "LOCK"),
        ("UNLOCK TABLES", "UNLOCK"),
        ("FLUSH PRIVILEGES", "FLUSH"),
        ("KILL 5", "KILL"),
        ("SHUTDOWN", "SHUTDOWN"),
        ("INSTALL PLUGIN x SONAME 'y'", "INSTALL"),
        ("PREPARE s FROM 'DROP TABLE t'", "PREPARE"),
        ("EXECUTE s", "EXECUTE"),
        ("HANDLER t OPEN", "HANDLER"),
        ("COPY t TO '/tmp/x'", "COPY"),
        ("ANALYZE TABLE t", "ANALYZE"),
        ("OPTIMIZE TABLE t", "OPTIMIZE"),
        ("VACUUM", "VACUUM"),
        ("PRAGMA writable_schema = 1", "PRAGMA"),
        ("ATTACH 'x.db' AS x", "ATTACH"),
        ("BEGIN", "BEGIN"),
        ("COMMIT", "COMMIT"),
        (
            "MERGE INTO t USING u ON true WHEN MATCHED THEN DELETE",
            "MERGE",
        ),
        ("(DELETE FROM t)", "DELETE"),
        ("/* SELECT */ DROP TABLE t", "DROP"),
        ("-- SELECT\nDROP TABLE t", "DROP"),
        ("SELECT 1 INTO OUTFILE '/tmp/x'", "SELECT ... INTO"),
        ("SELECT 1 INTO DUMPFILE '/tmp/x'", "SELECT ... INTO"),
        ("SELECT 1 INTO @v", "SELECT ... INTO"),
        ("SELECT * INTO new_t FROM t", "SELECT ... INTO"),
        ("SELECT * FROM t FOR UPDATE", "SELECT ... FOR UPDATE"),
        ("SELECT * FROM t FOR SHARE", "SELECT ... FOR SHARE"),
        ("SELECT * FROM t FOR NO KEY UPDATE", "SELECT ... FOR NO"),
        (
            "SELECT * FROM t LOCK IN SHARE MODE",
            "SELECT ... LOCK IN SHARE MODE",
        ),
        ("(SELECT * FROM t) FOR UPDATE", "SELECT ... FOR UPDATE"),
        ("WITH x AS (SELECT 1) DELETE FROM t", "WITH ... DELETE"),
        ("WITH x AS (SELECT 1) UPDATE t SET a = 1", "WITH ... UPDATE"),
        (
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            "WITH ... DELETE",
        ),
        (
            "WITH a AS (SELECT 1), d AS (UPDATE t SET a = 1 RETURNING *) SELECT 1",
            "WITH ... UPDATE",
        ),
        (
            "WITH a AS (WITH d AS (DELETE FROM t RETURNING *) SELECT 1) SELECT 1",
            "WITH ... DELETE",
        ),
        ("EXPLAIN ANALYZE DELETE FROM t", "EXPLAIN DELETE"),
        ("EXPLAIN UPDATE t SET a = 1", "EXPLAIN UPDATE"),
        ("DESCRIBE DELETE FROM t", "DESCRIBE DELETE"),
        ("EXPLAIN (ANALYZE) DELETE FROM t", "EXPLAIN DELETE"),
        ("EXPLAIN (DELETE FROM t)", "EXPLAIN without a statement"),
        ("EXPLAIN (ANALYZE) (DELETE FROM t)", "EXPLAIN DELETE"),
        ("EXPLAIN ANALYZE", "EXPLAIN without a statement"),
        (
            "EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1",
            "EXPLAIN CREATE",
        ),
        ("EXPLAIN EXECUTE s", "EXPLAIN EXECUTE"),
        ("COPY (SELECT 1) TO '/tmp/x'", "COPY"),
        ("SET STATEMENT max_statement_time = 1 FOR SELECT 1", "SET"),
        ("\u{b}DROP TABLE t", "\u{b}"),
        (
            "SELECT * FROM t FOR UPDATE SKIP LOCKED",
            "SELECT ... FOR UPDATE",
        ),
        (
            "EXPLAIN WITH d AS (DELETE FROM t RETURNING *) SELECT 1",
            "EXPLAIN WITH ... DELETE",
        ),
        ("SELECT 1 UNION (SELECT 2) ; ", ""),
    ] {
        if kind.is_empty() {
            ok(sql);
            continue;
        }
        let msg = refused(sql);
        assert_eq!(
            msg,
            format!("refused: only read queries may run (found {kind})"),
            "{sql}"
        );
    }
}

#[test]
fn one_statement_only() {
    for sql in [
        "SELECT 1; DROP TABLE t",
        "SELECT 1;DROP TABLE t;",
        "SELECT 1;;",
        "SELECT ';'; DROP TABLE t",
        "SELECT 1; -- x\n DROP TABLE t",
        "SELECT 1 /* ; */; SELECT 2",
    ] {
        assert_eq!(refused(sql), "refused: more than one statement", "{sql}");
    }
    assert_eq!(refused("  -- nothing\n"), "refused: the query is empty");
    assert_eq!(refused(";"), "refused: the query is empty");
}

#[test]
fn comments_and_strings_cannot_hide_code() {
    // MySQL: `--` needs a space after it; `1--1` is arithmetic, so the DROP is a statement.
    assert_eq!(
        refused_on(Dialect::MySql, "SELECT 1--1; DROP TABLE t"),
        "refused: more than one statement"
    );
    // `#` is only a comment on MySQL: on PostgreSQL the `;` ends the statement.
    assert_eq!(
        refused_on(Dialect::Postgres, "SELECT 1 #; DROP TABLE t"),
        "refused: more than one statement"
    );
    // Executable comments run on MySQL.
    assert!(
        refused_on(Dialect::MySql, "SELECT 1 /*! ; DROP TABLE t */").contains("executable comment")
    );
    assert!(
        refused_on(Dialect::MySql, "SELECT 1 /*M!100000 ; DROP TABLE t */")
            .contains("executable comment")
    );
    // Nested comments read differently on PostgreSQL and MySQL.
    assert!(refused("SELECT 1 /* /* */ ; DROP TABLE t /* */ */").contains("nested"));
    // `\'` ends a string only without backslash escapes: refused as ambiguous.
    assert!(refused_on(Dialect::MySql, "SELECT 'a\\'; DROP TABLE t; -- '").contains("backslash"));
    assert!(
        refused_on(Dialect::MySql, "SELECT \"a\\\"; DROP TABLE t; -- \"").contains("backslash")
    );
    assert!(
        refused_on(Dialect::Postgres, "SELECT 'a\\'; DROP TABLE t; -- '").contains("backslash")
    );
    assert!(refused_on(Dialect::Postgres, "SELECT 'C:\\'").contains("backslash"));
    assert!(refused_on(Dialect::MySql, "SELECT 'C:\\'").contains("backslash"));
    // PostgreSQL reads `1$a$` as one token; either way the `;` is seen.
    assert_eq!(
        refused_on(Dialect::Postgres, "SELECT 1$a$;DROP TABLE t"),
        "refused: more than one statement"
    );
    // Dollar quotes are PostgreSQL only: on MySQL `$a$` is a name.
    assert_eq!(
        refused_on(Dialect::MySql, "SELECT 1 $a$; DROP TABLE t; $a$"),
        "refused: more than one statement"
    );
    // A lone CR ends a line comment on PostgreSQL only: refused everywhere.
    assert!(refused("SELECT 1 -- x\r; DROP TABLE t").contains("lone carriage return"));
    // Unterminated text is refused.
    for sql in [
        "SELECT 'a",
        "SELECT \"a",
        "SELECT `a",
        "SELECT 1 /* x",
        "WITH a AS (SELECT 1",
    ] {
        assert!(refused(sql).starts_with("refused: "), "{sql}");
    }
    assert!(refused_on(Dialect::Postgres, "SELECT $x$ abc").contains("unterminated"));
}

#[test]
fn apply_time_check_accepts_any_family() {
    assert!(check_any("SELECT $$;$$").is_ok());
    assert!(check_any("# c\nSELECT 1").is_ok());
    assert!(check_any("SELECT [a;b] FROM t").is_ok());
    assert_eq!(
        check_any("DROP TABLE t").unwrap_err().to_string(),
        "refused: only read queries may run (found DROP)"
    );
}

#[test]
fn deep_nesting_is_refused_quickly() {
    let nested = |n: usize| {
        format!(
            "{}SELECT 1{}",
            "WITH a AS (".repeat(n),
            ") SELECT 1".repeat(n)
        )
    };
    let started = std::time::Instant::now();
    assert!(refused(&nested(50_000)).contains("nested too deeply"));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    ok(&nested(20));
    let parens = format!("{}SELECT 1{}", "(".repeat(100_000), ")".repeat(100_000));
    ok(&parens);
}

#[test]
fn costs_well_under_a_millisecond() {
    let mut sql = String::from("-- big report\nWITH a AS (SELECT id, 'x;y' AS s FROM t) SELECT ");
    while sql.len() < 10_000 {
        sql.push_str("a.col_name, 'literal DROP', (SELECT MAX(x) FROM u WHERE u.id = a.id), ");
    }
    sql.push_str("1 FROM a /* end */;");
    let n = 200;
    let started = std::time::Instant::now();
    for _ in 0..n {
        for d in ALL {
            check(&sql, d).unwrap();
        }
    }
    let per = started.elapsed() / (n * 3);
    println!(
        "classifier: {} ns per query of {} bytes",
        per.as_nanos(),
        sql.len()
    );
    // Unoptimised test builds are ~20x slower than release; the figure that counts is release.
    let limit = if cfg!(debug_assertions) { 20 } else { 1 };
    assert!(per < std::time::Duration::from_millis(limit), "{per:?}");
}

#[test]
fn comments_end_where_every_server_ends_them() {
    // MySQL and SQLite end a line comment only at LF, PostgreSQL at CR too.
    for sql in [
        "#\rSELECT '\nDROP TABLE t -- '",
        "-- x\rSELECT '\nDROP TABLE t -- '",
    ] {
        let d = if sql.starts_with('#') {
            vec![Dialect::MySql]
        } else {
            ALL.to_vec()
        };
        for d in d {
            assert!(
                refused_on(d, sql).contains("lone carriage return"),
                "{d:?} {sql:?}"
            );
        }
    }
    ok("-- windows line ending\r\nSELECT 1\r\n");
    // `--` then DEL is a comment on MySQL; a non-ASCII byte after it is refused.
    assert!(refused_on(Dialect::MySql, "SELECT 1 --\u{7f} '\nINTO @x -- '").contains("INTO"));
    assert!(refused_on(Dialect::MySql, "SELECT 1 --\u{a0}\nDROP TABLE t").contains("non-ASCII"));
}

#[test]
fn a_backslash_escaped_quote_is_named_as_such() {
    for d in [Dialect::MySql, Dialect::Postgres] {
        assert!(
            refused_on(d, "SELECT 'it\\'s'").contains("double the quote"),
            "{d:?}"
        );
    }
    ok_on(Dialect::MySql, "SELECT 'C:\\\\reports' AS path");
}

#[test]
fn dangerous_functions_are_refused_in_every_spelling() {
    for (d, sql, want) in [
        (
            Dialect::MySql,
            "SELECT LOAD_FILE('/etc/passwd')",
            "refused: LOAD_FILE() reads server files",
        ),
        (
            Dialect::MySql,
            "select load_file/* x */ ('/etc/passwd')",
            "load_file()",
        ),
        (
            Dialect::MySql,
            "SELECT `load_file`('/etc/passwd')",
            "load_file()",
        ),
        (
            Dialect::MySql,
            "SELECT GET_LOCK('x', 10)",
            "GET_LOCK() takes locks",
        ),
        (
            Dialect::MySql,
            "SELECT release_all_locks()",
            "release_all_locks()",
        ),
        (
            Dialect::MySql,
            "SELECT IS_USED_LOCK('x'), IS_FREE_LOCK('y')",
            "IS_USED_LOCK()",
        ),
        (
            Dialect::MySql,
            "SELECT BENCHMARK(100000000, MD5('x'))",
            "BENCHMARK()",
        ),
        (
            Dialect::MySql,
            "SELECT MASTER_POS_WAIT('log', 4)",
            "MASTER_POS_WAIT()",
        ),
        (
            Dialect::MySql,
            "SELECT source_pos_wait('log', 4)",
            "source_pos_wait()",
        ),
        (
            Dialect::MySql,
            "SELECT master_gtid_wait('0-1-1')",
            "master_gtid_wait()",
        ),
        (
            Dialect::MySql,
            "SELECT db.sys_exec('id')",
            "sys_exec() runs programs",
        ),
        (Dialect::MySql, "SELECT sys_eval('id')", "sys_eval()"),
        (
            Dialect::MySql,
            "SELECT spider_direct_sql('DELETE FROM t', 'tmp', 'srv \"x\"')",
            "spider_direct_sql() reaches other servers",
        ),
        (
            Dialect::MySql,
            "SELECT NEXTVAL(s)",
            "NEXTVAL() changes a sequence",
        ),
        (
            Dialect::MySql,
            "SELECT keyring_key_fetch('k')",
            "keyring_key_fetch()",
        ),
        (
            Dialect::MySql,
            "SELECT 1 FROM t WHERE id = (SELECT GET_LOCK('a', 1))",
            "GET_LOCK()",
        ),
        (
            Dialect::MySql,
            "WITH x AS (SELECT load_file('/etc/shadow') AS f) SELECT * FROM x",
            "load_file()",
        ),
        (
            Dialect::MySql,
            "SHOW TABLES WHERE LOAD_FILE('/etc/passwd') IS NOT NULL",
            "LOAD_FILE()",
        ),
        (
            Dialect::Postgres,
            "select PG_CATALOG.pg_read_file('/etc/passwd')",
            "refused: pg_read_file() reads server files",
        ),
        (
            Dialect::Postgres,
            "SELECT pg_catalog.\"pg_read_file\"('/etc/passwd')",
            "pg_read_file()",
        ),
        (
            Dialect::Postgres,
            "SELECT \"dblink\"('host=x', 'select 1')",
            "dblink() reaches other servers",
        ),
        (
            Dialect::Postgres,
            "select \"dblink_exec\"('dbname=x', 'COPY t TO PROGRAM ''id''')",
            "dblink_exec()",
        ),
        (
            Dialect::Postgres,
            "SELECT * FROM dblink_connect_u('x')",
            "dblink_connect_u()",
        ),
        (
            Dialect::Postgres,
            "SELECT U&\"pg\\005fread\\005ffile\"('/etc/passwd')",
            "pg_read_file()",
        ),
        (
            Dialect::Postgres,
            "SELECT U&\"pg!005fls!005fdir\" UESCAPE '!' ('/')",
            "pg_ls_dir()",
        ),
        (
            Dialect::Postgres,
            "SELECT u&\"lo\\+00005fimport\"('/etc/passwd')",
            "lo_import()",
        ),
        (
            Dialect::Postgres,
            "SELECT pg_read_binary_file('/etc/passwd')",
            "pg_read_binary_file()",
        ),
        (
            Dialect::Postgres,
            "SELECT * FROM pg_ls_dir('/')",
            "pg_ls_dir()",
        ),
        (Dialect::Postgres, "SELECT pg_ls_waldir()", "pg_ls_waldir()"),
        (
            Dialect::Postgres,
            "SELECT pg_stat_file('/etc/passwd')",
            "pg_stat_file()",
        ),
        (
            Dialect::Postgres,
            "SELECT lo_import('/etc/passwd')",
            "lo_import() reads server files",
        ),
        (
            Dialect::Postgres,
            "SELECT lo_export(1, '/tmp/x')",
            "lo_export()",
        ),
        (
            Dialect::Postgres,
            "SELECT lo_get(1), lo_from_bytea(0, 'x')",
            "lo_get()",
        ),
        (
            Dialect::Postgres,
            "SELECT loread(lo_open(1, 262144), 10)",
            "loread()",
        ),
        (
            Dialect::Postgres,
            "SELECT pg_terminate_backend(123)",
            "pg_terminate_backend() disturbs other sessions",
        ),
        (
            Dialect::Postgres,
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity",
            "pg_cancel_backend()",
        ),
        (
            Dialect::Postgres,
            "SELECT pg_reload_conf()",
            "pg_reload_conf() changes the server's state",
        ),
        (
            Dialect::Postgres,
            "SELECT pg_rotate_logfile()",
            "pg_rotate_logfile()",
        ),
        (
            Dialect::Postgres,
            "SELECT set_config('role', 'postgres', false)",
            "set_config()",
        ),
        (
            Dialect::Postgres,
            "SELECT pg_advisory_lock(1)",
            "pg_advisory_lock() takes locks",
        ),
        (
            Dialect::Postgres,
            "SELECT pg_try_advisory_xact_lock_shared(1)",
            "pg_try_advisory_xact_lock_shared()",
        ),
        (
            Dialect::Postgres,
            "SELECT query_to_xml('select 1', true, false, '')",
            "query_to_xml() runs SQL given as text",
        ),
        (
            Dialect::Postgres,
            "SELECT query_to_xml_and_xmlschema('select 1', true, false, '')",
            "query_to_xml_and_xmlschema()",
        ),
        (
            Dialect::Postgres,
            "SELECT table_to_xml('pg_authid', true, false, '')",
            "table_to_xml()",
        ),
        (
            Dialect::Postgres,
            "SELECT cursor_to_xml('c', 1, true, false, '')",
            "cursor_to_xml()",
        ),
        (
            Dialect::Postgres,
            "SELECT * FROM ts_stat('SELECT v FROM t')",
            "ts_stat()",
        ),
        (
            Dialect::Postgres,
            "SELECT pg_file_write('/tmp/x', 'y', false)",
            "pg_file_write() writes server files",
        ),
        (
            Dialect::Postgres,
            "SELECT pg_notify('c', 'x')",
            "pg_notify()",
        ),
        (
            Dialect::Postgres,
            "SELECT pg_logical_emit_message(true, 'p', 'x')",
            "pg_logical_emit_message()",
        ),
        (
            Dialect::Postgres,
            "SELECT pg_switch_wal()",
            "pg_switch_wal()",
        ),
        (
            Dialect::Postgres,
            "SELECT pg_create_restore_point('x')",
            "pg_create_restore_point()",
        ),
        (Dialect::Postgres, "SELECT pg_promote()", "pg_promote()"),
        (Dialect::Postgres, "SELECT setval('s', 1)", "setval()"),
        (
            Dialect::Postgres,
            "SELECT pg_stat_reset()",
            "pg_stat_reset()",
        ),
        (
            Dialect::Postgres,
            "SELECT pg_stat_reset_shared('bgwriter')",
            "pg_stat_reset_shared()",
        ),
        (
            Dialect::Postgres,
            "SELECT pg_stat_statements_reset()",
            "pg_stat_statements_reset()",
        ),
        (
            Dialect::Postgres,
            "SELECT pg_log_backend_memory_contexts(1)",
            "pg_log_backend_memory_contexts()",
        ),
        (
            Dialect::Postgres,
            "SELECT pg_import_system_collations('pg_catalog')",
            "pg_import_system_collations()",
        ),
        (
            Dialect::Postgres,
            "SELECT * FROM pg_logical_slot_get_changes('s', NULL, NULL)",
            "pg_logical_slot_get_changes()",
        ),
        (
            Dialect::Postgres,
            "SELECT cron.schedule('* * * * *', 'DELETE FROM t')",
            "schedule() runs SQL given as text",
        ),
        (
            Dialect::Postgres,
            "SELECT \"cron\".\"schedule_in_database\"('j', '* * * * *', 'x', 'db')",
            "schedule_in_database()",
        ),
        (
            Dialect::Postgres,
            "EXPLAIN ANALYZE SELECT pg_read_file('/etc/passwd')",
            "pg_read_file()",
        ),
        (
            Dialect::Sqlite,
            "SELECT load_extension('/tmp/x.so')",
            "load_extension() loads code",
        ),
        (
            Dialect::Sqlite,
            "SELECT readfile('/etc/passwd')",
            "readfile() reads server files",
        ),
        (
            Dialect::Sqlite,
            "SELECT writefile('/tmp/x', 'y')",
            "writefile()",
        ),
        (
            Dialect::Sqlite,
            "SELECT fts3_tokenizer('simple')",
            "fts3_tokenizer()",
        ),
        (Dialect::Sqlite, "SELECT edit('x', 'vi')", "edit()"),
        (
            Dialect::Sqlite,
            "SELECT [readfile]('/etc/passwd')",
            "readfile()",
        ),
    ] {
        let msg = refused_on(d, sql);
        assert!(msg.contains(want), "{d:?} {sql:?}: {msg}");
        assert!(msg.starts_with("refused: ") && !msg.contains('\n'), "{msg}");
    }
}

#[test]
fn password_tables_are_refused_by_name() {
    for (d, sql, want) in [
        (
            Dialect::MySql,
            "SELECT * FROM mysql.user",
            "refused: mysql.user holds password hashes",
        ),
        (
            Dialect::MySql,
            "select authentication_string from `mysql`.`USER`",
            "mysql.user",
        ),
        (
            Dialect::MySql,
            "SELECT * FROM mysql . global_priv",
            "mysql.global_priv",
        ),
        (Dialect::MySql, "TABLE mysql.user", "mysql.user"),
        (Dialect::MySql, "DESC mysql.user", "mysql.user"),
        (
            Dialect::MySql,
            "SELECT * FROM t JOIN mysql.servers s ON true",
            "mysql.servers holds passwords",
        ),
        (
            Dialect::MySql,
            "SHOW GRANTS FOR root",
            "refused: SHOW GRANTS shows password hashes",
        ),
        (Dialect::MySql, "show create user root", "SHOW CREATE USER"),
        (
            Dialect::Postgres,
            "SELECT * FROM pg_shadow",
            "refused: pg_shadow holds password hashes",
        ),
        (
            Dialect::Postgres,
            "SELECT rolpassword FROM pg_catalog.PG_AUTHID",
            "pg_authid",
        ),
        (
            Dialect::Postgres,
            "SELECT * FROM \"pg_authid\"",
            "pg_authid",
        ),
        (
            Dialect::Postgres,
            "SELECT * FROM pg_user_mappings",
            "pg_user_mappings holds passwords",
        ),
        (
            Dialect::Postgres,
            "SELECT * FROM pg_user_mapping",
            "pg_user_mapping",
        ),
        (
            Dialect::Postgres,
            "SELECT * FROM pg_hba_file_rules",
            "pg_hba_file_rules reads server files",
        ),
    ] {
        let msg = refused_on(d, sql);
        assert!(msg.contains(want), "{d:?} {sql:?}: {msg}");
    }
}

#[test]
fn ordinary_reads_and_look_alikes_pass() {
    for sql in [
        "SELECT sleep_lock, load_file_name, dblink_url FROM t",
        "SELECT 'pg_read_file(1)', 'LOAD_FILE(x)' AS s",
        "SELECT COUNT(*), SUM(amount), AVG(x), MIN(d), MAX(d) FROM orders GROUP BY customer",
        "SELECT id, ROW_NUMBER() OVER (PARTITION BY c ORDER BY d) FROM t",
        "WITH a AS (SELECT 1 AS x) SELECT x FROM a",
        "SELECT CAST(amount AS DECIMAL(10, 2)), COALESCE(a, b), LOWER(name), UPPER(n) FROM t",
        "SELECT LOCATE('a', s), LOG(2), LOG10(x) FROM t",
        "SELECT user, host FROM accounts",
        "SELECT u.user FROM users u",
        "SELECT * FROM app.user",
        "SELECT * FROM reports.pg_authid_copy",
    ] {
        ok(sql);
    }
    // The timeout stops a sleep on the server: kept for the cancel and timeout tests.
    ok_on(Dialect::MySql, "SELECT SLEEP(1)");
    ok_on(Dialect::Postgres, "SELECT pg_sleep(1)");
    ok_on(
        Dialect::MySql,
        "SELECT NOW(), CURDATE(), DATE_FORMAT(NOW(), '%Y')",
    );
    ok_on(
        Dialect::MySql,
        "SELECT JSON_EXTRACT(doc, '$.a'), JSON_OBJECT('k', 1) FROM t",
    );
    ok_on(
        Dialect::MySql,
        "SELECT * FROM other_db.orders o JOIN `shop`.`items` i ON i.id = o.item",
    );
    ok_on(Dialect::MySql, "SELECT * FROM mysql.time_zone_name");
    ok_on(Dialect::MySql, "SHOW TABLES");
    ok_on(Dialect::MySql, "SELECT user FROM mysql_users.user");
    ok_on(
        Dialect::Postgres,
        "SELECT now(), current_date, x::date, jsonb_build_object('a', 1) FROM t",
    );
    ok_on(
        Dialect::Postgres,
        "SELECT doc->>'a', jsonb_path_query(doc, '$.b') FROM t",
    );
    ok_on(Dialect::Postgres, "SELECT rolname FROM pg_roles");
    ok_on(Dialect::Postgres, "SELECT * FROM pg_stat_activity");
    ok_on(
        Dialect::Postgres,
        "SELECT lower(name), log(2.0), to_char(now(), 'YYYY') FROM t",
    );
    ok_on(Dialect::Postgres, "SELECT U&\"d\\0061ta\" FROM t");
    ok_on(
        Dialect::Postgres,
        "SELECT 'pg_authid'::text, $$pg_read_file('x')$$",
    );
    ok_on(Dialect::Postgres, "SELECT schedule('x') FROM t");
    ok_on(
        Dialect::Postgres,
        "SELECT o.lo_id, o.lo_limit, lo_value FROM orders o",
    );
    ok_on(
        Dialect::Postgres,
        "SELECT (o.total).amount, t.c.d FROM orders o, t",
    );
    ok_on(
        Dialect::Sqlite,
        "SELECT date('now'), json_extract(j, '$.a'), group_concat(x) FROM t",
    );
    // MySQL's list is MySQL's: other families' function names are ordinary there.
    ok_on(Dialect::MySql, "SELECT pg_read_file('x')");
    ok_on(Dialect::Postgres, "SELECT load_file('x')");
    ok_on(Dialect::Sqlite, "SELECT * FROM mysql.user");
}

#[test]
fn unicode_names_keep_their_schema() {
    for (sql, want) in [
        (
            "SELECT aws_lambda.U&\"invoke\"('arn', '{}'::json)",
            "refused: invoke() reaches other servers",
        ),
        (
            "SELECT cron.U&\"schedule\"('x','y')",
            "refused: schedule() runs SQL given as text",
        ),
        (
            "SELECT cron . u&\"sch!0065dule\" UESCAPE '!' ('x','y')",
            "schedule() runs SQL",
        ),
        (
            "SELECT U&\"cr!006fn\" UESCAPE '!' . U&\"schedule\"('x','y')",
            "schedule() runs SQL",
        ),
        (
            "SELECT U&\"aws\\005flambda\".\"invoke\"('arn', '{}')",
            "invoke() reaches other servers",
        ),
        (
            "SELECT net.http_post('http://x', '{}'::jsonb)",
            "reaches other servers",
        ),
        (
            "SELECT net.U&\"collect_response\"(1)",
            "collect_response() reaches other servers",
        ),
        (
            "SELECT utl_file.fopen('/tmp', 'x', 'w')",
            "fopen() writes server files",
        ),
    ] {
        let msg = refused_on(Dialect::Postgres, sql);
        assert!(msg.contains(want), "{sql:?}: {msg}");
    }
    // Other schemas' functions of those names stay fine.
    ok_on(Dialect::Postgres, "SELECT app.U&\"schedule\"('x','y')");
    ok_on(Dialect::Postgres, "SELECT U&\"app\".U&\"invoke\"('x')");
}

#[test]
fn extension_functions_that_run_text_or_reach_out_are_refused() {
    for (sql, want) in [
        (
            "SELECT * FROM crosstab($$SELECT 'a'::text,'b'::text,pg_read_file('/etc/passwd')$$) \
             AS t(r text, b text)",
            "refused: crosstab() runs SQL given as text",
        ),
        (
            "SELECT * FROM CROSSTAB3('select 1') AS t(a text)",
            "CROSSTAB3()",
        ),
        (
            "SELECT * FROM public.crosstab_hash('a', 'b') AS t(a text)",
            "crosstab_hash()",
        ),
        (
            "SELECT ($$SELECT 'a'::text, 'b'::text, 'c'::text$$::text).crosstab",
            "crosstab()",
        ),
        (
            "SELECT * FROM connectby('t', 'id', 'parent', '1', 0) AS c(a int, b int, l int)",
            "connectby()",
        ),
        (
            "SELECT * FROM pgr_dijkstra('SELECT id, source, target, cost FROM e', 1, 2)",
            "pgr_dijkstra() runs SQL given as text",
        ),
        (
            "SELECT ('SELECT id, source, target, cost FROM e'::text).pgr_bridges",
            "pgr_bridges()",
        ),
        (
            "SELECT http_get('http://169.254.169.254/')",
            "refused: http_get() reaches other servers",
        ),
        (
            "SELECT content FROM http(('GET', 'http://x', NULL, NULL, NULL)::http_request)",
            "http()",
        ),
        (
            "SELECT http_post('http://x', 'a', 'text/plain')",
            "http_post()",
        ),
        (
            "SELECT http_put('http://x', 'a', 'text/plain')",
            "http_put()",
        ),
        (
            "SELECT http_patch('http://x', 'a', 'text/plain')",
            "http_patch()",
        ),
        ("SELECT http_delete('http://x')", "http_delete()"),
        ("SELECT http_head('http://x')", "http_head()"),
        (
            "SELECT http_set_curlopt('CURLOPT_PROXY', 'x')",
            "http_set_curlopt()",
        ),
        ("SELECT ('http://x'::text).http_get", "http_get()"),
        (
            "SELECT get_raw_page('pg_authid', 0)",
            "refused: get_raw_page() reads raw data pages",
        ),
        (
            "SELECT * FROM heap_page_items(get_raw_page('t', 0))",
            "heap_page_items()",
        ),
        (
            "SELECT * FROM bt_page_items('t_pkey', 1)",
            "bt_page_items()",
        ),
        (
            "SELECT pg_background_launch('DELETE FROM t')",
            "pg_background_launch() runs SQL given as text",
        ),
        ("SELECT pg_background_result(1)", "pg_background_result()"),
    ] {
        let msg = refused_on(Dialect::Postgres, sql);
        assert!(msg.contains(want), "{sql:?}: {msg}");
    }
    for sql in [
        "SELECT http_status, http_code FROM t",
        "SELECT r.http_status, r.http_code FROM requests r",
        "SELECT * FROM crosstab_report",
        "SELECT * FROM reports.crosstab_report c WHERE c.crosstab_total > 0",
        "SELECT page_no, connect_by FROM t",
        "SELECT * FROM net_sales n JOIN utl_files u ON u.id = n.id",
        "SELECT net.total FROM sales net",
    ] {
        ok_on(Dialect::Postgres, sql);
    }
}

#[test]
fn show_forms_with_secrets_or_other_sessions_are_refused() {
    for (sql, want) in [
        (
            "SHOW BINLOG EVENTS",
            "refused: SHOW BINLOG EVENTS shows logged statements",
        ),
        (
            "show binlog events in 'mysql-bin.000001' from 4 limit 10",
            "SHOW BINLOG EVENTS",
        ),
        ("SHOW RELAYLOG EVENTS", "SHOW RELAYLOG EVENTS"),
        (
            "SHOW PROCESSLIST",
            "refused: SHOW PROCESSLIST shows other sessions' SQL",
        ),
        ("show full processlist", "SHOW PROCESSLIST"),
        ("SHOW ENGINE INNODB STATUS", "SHOW ENGINE ... STATUS shows"),
        ("SHOW ENGINE innodb MUTEX", "SHOW ENGINE"),
        (
            "SHOW SLAVE STATUS",
            "refused: SHOW SLAVE ... shows replication state",
        ),
        ("SHOW SLAVE HOSTS", "SHOW SLAVE"),
        ("SHOW SLAVE 'conn' STATUS", "SHOW SLAVE"),
        ("SHOW REPLICA STATUS", "SHOW REPLICA"),
        ("SHOW REPLICAS", "SHOW REPLICA"),
        ("SHOW ALL SLAVES STATUS", "SHOW ALL SLAVES STATUS"),
        ("SHOW MASTER STATUS", "SHOW MASTER"),
        ("SHOW BINARY LOG STATUS", "SHOW BINARY LOG"),
        ("SHOW BINLOG STATUS", "SHOW BINLOG STATUS"),
        (
            "EXPLAIN FOR CONNECTION 5",
            "refused: EXPLAIN FOR CONNECTION shows other sessions' SQL",
        ),
        (
            "explain format=json for connection 5",
            "EXPLAIN FOR CONNECTION",
        ),
        ("DESC FOR CONNECTION 5", "EXPLAIN FOR CONNECTION"),
        ("SHOW EXPLAIN FOR 5", "SHOW EXPLAIN FOR"),
        ("SHOW ANALYZE FORMAT=JSON FOR 5", "SHOW EXPLAIN FOR"),
    ] {
        let msg = refused_on(Dialect::MySql, sql);
        assert!(msg.contains(want), "{sql:?}: {msg}");
        assert!(check_any(sql).is_err(), "check_any accepted {sql:?}");
    }
    for sql in [
        "SHOW TABLES",
        "SHOW FULL TABLES FROM db",
        "SHOW COLUMNS FROM t",
        "SHOW FULL COLUMNS FROM t",
        "SHOW CREATE TABLE t",
        "SHOW CREATE VIEW v",
        "SHOW VARIABLES LIKE 'max%'",
        "SHOW STATUS",
        "SHOW GLOBAL STATUS LIKE 'Threads%'",
        "SHOW INDEX FROM t",
        "SHOW DATABASES",
        "SHOW ENGINES",
        "EXPLAIN SELECT * FROM t",
        "DESC t",
    ] {
        ok_on(Dialect::MySql, sql);
    }
    ok_on(Dialect::Postgres, "SHOW ALL");
    ok_on(Dialect::Postgres, "SHOW server_version");
}
