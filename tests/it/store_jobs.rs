//! The store suite of export jobs, run against each backend: submitting (per-user limit),
//! listing and filtering, claiming by compare-and-set (exactly once with concurrent claimers
//! on two stores, lanes kept apart), finishing with files and counting downloads, cancelling
//! in each state, re-queueing after a daemon stopped, expiry, and the callback sealed at rest
//! (raw column, `seal_plaintext`, `rotate_key`, a wrong or missing key).

use chrono::Duration;
use std::collections::BTreeSet;

use crate::helpers::{Backend, ScratchStore, exec};
use reportd::model::execution::{ExecutionStatus, NewExecution, Trigger};
use reportd::model::job::{JobCancel, JobFinish, JobSpec, JobStatus, Lane, NewJob};
use reportd::model::sealed::SecretKey;
use reportd::model::secret::Secret;
use reportd::model::task::{Format, SheetSpec, WebhookNotify};
use reportd::store::jobs::{INTERRUPTED_TWICE, REQUEUED};
use reportd::store::{JobFilter, Store, StoreError, Submitted, now};

const HOOK_TOKEN: &str = "hookTOKENplain789";
const HOOK_SECRET: &str = "hookSECRETplain012";

fn spec(sql: &str) -> JobSpec {
    JobSpec {
        data_source: "warehouse".into(),
        sheets: vec![SheetSpec {
            name: "订单".into(),
            sql: sql.into(),
            split: None,
        }],
        format: Format::Csv,
        filename: Some("orders_{date:%Y%m%d}".into()),
        task: None,
        timeout: Some(600),
        deliver: Vec::new(),
    }
}

fn new_job(by: &str, lane: Lane) -> NewJob {
    NewJob {
        spec: spec("SELECT * FROM orders"),
        lane,
        estimate: Some(if lane == Lane::Fast { 10 } else { 5_000_000 }),
        callback: None,
        created_by: by.into(),
        created_by_id: None,
    }
}

fn callback() -> WebhookNotify {
    WebhookNotify {
        url: Secret::new(format!("https://hooks.example/cb?token={HOOK_TOKEN}")),
        secret: Some(Secret::new(HOOK_SECRET)),
    }
}

async fn submit(store: &Store, new: &NewJob) -> i64 {
    match store.insert_job(new, 1000).await.unwrap() {
        Submitted::Queued(id) => id,
        other => panic!("not queued: {other:?}"),
    }
}

/// The URL to read the scratch store raw.
fn raw_url(scratch: &ScratchStore) -> String {
    match scratch.backend {
        Backend::Sqlite => format!(
            "sqlite://{}",
            scratch.dir.path().join("system.db").display()
        ),
        _ => scratch.url.clone(),
    }
}

/// The callback column of every job that has one, raw, by id.
async fn raw_callbacks(url: &str) -> Vec<String> {
    use sqlx::Connection;
    const SQL: &str = "SELECT callback FROM export_jobs WHERE callback IS NOT NULL ORDER BY id";
    let rows: Vec<(String,)> = if url.starts_with("mysql:") {
        let mut c = sqlx::MySqlConnection::connect(url).await.unwrap();
        sqlx::query_as(SQL).fetch_all(&mut c).await.unwrap()
    } else if url.starts_with("postgres:") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_as(SQL).fetch_all(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_as(SQL).fetch_all(&mut c).await.unwrap()
    };
    rows.into_iter().map(|(t,)| t).collect()
}

