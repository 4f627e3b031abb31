//! Stores for tests: a fresh SQLite file, or a fresh schema in the machine's PostgreSQL
//! (`PORTCULLIS_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/test`).
//! Never a mock: the tests of every component run against both real backends.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Executor;

use crate::{Store, StoreError};

/// The PostgreSQL server the tests use.
pub fn postgres_url() -> String {
    std::env::var("PORTCULLIS_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A store in a new SQLite file under `dir`.
pub async fn sqlite(dir: &Path) -> Result<Store, StoreError> {
    Store::open(&format!("sqlite://{}", dir.join("store.db").display())).await
}

/// A store bound to a new, empty PostgreSQL schema, so concurrent tests never share tables.
pub async fn postgres() -> Result<Store, StoreError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let schema = format!(
        "pc_test_{}_{}_{}",
        std::process::id(),
        crate::now_ms(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let base = postgres_url();
    let admin = Store::open(&base).await?;
    admin
        .pool()
        .execute(sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA {schema}"
        ))))
        .await?;
    admin.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    Store::open(&format!("{base}{sep}options=-c%20search_path%3D{schema}")).await
}

/// Both backends, for tests that must behave the same on each.
pub async fn both(dir: &Path) -> Result<Vec<Store>, StoreError> {
    Ok(vec![sqlite(dir).await?, postgres().await?])
}
