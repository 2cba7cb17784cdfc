//! Secrets at rest (issue 13) on the SQLite, MariaDB and PostgreSQL stores: data source
//! passwords and task webhooks/secrets written by the binary are sealed in the store (read
//! back raw: no plaintext, `enc:v1:`), the commands still use them, `${ENV}` references stay
//! references, the key file is made 0600, a wrong or missing key is a clear error naming the
//! data source or task, plain rows of an older version are sealed at the next daemon start,
//! and `secrets rotate` re-encrypts under a new key.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use reportd::model::datasource::{DataSourceSpec, SourceKind};
use reportd::model::sealed::SecretKey;
use reportd::model::secret::Secret;
use reportd::store::{Change, Store, StoreError};
use reportd::task::file::TaskFile;

use crate::helpers::{Backend, DEMO_SOURCE, ScratchStore, StopAtEnd, Workdir, exec, pg_url};

const PASSWORD: &str = "hunter2PLAINpw";
const TOKEN: &str = "TOKENplain123";
const SIGNING: &str = "SECplain456";

fn tasks_yaml() -> String {
    format!(
        "tasks:\n  - name: daily\n    data_source: demo\n    cron: \"0 9 * * *\"\n    sql: SELECT 1 AS one\n    notify:\n      dingtalk: {{ webhook: \"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}\", secret: {SIGNING} }}\n  - name: referenced\n    data_source: demo\n    cron: \"0 9 * * *\"\n    sql: SELECT 1 AS one\n    notify:\n      dingtalk: {{ webhook: \"${{REPORTD_TASK_IT_SECRETS_HOOK:-}}\" }}\n"
    )
}

/// The URL of a workdir's store, for reading it raw.
fn store_url(w: &Workdir) -> String {
    let config = std::fs::read_to_string(w.path().join("config.yaml")).unwrap();
    match config.lines().find_map(|l| l.strip_prefix("  url: ")) {
        Some(url) => url.to_string(),
        None => format!("sqlite://{}", w.path().join("data/system.db").display()),
    }
}

/// The first column of every row of `sql`, as text.
async fn texts(url: &str, sql: &'static str) -> Vec<String> {
    use sqlx::Connection;
    let rows: Vec<(String,)> = if url.starts_with("mysql:") {
        let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
        sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()
    } else if url.starts_with("postgres:") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_as(sql).fetch_all(&mut c).await.unwrap()
    };
    rows.into_iter().map(|(t,)| t).collect()
}

/// Everything secret the store holds, raw: data source specs and task notify columns.
async fn raw_secrets(w: &Workdir) -> String {
    let url = store_url(w);
    let mut all = texts(&url, "SELECT spec FROM data_sources ORDER BY name").await;
    all.extend(texts(&url, "SELECT notify FROM tasks ORDER BY name").await);
    all.join("\n")
}

fn assert_no_plaintext(what: &str, text: &str) {
    for secret in [PASSWORD, TOKEN, SIGNING] {
        assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
    }
}

/// Stdout and stderr of a command that must fail.
fn failure(w: &Workdir, args: &[&str]) -> String {
    let out = w.cmd(args).output().unwrap();
    assert!(!out.status.success(), "reportd {args:?} succeeded");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "{text}");
    text
}

fn key_file(w: &Workdir) -> std::path::PathBuf {
    w.path().join("data/secret.key")
}

