//! Shared by the audit integration tests: configs, drafts, raw SQL on the tables.

use std::time::Duration;

use portcullis_audit::{Decision, Record, RecordDraft};
use portcullis_config::{Audit, Secret};
use portcullis_store::Store;
use serde_json::json;

pub const KEY_A: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
pub const KEY_B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="; // bytes 32..64, base64

pub fn config(checkpoint_records: u64) -> Audit {
    Audit {
        signing_key: None,
        encryption_key: None,
        old_encryption_keys: Vec::new(),
        retention: None,
        checkpoint_records,
        checkpoint_interval: Duration::from_secs(3600),
        max_field_bytes: 256 * 1024,
        sinks: Vec::new(),
    }
}

/// A PKCS#8 PEM signing key, as `[audit] signing_key = "file:…"` would hold.
pub fn signing_key_pem() -> String {
    portcullis_audit::CheckpointSigner::generate()
        .unwrap()
        .to_pem()
        .unwrap()
        .to_string()
}

/// The keys `verify` trusts: the public half of `pem`.
pub fn trusted(pem: &str) -> portcullis_audit::TrustedKeys {
    portcullis_audit::TrustedKeys::new([
        portcullis_audit::signing::verifying_key_from_pem(pem).unwrap()
    ])
}

pub fn with_signing_key(mut config: Audit, pem: &str) -> Audit {
    config.signing_key = Some(Secret::new("file:test.pem", pem));
    config
}

pub fn with_key(mut config: Audit, key: &str) -> Audit {
    config.encryption_key = Some(Secret::new("env:TEST_KEY", key));
    config
}

pub fn draft(i: u64) -> RecordDraft {
    let mut d = RecordDraft::new(
        format!("req-{i}"),
        "tools/call",
        Decision::ALL[(i % 5) as usize],
    );
    d.principal = Some(format!("user-{}", i % 3));
    d.auth_method = Some("api_key".into());
    d.client_ip = Some("127.0.0.1".into());
    d.upstream = Some("fs".into());
    d.name = Some("fs__read_file".into());
    d.reason = i.is_multiple_of(2).then(|| "policy said so".into());
    d.policy_ids = vec![format!("p{}", i % 4)];
    d.args = Some(json!({"path": format!("/srv/data/{i}"), "limit": i}));
    d.result = Some(json!({"content": [{"type": "text", "text": format!("body {i}")}]}));
    d.status = Some(200);
    d.latency_ms = i;
    d
}

/// Every stored record, in sequence order.
pub async fn all_records(store: &Store) -> Vec<Record> {
    portcullis_audit::records_after(store, 0, 100_000)
        .await
        .unwrap()
}

pub async fn exec(store: &Store, sql: &str) {
    portcullis_store::sqlx::raw_sql(portcullis_store::sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(store.pool())
        .await
        .unwrap();
}

fn text(value: &Option<String>) -> String {
    value.as_ref().map_or("NULL".to_owned(), |s| {
        format!("'{}'", s.replace('\'', "''"))
    })
}

fn json_text<T: serde::Serialize>(value: &Option<T>) -> String {
    text(&value.as_ref().map(|v| serde_json::to_string(v).unwrap()))
}

/// Inserts `record` directly, as someone with write access to the database could.
pub async fn insert_raw(store: &Store, r: &Record) {
    let sql = format!(
        "INSERT INTO audit_records (seq, ts, request_id, principal, auth_method, client_ip, \
         upstream, method, name, decision, reason, policy_ids, args_digest, args, result_digest, \
         result, status, latency_ms, prev_hash, hash, kid) VALUES ({}, '{}', '{}', {}, {}, {}, \
         {}, '{}', {}, '{}', {}, '{}', {}, {}, {}, {}, {}, {}, '{}', '{}', {})",
        r.seq,
        r.ts,
        r.request_id,
        text(&r.principal),
        text(&r.auth_method),
        text(&r.client_ip),
        text(&r.upstream),
        r.method,
        text(&r.name),
        r.decision,
        text(&r.reason),
        serde_json::to_string(&r.policy_ids).unwrap(),
        text(&r.args_digest),
        json_text(&r.args),
        text(&r.result_digest),
        json_text(&r.result),
        r.status.map_or("NULL".to_owned(), |s| s.to_string()),
        r.latency_ms,
        r.prev_hash,
        r.hash,
        text(&r.kid().map(str::to_owned)),
    );
    exec(store, &sql).await;
}
