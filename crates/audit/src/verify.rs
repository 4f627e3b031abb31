//! `audit verify`: walks the chain from its start (genesis, or the latest retention anchor) and
//! checks every record's sequence number, `prev_hash` and `hash`, every checkpoint's signature
//! and hash, and the chain head. Reports the first bad record.
//!
//! What it proves: no record up to the last signed checkpoint was edited, deleted, inserted or
//! reordered, and none after it was removed (truncation) as long as a later checkpoint or the
//! head row says more existed. Records after the last checkpoint are chained but not yet
//! signed: someone able to write the database could rewrite that tail consistently (the
//! writer signs on `checkpoint_records`, `checkpoint_interval` and at shutdown to keep it short).

use std::collections::BTreeMap;

use portcullis_store::Store;
use serde::Serialize;

use crate::chain::{self, GENESIS};
use crate::checkpoint::{Checkpoint, CheckpointKind};
use crate::error::AuditError;
use crate::record::Record;
use crate::signing::TrustedKeys;
use crate::table;

const PAGE: u32 = 1000;

/// What is wrong, at [`Problem::seq`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The record's fields do not hash to its `hash`: it was edited.
    HashMismatch,
    /// The record's `prev_hash` is not the previous record's `hash`: reordered or replaced.
    PrevHashMismatch,
    /// No record with this sequence number, though later ones exist: deleted.
    SeqGap,
    /// A record whose sequence number was already passed (duplicated or renumbered).
    UnexpectedSeq,
    /// A checkpoint at this sequence number is not signed by a trusted key.
    BadCheckpointSignature,
    /// A validly signed checkpoint names another hash for this record: the chain was rewritten
    /// up to here.
    CheckpointMismatch,
    /// A signed checkpoint covers records from here on, but they are gone.
    TruncatedAfterCheckpoint,
    /// The chain head says records exist from here on, but they are gone.
    Truncated,
    /// Records from here on are beyond the chain head: appended outside the writer.
    BeyondHead,
    /// The chain head's hash is not the last record's.
    HeadMismatch,
    /// The chain head says a checkpoint was signed here, but it is gone.
    MissingCheckpoint,
    /// The stored row cannot be read as a record.
    Malformed,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::HashMismatch => "hash_mismatch",
            ProblemKind::PrevHashMismatch => "prev_hash_mismatch",
            ProblemKind::SeqGap => "seq_gap",
            ProblemKind::UnexpectedSeq => "unexpected_seq",
            ProblemKind::BadCheckpointSignature => "bad_checkpoint_signature",
            ProblemKind::CheckpointMismatch => "checkpoint_mismatch",
            ProblemKind::TruncatedAfterCheckpoint => "truncated_after_checkpoint",
            ProblemKind::Truncated => "truncated",
            ProblemKind::BeyondHead => "beyond_head",
            ProblemKind::HeadMismatch => "head_mismatch",
            ProblemKind::MissingCheckpoint => "missing_checkpoint",
            ProblemKind::Malformed => "malformed",
        }
    }
}

impl std::fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first bad record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub seq: u64,
    pub kind: ProblemKind,
    pub detail: String,
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Records checked.
    pub records: u64,
    /// The chain starts after this retention anchor (`None`: at genesis).
    pub anchor: Option<u64>,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Checkpoints (and anchors) whose signature verified.
    pub checkpoints: u64,
    /// The highest validly signed checkpoint.
    pub last_checkpoint: Option<u64>,
    /// Records after the last signed checkpoint (chained, not yet signed).
    pub unsigned_tail: u64,
    /// `None`: intact.
    pub problem: Option<Problem>,
}

impl VerifyReport {
    pub fn intact(&self) -> bool {
        self.problem.is_none()
    }

    /// One line: `intact: …` or `tampered: first bad record seq N (kind): detail`.
    pub fn verdict(&self) -> String {
        match &self.problem {
            None => {
                let range = match (self.first_seq, self.last_seq) {
                    (Some(first), Some(last)) => format!(" (seq {first}..={last})"),
                    _ => String::new(),
                };
                format!(
                    "intact: {} record(s){range}, {} signed checkpoint(s), {} unsigned at the end",
                    self.records, self.checkpoints, self.unsigned_tail
                )
            }
            Some(p) => format!(
                "tampered: first bad record seq {} ({}): {}",
                p.seq, p.kind, p.detail
            ),
        }
    }

