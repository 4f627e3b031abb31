//! The audit record (DESIGN §3.5): what the store holds and what a JSON Lines export prints,
//! field for field.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Allowed by policy and forwarded.
    Allow,
    /// Refused (authentication, authorization, validation, limits, pinning …).
    Deny,
    /// Held for approval, then approved by a person and forwarded.
    Approved,
    /// Held for approval, then rejected by a person (or timed out).
    Rejected,
    /// Allowed, but the upstream or the gateway failed.
    Error,
}

impl Decision {
    pub const ALL: [Decision; 5] = [
        Decision::Allow,
        Decision::Deny,
        Decision::Approved,
        Decision::Rejected,
        Decision::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::Approved => "approved",
            Decision::Rejected => "rejected",
            Decision::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<Decision> {
        Decision::ALL.into_iter().find(|d| d.as_str() == text)
    }
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stored form of a call's arguments or result: never the plaintext unless a redactor
/// produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase", deny_unknown_fields)]
pub enum Sealed {
    /// AES-256-GCM of the canonical JSON (RFC 8785) of the value.
    Encrypted {
        /// Key id: the first 8 hex digits of SHA-256 of the key.
        kid: String,
        /// The 96-bit nonce, base64 (standard alphabet, padded).
        nonce: String,
        /// Ciphertext with the 16-byte tag appended, base64.
        ct: String,
    },
    /// No encryption key is configured: the value after the guard's redaction rules.
    Redacted { value: Value },
}

/// One audit record, exactly as stored in `audit_records` and printed by `audit export
/// --format jsonl`. Field order is the DESIGN's; the hash does not depend on it (RFC 8785
/// sorts keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// 1, 2, 3 … without gaps, one total order across replicas.
    pub seq: u64,
    /// When the record was sequenced: RFC 3339, UTC, milliseconds (`2026-01-02T03:04:05.678Z`).
    /// Fixed width, so text order is time order.
    pub ts: String,
    pub request_id: String,
    /// `None` when the request was refused before anyone was authenticated.
    pub principal: Option<String>,
    /// `api_key`, `jwt`, `introspection`, `mtls`, `token`, `anonymous` …
    pub auth_method: Option<String>,
    pub client_ip: Option<String>,
    /// The upstream the call was routed to, if routing got that far.
    pub upstream: Option<String>,
    /// The JSON-RPC method (`tools/call`, `tools/list`, …) or the HTTP-level action.
    pub method: String,
    /// Tool, resource or prompt name as the client sent it.
    pub name: Option<String>,
    pub decision: Decision,
    /// Why: the denial reason, the approver's note, the error summary (public, no secrets).
    pub reason: Option<String>,
    /// The policies that decided (Cedar `@id` or `file:index`).
    pub policy_ids: Vec<String>,
    /// Hex SHA-256 of the canonical JSON of the arguments; `None` when there were none.
    pub args_digest: Option<String>,
    /// Encrypted or redacted arguments; `None` when there were none or nothing may be kept.
    pub args: Option<Sealed>,
    /// Hex SHA-256 of the canonical JSON of the result (or error) returned to the client.
    pub result_digest: Option<String>,
    /// Encrypted or redacted result.
    pub result: Option<Sealed>,
    /// HTTP status of the reply to the client.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// `hash` of record `seq - 1` (64 zeros for the first record ever written).
    pub prev_hash: String,
    /// Hex SHA-256 of `prev_hash` followed by the RFC 8785 JSON of this record without `hash`.
    pub hash: String,
}

impl Record {
    /// The key id of the sealed fields, if any is encrypted (the `kid` column).
    pub fn kid(&self) -> Option<&str> {
        [&self.args, &self.result]
            .into_iter()
            .find_map(|field| match field {
                Some(Sealed::Encrypted { kid, .. }) => Some(kid.as_str()),
                _ => None,
            })
    }

    /// The JSON Lines form: one line, no trailing newline.
    pub fn to_json_line(&self) -> String {
        // A record holds only strings, integers, arrays and JSON values: it always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// What the gateway knows about a request when it is done with it. The writer adds `seq`,
/// `ts`, `prev_hash` and `hash`, digests `args`/`result` and encrypts or redacts them.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordDraft {
    pub request_id: String,
    pub principal: Option<String>,
    pub auth_method: Option<String>,
    pub client_ip: Option<String>,
    pub upstream: Option<String>,
    pub method: String,
    pub name: Option<String>,
    pub decision: Decision,
    pub reason: Option<String>,
    pub policy_ids: Vec<String>,
    /// The call's arguments as received (plaintext; never stored as such).
    pub args: Option<Value>,
    /// The result or error returned to the client (plaintext; never stored as such).
    pub result: Option<Value>,
    pub status: Option<u16>,
    pub latency_ms: u64,
}

impl RecordDraft {
    /// A draft with only the required fields; set the rest directly.
    pub fn new(
        request_id: impl Into<String>,
        method: impl Into<String>,
        decision: Decision,
    ) -> Self {
        RecordDraft {
            request_id: request_id.into(),
            principal: None,
            auth_method: None,
            client_ip: None,
            upstream: None,
            method: method.into(),
            name: None,
            decision,
            reason: None,
            policy_ids: Vec::new(),
            args: None,
            result: None,
            status: None,
            latency_ms: 0,
        }
    }
}
