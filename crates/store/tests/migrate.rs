use portcullis_store::{Migration, StoreError, testing};

const V1: Migration = Migration::same(
    1,
    "CREATE TABLE widgets (id BIGINT PRIMARY KEY, name TEXT NOT NULL)",
);
const V2: Migration = Migration {
    version: 2,
    sqlite: "ALTER TABLE widgets ADD COLUMN body BLOB",
    postgres: "ALTER TABLE widgets ADD COLUMN body BYTEA",
};

#[tokio::test]
async fn migrations_apply_once_in_order_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    for store in testing::both(dir.path()).await.unwrap() {
        store.migrate("widgets", &[V2, V1]).await.unwrap();
        // Running again is a no-op, not an error.
        store.migrate("widgets", &[V1, V2]).await.unwrap();
        sqlx::query("INSERT INTO widgets (id, name, body) VALUES ($1, $2, $3)")
            .bind(1_i64)
            .bind("a")
            .bind(vec![0_u8, 1, 2])
            .execute(store.pool())
            .await
            .unwrap();
        let (name, body): (String, Vec<u8>) =
            sqlx::query_as("SELECT name, body FROM widgets WHERE id = $1")
                .bind(1_i64)
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!((name.as_str(), body.as_slice()), ("a", &[0_u8, 1, 2][..]));
        // An older binary (knowing only v1) refuses a store that is already at v2.
        let err = store.migrate("widgets", &[V1]).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::TooNew {
                    found: 2,
                    known: 1,
                    ..
                }
            ),
            "{err}"
        );
        store.ping().await.unwrap();
    }
}

#[tokio::test]
async fn a_failing_step_leaves_nothing_applied() {
    let dir = tempfile::tempdir().unwrap();
    for store in testing::both(dir.path()).await.unwrap() {
        let bad = Migration::same(2, "CREATE TABLE broken (");
        let err = store.migrate("w", &[V1, bad]).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Migration { version: 2, .. }),
            "{err}"
        );
        // v1 rolled back with it: the table does not exist and the ledger is empty.
        let exists = sqlx::query("SELECT 1 FROM widgets")
            .fetch_all(store.pool())
            .await;
        assert!(exists.is_err());
        store.migrate("w", &[V1]).await.unwrap();
    }
}

#[tokio::test]
async fn unknown_scheme_is_refused() {
    let err = portcullis_store::Store::open("mysql://x")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Scheme(_)));
}
