//! The hash chain: `hash = hex(SHA-256(prev_hash ‖ RFC 8785 JSON of the record without hash))`.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::canonical;
use crate::record::Record;

/// `prev_hash` of the first record ever written.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash `record` should carry, computed from all its other fields (including `prev_hash`).
pub fn record_hash(record: &Record) -> String {
    let mut value = serde_json::to_value(record).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.remove("hash");
    }
    let mut hasher = Sha256::new();
    hasher.update(record.prev_hash.as_bytes());
    hasher.update(canonical::to_string(&value).as_bytes());
    hex::encode(hasher.finalize())
}

/// Sets `record.hash` from its other fields.
pub fn seal(mut record: Record) -> Record {
    record.hash = record_hash(&record);
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Decision, Sealed};

    fn sample() -> Record {
        Record {
            seq: 1,
            ts: "2026-01-02T03:04:05.678Z".into(),
            request_id: "r-1".into(),
            principal: Some("alice".into()),
            auth_method: Some("api_key".into()),
            client_ip: Some("127.0.0.1".into()),
            upstream: Some("fs".into()),
            method: "tools/call".into(),
            name: Some("fs__read_file".into()),
            decision: Decision::Allow,
            reason: None,
            policy_ids: vec!["allow-read".into()],
            args_digest: Some("ab".into()),
            args: Some(Sealed::Redacted {
                value: serde_json::json!({"path": "/srv/x"}),
            }),
            result_digest: None,
            result: None,
            status: Some(200),
            latency_ms: 12,
            prev_hash: GENESIS.into(),
            hash: String::new(),
        }
    }

    #[test]
    fn hash_is_prev_hash_then_canonical_json_without_hash() {
        let record = seal(sample());
        let canonical = "{\"args\":{\"mode\":\"redacted\",\"value\":{\"path\":\"/srv/x\"}},\
            \"args_digest\":\"ab\",\"auth_method\":\"api_key\",\"client_ip\":\"127.0.0.1\",\
            \"decision\":\"allow\",\"latency_ms\":12,\"method\":\"tools/call\",\
            \"name\":\"fs__read_file\",\"policy_ids\":[\"allow-read\"],\"prev_hash\":\"";
        let tail = "\",\"principal\":\"alice\",\"reason\":null,\"request_id\":\"r-1\",\
            \"result\":null,\"result_digest\":null,\"seq\":1,\"status\":200,\
            \"ts\":\"2026-01-02T03:04:05.678Z\",\"upstream\":\"fs\"}";
        let message = format!("{GENESIS}{canonical}{GENESIS}{tail}");
        assert_eq!(record.hash, hex::encode(Sha256::digest(message.as_bytes())));
    }

    #[test]
    fn every_field_is_covered() {
        let base = seal(sample());
        let edits: Vec<fn(&mut Record)> = vec![
            |r| r.seq = 2,
            |r| r.ts.push('x'),
            |r| r.request_id.push('x'),
            |r| r.principal = None,
            |r| r.auth_method = None,
            |r| r.client_ip = None,
            |r| r.upstream = None,
            |r| r.method.push('x'),
            |r| r.name = None,
            |r| r.decision = Decision::Deny,
            |r| r.reason = Some("x".into()),
            |r| r.policy_ids.clear(),
            |r| r.args_digest = None,
            |r| r.args = None,
            |r| r.result_digest = Some("x".into()),
            |r| r.result = Some(Sealed::Redacted { value: Value::Null }),
            |r| r.status = Some(403),
            |r| r.latency_ms = 13,
            |r| r.prev_hash = "1".repeat(64),
        ];
        for (i, edit) in edits.into_iter().enumerate() {
            let mut changed = base.clone();
            edit(&mut changed);
            assert_ne!(record_hash(&changed), base.hash, "edit {i} not covered");
        }
    }
}
