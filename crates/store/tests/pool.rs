//! Pooled connections are not pinged on every acquire, but one that sat idle is checked first:
//! a PostgreSQL backend that went away while idle is replaced, never handed out broken.

use std::time::Duration;

use portcullis_store::sqlx::{self, Row};
use portcullis_store::{Store, testing};

#[cfg(test)]
async fn backend_pid(conn: &mut sqlx::AnyConnection) -> i32 {
    sqlx::query("SELECT pg_backend_pid() AS pid")
        .fetch_one(conn)
        .await
        .unwrap()
        .try_get("pid")
        .unwrap()
}

#[tokio::test]
async fn idle_connections_killed_on_the_server_are_replaced() {
    let store = testing::postgres().await.unwrap();
    let admin = Store::open(&testing::postgres_url()).await.unwrap();
    // Every connection the pool holds, and the server process behind each.
    let mut held = Vec::new();
    for _ in 0..store.pool().size().max(1) {
        held.push(store.pool().acquire().await.unwrap());
    }
    let mut pids = Vec::new();
    for conn in &mut held {
        pids.push(backend_pid(conn).await);
    }
    drop(held);
    for pid in &pids {
        let killed: bool = sqlx::query("SELECT pg_terminate_backend($1) AS done")
            .bind(*pid)
            .fetch_one(admin.pool())
            .await
            .unwrap()
            .try_get("done")
            .unwrap();
        assert!(killed);
    }
    // Idle past the threshold: the next acquire pings, finds each gone, opens another.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut conn = store.pool().acquire().await.unwrap();
    let pid = backend_pid(&mut conn).await;
    assert!(!pids.contains(&pid), "{pid} was terminated");
    drop(conn);
    store.close().await;
    admin.close().await;
}
