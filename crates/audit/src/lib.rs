//! The tamper-evident audit trail (DESIGN §3.5).
//!
//! Every request yields one [`Record`]. The gateway fills a [`RecordDraft`] and calls
//! [`AuditLog::append`], which digests and encrypts (or redacts) the arguments and result,
//! then queues the draft for the writer task. The writer assigns the next sequence number and
//! the previous record's hash inside one store transaction per batch (group commit) and
//! resolves `append` only after that commit. Every `checkpoint_records` records or
//! `checkpoint_interval` an Ed25519-signed checkpoint `{seq, hash, ts}` is written; [`verify()`]
//! walks the chain and the checkpoints and names the first bad record; retention prunes old
//! records behind a signed anchor.
//!
//! Reading for reports, exports and sinks: [`records_after`] (a `seq` cursor),
//! [`records_since`] (a time window), [`decrypt_fields`].

pub mod canonical;
pub mod chain;
pub mod checkpoint;
pub mod clock;
mod draft;
mod error;
pub mod record;
mod retention;
pub mod seal;
pub mod signing;
mod table;
pub mod verify;
mod writer;
// Reports, SIEM export and live sinks.
pub mod export;
pub mod query;
pub mod report;
pub mod sink;

use std::path::{Path, PathBuf};

pub use checkpoint::{Checkpoint, CheckpointKind};
pub use draft::Redact;
pub use error::AuditError;
pub use record::{Decision, Record, RecordDraft, Sealed};
pub use retention::PruneOutcome;
pub use seal::{FieldKey, FieldKeys, OpenedFields, decrypt_fields};
pub use signing::{CheckpointSigner, TrustedKeys};
pub use table::{Head, checkpoints, migrate, read_head, records_after, records_since, seq_range};
pub use verify::{Problem, ProblemKind, VerifyReport, verify};
pub use writer::{Appended, AuditLog, MAX_BATCH, QUEUE_CAPACITY};

/// Where a generated signing key is kept: the SQLite database's directory, or (PostgreSQL) the
/// config file's directory, else the working directory.
pub fn key_dir(config: &portcullis_config::Config) -> PathBuf {
    let config_dir = || {
        config
            .source
            .as_deref()
            .and_then(Path::parent)
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    };
    let Some(file) = config.storage.sqlite_file() else {
        return config_dir();
    };
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The keys `audit verify` trusts on this deployment: the configured (or generated) signing
/// key's public half, plus `extra` (e.g. `--public-key` files for rotated keys).
pub fn trusted_keys(
    config: &portcullis_config::Audit,
    key_dir: &Path,
    extra: impl IntoIterator<Item = ed25519_dalek::VerifyingKey>,
) -> Result<TrustedKeys, AuditError> {
    let mut trusted = TrustedKeys::new(extra);
    if let Some(key) = signing::local_verifying_key(config, key_dir)? {
        trusted.push(key);
    }
    Ok(trusted)
}

/// Problems with the `[audit]` keys that `portcullis check` should print (the config crate
/// checks that the secrets resolve; this checks what they hold).
pub fn check_keys(config: &portcullis_config::Audit) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(e) = FieldKeys::from_config(config) {
        problems.push(e.to_string());
    }
    if let Some(secret) = &config.signing_key
        && let Err(reason) = CheckpointSigner::from_pem(secret.expose())
    {
        problems.push(
            AuditError::SigningKey {
                origin: secret.origin().to_owned(),
                reason,
            }
            .to_string(),
        );
    }
    problems
}

pub use ed25519_dalek::VerifyingKey;
