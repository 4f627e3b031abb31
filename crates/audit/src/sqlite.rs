//! The writer's own connection to a SQLite store: a batch is one synchronous call on the
//! writer thread (begin, lock the head, insert, move the head, commit), where through the pool
//! each statement was a round trip to a driver thread. Same statements and same durability
//! (`synchronous = FULL`) as the store's pool; PostgreSQL stores keep the pool's connection.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};

use crate::checkpoint::Checkpoint;
use crate::error::AuditError;
use crate::table::{self, Head, RowValues, sql};
use crate::writer::{Appended, Batch};

/// The one-row `INSERT` (SQLite runs it per record; no round trips to save here).
static INSERT_ONE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| table::insert_sql(1));

pub(crate) struct SqliteWriter {
    conn: Connection,
}

impl SqliteWriter {
    /// Opens the store's (already migrated) database file.
    pub(crate) fn open(path: &Path) -> Result<SqliteWriter, AuditError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // WAL is a property of the file (the pool set it); reading it back checks it.
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        Ok(SqliteWriter { conn })
    }

    pub(crate) fn read_head(&self) -> Result<Head, AuditError> {
        Ok(self
            .conn
            .prepare_cached(sql::READ_HEAD)?
            .query_row([], head)?)
    }

    /// Locks the head, commits what `plan` makes of it, and returns where the records landed.
    pub(crate) fn write(
        &mut self,
        plan: impl FnOnce(Head) -> Batch,
    ) -> Result<Vec<Appended>, AuditError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let locked = tx.prepare_cached(sql::LOCK_HEAD)?.query_row([], head)?;
        let batch = plan(locked);
        {
            let mut insert = tx.prepare_cached(&INSERT_ONE)?;
            for record in &batch.records {
                let r = RowValues::of(record);
                insert.execute(params![
                    r.seq,
                    r.ts,
                    r.request_id,
                    r.principal,
                    r.auth_method,
                    r.client_ip,
                    r.upstream,
                    r.method,
                    r.name,
                    r.decision,
                    r.reason,
                    r.policy_ids,
                    r.args_digest,
                    r.args,
                    r.result_digest,
                    r.result,
                    r.status,
                    r.latency_ms,
                    r.prev_hash,
                    r.hash,
                    r.kid,
                ])?;
            }
        }
        if !batch.records.is_empty() {
            tx.prepare_cached(sql::SET_HEAD)?
                .execute(params![table::to_i64(batch.seq), batch.hash])?;
        }
        if let Some((checkpoint, at_ms)) = &batch.checkpoint {
            insert_checkpoint(&tx, checkpoint)?;
            tx.prepare_cached(sql::SET_CHECKPOINTED)?
                .execute(params![table::to_i64(checkpoint.seq), at_ms])?;
        }
        tx.commit()?;
        Ok(batch.appended)
    }
}

fn insert_checkpoint(conn: &Connection, c: &Checkpoint) -> Result<(), AuditError> {
    conn.prepare_cached(sql::INSERT_CHECKPOINT)?
        .execute(params![
            table::to_i64(c.seq),
            c.kind.as_str(),
            c.hash,
            c.ts,
            c.key_id,
            c.public_key,
            c.signature,
        ])?;
    Ok(())
}

fn head(row: &rusqlite::Row<'_>) -> rusqlite::Result<Head> {
    Ok(Head {
        seq: table::to_u64(row.get(0)?),
        hash: row.get(1)?,
        checkpoint_seq: table::to_u64(row.get(2)?),
        checkpoint_ms: row.get(3)?,
    })
}
