//! The store suite, run against each backend: tasks (upsert, lookup, enable, remove), data
//! sources, executions and fire claims.

use chrono::{Duration, TimeZone, Utc};

use crate::helpers::{Backend, ScratchStore};
use reportd::model::alert::AlertState;
use reportd::model::datasource::{DataSourceSpec, SourceKind};
use reportd::model::delivery::{DeliveryOutcome, FileChecksum};
use reportd::model::execution::{
    ExecutionStatus, Finish, NewExecution, NotificationOutcome, SheetRows, Trigger,
};
use reportd::model::split::SplitRecord;
use reportd::store::{Change, Store, StoreError};
use reportd::task::file::TaskFile;

const TASKS: &str = r#"
tasks:
  - name: 每日订单报表
    data_source: warehouse
    cron: "0 9 * * 1-5"
    sheets:
      - name: 订单
        sql: SELECT * FROM orders WHERE created_at >= '{yesterday}'
      - name: 退款
        sql: SELECT * FROM refunds
    output: { format: xlsx, filename: "订单日报_{date:%Y%m%d}.xlsx" }
    timeout: 3600
    retries: 2
    notify:
      dingtalk: { webhook: "https://oapi.dingtalk.com/robot/send?access_token=t", secret: SECabc, at_mobiles: ["13800000000"] }
      email: { to: [ops@example.com], subject: "{task_name} {date}", attach: false }
  - name: hourly
    data_source: warehouse
    cron: "@hourly"
    timezone: Europe/Berlin
    sql: SELECT 1
"#;

fn specs() -> Vec<reportd::model::task::TaskSpec> {
    reportd::yaml::parse::<TaskFile>(TASKS, std::path::Path::new("t.yaml"))
        .unwrap()
        .unwrap()
        .tasks
}

