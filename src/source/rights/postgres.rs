//! PostgreSQL: what the connected role can do beyond reading, from the catalogs.

use sqlx::PgConnection;

/// PostgreSQL's predefined roles that reach beyond reading, in report order.
const PG_ROLES: [&str; 8] = [
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
    "pg_signal_backend",
    "pg_write_all_data",
    "pg_checkpoint",
    "pg_create_subscription",
    "pg_maintain",
];
/// Extensions whose functions reach other servers, files or raw pages, or run SQL from text
/// (the ones `classify` refuses by name, for views and functions that text cannot see into).
const PG_FUNCTION_EXTENSIONS: [&str; 12] = [
    "dblink",
    "adminpack",
    "pg_background",
    "aws_s3",
    "aws_lambda",
    "tablefunc",
    "http",
    "pg_net",
    "orafce",
    "pgrouting",
    "pageinspect",
    "pg_cron",
];
/// Foreign data wrappers: usable through the wrapper or one of its servers.
const PG_WRAPPERS: [&str; 6] = [
    "postgres_fdw",
    "file_fdw",
    "mysql_fdw",
    "oracle_fdw",
    "tds_fdw",
    "odbc_fdw",
];

/// PostgreSQL: role attributes, predefined roles, database and schema `CREATE`, table
/// writes, ownership and usable extensions.
///
/// # Errors
/// The server's error.
pub async fn postgres(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    let mut out = Vec::new();
    type Attributes = (
        Option<bool>,
        Option<bool>,
        Option<bool>,
        Option<bool>,
        Option<bool>,
    );
    let (sup, createrole, createdb, replication, bypassrls): Attributes = sqlx::query_as(
        "SELECT bool_or(rolsuper), bool_or(rolcreaterole), bool_or(rolcreatedb), \
         bool_or(rolreplication), bool_or(rolbypassrls) \
         FROM pg_catalog.pg_roles WHERE pg_catalog.pg_has_role(current_user, oid, 'MEMBER')",
    )
    .fetch_one(&mut *conn)
    .await?;
    for (has, what) in [
        (sup, "superuser"),
        (createrole, "createrole"),
        (createdb, "createdb"),
        (replication, "replication"),
        (bypassrls, "bypassrls"),
    ] {
        if has == Some(true) {
            out.push(what.to_string());
        }
    }
    let roles: Vec<(String,)> = sqlx::query_as(
        "SELECT rolname::text FROM pg_catalog.pg_roles WHERE rolname = ANY($1) \
         AND pg_catalog.pg_has_role(current_user, oid, 'MEMBER')",
    )
    .bind(PG_ROLES.to_vec())
    .fetch_all(&mut *conn)
    .await?;
    for r in PG_ROLES {
        if roles.iter().any(|(name,)| name == r) {
            out.push(r.to_string());
        }
    }
    let (create_db,): (bool,) =
        sqlx::query_as("SELECT pg_catalog.has_database_privilege(current_database(), 'CREATE')")
            .fetch_one(&mut *conn)
            .await?;
    if create_db {
        out.push("CREATE on the database".into());
    }
    let schemas: Vec<(String,)> = sqlx::query_as(
        "SELECT nspname::text FROM pg_catalog.pg_namespace \
         WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' \
         AND pg_catalog.has_schema_privilege(oid, 'CREATE') ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?;
    match schemas.as_slice() {
        [] => {}
        [(one,)] => out.push(format!("CREATE in schema {one}")),
        [(first,), rest @ ..] => out.push(format!(
            "CREATE in schema {first} (and {} more)",
            rest.len()
        )),
    }
    let writes: Vec<(String,)> = sqlx::query_as(
        "SELECT x.p FROM unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) \
         WITH ORDINALITY AS x(p, o) \
         WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class c \
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
           WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') \
           AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' \
           AND CASE WHEN x.p IN ('INSERT', 'UPDATE') \
             THEN pg_catalog.has_any_column_privilege(c.oid, x.p) \
             ELSE pg_catalog.has_table_privilege(c.oid, x.p) END) \
         ORDER BY x.o",
    )
    .fetch_all(&mut *conn)
    .await?;
    out.extend(writes.into_iter().map(|(p,)| format!("{p} on tables")));
    let (owns,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c \
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
           WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') \
           AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' \
           AND pg_catalog.pg_has_role(c.relowner, 'USAGE'))",
    )
    .fetch_one(&mut *conn)
    .await?;
    if owns {
        out.push("owns tables".into());
    }
    let extensions: Vec<(String,)> = sqlx::query_as(
        "SELECT e.extname::text FROM pg_catalog.pg_extension e \
         WHERE (e.extname = ANY($1) AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d \
             JOIN pg_catalog.pg_proc p ON p.oid = d.objid \
             WHERE d.classid = 'pg_catalog.pg_proc'::regclass \
             AND d.refclassid = 'pg_catalog.pg_extension'::regclass \
             AND d.refobjid = e.oid AND d.deptype = 'e' \
             AND pg_catalog.has_function_privilege(p.oid, 'EXECUTE'))) \
         OR (e.extname = ANY($2) AND EXISTS (SELECT 1 FROM pg_catalog.pg_foreign_data_wrapper w \
             WHERE w.fdwname = e.extname \
             AND (pg_catalog.has_foreign_data_wrapper_privilege(w.oid, 'USAGE') \
               OR EXISTS (SELECT 1 FROM pg_catalog.pg_foreign_server s \
                 WHERE s.srvfdw = w.oid AND pg_catalog.has_server_privilege(s.oid, 'USAGE')))))",
    )
    .bind(PG_FUNCTION_EXTENSIONS.to_vec())
    .bind(PG_WRAPPERS.to_vec())
    .fetch_all(&mut *conn)
    .await?;
    for e in PG_FUNCTION_EXTENSIONS.iter().chain(PG_WRAPPERS.iter()) {
        if extensions.iter().any(|(name,)| name == e) {
            out.push(format!("{e} installed"));
        }
    }
    Ok(out)
}
