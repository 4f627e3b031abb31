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

#[tokio::test]
async fn sqlite_checkpoints_run_in_the_background_not_inside_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    // No commit checkpoints on its own, on any connection.
    assert_eq!(
        on_every_connection(&store, "PRAGMA wal_autocheckpoint").await,
        ["0", "0", "0"]
    );
    sqlx::query("CREATE TABLE t (b BLOB)")
        .execute(store.pool())
        .await
        .unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    for _ in 0..200 {
        sqlx::query("INSERT INTO t (b) VALUES (randomblob(4000))")
            .execute(store.pool())
            .await
            .unwrap();
    }
    // The log reaches the database file anyway: ~200 pages of it, within a few ticks.
    let start = std::time::Instant::now();
    while std::fs::metadata(&path).unwrap().len() < before + 200 * 4000 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the write-ahead log was never checkpointed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_log_stops_growing_under_writes_that_never_pause() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let wal = dir.path().join("s.db-wal");
    let store = Store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("CREATE TABLE t (b BLOB)")
        .execute(store.pool())
        .await
        .unwrap();
    // Two writers, back to back, for 3 s: ~4 KiB of log per row, and no pause for a passive
    // checkpoint to catch up with.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut writers = Vec::new();
    for _ in 0..2 {
        let pool = store.pool().clone();
        writers.push(tokio::spawn(async move {
            let mut rows = 0u64;
            while std::time::Instant::now() < deadline {
                sqlx::query("INSERT INTO t (b) VALUES (randomblob(4000))")
                    .execute(&pool)
                    .await
                    .unwrap();
                rows += 1;
            }
            rows
        }));
    }
    let mut rows = 0;
    for w in writers {
        rows += w.await.unwrap();
    }
    let written = rows * 4096;
    // Bytes 12..16 of the log's header count how many times it was started over from its
    // beginning. Never restarted, the log would hold everything written since the start
    // (about three pages per row); its size is not the measure, since it keeps the largest
    // size it reached between two restarts (the copy takes longer on a loaded machine).
    let header = std::fs::read(&wal).unwrap();
    let restarts = u32::from_be_bytes(header[12..16].try_into().unwrap());
    assert!(
        written > 4 * 1024 * 1024 && restarts >= 1,
        "the log restarted {restarts} times while {written} bytes were written"
    );
    store.close().await;
}
