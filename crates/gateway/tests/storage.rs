//! `[storage] synchronous_commit` reaches the gateway's store: flushed commits by default,
//! unflushed when the operator turns it off.

use std::collections::BTreeMap;

use portcullis_gateway::Gateway;
use portcullis_store::sqlx::{self, Row};

#[cfg(test)]
async fn synchronous_pragma(dir: &std::path::Path, setting: &str) -> i64 {
    let config = format!(
        "[storage]\nurl = \"sqlite://{db}\"\n{setting}\n[auth]\napi_keys = true\nkey_pepper = \"{pepper}\"\n",
        db = dir.join("store.db").display(),
        pepper = "ab".repeat(32),
    );
    let config =
        portcullis_config::from_str(&config, None, &BTreeMap::<String, String>::new()).unwrap();
    let gw = Gateway::build(&config).await.unwrap();
    let row = sqlx::query("PRAGMA synchronous")
        .fetch_one(gw.store.pool())
        .await
        .unwrap();
    let value = row.try_get::<i64, _>(0).unwrap();
    gw.store.close().await;
    value
}

#[tokio::test]
async fn the_gateway_store_commits_as_configured() {
    let dir = tempfile::tempdir().unwrap();
    // SQLite: 2 = FULL (synced on every commit), 1 = NORMAL (synced at checkpoints).
    assert_eq!(synchronous_pragma(dir.path(), "").await, 2);
    assert_eq!(
        synchronous_pragma(dir.path(), "synchronous_commit = true").await,
        2
    );
    assert_eq!(
        synchronous_pragma(dir.path(), "synchronous_commit = false").await,
        1
    );
}
