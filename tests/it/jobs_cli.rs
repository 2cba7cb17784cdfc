//! `reportd jobs list|show|cancel` driven as an operator would, on a SQLite store whose jobs
//! the test submits, runs and finishes through the library: the listing and its filters,
//! every field of one job (never the callback's URL or secret), cancelling a queued job at
//! once and a running one through its instance, and the errors of finished and unknown jobs.

use std::process::Output;

use crate::helpers::Workdir;
use reportd::config::Settings;
use reportd::model::job::{JobFinish, JobSpec, JobStatus, Lane, NewJob};
use reportd::model::secret::Secret;
use reportd::model::task::{Format, SheetSpec, WebhookNotify};
use reportd::store::{Store, Submitted, now};

const HOOK_TOKEN: &str = "cliHOOKtoken345";
const HOOK_SECRET: &str = "cliHOOKsecret678";

fn new_job(by: &str, lane: Lane, callback: bool) -> NewJob {
    NewJob {
        spec: JobSpec {
            data_source: "warehouse".into(),
            sheets: vec![SheetSpec {
                name: "orders".into(),
                sql: "SELECT id, total FROM orders".into(),
                split: None,
            }],
            format: Format::Xlsx,
            filename: None,
            task: Some("daily".into()),
            timeout: None,
            deliver: Vec::new(),
        },
        lane,
        estimate: Some(1500),
        callback: callback.then(|| WebhookNotify {
            url: Secret::new(format!("https://hooks.example/cb?token={HOOK_TOKEN}")),
            secret: Some(Secret::new(HOOK_SECRET)),
        }),
        created_by: by.into(),
        created_by_id: None,
    }
}

async fn submit(store: &Store, new: &NewJob) -> i64 {
    match store.insert_job(new, 10).await.unwrap() {
        Submitted::Queued(id) => id,
        other => panic!("{other:?}"),
    }
}