    /// The report as one JSON object (for `--format json`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Checks the whole chain in the store against checkpoints signed by `trusted`.
/// `Err` only when the store cannot be read; tampering is a [`Problem`] in the report.
pub async fn verify(store: &Store, trusted: &TrustedKeys) -> Result<VerifyReport, AuditError> {
    // A gateway may be appending while this runs, and each read sees the store as it is then.
    // The head is read first: every record and checkpoint it vouches for was committed with or
    // before it, so the later reads see them. Records appended after it are judged against a
    // second read of the head, taken after the walk.
    let head = table::read_head(store).await?;
    let all = table::checkpoints(store).await?;
    let mut problems: Vec<Problem> = Vec::new();
    let mut valid: Vec<Checkpoint> = Vec::new();
    for checkpoint in all {
        match checkpoint.verify(trusted) {
            Ok(()) => valid.push(checkpoint),
            Err(detail) => problems.push(Problem {
                seq: checkpoint.seq,
                kind: ProblemKind::BadCheckpointSignature,
                detail: format!(
                    "{} at seq {}: {detail}",
                    checkpoint.kind.as_str(),
                    checkpoint.seq
                ),
            }),
        }
    }
    let anchor = latest_anchor(&valid).map(|a| a.seq);
    let mut walk = Walk::from_anchor(&valid);
    let start = walk.expected;
    walk.run(store, start - 1).await?;
    let last = walk.expected - 1;
    let last_checkpoint = valid.iter().map(|c| c.seq).max();
    if let Some(problem) = walk.problem.take() {
        problems.push(problem);
    } else {
        if let Some(signed) = last_checkpoint.filter(|&s| s > last) {
            problems.push(Problem {
                seq: last + 1,
                kind: ProblemKind::TruncatedAfterCheckpoint,
                detail: format!(
                    "records {}..={signed} are covered by a signed checkpoint but missing",
                    last + 1
                ),
            });
        }
        if head.checkpoint_seq >= start
            && head.checkpoint_seq <= last
            && !valid.iter().any(|c| c.seq == head.checkpoint_seq)
        {
            problems.push(Problem {
                seq: head.checkpoint_seq,
                kind: ProblemKind::MissingCheckpoint,
                detail: "the chain head records a checkpoint here that is not in the store"
                    .to_owned(),
            });
        }
        if head.seq > last {
            problems.push(Problem {
                seq: last + 1,
                kind: ProblemKind::Truncated,
                detail: format!(
                    "the chain head is at seq {}, the last record is {last}",
                    head.seq
                ),
            });
        } else {
            let end = table::read_head(store).await?;
            if end.seq < last {
                problems.push(Problem {
                    seq: end.seq + 1,
                    kind: ProblemKind::BeyondHead,
                    detail: format!(
                        "records after the chain head (seq {}) up to {last}",
                        end.seq
                    ),
                });
            } else if end.seq == last && end.hash != walk.prev {
                problems.push(Problem {
                    seq: last,
                    kind: ProblemKind::HeadMismatch,
                    detail: "the chain head's hash is not the last record's".to_owned(),
                });
            }
        }
    }
    let problem = problems.into_iter().min_by_key(|p| p.seq);
    Ok(VerifyReport {
        records: walk.records,
        anchor,
        first_seq: walk.first_seq,
        last_seq: (walk.records > 0).then_some(last),
        checkpoints: valid.len() as u64,
        last_checkpoint,
        unsigned_tail: last.saturating_sub(last_checkpoint.unwrap_or(0).max(start - 1)),
        problem,
    })
}

/// The walk over records in sequence order.
pub(crate) struct Walk {
    pub(crate) expected: u64,
    pub(crate) prev: String,
    pub(crate) records: u64,
    pub(crate) first_seq: Option<u64>,
    /// Validly signed checkpoint hashes by seq.
    pub(crate) checkpoints: BTreeMap<u64, Vec<String>>,
    pub(crate) problem: Option<Problem>,
}

/// The chain's current start: the latest retention anchor, if any.
pub(crate) fn latest_anchor(checkpoints: &[Checkpoint]) -> Option<&Checkpoint> {
    checkpoints
        .iter()
        .filter(|c| c.kind == CheckpointKind::Anchor)
        .max_by_key(|c| c.seq)
}

impl Walk {
    /// A walk from the chain's current start (after the latest anchor, else genesis), checking
    /// record hashes against the checkpoints at or after it.
    pub(crate) fn from_anchor(checkpoints: &[Checkpoint]) -> Walk {
        let anchor = latest_anchor(checkpoints);
        let start = anchor.map_or(1, |a| a.seq + 1);
        Walk {
            expected: start,
            prev: anchor.map_or_else(|| GENESIS.to_owned(), |a| a.hash.clone()),
            records: 0,
            first_seq: None,
            checkpoints: checkpoints
                .iter()
                .filter(|c| c.kind == CheckpointKind::Checkpoint && c.seq >= start)
                .fold(BTreeMap::new(), |mut map: BTreeMap<u64, Vec<String>>, c| {
                    map.entry(c.seq).or_default().push(c.hash.clone());
                    map
                }),
            problem: None,
        }
    }

