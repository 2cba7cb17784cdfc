//! Delivery to storage (issue 30), end to end through `reportd task apply` / `task run` /
//! `logs --json` / `storage test`, against real servers on 127.0.0.1 started per test by
//! `tests/stand_ins/storage.py`: moto_server (S3, path-style), pyftpdlib (FTP) and an
//! asyncssh SFTP server reached through the system's OpenSSH client with a known-hosts file.
//! Uploads are byte-for-byte copies at `root/<date>/<file>`, an existing object is never
//! overwritten, a presigned link downloads the file, a failed upload fails the run naming the
//! target and keeps the local file, a host-key mismatch is refused, a large file goes up in
//! parts, and no credential shows in any output. Also: export jobs deliver only to targets
//! open to jobs and expire after `export.max_downloads`; `POST /api/storage/{name}/test` and
//! the console; `reportd cleanup` and `retention_days`.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::alerts::block_on;
use crate::dingtalk::{SECRET, StandIn};
use crate::helpers::{Backend, DEMO_SOURCE, Workdir, repo};

/// A storage server of `tests/stand_ins/storage.py`, stopped when dropped.
struct Server {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
    dir: tempfile::TempDir,
}

impl Server {
    fn start(kind: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("python3")
            .arg("-W")
            .arg("ignore")
            .arg(repo().join("tests/stand_ins/storage.py"))
            .arg(kind)
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (scripts/test.sh installs moto, pyftpdlib, asyncssh)");
        let stdin = child.stdin.take().unwrap();
        let port = crate::stand_in::read_port(&mut child, &format!("storage.py {kind}"));
        Server {
            child,
            _stdin: stdin,
            port,
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const S3_SECRET: &str = "test-secret";
const FTP_PASSWORD: &str = "ftp-pass";

fn s3_target(s3: &Server, bucket: &str) -> String {
    format!(
        "  minio:\n    type: s3\n    endpoint: http://127.0.0.1:{}\n    bucket: {bucket}\n    access_key_id: test-key\n    secret_access_key: \"${{REPORTD_TEST_S3_SECRET}}\"\n    root: /reportd/daily\n",
        s3.port
    )
}

fn ftp_target(ftp: &Server, password: &str) -> String {
    format!(
        "  legacy_ftp:\n    type: ftp\n    host: 127.0.0.1\n    port: {}\n    user: reportd\n    password: \"{password}\"\n    root: /in\n",
        ftp.port
    )
}

fn sftp_target(sftp: &Server, known_hosts: &str) -> String {
    format!(
        "  wms_sftp:\n    type: sftp\n    host: 127.0.0.1\n    port: {}\n    user: reportd\n    key_file: {}\n    known_hosts_file: {}\n    root: /upload\n",
        sftp.port,
        sftp.path("id_ed25519").display(),
        sftp.path(known_hosts).display()
    )
}

/// A workdir with the demo source, `storage:` made of `targets`, and a task `t` that
/// exports `sql` as CSV and has the extra task lines `extra`.
fn setup(targets: &str, sql: &str, extra: &str, more_config: &str) -> Workdir {
    let config = format!(
        "{DEMO_SOURCE}logging:\n  file: ./logs/reportd.log\nstorage:\n{targets}{more_config}"
    );
    let w = Workdir::new(Backend::Sqlite, &config);
    w.write(
        "t.yaml",
        &format!(
            "tasks:\n  - name: t\n    data_source: demo\n    cron: \"@daily\"\n    sql: \"{sql}\"\n    output: {{ format: csv, filename: \"订单_{{date:%Y%m%d}}.csv\" }}\n{extra}"
        ),
    );
    run(&w, &["task", "apply", "-f", "t.yaml"]).assert_ok();
    w
}

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn assert_ok(&self) -> &Ran {
        assert_eq!(self.code, Some(0), "{}\n{}", self.stdout, self.stderr);
        self
    }
}

fn run(w: &Workdir, args: &[&str]) -> Ran {
    let out = w
        .cmd(args)
        .env("REPORTD_TEST_S3_SECRET", S3_SECRET)
        .output()
        .unwrap();
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The newest execution of `logs --json`.
fn last_run(w: &Workdir) -> Value {
    let runs: Vec<Value> =
        serde_json::from_str(&run(w, &["logs", "--json", "--limit", "1"]).stdout).unwrap();
    runs.into_iter().next().expect("an execution")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The one local file of `run` (it must exist), as a path from the test's directory.
fn local_file(w: &Workdir, run: &Value) -> PathBuf {
    let files = run["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{run:#}");
    let p = w.path().join(files[0].as_str().unwrap());
    assert!(p.is_file(), "the local file stays: {}", p.display());
    p
}

/// `task run t` fails (exit 1) naming storage `target` on its last line, and the local
/// file stays; returns the run.
fn run_fails_naming(w: &Workdir, target: &str) -> Ran {
    let ran = run(w, &["task", "run", "t"]);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    let last = ran.stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains(&format!("storage {target}:")),
        "{}",
        ran.stderr
    );
    assert!(last.contains("the local files stay"), "{}", ran.stderr);
    local_file(w, &last_run(w));
    ran
}

/// `root/<date folder>/<name>` for a local file placed at `output_dir/<date>/<name>`.
fn expected_key(root: &str, local: &Path) -> String {
    let date = local
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy();
    let name = local.file_name().unwrap().to_string_lossy();
    format!("{root}/{date}/{name}")
}

/// No credential in anything the runs printed or logged.
fn assert_no_secret(w: &Workdir, outputs: &[&Ran], secrets: &[&str]) {
    let log = std::fs::read_to_string(w.path().join("logs/reportd.log")).unwrap_or_default();
    let logs = run(w, &["logs", "--json"]).stdout;
    let listed = run(w, &["storage", "list", "--json"]).stdout;
    for secret in secrets {
        for text in outputs
            .iter()
            .flat_map(|r| [&r.stdout, &r.stderr])
            .chain([&log, &logs, &listed])
        {
            assert!(!text.contains(secret), "{secret} shown: {text}");
        }
    }
}

#[test]
fn s3_delivery_is_a_byte_for_byte_copy_with_checksums_and_a_presigned_link_that_downloads() {
    let s3 = Server::start("s3");
    let ding = StandIn::start();
    let robot = format!(
        "dingtalk:\n  webhook_url: \"http://127.0.0.1:{}/robot/send?access_token=ok_s3\"\n  secret: \"{SECRET}\"\n",
        ding.port
    );
    let w = setup(
        &s3_target(&s3, "reports"),
        "SELECT id, customer, amount FROM orders",
        "    deliver: [minio]\n    links: minio\n    notify:\n      dingtalk: {}\n",
        &robot,
    );
    let ran = run(&w, &["task", "run", "t"]);
    ran.assert_ok();
    let execution = last_run(&w);
    assert_eq!(execution["status"], "success", "{execution:#}");
    let local = local_file(&w, &execution);
    let bytes = std::fs::read(&local).unwrap();
    let key = expected_key("reportd/daily", &local);

    let d = &execution["deliveries"][0];
    assert_eq!(d["target"], "minio", "{execution:#}");
    assert_eq!(d["ok"], true, "{execution:#}");
    assert_eq!(d["key"], key.as_str());
    assert_eq!(d["bytes"], bytes.len() as u64);
    let sums = &execution["checksums"][0];
    assert_eq!(sums["sha256"], sha256_hex(&bytes).as_str(), "{execution:#}");
    assert_eq!(sums["md5"].as_str().unwrap().len(), 32);
    assert_eq!(sums["bytes"], bytes.len() as u64);

    // The message carries the presigned link, and it downloads the same bytes.
    let sent = ding.requests();
    let text = sent[0]["body"]["markdown"]["text"].as_str().unwrap();
    let prefix = format!("http://127.0.0.1:{}/reports/reportd/daily/", s3.port);
    let start = text
        .find(&prefix)
        .unwrap_or_else(|| panic!("no presigned link: {text}"));
    let link: String = text[start..]
        .chars()
        .take_while(|c| !matches!(c, ')' | ' ' | '\n'))
        .collect();
    assert!(link.contains("X-Amz-Signature="), "{link}");
    assert!(!link.contains(S3_SECRET));
    let fetched = block_on(async { reqwest::get(&link).await.unwrap().bytes().await.unwrap() });
    assert_eq!(
        fetched.as_ref(),
        bytes.as_slice(),
        "the presigned link downloads the file"
    );

    // A second run whose local name is free again finds the object's name taken: it gets
    // `_2`, the first object stays as it was.
    std::fs::remove_file(&local).unwrap();
    run(&w, &["task", "run", "t"]).assert_ok();
    let second = last_run(&w);
    let key2 = second["deliveries"][0]["key"].as_str().unwrap().to_string();
    assert_eq!(key2, key.replace(".csv", "_2.csv"), "{second:#}");
    let first_again = block_on(async { reqwest::get(&link).await.unwrap().bytes().await.unwrap() });
    assert_eq!(first_again.as_ref(), bytes.as_slice(), "not overwritten");

    let tested = run(&w, &["storage", "test", "minio"]);
    tested.assert_ok();
    assert!(
        tested.stdout.contains("storage minio: ok"),
        "{}",
        tested.stdout
    );
    assert_no_secret(&w, &[&ran, &tested], &[S3_SECRET]);
}

#[test]
fn a_wrong_bucket_fails_the_run_naming_the_target_and_keeps_the_local_file() {
    let s3 = Server::start("s3");
    let w = setup(
        &s3_target(&s3, "no-such-bucket"),
        "SELECT id FROM orders",
        "    deliver: [minio]\n",
        "",
    );
    let ran = run_fails_naming(&w, "minio");
    let execution = last_run(&w);
    assert_eq!(execution["status"], "failed");
    assert!(
        execution["error"]
            .as_str()
            .unwrap()
            .contains("storage minio:"),
        "{execution:#}"
    );
    local_file(&w, &execution);
    assert_eq!(execution["deliveries"][0]["ok"], false, "{execution:#}");
    assert!(
        execution["deliveries"][0]["error"]
            .as_str()
            .unwrap()
            .contains("minio")
    );

    // `storage test` fails too, naming the target, exit 1.
    let tested = run(&w, &["storage", "test", "minio"]);
    assert_eq!(tested.code, Some(1));
    assert!(tested.stderr.contains("storage minio"), "{}", tested.stderr);

    // deliver_failure: warn: the run succeeds, the failed upload is recorded.
    let tasks = std::fs::read_to_string(w.path().join("t.yaml")).unwrap();
    w.write(
        "t.yaml",
        &tasks.replace(
            "    deliver: [minio]\n",
            "    deliver: [minio]\n    deliver_failure: warn\n",
        ),
    );
    run(&w, &["task", "apply", "-f", "t.yaml"]).assert_ok();
    let warned = run(&w, &["task", "run", "t"]);
    warned.assert_ok();
    let execution = last_run(&w);
    assert_eq!(execution["status"], "success");
    assert_eq!(execution["deliveries"][0]["ok"], false, "{execution:#}");
    assert_no_secret(&w, &[&ran, &tested, &warned], &[S3_SECRET]);
}

#[test]
fn ftp_delivery_is_a_byte_for_byte_copy_that_never_overwrites_and_a_wrong_password_fails() {
    let ftp = Server::start("ftp");
    let w = setup(
        &ftp_target(&ftp, FTP_PASSWORD),
        "SELECT id, customer, amount FROM orders",
        "    deliver: [legacy_ftp]\n",
        "",
    );
    // Where the first run's object will go, taken by an older file of someone else.
    // Runs are dated in scheduler.timezone (default Asia/Shanghai).
    let now = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai);
    let today = now.format("%Y-%m-%d").to_string();
    let name = format!("订单_{}.csv", now.format("%Y%m%d"));
    let taken = ftp.path("ftp/in").join(&today).join(&name);
    std::fs::create_dir_all(taken.parent().unwrap()).unwrap();
    std::fs::write(&taken, "older file\n").unwrap();

    let ran = run(&w, &["task", "run", "t"]);
    ran.assert_ok();
    let execution = last_run(&w);
    let local = local_file(&w, &execution);
    let d = &execution["deliveries"][0];
    assert_eq!(d["ok"], true, "{execution:#}");
    let key = d["key"].as_str().unwrap();
    let remote = ftp.path("ftp").join(key);
    assert_eq!(
        std::fs::read(&remote).unwrap(),
        std::fs::read(&local).unwrap()
    );
    if local.file_name().unwrap().to_string_lossy() == name {
        assert_eq!(
            key,
            format!("in/{today}/{}", name.replace(".csv", "_2.csv"))
        );
    }
    assert_eq!(std::fs::read_to_string(&taken).unwrap(), "older file\n");

    let tested = run(&w, &["storage", "test", "legacy_ftp"]);
    tested.assert_ok();

    // A wrong password: the run fails naming the target; the local file stays.
    let config = std::fs::read_to_string(w.path().join("config.yaml")).unwrap();
    w.write(
        "config.yaml",
        &config.replace(
            &format!("password: \"{FTP_PASSWORD}\""),
            "password: \"wrong-pass\"",
        ),
    );
    let failed = run_fails_naming(&w, "legacy_ftp");
    assert_no_secret(&w, &[&ran, &tested, &failed], &[FTP_PASSWORD, "wrong-pass"]);
}

#[test]
fn sftp_delivery_checks_the_host_key_and_copies_byte_for_byte() {
    let sftp = Server::start("sftp");
    let w = setup(
        &sftp_target(&sftp, "known_hosts"),
        "SELECT id, customer, amount FROM orders",
        "    deliver: [wms_sftp]\n",
        "",
    );
    let ran = run(&w, &["task", "run", "t"]);
    ran.assert_ok();
    let execution = last_run(&w);
    let local = local_file(&w, &execution);
    let d = &execution["deliveries"][0];
    assert_eq!(d["ok"], true, "{execution:#}");
    let key = d["key"].as_str().unwrap();
    assert_eq!(key, expected_key("/upload", &local));
    // The server's root is its own folder: `/upload/...` lands in DIR/sftp/upload/....
    let remote = sftp.path("sftp").join(key.trim_start_matches('/'));
    assert_eq!(
        std::fs::read(&remote).unwrap(),
        std::fs::read(&local).unwrap()
    );
    // No partial file is left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(remote.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    run(&w, &["storage", "test", "wms_sftp"]).assert_ok();

    // A known-hosts file with another key for this host: refused, nothing uploaded.
    let config = std::fs::read_to_string(w.path().join("config.yaml")).unwrap();
    let other = sftp.path("known_hosts_other");
    w.write(
        "config.yaml",
        &config.replace(
            &sftp.path("known_hosts").display().to_string(),
            &other.display().to_string(),
        ),
    );
    let before = crate::helpers::files_under(&sftp.path("sftp")).len();
    let refused = run_fails_naming(&w, "wms_sftp");
    assert!(
        refused.stderr.to_lowercase().contains("host key"),
        "the refusal names the host key: {}",
        refused.stderr
    );
    assert_eq!(
        crate::helpers::files_under(&sftp.path("sftp")).len(),
        before
    );
}

#[test]
fn delivery_settings_are_checked_at_load_and_apply() {
    let w = Workdir::new(
        Backend::Sqlite,
        &format!(
            "{DEMO_SOURCE}storage:\n  ftp1:\n    type: ftp\n    host: 127.0.0.1\n    user: u\n    password: p\n"
        ),
    );
    w.write(
        "t.yaml",
        "tasks:\n  - name: t\n    data_source: demo\n    cron: \"@daily\"\n    sql: SELECT 1\n    deliver: [ftp1, nowhere]\n    links: ftp1\n",
    );
    let err = w.fails(&["task", "apply", "-f", "t.yaml"], 1);
    assert!(
        err.contains("deliver[2]") && err.contains("nowhere"),
        "{err}"
    );
    assert!(err.contains("links") && err.contains("presigned"), "{err}");

    for (yaml, needle) in [
        ("  s:\n    type: s3\n    bucket: b1b\n", "needs `endpoint`"),
        (
            "  s:\n    type: s3\n    endpoint: http://u:p@h\n    bucket: bbb\n    access_key_id: a\n    secret_access_key: b\n",
            "not in the URL",
        ),
        (
            "  s:\n    type: sftp\n    host: h\n    user: u\n    key_file: /k\n",
            "needs `known_hosts_file`",
        ),
        (
            "  s:\n    type: ftp\n    host: h\n    user: u\n    bucket: x\n",
            "`bucket` does not apply",
        ),
        (
            "  s:\n    type: ftp\n    host: h\n    user: u\n    retention_days: 3\n",
            "retention_days needs a root",
        ),
    ] {
        let w = Workdir::new(Backend::Sqlite, &format!("{DEMO_SOURCE}storage:\n{yaml}"));
        let err = w.fails(&["check", "--no-connect"], 1);
        assert!(
            err.contains("storage.s") && err.contains(needle),
            "{yaml}: {err}"
        );
    }
    let w = Workdir::new(
        Backend::Sqlite,
        &format!("{DEMO_SOURCE}export:\n  max_downloads: 0\n"),
    );
    let err = w.fails(&["check", "--no-connect"], 1);
    assert!(err.contains("export.max_downloads"), "{err}");
}

/// Peak RSS in MB of the biggest child process waited for so far.
fn children_peak_rss_mb() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: filled by the successful call above.
    let usage = unsafe { usage.assume_init() };
    usage.ru_maxrss as f64 / 1024.0
}

#[test]
fn a_large_file_goes_up_in_parts_with_flat_memory() {
    let s3 = Server::start("s3");
    // About 25 MB of CSV: five parts of 5 MiB.
    let sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 260000) \
               SELECT x, printf('%040d', x) AS a, hex(randomblob(24)) AS b FROM c";
    let w = setup(
        &s3_target(&s3, "reports"),
        sql,
        "    deliver: [minio]\n",
        "",
    );
    run(&w, &["task", "run", "t"]).assert_ok();
    let rss = children_peak_rss_mb();
    let execution = last_run(&w);
    let local = local_file(&w, &execution);
    let size = std::fs::metadata(&local).unwrap().len();
    assert!(
        size > 4 * 5 * 1024 * 1024,
        "{size} bytes: more than four parts"
    );
    let d = &execution["deliveries"][0];
    assert_eq!(d["ok"], true, "{execution:#}");
    assert_eq!(d["bytes"], size);
    let url = format!(
        "http://127.0.0.1:{}/reports/{}",
        s3.port,
        d["key"].as_str().unwrap()
    );
    let (etag, body) = block_on(async {
        let r = reqwest::get(&url).await.unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        (etag, r.bytes().await.unwrap())
    });
    // A multipart upload's ETag is "<md5 of the parts' md5s>-<parts>".
    assert!(
        etag.trim_matches('"').ends_with("-5"),
        "ETag {etag}: not 5 parts"
    );
    assert_eq!(
        sha256_hex(&body),
        sha256_hex(&std::fs::read(&local).unwrap())
    );
    assert_eq!(
        execution["checksums"][0]["sha256"],
        sha256_hex(&body).as_str()
    );
    // The file is never held whole: the run's peak stays well below what holding the
    // 25 MB file (and its parts) would add.
    eprintln!("peak RSS of the run: {rss:.1} MB for a {size}-byte file");
    assert!(rss < 80.0, "peak RSS {rss:.1} MB");
}

