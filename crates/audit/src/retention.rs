//! Retention: records older than `[audit] retention` are deleted without breaking
//! verifiability. The job first checks the chain up to the last record it will delete, then, in
//! one transaction, signs an *anchor* `{seq, hash, ts, anchor: true}` for that record and
//! deletes it and everything before it. `verify` starts after the latest anchor, expecting the
//! anchored hash as the next record's `prev_hash`.

use std::time::Duration;

use portcullis_store::now_ms;
use portcullis_store::sqlx::{self, Acquire};
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::checkpoint::{Checkpoint, CheckpointKind};
use crate::clock;
use crate::error::AuditError;
use crate::table;
use crate::verify::Walk;
use crate::writer::AuditLog;

/// What one retention pass did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum PruneOutcome {
    /// `[audit] retention` is not set.
    Disabled,
    /// No record is older than the retention period (or they are already pruned).
    NothingToPrune,
    /// Records up to and including `anchor_seq` were deleted; the chain now starts after it.
    Pruned { anchor_seq: u64, deleted: u64 },
}

impl AuditLog {
    /// One retention pass at `now_ms` (Unix milliseconds). Refuses (and deletes nothing) when the
    /// records it would delete do not verify: pruning must not erase evidence of tampering.
    pub async fn prune_once(&self, now_ms: i64) -> Result<PruneOutcome, AuditError> {
        let Some(retention) = self.retention else {
            return Ok(PruneOutcome::Disabled);
        };
        let store = &self.chain.store;
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let cutoff = clock::format_ms(now_ms.saturating_sub(retention_ms));
        let Some((last_old, last_old_hash)) = table::last_before(store, &cutoff).await? else {
            return Ok(PruneOutcome::NothingToPrune);
        };
        // The chain's current start: the latest anchor (its signature is `verify`'s business;
        // a rotated signing key must not stop retention).
        let checkpoints = table::checkpoints(store).await?;
        let mut walk = Walk::from_anchor(&checkpoints);
        let start = walk.expected;
        if last_old < start {
            return Ok(PruneOutcome::NothingToPrune);
        }
        walk.run_until(store, start - 1, last_old).await?;
        if let Some(problem) = walk.problem {
            return Err(AuditError::PruneRefused {
                seq: problem.seq,
                reason: format!("{}: {}", problem.kind, problem.detail),
            });
        }
        if walk.expected != last_old + 1 || walk.prev != last_old_hash {
            return Err(AuditError::PruneRefused {
                seq: walk.expected,
                reason: "the records to prune end before the last old record".to_owned(),
            });
        }
        let ts = clock::format_ms(now_ms);
        let anchor = Checkpoint::sign(
            &self.chain.signer,
            CheckpointKind::Anchor,
            last_old,
            &last_old_hash,
            &ts,
        );
        let mut conn = store.pool().acquire().await?;
        let mut tx = conn.begin().await?;
        table::insert_checkpoint(&mut tx, &anchor).await?;
        let deleted = sqlx::query("DELETE FROM audit_records WHERE seq <= $1")
            .bind(table::to_i64(last_old))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(
            "DELETE FROM audit_checkpoints WHERE seq < $1 OR (seq = $1 AND kind = 'checkpoint')",
        )
        .bind(table::to_i64(last_old))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(anchor = last_old, deleted, "audit records pruned");
        Ok(PruneOutcome::Pruned {
            anchor_seq: last_old,
            deleted,
        })
    }

    /// Runs [`AuditLog::prune_once`] now and then every `every` until the task is aborted.
    /// `None` when retention is not configured.
    pub fn spawn_retention(&self, every: Duration) -> Option<JoinHandle<()>> {
        self.retention?;
        let log = self.clone();
        Some(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every.max(Duration::from_secs(1)));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match log.prune_once(now_ms()).await {
                    Ok(outcome) => tracing::debug!(?outcome, "audit retention pass"),
                    Err(error) => tracing::error!(%error, "audit retention pass failed"),
                }
            }
        }))
    }
}
