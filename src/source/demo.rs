//! The sample data behind the shipped `demo` data source: a SQLite `orders` table with a few
//! thousand plausible rows (Chinese customer names, cities, amounts, dates over the last 90
//! days, some unpaid), created the first time the source is used. Deterministic, so reports
//! from it are reproducible apart from the dates.

use chrono::{Duration, Local, NaiveDateTime};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Executor};
use std::path::Path;

/// Rows written into a new demo `orders` table.
pub const DEMO_ROWS: usize = 5000;

const SURNAMES: [&str; 12] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙",
];
const GIVEN: [&str; 10] = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "杰"];
const CITIES: [&str; 8] = [
    "北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "南京",
];
const PRODUCTS: [(&str, f64); 6] = [
    ("笔记本电脑", 5999.0),
    ("无线耳机", 899.0),
    ("机械键盘", 459.0),
    ("显示器", 1699.0),
    ("移动电源", 129.0),
    ("智能手表", 1299.0),
];
const STATUSES: [&str; 4] = ["paid", "paid", "shipped", "pending"];

/// Creates `path` and its `orders` table with [`DEMO_ROWS`] rows unless the table exists.
///
/// # Errors
/// The SQLite error when the file cannot be created or written.
pub async fn ensure(path: &Path) -> Result<(), sqlx::Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let mut conn = SqliteConnection::connect_with(&opts).await?;
    let exists: Option<(String,)> =
        sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'orders'")
            .fetch_optional(&mut conn)
            .await?;
    if exists.is_none() {
        fill(&mut conn).await?;
        tracing::info!(path = %path.display(), rows = DEMO_ROWS, "created demo orders table");
    }
    conn.close().await
}

async fn fill(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    tx.execute(
        "CREATE TABLE orders (
            id INTEGER PRIMARY KEY,
            order_no TEXT NOT NULL,
            customer TEXT NOT NULL,
            city TEXT NOT NULL,
            product TEXT NOT NULL,
            qty INTEGER NOT NULL,
            amount REAL NOT NULL,
            status TEXT NOT NULL,
            created_at DATETIME NOT NULL,
            paid_at DATETIME
        )",
    )
    .await?;
    let now = Local::now().naive_local();
    let start = now - Duration::days(90);
    let mut rng = Lcg(20_240_601);
    for id in 1..=DEMO_ROWS as i64 {
        let (product, price) = PRODUCTS[rng.below(PRODUCTS.len())];
        let qty = 1 + rng.below(5) as i64;
        let created = start + Duration::seconds(rng.below(90 * 86_400) as i64);
        let status = STATUSES[rng.below(STATUSES.len())];
        let paid =
            (status != "pending").then(|| created + Duration::minutes(1 + rng.below(600) as i64));
        sqlx::query(
            "INSERT INTO orders (id, order_no, customer, city, product, qty, amount, status, created_at, paid_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(format!("SO{}{:06}", created.format("%Y%m%d"), id))
        .bind(format!("{}{}", SURNAMES[rng.below(SURNAMES.len())], GIVEN[rng.below(GIVEN.len())]))
        .bind(CITIES[rng.below(CITIES.len())])
        .bind(product)
        .bind(qty)
        .bind(price * qty as f64)
        .bind(status)
        .bind(stamp(created))
        .bind(paid.map(stamp))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

fn stamp(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A tiny deterministic generator; sample data needs no more.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}
