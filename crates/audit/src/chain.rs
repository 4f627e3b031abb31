//! The hash chain: `hash = hex(SHA-256(prev_hash ‖ RFC 8785 JSON of the record without hash))`.

use sha2::{Digest, Sha256};

use crate::canonical::Object;
use crate::record::{Record, Sealed};

/// `prev_hash` of the first record ever written.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash `record` should carry, computed from all its other fields (including `prev_hash`).
pub fn record_hash(record: &Record) -> String {
    let mut text = String::with_capacity(1024);
    write_without_hash(record, &mut text);
    let mut hasher = Sha256::new();
    hasher.update(record.prev_hash.as_bytes());
    hasher.update(text.as_bytes());
    crate::canonical::hex_of(&hasher.finalize())
}

/// The RFC 8785 JSON of `record` without `hash`: what serializing it, dropping `hash` and
/// canonicalizing gives (a test holds the two together), written directly because the writer
/// does it for every record.
fn write_without_hash(r: &Record, out: &mut String) {
    let mut o = Object::new(out);
    sealed(r.args.as_ref(), o.key("args"));
    o.opt_str("args_digest", r.args_digest.as_deref())
        .opt_str("auth_method", r.auth_method.as_deref())
        .opt_str("client_ip", r.client_ip.as_deref())
        .str("decision", r.decision.as_str())
        .uint("latency_ms", r.latency_ms)
        .str("method", &r.method)
        .opt_str("name", r.name.as_deref())
        .strs("policy_ids", &r.policy_ids)
        .str("prev_hash", &r.prev_hash)
        .opt_str("principal", r.principal.as_deref())
        .opt_str("reason", r.reason.as_deref())
        .str("request_id", &r.request_id);
    sealed(r.result.as_ref(), o.key("result"));
    o.opt_str("result_digest", r.result_digest.as_deref())
        .uint("seq", r.seq);
    match r.status {
        Some(status) => o.uint("status", u64::from(status)),
        None => o.opt_str("status", None),
    };
    o.str("ts", &r.ts)
        .opt_str("upstream", r.upstream.as_deref())
        .end();
}

fn sealed(field: Option<&Sealed>, out: &mut String) {
    match field {
        None => out.push_str("null"),
        Some(Sealed::Encrypted { kid, nonce, ct }) => {
            let mut o = Object::new(out);
            o.str("ct", ct)
                .str("kid", kid)
                .str("mode", "encrypted")
                .str("nonce", nonce)
                .end();
        }
        Some(Sealed::Redacted { value }) => {
            let mut o = Object::new(out);
            o.str("mode", "redacted").value("value", value).end();
        }
    }
}

/// Sets `record.hash` from its other fields.
pub fn seal(mut record: Record) -> Record {
    record.hash = record_hash(&record);
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical;
    use crate::record::{Decision, Sealed};
    use serde_json::Value;

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

    /// The direct writer gives exactly what serializing the record, dropping `hash` and
    /// canonicalizing gives: chains written before it still verify.
    #[test]
    fn direct_form_is_the_canonical_serialization() {
        let encrypted = Sealed::Encrypted {
            kid: "0a1b2c3d".into(),
            nonce: "bm9uY2U=".into(),
            ct: "Y3Q=".into(),
        };
        let redacted = Sealed::Redacted {
            value: serde_json::json!({"z": [1, 2.5, "é\n"], "a": null, "\u{1}": {"b": true}}),
        };
        let edits: Vec<fn(&mut Record)> = vec![
            |_| {},
            |r| {
                r.principal = None;
                r.auth_method = None;
                r.client_ip = None;
                r.upstream = None;
                r.name = None;
                r.status = None;
                r.args_digest = None;
                r.args = None;
                r.policy_ids.clear();
            },
            |r| r.reason = Some("quote \" and \\ and \u{7}".into()),
            |r| r.policy_ids = vec!["b".into(), "a".into()],
            |r| r.seq = u64::from(u32::MAX) * 3,
            |r| r.decision = Decision::Rejected,
        ];
        for (i, edit) in edits.into_iter().enumerate() {
            for (args, result) in [
                (Some(encrypted.clone()), Some(redacted.clone())),
                (Some(redacted.clone()), Some(encrypted.clone())),
                (None, None),
            ] {
                let mut r = sample();
                r.args = args;
                r.result = result;
                edit(&mut r);
                let mut value = serde_json::to_value(&r).unwrap();
                value.as_object_mut().unwrap().remove("hash");
                let mut direct = String::new();
                write_without_hash(&r, &mut direct);
                assert_eq!(direct, canonical::to_string(&value), "edit {i}");
            }
        }
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