async fn suite(backend: Backend) {
    let scratch = ScratchStore::new(backend);
    // The tasks have a webhook and a signing secret: the store seals them with its key.
    let key = reportd::model::sealed::SecretKey::generate();
    let store = Store::connect(&scratch.settings())
        .await
        .expect("connect and migrate")
        .with_key(key.clone());
    // Connecting again applies no migration twice.
    let store2 = Store::connect(&scratch.settings())
        .await
        .expect("reconnect")
        .with_key(key);
    store.ping().await.unwrap();

    // Tasks: create, idempotent re-apply, update one.
    let mut specs = specs();
    let first = store.apply_tasks(&specs).await.unwrap();
    assert!(
        matches!(first[0].1, Change::Created(_)) && matches!(first[1].1, Change::Created(_)),
        "{first:?}"
    );
    let before = store.tasks().await.unwrap();
    assert_eq!(before.len(), 2);
    assert_eq!(before[0].spec, specs[0], "round trip through the store");
    assert_eq!(before[1].spec, specs[1]);
    let again = store2.apply_tasks(&specs).await.unwrap();
    assert!(
        again.iter().all(|(_, c)| matches!(c, Change::Unchanged(_))),
        "{again:?}"
    );
    assert_eq!(
        store.tasks().await.unwrap(),
        before,
        "re-apply changes nothing, not even updated_at"
    );

    specs[1].cron = "*/5 * * * *".into();
    let third = store.apply_tasks(&specs).await.unwrap();
    assert!(matches!(third[0].1, Change::Unchanged(_)) && matches!(third[1].1, Change::Updated(_)));
    let hourly = store.find_task("hourly").await.unwrap().unwrap();
    assert_eq!(hourly.spec.cron, "*/5 * * * *");
    assert!(hourly.updated_at >= before[1].updated_at);
    assert_eq!(hourly.created_at, before[1].created_at);

    // Lookup by id or name; enable/disable.
    let by_id = store
        .find_task(&hourly.id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_id.spec.name, "hourly");
    assert!(store.find_task("nope").await.unwrap().is_none());
    assert!(store.set_task_enabled(hourly.id, false).await.unwrap());
    assert!(
        !store
            .find_task("hourly")
            .await
            .unwrap()
            .unwrap()
            .spec
            .enabled
    );
    assert!(
        store.set_task_enabled(hourly.id, false).await.unwrap(),
        "disabling twice is fine"
    );
    assert!(!store.set_task_enabled(9_999_999, true).await.unwrap());

    // Data sources.
    let mut spec = DataSourceSpec::new(SourceKind::Mysql);
    spec.host = Some("db.internal".into());
    spec.password = reportd::model::secret::Secret::new("${WAREHOUSE_PW}");
    store.add_data_source("warehouse", &spec).await.unwrap();
    let dup = store.add_data_source("warehouse", &spec).await.unwrap_err();
    assert!(matches!(dup, StoreError::Duplicate(_)), "{dup}");
    let listed = store.data_sources().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0].spec, spec,
        "the ${{ENV}} reference is stored, not expanded"
    );
    assert!(store.remove_data_source("warehouse").await.unwrap());
    assert!(!store.remove_data_source("warehouse").await.unwrap());

    // Executions.
    let scheduled = Utc.with_ymd_and_hms(2026, 11, 23, 1, 0, 0).unwrap();
    let id = store
        .start_execution(&NewExecution {
            task_id: Some(hourly.id),
            task_name: "hourly".into(),
            trigger: Trigger::Cron,
            attempt: 1,
            scheduled_at: Some(scheduled),
            status: ExecutionStatus::Running,
            error: None,
            instance: Some("host-1".into()),
        })
        .await
        .unwrap();
    let skipped = store
        .start_execution(&NewExecution {
            task_id: Some(hourly.id),
            task_name: "hourly".into(),
            trigger: Trigger::CatchUp,
            attempt: 1,
            scheduled_at: Some(scheduled + Duration::hours(1)),
            status: ExecutionStatus::Skipped,
            error: Some("previous run still going".into()),
            instance: None,
        })
        .await
        .unwrap();
    assert_ne!(id, skipped);
    let running = store.executions(Some(hourly.id), 10).await.unwrap();
    let row = running.iter().find(|e| e.id == id).unwrap();
    assert_eq!(row.status, ExecutionStatus::Running);
    assert_eq!(row.scheduled_at, Some(scheduled));
    assert!(row.finished_at.is_none());
    let skip_row = running.iter().find(|e| e.id == skipped).unwrap();
    assert_eq!(skip_row.status, ExecutionStatus::Skipped);
    assert!(skip_row.finished_at.is_some());
    assert_eq!(skip_row.trigger, Trigger::CatchUp);

    store
        .finish_execution(
            id,
            &Finish {
                status: Some(ExecutionStatus::Success),
                rows: Some(9_007_199_254_740_993),
                sheets: vec![
                    SheetRows {
                        name: "订单明细".into(),
                        rows: 888,
                    },
                    SheetRows {
                        name: "城市汇总".into(),
                        rows: 9_007_199_254_740_105,
                    },
                ],
                bytes: Some(123_456),
                files: vec!["exports/2026-11-23/订单日报_20261123.xlsx".into()],
                error: None,
                notifications: vec![NotificationOutcome {
                    channel: "dingtalk".into(),
                    ok: true,
                    attempts: 1,
                    error: None,
                }],
                alert: Some(AlertState::Triggered),
                split: vec![SplitRecord {
                    sheet: "订单".into(),
                    column: "o.id".into(),
                    ranges: 12,
                    recut: 1,
                    readers: 2,
                    rows_per_reader: vec![7, 5],
                }],
                deliveries: vec![DeliveryOutcome {
                    target: "oss_reports".into(),
                    file: "订单日报_20261123.xlsx".into(),
                    ok: true,
                    key: Some("reportd/2026-11-23/订单日报_20261123.xlsx".into()),
                    bytes: 123_456,
                    attempts: 2,
                    error: None,
                }],
                checksums: vec![FileChecksum {
                    file: "订单日报_20261123.xlsx".into(),
                    bytes: 123_456,
                    sha256: "ab".repeat(32),
                    md5: "cd".repeat(16),
                }],
            },
        )
        .await
        .unwrap();
    let done = store.executions(Some(hourly.id), 10).await.unwrap();
    let row = done.iter().find(|e| e.id == id).unwrap();
    assert_eq!(row.status, ExecutionStatus::Success);
    assert_eq!(row.rows, Some(9_007_199_254_740_993));
    let sheets: Vec<(&str, u64)> = row
        .sheets
        .iter()
        .map(|s| (s.name.as_str(), s.rows))
        .collect();
    assert_eq!(
        sheets,
        [("订单明细", 888), ("城市汇总", 9_007_199_254_740_105)]
    );
    assert_eq!(
        row.files,
        vec!["exports/2026-11-23/订单日报_20261123.xlsx".to_string()]
    );
    assert_eq!(row.notifications.len(), 1);
    assert_eq!(row.alert, Some(AlertState::Triggered));
    assert_eq!(row.deliveries.len(), 1);
    assert_eq!(
        row.deliveries[0].key.as_deref(),
        Some("reportd/2026-11-23/订单日报_20261123.xlsx")
    );
    assert_eq!(row.deliveries[0].attempts, 2);
    assert_eq!(row.checksums[0].md5, "cd".repeat(16));
    assert_eq!(
        row.split[0].rows_per_reader,
        vec![7, 5],
        "the split record round-trips"
    );
    assert_eq!(
        store.previous_alert(hourly.id, id + 1).await.unwrap(),
        None,
        "recorded, but nobody was told"
    );
    store.set_alert_notified(id).await.unwrap();
    assert_eq!(
        store.previous_alert(hourly.id, id + 1).await.unwrap(),
        Some(AlertState::Triggered)
    );
    assert_eq!(store.previous_alert(hourly.id, id).await.unwrap(), None);
    assert!(row.finished_at.unwrap() >= row.started_at);
    assert_eq!(
        store.executions(None, 1).await.unwrap().len(),
        1,
        "limit applies"
    );

    // Claims: exactly one winner per (task, scheduled time), also when racing.
    let lease = Utc::now() + Duration::seconds(30);
    assert!(
        store
            .claim_fire(hourly.id, scheduled, "host-1", lease)
            .await
            .unwrap()
    );
    assert!(
        !store2
            .claim_fire(hourly.id, scheduled, "host-2", lease)
            .await
            .unwrap()
    );
    let next = scheduled + Duration::minutes(5);
    let racers = (0..8).map(|i| {
        let s = if i % 2 == 0 {
            store.clone()
        } else {
            store2.clone()
        };
        tokio::spawn(async move {
            s.claim_fire(hourly.id, next, &format!("host-{i}"), lease)
                .await
                .unwrap()
        })
    });
    let wins = futures_count(racers).await;
    assert_eq!(wins, 1, "one claim wins the race");
    let later = lease + Duration::seconds(30);
    assert!(
        store
            .renew_claim(hourly.id, scheduled, "host-1", later, Some(id))
            .await
            .unwrap()
    );
    assert!(
        !store
            .renew_claim(hourly.id, scheduled, "host-2", later, None)
            .await
            .unwrap()
    );
    let claim = store.claim(hourly.id, scheduled).await.unwrap().unwrap();
    assert_eq!(
        (
            claim.instance.as_str(),
            claim.execution_id,
            claim.lease_until
        ),
        ("host-1", Some(id), reportd::store::micros(later))
    );

    // Remove: the task and its claims go, its history stays.
    assert!(store.remove_task(hourly.id).await.unwrap());
    assert!(store.find_task("hourly").await.unwrap().is_none());
    assert!(store.claim(hourly.id, scheduled).await.unwrap().is_none());
    assert_eq!(
        store.executions(Some(hourly.id), 10).await.unwrap().len(),
        2
    );
    assert!(!store.remove_task(hourly.id).await.unwrap());
    store.close().await;
    store2.close().await;
}

async fn futures_count(tasks: impl Iterator<Item = tokio::task::JoinHandle<bool>>) -> usize {
    let mut wins = 0;
    for t in tasks.collect::<Vec<_>>() {
        wins += usize::from(t.await.unwrap());
    }
    wins
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_suite_sqlite() {
    suite(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_suite_mariadb() {
    suite(Backend::Mysql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_suite_postgres() {
    suite(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_store_file_and_directory_are_created() {
    let scratch = ScratchStore::new(Backend::Sqlite);
    let mut settings = scratch.settings();
    settings.sqlite_path = scratch.dir.path().join("nested/dir/system.db");
    let store = Store::connect(&settings).await.unwrap();
    assert!(settings.sqlite_path.exists());
    assert!(store.describe().starts_with("sqlite "));
}