/// `reportd ARGS` with `$USER` saying `tester`: the audit names the OS user of the uid.
fn run(w: &Workdir, args: &[&str]) -> Output {
    let mut cmd = w.cmd(args);
    cmd.env("USER", "tester").env_remove("SUDO_USER");
    cmd.output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn failure(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn no_secret(text: &str) {
    assert!(
        !text.contains(HOOK_TOKEN)
            && !text.contains(HOOK_SECRET)
            && !text.contains("hooks.example"),
        "the callback shows: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_list_show_and_cancel() {
    let w = Workdir::new(crate::helpers::Backend::Sqlite, "");
    assert_eq!(stdout(&run(&w, &["jobs", "list"])).trim(), "no export jobs");
    let settings = Settings::load(&w.path().join("config.yaml")).unwrap();
    let store = Store::open(&settings).await.unwrap();

    // j1 done with two files (one downloaded 3 times), j2 queued, j3 running.
    let j1 = submit(&store, &new_job("alice", Lane::Fast, true)).await;
    let j2 = submit(&store, &new_job("bob", Lane::Slow, false)).await;
    let j3 = submit(&store, &new_job("alice", Lane::Fast, false)).await;
    assert_eq!(
        store
            .claim_next_job(Lane::Fast, "inst-a")
            .await
            .unwrap()
            .unwrap()
            .id,
        j1
    );
    let dir = w.path().join(format!("exports/exports/{j1}"));
    let finish = JobFinish {
        status: JobStatus::Done,
        rows: Some(1500),
        bytes: Some(3 * 1024 * 1024),
        error: None,
        files: vec![
            (
                "daily.xlsx".into(),
                dir.join("daily.xlsx").display().to_string(),
                2 * 1024 * 1024,
            ),
            (
                "daily_part2.xlsx".into(),
                dir.join("daily_part2.xlsx").display().to_string(),
                1024 * 1024,
            ),
        ],
        expires_at: Some(now() + chrono::Duration::days(7)),
        checksums: Vec::new(),
    };
    assert!(store.finish_job(j1, "inst-a", &finish).await.unwrap());
    for _ in 0..3 {
        store.count_job_download(j1, 0, None).await.unwrap();
    }
    assert_eq!(
        store
            .claim_next_job(Lane::Fast, "inst-b")
            .await
            .unwrap()
            .unwrap()
            .id,
        j3
    );

    // list: newest first, every column, filters.
    let out = stdout(&run(&w, &["jobs", "list"]));
    no_secret(&out);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    for column in [
        "ID",
        "STATUS",
        "LANE",
        "ROWS",
        "SIZE",
        "CREATED BY",
        "CREATED",
        "FILES / DOWNLOADS",
    ] {
        assert!(lines[0].contains(column), "{out}");
    }
    let words = |l: &str| l.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(
        words(lines[1])[..4],
        [
            j3.to_string(),
            "running".into(),
            "fast".into(),
            "alice".into()
        ]
    );
    assert_eq!(
        words(lines[2])[..4],
        [j2.to_string(), "queued".into(), "slow".into(), "bob".into()]
    );
    let done = words(lines[3]);
    assert_eq!(
        done[..6],
        [
            j1.to_string(),
            "done".into(),
            "fast".into(),
            "1,500".into(),
            "3.0MB".into(),
            "alice".into()
        ]
    );
    assert_eq!(
        done[done.len() - 3..],
        ["2".to_string(), "/".into(), "3".into()],
        "{out}"
    );

    let out = stdout(&run(&w, &["jobs", "list", "--status", "queued"]));
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        out.lines()
            .nth(1)
            .unwrap()
            .trim_start()
            .starts_with(&j2.to_string()),
        "{out}"
    );
    let out = run(&w, &["jobs", "list", "--limit", "1"]);
    assert_eq!(stdout(&out).lines().count(), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 of 3 jobs shown"));
    let bad = run(&w, &["jobs", "list", "--status", "bogus"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("queued"),
        "{bad:?}"
    );

    let out = stdout(&run(&w, &["jobs", "list", "--json"]));
    no_secret(&out);
    let listed: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[2]["id"], j1);
    assert_eq!(listed[2]["callback"], true);
    assert_eq!(listed[2]["files"][0]["downloads"], 3);
    assert_eq!(listed[1]["callback"], false);

    // show: every field, the files with their downloads, the callback only as "yes".
    let out = stdout(&run(&w, &["jobs", "show", &j1.to_string()]));
    no_secret(&out);
    for expected in [
        format!("id:             {j1}"),
        "status:         done".into(),
        "lane:           fast (estimate 1,500 rows)".into(),
        "created by:     alice".into(),
        "rows:           1,500".into(),
        "size:           3.0MB".into(),
        "attempts:       1".into(),
        "instance:       inst-a".into(),
        "callback:       yes".into(),
        "data source:    warehouse".into(),
        "format:         xlsx".into(),
        "task:           daily".into(),
        "  orders: SELECT id, total FROM orders".into(),
        "  0  daily.xlsx  2.0MB  3 downloads, last ".into(),
        "  1  daily_part2.xlsx  1.0MB  0 downloads  ".into(),
    ] {
        assert!(out.contains(&expected), "{expected:?} in:\n{out}");
    }
    for label in ["created:", "started:", "finished:", "expires:"] {
        assert!(
            out.lines().any(|l| l.starts_with(label)),
            "{label} in:\n{out}"
        );
    }
    let shown: serde_json::Value = serde_json::from_str(&stdout(&run(
        &w,
        &["jobs", "show", &j1.to_string(), "--json"],
    )))
    .unwrap();
    assert_eq!(shown["status"], "done");
    assert_eq!(shown["callback"], true);
    assert_eq!(shown["files"][1]["name"], "daily_part2.xlsx");
    assert_eq!(shown["data_source"], "warehouse");
    no_secret(&shown.to_string());
    assert!(failure(&run(&w, &["jobs", "show", "999"])).contains("no export job 999"));

    // cancel: queued at once; finished and unknown refused.
    let out = stdout(&run(&w, &["jobs", "cancel", &j2.to_string()]));
    assert_eq!(out.trim(), format!("job {j2}: cancelled"));
    let job = store.job(j2).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Cancelled);
    let by_cli = format!("cancelled by {} (cli)", crate::helpers::os_user());
    assert_eq!(job.error.as_deref(), Some(by_cli.as_str()));
    let e = failure(&run(&w, &["jobs", "cancel", &j1.to_string()]));
    assert!(
        e.contains(&format!("job {j1} already finished (done)")),
        "{e}"
    );
    let e = failure(&run(&w, &["jobs", "cancel", &j2.to_string()]));
    assert!(
        e.contains(&format!("job {j2} already finished (cancelled)")),
        "{e}"
    );
    assert!(failure(&run(&w, &["jobs", "cancel", "999"])).contains("no export job 999"));

    // cancel of a running job: its instance (here the test) sees the request and ends it.
    let mut cmd = w.cmd(&["jobs", "cancel", &j3.to_string()]);
    cmd.env("USER", "tester").env_remove("SUDO_USER");
    let cancelling = tokio::task::spawn_blocking(move || cmd.output().unwrap());
    let asked = loop {
        if let Some(by) = store.job_cancel_requested(j3).await.unwrap() {
            break by;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(asked, format!("{} (cli)", crate::helpers::os_user()));
    let cancelled = JobFinish {
        status: JobStatus::Cancelled,
        rows: None,
        bytes: None,
        error: Some(format!("cancelled by {asked}")),
        files: Vec::new(),
        expires_at: None,
        checksums: Vec::new(),
    };
    assert!(store.finish_job(j3, "inst-b", &cancelled).await.unwrap());
    let out = cancelling.await.unwrap();
    assert_eq!(stdout(&out).trim(), format!("job {j3}: cancelled"));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("cancel asked for job {j3}")));
    store.close().await;
}
