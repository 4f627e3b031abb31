//! The writer's statements on a SQLite store, on a connection of its own
//! ([`Store::sqlite_connection`](portcullis_store::Store::sqlite_connection)) in the writer's
//! own thread, run synchronously.
//!
//! Through the pool every statement would be a message to the connection's driver thread and
//! answers back to the writer task. Here a batch is one transaction on the thread that also
//! sequences it: `BEGIN IMMEDIATE` takes the database's write lock (waiting, up to the busy
//! timeout, for another process's), the head is read under it, the batch is planned on that
//! head and committed. Another process appending in between only means the batch is planned
//! on its head: there is nothing to retry.

use portcullis_store::rusqlite::{Connection, Transaction, TransactionBehavior, params};

use crate::error::AuditError;
use crate::table::{self, Commit, Head, to_i64, to_u64};

/// Takes the write lock, reads the head under it, and commits what `plan` makes of it (its
/// [`Commit`] as `commit` tells); nothing is written unless all of it is.
pub(crate) fn write<T>(
    conn: &mut Connection,
    plan: impl FnOnce(Head) -> T,
    commit: impl for<'b> FnOnce(&'b T) -> Commit<'b>,
) -> Result<T, AuditError> {
    // Rolls back when dropped uncommitted.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let planned = plan(read_head(&tx)?);
    apply(&tx, &commit(&planned))?;
    tx.commit()?;
    Ok(planned)
}

/// The chain head as this connection sees it (as committed; locked inside [`write`]).
pub(crate) fn read_head(conn: &Connection) -> Result<Head, AuditError> {
    Ok(conn
        .prepare_cached(table::READ_HEAD)?
        .query_row([], |row| {
            Ok(Head {
                seq: to_u64(row.get(0)?),
                hash: row.get(1)?,
                checkpoint_seq: to_u64(row.get(2)?),
                checkpoint_ms: row.get(3)?,
            })
        })?)
}

/// Writes `commit` (planned on the head read under the lock): its records, the head they move
/// it to, and its checkpoint.
fn apply(tx: &Transaction<'_>, commit: &Commit<'_>) -> Result<(), AuditError> {
    if !commit.records.is_empty() {
        let mut insert = tx.prepare_cached(&table::record_insert())?;
        for record in commit.records {
            insert.execute(params![
                to_i64(record.seq),
                record.ts,
                record.request_id,
                record.principal,
                record.auth_method,
                record.client_ip,
                record.upstream,
                record.method,
                record.name,
                record.decision.as_str(),
                record.reason,
                table::json(&record.policy_ids),
                record.args_digest,
                record.args.as_ref().map(table::json),
                record.result_digest,
                record.result.as_ref().map(table::json),
                record.status.map(i64::from),
                to_i64(record.latency_ms),
                record.prev_hash,
                record.hash,
                record.kid(),
            ])?;
        }
        tx.prepare_cached(table::SET_HEAD)?
            .execute(params![to_i64(commit.seq), commit.hash])?;
    }
    if let Some((checkpoint, at_ms)) = commit.checkpoint {
        tx.prepare_cached(&table::checkpoint_insert())?
            .execute(params![
                to_i64(checkpoint.seq),
                checkpoint.kind.as_str(),
                checkpoint.hash,
                checkpoint.ts,
                checkpoint.key_id,
                checkpoint.public_key,
                checkpoint.signature,
            ])?;
        tx.prepare_cached(table::SET_CHECKPOINTED)?
            .execute(params![to_i64(checkpoint.seq), at_ms])?;
    }
    Ok(())
}

/// After a failed batch: `true` when the connection is still fit for the next one (no
/// transaction left open), else it should be replaced.
pub(crate) fn reusable(conn: &Connection) -> bool {
    conn.is_autocommit()
}

#[cfg(test)]
mod tests {
    use portcullis_store::testing;

    use super::*;
    use crate::checkpoint::{Checkpoint, CheckpointKind};
    use crate::table::{checkpoints, migrate, records_after};

    /// Records, head and checkpoint land together, and read back field for field through the
    /// pool; a failed batch leaves nothing behind and the connection usable.
    #[tokio::test]
    async fn a_batch_lands_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = testing::sqlite(dir.path()).await.unwrap();
        migrate(&store).await.unwrap();
        let mut conn = store.sqlite_connection().unwrap().unwrap();
        let records = table::tests::chained(85, table::tests::with_awkward_fields);
        let last = records.last().map(|r| r.hash.clone()).unwrap_or_default();
        let signer = crate::signing::CheckpointSigner::generate().unwrap();
        let checkpoint = Checkpoint::sign(
            &signer,
            CheckpointKind::Checkpoint,
            85,
            &last,
            "2026-01-02T03:04:05.678Z",
        );
        // What the batch owns, planned on the head it is given.
        struct Planned {
            on: Head,
            records: Vec<crate::record::Record>,
            last: String,
            checkpoint: Checkpoint,
        }
        let planned = write(
            &mut conn,
            |on| Planned {
                on,
                records: records.clone(),
                last: last.clone(),
                checkpoint: checkpoint.clone(),
            },
            |p| Commit {
                records: &p.records,
                seq: 85,
                hash: &p.last,
                checkpoint: Some((&p.checkpoint, 42)),
            },
        )
        .unwrap();
        assert_eq!(planned.on.seq, 0);
        let head = Head {
            seq: 85,
            hash: last.clone(),
            checkpoint_seq: 85,
            checkpoint_ms: 42,
        };
        assert_eq!(table::read_head(&store).await.unwrap(), head);
        assert_eq!(read_head(&conn).unwrap(), head);
        assert_eq!(records_after(&store, 0, 1000).await.unwrap(), records);
        assert_eq!(checkpoints(&store).await.unwrap(), vec![checkpoint]);

        // A record whose seq is taken fails the batch: the head stays, nothing is added.
        let failed = write(
            &mut conn,
            |_| table::tests::chained(1, |r| r),
            |again| Commit {
                records: again,
                seq: 1,
                hash: &again[0].hash,
                checkpoint: None,
            },
        );
        assert!(matches!(failed, Err(AuditError::Sqlite(_))), "{failed:?}");
        assert!(reusable(&conn));
        assert_eq!(table::read_head(&store).await.unwrap(), head);
        assert_eq!(records_after(&store, 0, 1000).await.unwrap().len(), 85);
        store.close().await;
    }
}