    /// Walks records with `seq > after` until the end or the first problem.
    pub(crate) async fn run(&mut self, store: &Store, after: u64) -> Result<(), AuditError> {
        self.run_until(store, after, u64::MAX).await
    }

    /// Walks records with `after < seq <= until`.
    pub(crate) async fn run_until(
        &mut self,
        store: &Store,
        mut after: u64,
        until: u64,
    ) -> Result<(), AuditError> {
        let mut page = PAGE;
        let mut slow_until = 0;
        while self.problem.is_none() && after < until {
            let records = match table::records_after(store, after, page).await {
                Ok(records) => records,
                // A row that cannot be read: walk up to it one record at a time, so that an
                // earlier problem in the same page is still the one reported.
                Err(AuditError::Malformed { seq, reason }) => {
                    if page > 1 {
                        page = 1;
                        slow_until = seq;
                        continue;
                    }
                    self.problem = Some(Problem {
                        seq,
                        kind: ProblemKind::Malformed,
                        detail: reason,
                    });
                    break;
                }
                Err(e) => return Err(e),
            };
            let Some(last) = records.last() else { break };
            after = last.seq;
            for record in records.iter().take_while(|r| r.seq <= until) {
                if let Some(problem) = self.check(record) {
                    self.problem = Some(problem);
                    break;
                }
            }
            page = if after < slow_until { 1 } else { PAGE };
        }
        Ok(())
    }

    fn check(&mut self, record: &Record) -> Option<Problem> {
        let seq = record.seq;
        if seq != self.expected {
            return Some(if seq > self.expected {
                Problem {
                    seq: self.expected,
                    kind: ProblemKind::SeqGap,
                    detail: format!("records {}..{seq} are missing", self.expected),
                }
            } else {
                Problem {
                    seq,
                    kind: ProblemKind::UnexpectedSeq,
                    detail: format!("seq {seq} where {} was expected", self.expected),
                }
            });
        }
        if record.prev_hash != self.prev {
            return Some(Problem {
                seq,
                kind: ProblemKind::PrevHashMismatch,
                detail: "prev_hash is not the previous record's hash".to_owned(),
            });
        }
        if chain::record_hash(record) != record.hash {
            return Some(Problem {
                seq,
                kind: ProblemKind::HashMismatch,
                detail: "the record's fields do not match its hash".to_owned(),
            });
        }
        if let Some(hashes) = self.checkpoints.get(&seq)
            && hashes.iter().any(|h| *h != record.hash)
        {
            return Some(Problem {
                seq,
                kind: ProblemKind::CheckpointMismatch,
                detail: "a signed checkpoint names a different hash for this record".to_owned(),
            });
        }
        self.first_seq.get_or_insert(seq);
        self.records += 1;
        self.expected = seq + 1;
        self.prev.clone_from(&record.hash);
        None
    }
}