/// An export job (the download center) delivers only to targets the admin opened to jobs,
/// its file records sha256 and md5, and `export.max_downloads` turns the file `410` after
/// that many downloads.
#[tokio::test]
async fn an_export_job_delivers_records_checksums_and_expires_after_max_downloads() {
    use crate::api_daemon::Daemon;
    use serde_json::json;
    let s3 = Server::start("s3");
    let target = |name: &str, jobs: bool| {
        format!(
            "  {name}:\n    type: s3\n    endpoint: http://127.0.0.1:{}\n    bucket: reports\n    access_key_id: test-key\n    secret_access_key: {S3_SECRET}\n    jobs: {jobs}\n",
            s3.port
        )
    };
    let storage = format!(
        "storage:\n{}{}",
        target("open", true),
        target("closed", false)
    );
    let d = Daemon::start_full(Backend::Sqlite, &storage, "", "  max_downloads: 2\n").await;
    let editor = d.login("ed", "editor").await;
    let body = |deliver: &str| json!({"data_source": "demo", "format": "csv", "sql": "SELECT id, amount FROM orders", "deliver": [deliver]});
    let (s, b) = d
        .call_as(&editor, "POST", "/api/exports", Some(body("closed")))
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["field"], "deliver[0]", "{b}");
    let (s, b) = d
        .call_as(&editor, "POST", "/api/exports", Some(body("open")))
        .await;
    assert_eq!(s, 202, "{b}");
    let id = b["id"].as_i64().unwrap();
    let job = d
        .until_not(
            &format!("/api/exports/{id}"),
            &["queued", "running"],
            std::time::Duration::from_secs(30),
        )
        .await;
    assert_eq!(job["status"], "done", "{job:#}");
    let file = &job["files"][0];
    let url = format!("{}{}", d.base, file["url"].as_str().unwrap());
    let get = || async {
        let r = d.http.get(&url).bearer_auth(&editor).send().await.unwrap();
        (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
    };
    let (s, bytes) = get().await;
    assert_eq!(s, 200);
    assert_eq!(file["sha256"], sha256_hex(&bytes).as_str(), "{job:#}");
    assert_eq!(file["md5"].as_str().unwrap().len(), 32);

    // The upload went to `exports/<id>/<name>` of the target, recorded on the execution.
    let execution = job["execution_id"].as_i64().unwrap();
    let (_, run) = d.call("GET", &format!("/api/logs/{execution}"), None).await;
    let delivered = &run["deliveries"][0];
    assert_eq!(delivered["target"], "open", "{run:#}");
    assert_eq!(delivered["ok"], true, "{run:#}");
    let key = delivered["key"].as_str().unwrap();
    assert!(key.starts_with(&format!("exports/{id}/")), "{key}");
    // moto answers an anonymous GET of a private object 403; it does not check signatures.
    let answer = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/reports/{key}", s3.port))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test-key/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{key}");
    let object = answer.bytes().await.unwrap();
    assert_eq!(sha256_hex(&object), sha256_hex(&bytes), "{key}");
    assert!(!run.to_string().contains(S3_SECRET));

    // Two downloads allowed: the second works, the third is 410.
    assert_eq!(get().await.0, 200);
    let (s, body) = get().await;
    assert_eq!(s, 410, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("after 2 downloads"));
    let (_, job) = d.call("GET", &format!("/api/exports/{id}"), None).await;
    assert_eq!(job["files"][0]["downloads"], 2, "{job:#}");
}

