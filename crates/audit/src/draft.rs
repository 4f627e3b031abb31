//! Turning a [`RecordDraft`] into what may be stored: digests of the arguments and result, and
//! the values themselves encrypted, redacted or dropped.

use std::sync::Arc;

use serde_json::Value;

use crate::canonical;
use crate::error::AuditError;
use crate::record::{Decision, Record, RecordDraft, Sealed};
use crate::seal::{self, Field, FieldKeys};

/// Masks secrets and personal data in a value in place (the guard's redaction rules). Used for
/// `args` and `result` when no encryption key is configured.
pub trait Redact: Send + Sync {
    fn redact(&self, value: &mut Value);
}

impl<F: Fn(&mut Value) + Send + Sync> Redact for F {
    fn redact(&self, value: &mut Value) {
        self(value)
    }
}

/// How `args` and `result` are kept.
#[derive(Clone, Default)]
pub struct FieldPolicy {
    pub keys: FieldKeys,
    /// Without an encryption key: the redacted value is stored; without a redactor either, only
    /// the digest.
    pub redactor: Option<Arc<dyn Redact>>,
    /// A value whose canonical JSON is longer keeps only its digest (`None`: no limit).
    pub max_bytes: Option<u64>,
}

impl std::fmt::Debug for FieldPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldPolicy")
            .field("keys", &self.keys)
            .field("redactor", &self.redactor.is_some())
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

/// A draft whose plaintext is gone: ready to be sequenced and hashed.
#[derive(Debug, Clone)]
pub(crate) struct SealedDraft {
    request_id: String,
    principal: Option<String>,
    auth_method: Option<String>,
    client_ip: Option<String>,
    upstream: Option<String>,
    method: String,
    name: Option<String>,
    decision: Decision,
    reason: Option<String>,
    policy_ids: Vec<String>,
    args_digest: Option<String>,
    args: Option<Sealed>,
    result_digest: Option<String>,
    result: Option<Sealed>,
    status: Option<u16>,
    latency_ms: u64,
}

impl FieldPolicy {
    fn seal_field(
        &self,
        field: Field,
        request_id: &str,
        value: Option<Value>,
    ) -> Result<(Option<String>, Option<Sealed>), AuditError> {
        let Some(mut value) = value else {
            return Ok((None, None));
        };
        // One canonical form serves the digest and the ciphertext; a form longer than the
        // limit is only digested, never held whole. It is plaintext, cleared when dropped.
        let (digest, text) = canonical::digest_keeping(&value, self.max_bytes);
        let sealed = match (text, self.keys.current(), &self.redactor) {
            (None, _, _) => None,
            (Some(text), Some(key), _) => Some(seal::encrypt(key, field, request_id, &text)?),
            (Some(_), None, Some(redactor)) => {
                redactor.redact(&mut value);
                Some(Sealed::Redacted { value })
            }
            (Some(_), None, None) => None,
        };
        Ok((Some(digest), sealed))
    }

    pub(crate) fn seal(&self, draft: RecordDraft) -> Result<SealedDraft, AuditError> {
        let (args_digest, args) = self.seal_field(Field::Args, &draft.request_id, draft.args)?;
        let (result_digest, result) =
            self.seal_field(Field::Result, &draft.request_id, draft.result)?;
        Ok(SealedDraft {
            request_id: draft.request_id,
            principal: draft.principal,
            auth_method: draft.auth_method,
            client_ip: draft.client_ip,
            upstream: draft.upstream,
            method: draft.method,
            name: draft.name,
            decision: draft.decision,
            reason: draft.reason,
            policy_ids: draft.policy_ids,
            args_digest,
            args,
            result_digest,
            result,
            status: draft.status,
            latency_ms: draft.latency_ms,
        })
    }
}

impl SealedDraft {
    /// The record at `seq`, stamped `ts`, chained to `prev_hash`.
    pub(crate) fn into_record(self, seq: u64, ts: String, prev_hash: String) -> Record {
        crate::chain::seal(Record {
            seq,
            ts,
            request_id: self.request_id,
            principal: self.principal,
            auth_method: self.auth_method,
            client_ip: self.client_ip,
            upstream: self.upstream,
            method: self.method,
            name: self.name,
            decision: self.decision,
            reason: self.reason,
            policy_ids: self.policy_ids,
            args_digest: self.args_digest,
            args: self.args,
            result_digest: self.result_digest,
            result: self.result,
            status: self.status,
            latency_ms: self.latency_ms,
            prev_hash,
            hash: String::new(),
        })
    }
}