fn write_key(path: &Path, key: &str) {
    std::fs::write(path, format!("{key}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The PostgreSQL test server as `(host, port, database)`.
fn pg_parts() -> (String, String, String) {
    let base = pg_url();
    let (rest, db) = base.rsplit_once('/').unwrap();
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let (host, port) = host_port.split_once(':').unwrap();
    (host.into(), port.into(), db.into())
}

/// Adds a PostgreSQL data source `wh` with a password (which the trusting local server
/// ignores, so `datasource test` really connects), a data source whose URL is a reference,
/// and the two tasks.
fn add_secrets(w: &Workdir) {
    let (host, port, db) = pg_parts();
    w.ok(&[
        "datasource",
        "add",
        "wh",
        "--type",
        "postgresql",
        "--host",
        &host,
        "--port",
        &port,
        "--database",
        &db,
        "--username",
        "postgres",
        "--password",
        PASSWORD,
    ]);
    w.ok(&[
        "datasource",
        "add",
        "referenced",
        "--type",
        "postgresql",
        "--url",
        "${REPORTD_IT_SECRETS_URL}",
    ]);
    w.write("tasks.yaml", &tasks_yaml());
    let out = w.ok(&["task", "apply", "-f", "tasks.yaml"]);
    assert!(out.contains("2 created"), "{out}");
}

fn workdir_with_secrets(backend: Backend) -> Workdir {
    let w = Workdir::new(backend, DEMO_SOURCE);
    add_secrets(&w);
    w
}

async fn sealed_at_rest(backend: Backend) {
    let w = workdir_with_secrets(backend);

    // The key file was made on first use, 0600, holding base64 of 32 bytes.
    let meta = std::fs::metadata(key_file(&w)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let key = std::fs::read_to_string(key_file(&w)).unwrap();
    SecretKey::from_base64(&key).unwrap();

    // Raw: no plaintext, three sealed values, the references as written (the data source
    // spec stores `${` escaped as `$${`).
    let raw = raw_secrets(&w).await;
    assert_no_plaintext("the store", &raw);
    assert_eq!(raw.matches("enc:v1:").count(), 3, "{raw}");
    assert!(raw.contains("\"$${REPORTD_IT_SECRETS_URL}\""), "{raw}");
    assert!(
        raw.contains("\"${REPORTD_TASK_IT_SECRETS_HOOK:-}\""),
        "{raw}"
    );

    // The commands use them: a live connection with the password, the export (the
    // operator's own file) with the real values, `show` masked; applying again changes
    // nothing.
    let tested = w.ok(&["datasource", "test", "wh"]);
    assert!(tested.starts_with("ok  wh"), "{tested}");
    let export = w.ok(&["task", "export"]);
    assert!(
        export.contains(TOKEN) && export.contains(SIGNING),
        "{export}"
    );
    assert!(
        export.contains("${REPORTD_TASK_IT_SECRETS_HOOK:-}"),
        "{export}"
    );
    let file: TaskFile = serde_yaml::from_str(&export).unwrap();
    assert_eq!(file.tasks.len(), 2);
    let shown = w.ok(&["task", "show", "daily"]);
    assert_no_plaintext("task show", &shown);
    let list = w.ok(&["datasource", "list", "--json"]);
    assert_no_plaintext("datasource list", &list);
    let again = w.ok(&["task", "apply", "-f", "tasks.yaml"]);
    assert!(
        again.contains("0 created, 0 updated, 2 unchanged"),
        "{again}"
    );

    // Another key: a clear error naming the object, no garbage, no secret.
    write_key(&key_file(&w), &SecretKey::generate().to_base64());
    let e = failure(&w, &["datasource", "test", "wh"]);
    assert!(
        e.contains("data source wh: password cannot be decrypted with this key (security.secret_key / secret_key_file): wrong key?"),
        "{e}"
    );
    let e = failure(&w, &["task", "show", "daily"]);
    assert!(
        e.contains("task \"daily\": notify.dingtalk.webhook cannot be decrypted with this key"),
        "{e}"
    );
    assert_no_plaintext("the errors", &e);
    // The daemon refuses to start rather than run tasks it cannot read.
    let out = w
        .cmd(&["run"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.contains(
            "checking the secrets in the store: data source wh: password cannot be decrypted"
        ),
        "{e}"
    );
    // A key file others can read is refused.
    write_key(&key_file(&w), &key);
    std::fs::set_permissions(key_file(&w), std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = failure(&w, &["task", "list"]);
    assert!(e.contains("secret.key") && e.contains("chmod 600"), "{e}");
    std::fs::set_permissions(key_file(&w), std::fs::Permissions::from_mode(0o600)).unwrap();
    w.ok(&["task", "show", "daily"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_sealed_at_rest_sqlite() {
    sealed_at_rest(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_sealed_at_rest_mysql() {
    sealed_at_rest(Backend::Mysql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_sealed_at_rest_postgres() {
    sealed_at_rest(Backend::Postgres).await;
}

async fn plain_rows_sealed_at_start(backend: Backend) {
    let w = Workdir::new(
        backend,
        &format!(
            "{DEMO_SOURCE}logging:\n  level: INFO\n  file: logs/reportd.log\ndaemon:\n  shutdown_timeout: 2\n"
        ),
    );
    let _cleanup = StopAtEnd(&w);
    add_secrets(&w);
    // As an older version left them: the same values in plain text.
    let url = store_url(&w);
    let (host, port, db) = pg_parts();
    exec(
        &url,
        &format!(
            "UPDATE data_sources SET spec = '{{\"database\":\"{db}\",\"host\":\"{host}\",\"password\":\"{PASSWORD}\",\"port\":{port},\"type\":\"postgresql\",\"username\":\"postgres\"}}' WHERE name = 'wh';\n\
             UPDATE tasks SET notify = '{{\"dingtalk\":{{\"webhook\":\"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}\",\"secret\":\"{SIGNING}\"}}}}' WHERE name = 'daily'"
        ),
    )
    .await;
    let raw = raw_secrets(&w).await;
    assert!(raw.contains(PASSWORD) && raw.contains(TOKEN), "{raw}");
    assert_eq!(raw.matches("enc:v1:").count(), 0, "{raw}");
    // The commands read plain rows as they are.
    w.ok(&["datasource", "test", "wh"]);
    let before = w.ok(&["task", "export"]);
    assert!(before.contains(TOKEN), "{before}");

    // The next daemon start seals them (before it reports healthy).
    w.ok(&["start"]);
    w.ok(&["stop"]);
    let raw = raw_secrets(&w).await;
    assert_no_plaintext("the store after a start", &raw);
    assert_eq!(raw.matches("enc:v1:").count(), 3, "{raw}");
    assert!(
        raw.contains("\"${REPORTD_TASK_IT_SECRETS_HOOK:-}\""),
        "{raw}"
    );
    assert_eq!(w.ok(&["task", "export"]), before, "values intact");
    w.ok(&["datasource", "test", "wh"]);
    let log = std::fs::read_to_string(w.path().join("logs/reportd.log")).unwrap();
    assert!(log.contains("encrypted plain secrets"), "{log}");
    assert!(log.contains("values=3"), "{log}");
    assert_no_plaintext("the log", &log);

    // Once sealed, a second start has nothing to do.
    w.ok(&["start"]);
    w.ok(&["stop"]);
    let log = std::fs::read_to_string(w.path().join("logs/reportd.log")).unwrap();
    assert_eq!(log.matches("encrypted plain secrets").count(), 1, "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_rows_are_sealed_at_start_sqlite() {
    plain_rows_sealed_at_start(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_rows_are_sealed_at_start_mysql() {
    plain_rows_sealed_at_start(Backend::Mysql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_rows_are_sealed_at_start_postgres() {
    plain_rows_sealed_at_start(Backend::Postgres).await;
}

async fn rotate(backend: Backend) {
    let w = workdir_with_secrets(backend);
    let old = std::fs::read_to_string(key_file(&w)).unwrap();
    let before = w.ok(&["task", "export"]);
    let raw_before = raw_secrets(&w).await;

    let out = w.ok(&["secrets", "rotate"]);
    assert!(out.starts_with("re-encrypted 3 secret values"), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let new = std::fs::read_to_string(key_file(&w)).unwrap();
    assert_ne!(new, old);
    let kept = w.path().join("data/secret.key.old");
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), old);
    for f in [key_file(&w), kept] {
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    assert!(!w.path().join("data/secret.key.new").exists());

    // New ciphertexts, same values; the old key no longer opens them.
    let raw = raw_secrets(&w).await;
    assert_no_plaintext("the store", &raw);
    assert_eq!(raw.matches("enc:v1:").count(), 3, "{raw}");
    for line in raw_before.lines() {
        assert!(!raw.contains(line) || !line.contains("enc:v1:"), "{line}");
    }
    assert_eq!(w.ok(&["task", "export"]), before);
    w.ok(&["datasource", "test", "wh"]);
    write_key(&key_file(&w), old.trim());
    let e = failure(&w, &["datasource", "test", "wh"]);
    assert!(
        e.contains("data source wh: password cannot be decrypted"),
        "{e}"
    );
    write_key(&key_file(&w), new.trim());
    assert_eq!(w.ok(&["task", "export"]), before);

    // The operator's own key: refused while others can read its file, then used.
    let given = SecretKey::generate().to_base64();
    let given_file = w.path().join("given.key");
    std::fs::write(&given_file, format!("{given}\n")).unwrap();
    std::fs::set_permissions(&given_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = failure(&w, &["secrets", "rotate", "--new-key-file", "given.key"]);
    assert!(
        e.contains("--new-key-file") && e.contains("chmod 600"),
        "{e}"
    );
    assert!(!e.contains(&given), "{e}");
    assert_eq!(
        std::fs::read_to_string(key_file(&w)).unwrap(),
        new,
        "nothing changed"
    );
    std::fs::set_permissions(&given_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = w.ok(&["secrets", "rotate", "--new-key-file", "given.key"]);
    assert!(out.starts_with("re-encrypted 3 secret values"), "{out}");
    assert_eq!(
        std::fs::read_to_string(key_file(&w)).unwrap(),
        format!("{given}\n")
    );
    assert_eq!(w.ok(&["task", "export"]), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_re_encrypts_sqlite() {
    rotate(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_re_encrypts_mysql() {
    rotate(Backend::Mysql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rotate_re_encrypts_postgres() {
    rotate(Backend::Postgres).await;
}

#[test]
fn an_inline_key_is_used_and_rotated_only_with_the_new_key_given() {
    let key = SecretKey::generate().to_base64();
    let w = Workdir::new(
        Backend::Sqlite,
        &format!("{DEMO_SOURCE}security:\n  secret_key: ${{REPORTD_IT_KEY}}\n"),
    );
    let run = |args: &[&str], key: &str| {
        let mut c = w.cmd(args);
        c.env("REPORTD_IT_KEY", key);
        c
    };
    w.write("tasks.yaml", &tasks_yaml());
    let out = run(&["task", "apply", "-f", "tasks.yaml"], &key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!key_file(&w).exists(), "no key file with an inline key");

    // Without the new key: refused, nothing changed.
    let out = run(&["secrets", "rotate"], &key).output().unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("security.secret_key is set") && e.contains("--new-key-stdin"),
        "{e}"
    );

    let new = SecretKey::generate().to_base64();
    let out = run(&["secrets", "rotate", "--new-key-stdin"], &key)
        .write_stdin(format!("{new}\n"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("re-encrypted 2 secret values") && said.contains("set security.secret_key"),
        "{said}"
    );
    assert!(!said.contains(&new), "the key is not printed: {said}");

    let out = run(&["task", "export"], &key).output().unwrap();
    assert!(!out.status.success(), "the old key no longer opens them");
    let out = run(&["task", "export"], &new).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(TOKEN));

    // A bad inline key names the setting, not the value.
    let out = run(&["task", "list"], "c2hvcnQ=").output().unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("security.secret_key is base64 of 5 bytes"),
        "{e}"
    );
}

/// The library: a store opened without a key never writes a secret in plain text and names
/// what it cannot read; `seal_plaintext` is idempotent; `rotate_key` is all or nothing.
async fn store_api(backend: Backend) {
    let scratch = ScratchStore::new(backend);
    let bare = Store::connect(&scratch.settings()).await.unwrap();
    let key = SecretKey::generate();
    let keyed = Store::connect(&scratch.settings())
        .await
        .unwrap()
        .with_key(SecretKey::from_base64(&key.to_base64()).unwrap());

    let mut spec = DataSourceSpec::new(SourceKind::Postgresql);
    spec.host = Some("127.0.0.1".into());
    spec.password = Secret::new(PASSWORD);
    let e = bare.add_data_source("wh", &spec).await.unwrap_err();
    assert!(matches!(e, StoreError::NoKeyToSeal { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "data source wh: password is a secret and no key is loaded to encrypt it; nothing was written"
    );
    assert!(bare.data_source("wh").await.unwrap().is_none());
    // A reference needs no key.
    let mut referenced = spec.clone();
    referenced.password = Secret::new("${REPORTD_IT_PW}");
    bare.add_data_source("referenced", &referenced)
        .await
        .unwrap();
    assert_eq!(
        keyed.data_source("referenced").await.unwrap().unwrap().spec,
        referenced
    );

    keyed.add_data_source("wh", &spec).await.unwrap();
    assert_eq!(keyed.data_source("wh").await.unwrap().unwrap().spec, spec);
    let e = bare.data_sources().await.unwrap_err().to_string();
    assert_eq!(
        e,
        "data source wh: password is encrypted and no key is loaded"
    );
    let other = Store::connect(&scratch.settings())
        .await
        .unwrap()
        .with_key(SecretKey::generate());
    let e = other.data_source("wh").await.unwrap_err().to_string();
    assert!(
        e.starts_with("data source wh: password cannot be decrypted"),
        "{e}"
    );
    assert!(matches!(
        other.seal_plaintext().await.unwrap_err(),
        StoreError::WrongKey { .. }
    ));

    // `$${` and `${` inside a sealed password come back exactly (the spec escapes `${`).
    let mut tricky = spec.clone();
    tricky.password = Secret::new("a$${b}${c $$${d}");
    keyed.add_data_source("tricky", &tricky).await.unwrap();
    assert_eq!(
        keyed.data_source("tricky").await.unwrap().unwrap().spec,
        tricky
    );
    assert!(keyed.remove_data_source("tricky").await.unwrap());

    // Tasks: never written plain; re-applying is `unchanged` although every sealing uses a
    // fresh nonce; applied under another key, the values it cannot open are replaced.
    let specs = reportd::yaml::parse::<TaskFile>(&tasks_yaml(), Path::new("t.yaml"))
        .unwrap()
        .unwrap()
        .tasks;
    let e = bare.apply_tasks(&specs).await.unwrap_err().to_string();
    assert!(
        e.starts_with("task \"daily\": notify.dingtalk.webhook is a secret"),
        "{e}"
    );
    assert!(
        bare.tasks().await.unwrap().is_empty(),
        "nothing was written"
    );
    let created = keyed.apply_tasks(&specs).await.unwrap();
    assert!(
        created.iter().all(|(_, c)| matches!(c, Change::Created(_))),
        "{created:?}"
    );
    let again = keyed.apply_tasks(&specs).await.unwrap();
    assert!(
        again.iter().all(|(_, c)| matches!(c, Change::Unchanged(_))),
        "{again:?}"
    );
    assert_eq!(
        keyed.find_task("daily").await.unwrap().unwrap().spec,
        specs[0]
    );
    let e = bare.find_task("daily").await.unwrap_err().to_string();
    assert_eq!(
        e,
        "task \"daily\": notify.dingtalk.webhook is encrypted and no key is loaded"
    );
    let replaced = other.apply_tasks(&specs[..1]).await.unwrap();
    let Change::Updated(id) = replaced[0].1 else {
        panic!("{replaced:?}")
    };
    assert_eq!(
        other.find_task("daily").await.unwrap().unwrap().spec,
        specs[0]
    );
    let e = keyed.tasks().await.unwrap_err().to_string();
    assert!(
        e.starts_with("task \"daily\": notify.dingtalk.webhook cannot be decrypted"),
        "{e}"
    );
    assert!(keyed.remove_task(id).await.unwrap());

    // Nothing plain: nothing to seal, twice.
    assert_eq!(keyed.seal_plaintext().await.unwrap(), 0);
    let new = SecretKey::generate();
    assert_eq!(keyed.rotate_key(&new).await.unwrap(), 1);
    assert!(keyed.data_source("wh").await.is_err(), "the old key is out");
    let rotated = Store::connect(&scratch.settings())
        .await
        .unwrap()
        .with_key(new);
    assert_eq!(rotated.data_source("wh").await.unwrap().unwrap().spec, spec);
    assert_eq!(rotated.seal_plaintext().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn store_api_sqlite() {
    store_api(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn store_api_mysql() {
    store_api(Backend::Mysql).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn store_api_postgres() {
    store_api(Backend::Postgres).await;
}

#[test]
fn a_lost_key_file_is_not_silently_replaced_by_a_new_key() {
    let w = workdir_with_secrets(Backend::Sqlite);
    std::fs::remove_file(key_file(&w)).unwrap();
    // The next command makes a new key file, but the store knows it is not its key: reads
    // name what they cannot open, writes of secrets are refused.
    let err = failure(&w, &["task", "show", "daily"]);
    assert!(err.contains("cannot be decrypted"), "{err}");
    let err = failure(
        &w,
        &[
            "datasource",
            "add",
            "other",
            "--type",
            "mysql",
            "--host",
            "h",
            "--password",
            "pw-2",
        ],
    );
    assert!(err.contains("sealed with another key"), "{err}");
    let err = failure(&w, &["run"]);
    assert!(err.contains("cannot be decrypted"), "{err}");
}

#[test]
fn rotation_is_refused_while_the_daemon_runs_and_is_audited() {
    let w = workdir_with_secrets(Backend::Sqlite);
    let _stop = StopAtEnd(&w);
    w.ok(&["start"]);
    let err = failure(&w, &["secrets", "rotate"]);
    assert!(err.contains("the daemon is running"), "{err}");
    w.ok(&["stop"]);
    w.ok(&["secrets", "rotate"]);
    w.ok(&["datasource", "list"]);
    let url = store_url(&w);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let actions = rt.block_on(texts(&url, "SELECT action FROM audit"));
    assert!(actions.iter().any(|a| a == "secrets.rotate"), "{actions:?}");
}
