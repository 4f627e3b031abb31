//! Each sink's durable cursor: the last sequence number it delivered, in the store
//! (component `audit_sinks`, table `audit_sink_cursors`, keyed by the sink's id).
//!
//! Several replicas may share one store: a lease (`owner`, `lease_until_ms`) lets one replica
//! at a time deliver to a given sink; another takes over when the lease lapses. The cursor
//! only moves forward, and only under the lease.

use portcullis_store::sqlx::{self, Row};
use portcullis_store::{Migration, Store};

use crate::error::AuditError;

pub(crate) const COMPONENT: &str = "audit_sinks";

pub(crate) const MIGRATIONS: &[Migration] = &[Migration::same(
    1,
    "CREATE TABLE audit_sink_cursors (
        sink_id TEXT PRIMARY KEY,
        seq BIGINT NOT NULL,
        delivered BIGINT NOT NULL,
        created_ms BIGINT NOT NULL,
        updated_ms BIGINT NOT NULL,
        owner TEXT NOT NULL,
        lease_until_ms BIGINT NOT NULL
    )",
)];

/// Creates or upgrades the cursor table.
pub async fn migrate(store: &Store) -> Result<(), AuditError> {
    store.migrate(COMPONENT, MIGRATIONS).await?;
    Ok(())
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The stored cursor of `sink_id`, created at `start` (the chain head when a sink is first
/// configured: it receives records written from then on) if it does not exist yet.
pub(crate) async fn open(store: &Store, sink_id: &str, start: u64) -> Result<u64, AuditError> {
    let now = portcullis_store::now_ms();
    sqlx::query(
        "INSERT INTO audit_sink_cursors \
         (sink_id, seq, delivered, created_ms, updated_ms, owner, lease_until_ms) \
         VALUES ($1, $2, 0, $3, $3, '', 0) ON CONFLICT (sink_id) DO NOTHING",
    )
    .bind(sink_id)
    .bind(to_i64(start))
    .bind(now)
    .execute(store.pool())
    .await?;
    read(store, sink_id).await
}

/// The delivered sequence number of `sink_id` (0 when it has no cursor).
pub async fn read(store: &Store, sink_id: &str) -> Result<u64, AuditError> {
    let row = sqlx::query("SELECT seq FROM audit_sink_cursors WHERE sink_id = $1")
        .bind(sink_id)
        .fetch_optional(store.pool())
        .await?;
    Ok(match row {
        Some(row) => to_u64(row.try_get("seq")?),
        None => 0,
    })
}

/// Takes or renews the lease of `sink_id` for `owner` until `until_ms`; returns the cursor
/// when this owner holds the lease, `None` when another owner's lease is still running.
pub(crate) async fn claim(
    store: &Store,
    sink_id: &str,
    owner: &str,
    until_ms: i64,
) -> Result<Option<u64>, AuditError> {
    let now = portcullis_store::now_ms();
    let claimed = sqlx::query(
        "UPDATE audit_sink_cursors SET owner = $1, lease_until_ms = $2 \
         WHERE sink_id = $3 AND (owner = $1 OR lease_until_ms < $4)",
    )
    .bind(owner)
    .bind(until_ms)
    .bind(sink_id)
    .bind(now)
    .execute(store.pool())
    .await?
    .rows_affected();
    if claimed == 0 {
        return Ok(None);
    }
    read(store, sink_id).await.map(Some)
}

/// Moves the cursor of `sink_id` from `from` to `to` after `delivered` records went out.
/// Returns false (and changes nothing) when `owner` lost the lease or the cursor moved.
pub(crate) async fn advance(
    store: &Store,
    sink_id: &str,
    owner: &str,
    from: u64,
    to: u64,
    delivered: u64,
) -> Result<bool, AuditError> {
    let moved = sqlx::query(
        "UPDATE audit_sink_cursors SET seq = $1, delivered = delivered + $2, updated_ms = $3 \
         WHERE sink_id = $4 AND owner = $5 AND seq = $6",
    )
    .bind(to_i64(to))
    .bind(to_i64(delivered))
    .bind(portcullis_store::now_ms())
    .bind(sink_id)
    .bind(owner)
    .bind(to_i64(from))
    .execute(store.pool())
    .await?
    .rows_affected();
    Ok(moved == 1)
}

/// Gives up the lease of `sink_id` (clean shutdown), so another replica can take over at once.
pub(crate) async fn release(store: &Store, sink_id: &str, owner: &str) -> Result<(), AuditError> {
    sqlx::query(
        "UPDATE audit_sink_cursors SET lease_until_ms = 0 WHERE sink_id = $1 AND owner = $2",
    )
    .bind(sink_id)
    .bind(owner)
    .execute(store.pool())
    .await?;
    Ok(())
}
