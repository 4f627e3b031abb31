//! `Commit` sets how every pooled connection commits: flushed to disk by default, or
//! unflushed when the operator trades the last commits on a machine crash for latency.

use portcullis_store::sqlx::{self, Row};
use portcullis_store::{Commit, Store, testing};

/// The setting as every connection of the pool reports it (all held at once, so each is a
/// separate connection).
#[cfg(test)]
async fn on_every_connection(store: &Store, sql: &str) -> Vec<String> {
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(store.pool().acquire().await.unwrap());
    }
    let mut seen = Vec::new();
    for conn in &mut held {
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        // SQLite answers an integer, PostgreSQL text.
        let value = row
            .try_get::<i64, _>(0)
            .map(|v| v.to_string())
            .or_else(|_| row.try_get::<String, _>(0))
            .unwrap();
        seen.push(value);
    }
    seen
}

#[tokio::test]
async fn sqlite_commits_are_flushed_unless_asked_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    // 2 = FULL: the WAL is synced on every commit.
    let flushed = Store::open(&url).await.unwrap();
    assert_eq!(
        on_every_connection(&flushed, "PRAGMA synchronous").await,
        ["2", "2", "2"]
    );
    flushed.close().await;
    // 1 = NORMAL: synced at checkpoints only.
    let unflushed = Store::open_with(&url, Commit::Unflushed).await.unwrap();
    assert_eq!(
        on_every_connection(&unflushed, "PRAGMA synchronous").await,
        ["1", "1", "1"]
    );
    assert_eq!(
        on_every_connection(&unflushed, "PRAGMA journal_mode").await,
        ["wal", "wal", "wal"]
    );
    unflushed.close().await;
}

#[tokio::test]
async fn postgres_commits_are_flushed_unless_asked_otherwise() {
    let url = testing::postgres_url();
    let server_default: String =
        sqlx::query("SELECT reset_val FROM pg_settings WHERE name = 'synchronous_commit'")
            .fetch_one(testing::postgres().await.unwrap().pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
    assert_ne!(
        server_default, "off",
        "this test needs a server that flushes commits"
    );
    let flushed = Store::open_with(&url, Commit::Flushed).await.unwrap();
    let seen = on_every_connection(&flushed, "SHOW synchronous_commit").await;
    assert_eq!(seen, vec![server_default.clone(); 3]);
    flushed.close().await;
    let unflushed = Store::open_with(&url, Commit::Unflushed).await.unwrap();
    assert_eq!(
        on_every_connection(&unflushed, "SHOW synchronous_commit").await,
        ["off", "off", "off"]
    );
    unflushed.close().await;
}
