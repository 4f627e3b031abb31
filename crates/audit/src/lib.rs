//! The tamper-evident audit trail (DESIGN §3.5).
//!
//! Every request yields one [`Record`]. The gateway fills a [`RecordDraft`] and hands it to
//! the writer, which digests and encrypts (or redacts) the arguments and result, assigns the
//! next sequence number and the previous record's hash inside one store transaction, and
//! resolves only after the record is durably committed. Every `checkpoint_records` records or
//! `checkpoint_interval` an Ed25519-signed checkpoint `{seq, hash, ts}` is written; `verify`
//! walks the chain and the checkpoints and names the first bad record.

pub mod record;

pub use record::{Decision, Record, RecordDraft, Sealed};