/// `POST /api/storage/{name}/test` (admin) writes, reads back and removes an object; it names
/// the target and never a credential when that fails; the console lists the targets with a
/// test button for admins only.
#[tokio::test]
async fn the_api_and_console_test_a_storage_target() {
    use crate::api_daemon::Daemon;
    let s3 = Server::start("s3");
    let target = |name: &str, bucket: &str| {
        format!(
            "  {name}:\n    type: s3\n    endpoint: http://127.0.0.1:{}\n    bucket: {bucket}\n    access_key_id: test-key\n    secret_access_key: {S3_SECRET}\n",
            s3.port
        )
    };
    let storage = format!(
        "storage:\n{}{}",
        target("minio", "reports"),
        target("broken", "no-such-bucket")
    );
    let d = Daemon::start(Backend::Sqlite, &storage).await;
    let admin = d.login("ann", "admin").await;
    let editor = d.login("ed", "editor").await;
    let (s, b) = d
        .call_as(&admin, "POST", "/api/storage/minio/test", None)
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["ok"], true, "{b}");
    let (s, b) = d
        .call_as(&admin, "POST", "/api/storage/broken/test", None)
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["ok"], false, "{b}");
    assert!(
        b["error"].as_str().unwrap().starts_with("storage broken: "),
        "{b}"
    );
    assert!(!b.to_string().contains(S3_SECRET));
    let (s, _) = d
        .call_as(&admin, "POST", "/api/storage/nowhere/test", None)
        .await;
    assert_eq!(s, 404);
    let (s, _) = d
        .call_as(&editor, "POST", "/api/storage/minio/test", None)
        .await;
    assert_eq!(s, 403, "an editor may not write to a target");

    let page = |token: String| {
        let url = format!("{}/data-sources", d.base);
        let http = d.http.clone();
        async move {
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            r.text().await.unwrap()
        }
    };
    let html = page(admin.clone()).await;
    assert!(html.contains("id=\"storage-targets\""), "{html}");
    assert!(html.contains("data-call=\"POST /api/storage/minio/test\""));
    assert!(!html.contains(S3_SECRET));
    assert!(!page(editor.clone()).await.contains("storage-targets"));

    // A task saved over the API delivers; the log page shows the upload and the checksums.
    let task = serde_json::json!({
        "name": "delivered", "data_source": "demo", "cron": "0 9 1 1 *",
        "sql": "SELECT id FROM orders", "output": {"format": "csv"}, "deliver": ["minio"]
    });
    let (s, b) = d.call_as(&admin, "POST", "/api/tasks", Some(task)).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["deliver"][0], "minio", "{b}");
    let r = d
        .http
        .post(format!("{}/tasks/delivered/run?wait=true", d.base))
        .bearer_auth(crate::api_daemon::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let logs = d
        .http
        .get(format!("{}/logs", d.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(logs.contains("class=\"delivery\""), "{logs}");
    assert!(logs.contains(" minio: OK"), "{logs}");
    assert!(logs.contains("class=\"muted checksum\""), "{logs}");
}

/// `reportd cleanup` removes delivered files past the target's `retention_days` (here on
/// FTP, whose listing carries each file's time), and nothing else under the root.
#[test]
fn cleanup_removes_delivered_files_past_the_retention_only() {
    let ftp = Server::start("ftp");
    let w = setup(
        &format!("{}    retention_days: 2\n", ftp_target(&ftp, FTP_PASSWORD)),
        "SELECT id FROM orders",
        "    deliver: [legacy_ftp]\n",
        "",
    );
    run(&w, &["task", "run", "t"]).assert_ok();
    let key = last_run(&w)["deliveries"][0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    let fresh = ftp.path("ftp").join(&key);
    // An old delivered file in an old date folder, and an old file of someone else.
    let old = ftp.path("ftp/in/2020-01-02/旧报表.csv");
    let foreign = ftp.path("ftp/in/keep-me.csv");
    std::fs::create_dir_all(old.parent().unwrap()).unwrap();
    let ten_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(10 * 86_400);
    for p in [&old, &foreign] {
        std::fs::write(p, "old\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(ten_days_ago)
            .unwrap();
    }
    let dry = run(&w, &["cleanup", "--dry-run"]);
    dry.assert_ok();
    assert!(
        dry.stdout
            .contains("storage legacy_ftp: would remove 1 file(s)"),
        "{}",
        dry.stdout
    );
    assert!(old.exists());
    let done = run(&w, &["cleanup"]);
    done.assert_ok();
    assert!(
        done.stdout
            .contains("storage legacy_ftp: removed 1 file(s)"),
        "{}",
        done.stdout
    );
    assert!(!old.exists(), "past the retention: removed");
    assert!(fresh.exists(), "within the retention: kept");
    assert!(foreign.exists(), "not in a folder reportd writes: kept");
    assert_no_secret(&w, &[&dry, &done], &[FTP_PASSWORD]);
}