/// Every raw callback holds its URL and secret sealed (or as an `${ENV}` reference).
async fn assert_sealed(url: &str) {
    let raw = raw_callbacks(url).await;
    assert!(!raw.is_empty());
    for text in raw {
        assert!(
            !text.contains(HOOK_TOKEN) && !text.contains(HOOK_SECRET),
            "plaintext at rest: {text}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let url = v["url"].as_str().unwrap();
        assert!(url.starts_with("enc:v1:"), "{text}");
        if let Some(s) = v["secret"].as_str() {
            assert!(
                s.starts_with("enc:v1:") || s == "${REPORTD_IT_JOB_SECRET}",
                "{text}"
            );
        }
    }
}

async fn suite(backend: Backend) {
    let scratch = ScratchStore::new(backend);
    let key = SecretKey::generate();
    let store = Store::connect(&scratch.settings())
        .await
        .expect("connect and migrate")
        .with_key(key.clone());
    let store2 = Store::connect(&scratch.settings())
        .await
        .expect("reconnect")
        .with_key(key.clone());
    let raw = raw_url(&scratch);

    // Submit, read back, list newest first with filters and totals.
    let mut with_callback = new_job("alice", Lane::Fast);
    with_callback.callback = Some(callback());
    let a1 = submit(&store, &with_callback).await;
    let a2 = submit(&store, &new_job("alice", Lane::Slow)).await;
    let b1 = submit(&store, &new_job("bob", Lane::Fast)).await;
    let mut referenced = new_job("bob", Lane::Fast);
    referenced.callback = Some(WebhookNotify {
        url: Secret::new(format!("https://hooks.example/ref?token={HOOK_TOKEN}")),
        secret: Some(Secret::new("${REPORTD_IT_JOB_SECRET}")),
    });
    let b2 = submit(&store, &referenced).await;
    assert!(a1 < a2 && a2 < b1 && b1 < b2);

    let job = store.job(a1).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(
        (job.lane, job.estimate, job.attempts),
        (Lane::Fast, Some(10), 0)
    );
    assert_eq!(job.spec, spec("SELECT * FROM orders"), "round trip");
    assert_eq!(job.created_by, "alice");
    assert!(job.started_at.is_none() && job.finished_at.is_none() && job.files.is_empty());
    let cb = job.callback.unwrap();
    assert_eq!(cb.url.expose(), callback().url.expose(), "opened on read");
    assert_eq!(cb.secret.unwrap().expose(), HOOK_SECRET);
    let cb = store.job(b2).await.unwrap().unwrap().callback.unwrap();
    assert_eq!(
        cb.secret.unwrap().expose(),
        "${REPORTD_IT_JOB_SECRET}",
        "a reference stays"
    );
    assert!(store.job(9_999_999).await.unwrap().is_none());
    assert_sealed(&raw).await;

    let (all, total) = store.jobs(&JobFilter::default()).await.unwrap();
    assert_eq!(total, 4);
    assert_eq!(
        all.iter().map(|j| j.id).collect::<Vec<_>>(),
        [b2, b1, a2, a1]
    );
    let alice = JobFilter {
        created_by: Some(reportd::model::job::Owner {
            id: None,
            name: "alice".into(),
        }),
        ..Default::default()
    };
    let (jobs, total) = store.jobs(&alice).await.unwrap();
    assert_eq!(
        (jobs.iter().map(|j| j.id).collect::<Vec<_>>(), total),
        (vec![a2, a1], 2)
    );
    let page = JobFilter {
        limit: 2,
        offset: 1,
        ..Default::default()
    };
    let (jobs, total) = store.jobs(&page).await.unwrap();
    assert_eq!(
        (jobs.iter().map(|j| j.id).collect::<Vec<_>>(), total),
        (vec![b1, a2], 4)
    );
    let running = JobFilter {
        status: Some(JobStatus::Running),
        created_by: Some(reportd::model::job::Owner {
            id: None,
            name: "bob".into(),
        }),
        ..Default::default()
    };
    let (jobs, total) = store.jobs(&running).await.unwrap();
    assert!(jobs.is_empty() && total == 0);

    // Per-user limit: the 11th queued job of carol is refused; a cancelled one frees a place.
    let mut carol = Vec::new();
    for _ in 0..10 {
        match store
            .insert_job(&new_job("carol", Lane::Slow), 10)
            .await
            .unwrap()
        {
            Submitted::Queued(id) => carol.push(id),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        store
            .queued_jobs_of(&reportd::model::job::Owner {
                id: None,
                name: "carol".into()
            })
            .await
            .unwrap(),
        10
    );
    assert_eq!(
        store
            .insert_job(&new_job("carol", Lane::Slow), 10)
            .await
            .unwrap(),
        Submitted::TooMany { limit: 10 }
    );
    assert!(
        matches!(
            store
                .insert_job(&new_job("dave", Lane::Slow), 10)
                .await
                .unwrap(),
            Submitted::Queued(_)
        ),
        "the limit is per user"
    );
    assert_eq!(
        store.cancel_job(carol[0], "carol").await.unwrap(),
        JobCancel::Cancelled
    );
    assert_eq!(
        store
            .queued_jobs_of(&reportd::model::job::Owner {
                id: None,
                name: "carol".into()
            })
            .await
            .unwrap(),
        9
    );
    assert!(matches!(
        store
            .insert_job(&new_job("carol", Lane::Slow), 10)
            .await
            .unwrap(),
        Submitted::Queued(_)
    ));

    // Claims: 8 claimers on two stores drain the fast lane; each job is claimed once, no
    // slow job is taken by a fast claimer, and bob's second fast job (b2) waits while his
    // first runs (one running job per owner and lane).
    for i in 0..20 {
        submit(&store, &new_job(&format!("erin{i}"), Lane::Fast)).await;
    }
    let queued = JobFilter {
        status: Some(JobStatus::Queued),
        limit: 1000,
        ..Default::default()
    };
    let (before, _) = store.jobs(&queued).await.unwrap();
    let fast: BTreeSet<i64> = before
        .iter()
        .filter(|j| j.lane == Lane::Fast)
        .map(|j| j.id)
        .collect();
    let slow: BTreeSet<i64> = before
        .iter()
        .filter(|j| j.lane == Lane::Slow)
        .map(|j| j.id)
        .collect();
    assert_eq!(fast.len(), 23);
    let claimers: Vec<_> = (0..8)
        .map(|n| {
            let s = if n % 2 == 0 {
                store.clone()
            } else {
                store2.clone()
            };
            tokio::spawn(async move {
                let instance = format!("inst-{n}");
                let mut mine = Vec::new();
                while let Some(job) = s.claim_next_job(Lane::Fast, &instance).await.unwrap() {
                    assert_eq!(job.status, JobStatus::Running);
                    assert_eq!(job.lane, Lane::Fast, "a fast claimer takes only fast jobs");
                    assert_eq!(job.instance.as_deref(), Some(instance.as_str()));
                    assert_eq!(job.attempts, 1);
                    assert!(job.started_at.is_some() && job.execution_id.is_none());
                    mine.push(job.id);
                }
                (instance, mine)
            })
        })
        .collect();
    let mut claimed = Vec::new();
    let mut owner = std::collections::HashMap::new();
    for c in claimers {
        let (instance, mine) = c.await.unwrap();
        for id in mine {
            claimed.push(id);
            owner.insert(id, instance.clone());
        }
    }
    claimed.sort_unstable();
    let once: BTreeSet<i64> = claimed.iter().copied().collect();
    assert_eq!(
        once.len(),
        claimed.len(),
        "a job claimed twice: {claimed:?}"
    );
    let mut claimable = fast.clone();
    claimable.remove(&b2);
    assert_eq!(once, claimable, "every fast job claimed but b2");
    let (after, _) = store.jobs(&queued).await.unwrap();
    let mut waiting = slow.clone();
    waiting.insert(b2);
    assert_eq!(
        after.iter().map(|j| j.id).collect::<BTreeSet<_>>(),
        waiting,
        "slow jobs wait, and bob's second fast job"
    );
    let instances = store.running_job_instances().await.unwrap();
    assert!(
        !instances.is_empty() && instances.iter().all(|i| i.starts_with("inst-")),
        "{instances:?}"
    );

    // Finish with files; count downloads; find a file by its path.
    let done = b1;
    let ran_on = owner[&done].clone();
    let dir = format!("/srv/exports/exports/{done}");
    let files = vec![
        ("orders.csv".to_string(), format!("{dir}/orders.csv"), 120),
        (
            "orders_part2.csv".to_string(),
            format!("{dir}/orders_part2.csv"),
            80,
        ),
    ];
    let expires = now() + Duration::hours(1);
    let finish = JobFinish {
        status: JobStatus::Done,
        rows: Some(1234),
        bytes: Some(200),
        error: None,
        files: files.clone(),
        expires_at: Some(expires),
        checksums: Vec::new(),
    };
    assert!(
        !store
            .finish_job(done, "someone-else", &finish)
            .await
            .unwrap(),
        "not ours"
    );
    assert!(store.finish_job(done, &ran_on, &finish).await.unwrap());
    assert!(
        !store.finish_job(done, &ran_on, &finish).await.unwrap(),
        "finished once"
    );
    let job = store.job(done).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Done);
    assert_eq!(
        (job.rows, job.bytes, job.error.as_deref()),
        (Some(1234), Some(200), None)
    );
    assert!(job.finished_at.is_some());
    assert_eq!(job.expires_at, Some(reportd::store::micros(expires)));
    let names: Vec<_> = job
        .files
        .iter()
        .map(|f| (f.index, f.name.as_str(), f.bytes))
        .collect();
    assert_eq!(names, [(0, "orders.csv", 120), (1, "orders_part2.csv", 80)]);
    assert!(
        job.files
            .iter()
            .all(|f| f.downloads == 0 && f.last_download_at.is_none())
    );
    store.count_job_download(done, 1, None).await.unwrap();
    store2.count_job_download(done, 1, None).await.unwrap();
    let second = store.job_file(done, 1).await.unwrap().unwrap();
    assert_eq!(
        (second.downloads, second.path.as_str()),
        (2, files[1].1.as_str())
    );
    assert!(second.last_download_at.is_some());
    assert_eq!(store.job_file(done, 0).await.unwrap().unwrap().downloads, 0);
    assert!(store.job_file(done, 2).await.unwrap().is_none());
    let (id, found) = store.job_file_by_path(&files[1].1).await.unwrap().unwrap();
    assert_eq!((id, found), (done, second));
    assert!(
        store
            .job_file_by_path("/srv/exports/nope.csv")
            .await
            .unwrap()
            .is_none()
    );
    let (listed, _) = store
        .jobs(&JobFilter {
            status: Some(JobStatus::Done),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].files.len(), 2, "a listing has the files");
    assert_eq!(listed[0].files[1].downloads, 2);

    // Cancel in each state.
    assert_eq!(
        store.cancel_job(a2, "ops").await.unwrap(),
        JobCancel::Cancelled,
        "queued"
    );
    let job = store.job(a2).await.unwrap().unwrap();
    assert_eq!(
        (job.status, job.error.as_deref()),
        (JobStatus::Cancelled, Some("cancelled by ops"))
    );
    assert!(job.finished_at.is_some());
    assert_eq!(
        store.cancel_job(a2, "ops").await.unwrap(),
        JobCancel::Finished(JobStatus::Cancelled)
    );
    assert_eq!(
        store.cancel_job(done, "ops").await.unwrap(),
        JobCancel::Finished(JobStatus::Done)
    );
    assert_eq!(
        store.cancel_job(9_999_999, "ops").await.unwrap(),
        JobCancel::Unknown
    );

    let without_run = a1;
    assert_eq!(store.job_cancel_requested(without_run).await.unwrap(), None);
    assert_eq!(
        store.cancel_job(without_run, "ops").await.unwrap(),
        JobCancel::Requested(None)
    );
    assert_eq!(
        store.cancel_job(without_run, "zoe").await.unwrap(),
        JobCancel::Requested(None)
    );
    assert_eq!(
        store2
            .job_cancel_requested(without_run)
            .await
            .unwrap()
            .as_deref(),
        Some("ops"),
        "the first to ask is kept"
    );
    // (b2 waits behind b1: one of erin's is running.)
    let with_run = *claimed
        .iter()
        .rev()
        .find(|id| ![a1, b1].contains(id))
        .unwrap();
    let execution = store
        .start_execution(&NewExecution {
            task_id: None,
            task_name: format!("export #{with_run}"),
            trigger: Trigger::Manual,
            attempt: 1,
            scheduled_at: None,
            status: ExecutionStatus::Running,
            error: None,
            instance: Some(owner[&with_run].clone()),
        })
        .await
        .unwrap();
    store.set_job_execution(with_run, execution).await.unwrap();
    assert_eq!(
        store.job(with_run).await.unwrap().unwrap().execution_id,
        Some(execution)
    );
    assert_eq!(
        store.cancel_job(with_run, "ops").await.unwrap(),
        JobCancel::Requested(Some(execution))
    );
    assert_eq!(
        store.cancel_requested(execution).await.unwrap().as_deref(),
        Some("ops")
    );
    assert_eq!(
        store.job(with_run).await.unwrap().unwrap().status,
        JobStatus::Running
    );

    // A daemon stopped: its jobs go back to the queue once, then fail. (b2, free to run now
    // that b1 is done, is cancelled first, so frank's is the one claimed.)
    assert_eq!(
        store.cancel_job(b2, "ops").await.unwrap(),
        JobCancel::Cancelled
    );
    let lost = submit(&store, &new_job("frank", Lane::Fast)).await;
    let job = store
        .claim_next_job(Lane::Fast, "inst-lost")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.id, lost);
    assert_eq!(store.heartbeat_jobs("inst-lost").await.unwrap(), 1);
    let an_hour_ago = now() - Duration::hours(1);
    assert_eq!(
        store
            .requeue_jobs("inst-lost", Some(an_hour_ago))
            .await
            .unwrap(),
        (0, vec![]),
        "a live heartbeat keeps it"
    );
    assert_eq!(
        store.requeue_jobs("inst-lost", None).await.unwrap(),
        (1, vec![])
    );
    let job = store.job(lost).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(
        (job.instance, job.started_at, job.attempts),
        (None, None, 1)
    );
    assert_eq!(job.error.as_deref(), Some(REQUEUED));
    assert!(
        !store
            .running_job_instances()
            .await
            .unwrap()
            .contains(&"inst-lost".to_string())
    );
    let job = store2
        .claim_next_job(Lane::Fast, "inst-lost")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((job.id, job.attempts), (lost, 2));
    let in_an_hour = now() + Duration::hours(1);
    assert_eq!(
        store
            .requeue_jobs("inst-lost", Some(in_an_hour))
            .await
            .unwrap(),
        (0, vec![lost])
    );
    let job = store.job(lost).await.unwrap().unwrap();
    assert_eq!(
        (job.status, job.error.as_deref()),
        (JobStatus::Failed, Some(INTERRUPTED_TWICE))
    );
    assert!(job.finished_at.is_some());
    // A job whose cancel was asked is not run again.
    let ran_on = owner[&without_run].clone();
    let (requeued, ended) = store.requeue_jobs(&ran_on, None).await.unwrap();
    assert!(ended.contains(&without_run), "({requeued}, {ended:?})");
    let job = store.job(without_run).await.unwrap().unwrap();
    assert_eq!(
        (job.status, job.error.as_deref()),
        (JobStatus::Cancelled, Some("cancelled by ops"))
    );

    // Expiry.
    assert!(store.expired_jobs(now()).await.unwrap().is_empty());
    let expired = store
        .expired_jobs(now() + Duration::hours(2))
        .await
        .unwrap();
    assert_eq!(expired.iter().map(|j| j.id).collect::<Vec<_>>(), [done]);
    assert_eq!(expired[0].files.len(), 2);
    assert!(store.mark_job_expired(done).await.unwrap());
    assert!(!store2.mark_job_expired(done).await.unwrap(), "once");
    assert_eq!(
        store.job(done).await.unwrap().unwrap().status,
        JobStatus::Expired
    );
    assert!(
        store
            .expired_jobs(now() + Duration::hours(2))
            .await
            .unwrap()
            .is_empty()
    );

    // Secrets: a store without a key refuses a callback but takes a job without one.
    let keyless = Store::connect(&scratch.settings()).await.unwrap();
    let e = keyless.insert_job(&with_callback, 1000).await.unwrap_err();
    assert!(matches!(e, StoreError::NoKeyToSeal { .. }), "{e}");
    assert!(!e.to_string().contains(HOOK_TOKEN), "{e}");
    assert!(matches!(
        keyless
            .insert_job(&new_job("gus", Lane::Fast), 1000)
            .await
            .unwrap(),
        Submitted::Queued(_)
    ));
    let e = keyless.job(a1).await.unwrap_err().to_string();
    assert_eq!(
        e,
        format!("export job {a1}: callback.url is encrypted and no key is loaded")
    );

    // A plain callback left in the store is sealed by seal_plaintext.
    let plain = submit(&store, &new_job("hal", Lane::Slow)).await;
    exec(
        &raw,
        &format!(
            "UPDATE export_jobs SET callback = '{{\"url\":\"https://hooks.example/old?token={HOOK_TOKEN}\",\"secret\":\"{HOOK_SECRET}\"}}' WHERE id = {plain}"
        ),
    )
    .await;
    assert_eq!(store.seal_plaintext().await.unwrap(), 2);
    assert_sealed(&raw).await;
    let cb = store.job(plain).await.unwrap().unwrap().callback.unwrap();
    assert_eq!(cb.secret.unwrap().expose(), HOOK_SECRET);

    // rotate_key re-encrypts the callbacks: 2 + 1 + 2 values (the reference stays).
    let new_key = SecretKey::generate();
    assert_eq!(store.rotate_key(&new_key).await.unwrap(), 5);
    assert_sealed(&raw).await;
    let e = store.job(a1).await.unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "export job {a1}: callback.url cannot be decrypted with this key"
        )),
        "{e}"
    );
    let rotated = Store::connect(&scratch.settings())
        .await
        .unwrap()
        .with_key(new_key);
    let cb = rotated.job(a1).await.unwrap().unwrap().callback.unwrap();
    assert_eq!(cb.url.expose(), callback().url.expose());
    let (jobs, _) = rotated
        .jobs(&JobFilter {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(jobs.len() > 30);

    for s in [store, store2, keyless, rotated] {
        s.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_suite_jobs_sqlite() {
    suite(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_suite_jobs_mariadb() {
    suite(Backend::Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_suite_jobs_postgres() {
    suite(Backend::Postgres).await;
}
