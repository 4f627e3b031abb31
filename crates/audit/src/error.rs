//! What can go wrong while writing, reading or checking the audit trail.

use std::path::PathBuf;
use std::sync::Arc;

/// Errors of this crate. `Clone` because one failed group commit is reported to every waiter.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    #[error("audit.encryption_key ({origin}): {reason}")]
    EncryptionKey { origin: String, reason: String },
    #[error("audit.signing_key ({origin}): {reason}")]
    SigningKey { origin: String, reason: String },
    #[error(
        "audit.signing_key is required with a PostgreSQL store: every replica must sign \
         checkpoints with the same key (set it to file:… or env:… holding an Ed25519 PKCS#8 PEM)"
    )]
    SigningKeyRequired,
    #[error("audit signing key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error("audit store: {0}")]
    Store(Arc<portcullis_store::StoreError>),
    #[error("audit store: {0}")]
    Sql(Arc<portcullis_store::sqlx::Error>),
    #[error("audit record {seq} in the store is malformed: {reason}")]
    Malformed { seq: u64, reason: String },
    #[error("cannot decrypt the {field} of record {seq}: {reason}")]
    Decrypt {
        seq: u64,
        field: &'static str,
        reason: String,
    },
    #[error("the audit writer has stopped; no more records are accepted")]
    Closed,
    /// A batch planned on a head another writer has since moved; it is planned again.
    #[error("the audit chain head moved under a batch (another writer appended)")]
    HeadMoved,
    #[error("refusing to prune: the chain before seq {seq} does not verify ({reason})")]
    PruneRefused { seq: u64, reason: String },
}

impl From<portcullis_store::StoreError> for AuditError {
    fn from(e: portcullis_store::StoreError) -> Self {
        AuditError::Store(Arc::new(e))
    }
}

impl From<portcullis_store::sqlx::Error> for AuditError {
    fn from(e: portcullis_store::sqlx::Error) -> Self {
        AuditError::Sql(Arc::new(e))
    }
}
