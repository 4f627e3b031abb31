//! Arguments and results never reach the database in plaintext; they decrypt with the right key
//! (also after a rotation) and fail cleanly with a wrong one.

use std::sync::Arc;

use portcullis_audit::{
    AuditError, AuditLog, FieldKey, FieldKeys, Sealed, canonical, decrypt_fields,
};
use portcullis_store::{Store, testing};
use serde_json::{Value, json};

use super::support::{
    KEY_A, KEY_B, all_records, config, draft, signing_key_pem, with_key, with_signing_key,
};

const MARKER: &str = "SECRET-MARKER-7f3a";

fn secret_draft(i: u64) -> portcullis_audit::RecordDraft {
    let mut d = draft(i);
    d.args = Some(json!({"path": "/srv/x", "token": format!("{MARKER}-{i}")}));
    d.result = Some(json!({"content": [{"type": "text", "text": format!("the {MARKER} leaked")}]}));
    d
}

/// Every text in both audit tables, as the database returns it.
async fn dump(store: &Store) -> String {
    use portcullis_store::sqlx::Row;
    let mut out = String::new();
    for table in ["audit_records", "audit_checkpoints", "audit_head"] {
        let rows = portcullis_store::sqlx::query(portcullis_store::sqlx::AssertSqlSafe(format!(
            "SELECT * FROM {table}"
        )))
        .fetch_all(store.pool())
        .await
        .unwrap();
        for row in rows {
            for i in 0..row.len() {
                if let Ok(Some(text)) = row.try_get::<Option<String>, _>(i) {
                    out.push_str(&text);
                    out.push('\n');
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn plaintext_never_stored_and_decrypts_with_the_right_key() {
    let dir = tempfile::tempdir().unwrap();
    for store in testing::both(dir.path()).await.unwrap() {
        let cfg = with_signing_key(with_key(config(2), KEY_A), &signing_key_pem());
        let log = AuditLog::open(store.clone(), &cfg, dir.path())
            .await
            .unwrap();
        for i in 1..=5 {
            log.append(secret_draft(i)).await.unwrap();
        }
        log.shutdown().await.unwrap();
        let text = dump(&store).await;
        assert!(text.contains("fs__read_file"), "the dump reads the tables");
        assert!(!text.contains(MARKER), "plaintext in the database");
        // On SQLite, not even in the file's bytes (WAL included).
        if store.dialect() == portcullis_store::Dialect::Sqlite {
            for entry in std::fs::read_dir(dir.path()).unwrap() {
                let bytes = std::fs::read(entry.unwrap().path()).unwrap();
                assert!(!bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()));
            }
        }
        let keys = FieldKeys::new(Some(FieldKey::parse(KEY_A).unwrap()), vec![]);
        for record in all_records(&store).await {
            let kid = FieldKey::parse(KEY_A).unwrap().kid().to_owned();
            assert_eq!(record.kid(), Some(kid.as_str()));
            let opened = decrypt_fields(&record, &keys).unwrap();
            let i = record.latency_ms;
            assert_eq!(opened.args, secret_draft(i).args);
            assert_eq!(opened.result, secret_draft(i).result);
            assert_eq!(
                record.args_digest,
                Some(canonical::digest(&secret_draft(i).args.unwrap()))
            );
        }
        store.close().await;
    }
}

#[tokio::test]
async fn rotation_keeps_old_records_readable_and_wrong_keys_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let store = testing::sqlite(dir.path()).await.unwrap();
    let log = AuditLog::open(store.clone(), &with_key(config(10), KEY_A), dir.path())
        .await
        .unwrap();
    log.append(secret_draft(1)).await.unwrap();
    log.shutdown().await.unwrap();
    // Rotate: B encrypts, A only decrypts.
    let mut rotated = with_key(config(10), KEY_B);
    rotated.old_encryption_keys = vec![portcullis_config::Secret::new("env:OLD", KEY_A)];
    let log = AuditLog::open(store.clone(), &rotated, dir.path())
        .await
        .unwrap();
    log.append(secret_draft(2)).await.unwrap();
    log.shutdown().await.unwrap();

    let (a, b) = (
        FieldKey::parse(KEY_A).unwrap(),
        FieldKey::parse(KEY_B).unwrap(),
    );
    assert_ne!(a.kid(), b.kid());
    let records = all_records(&store).await;
    assert_eq!(records[0].kid(), Some(a.kid()));
    assert_eq!(records[1].kid(), Some(b.kid()));
    let both = FieldKeys::from_config(&rotated).unwrap();
    for record in &records {
        let opened = decrypt_fields(record, &both).unwrap();
        assert_eq!(opened.args, secret_draft(record.latency_ms).args);
    }
    // Only the new key: the old record names a key that is not there.
    let only_b = FieldKeys::new(Some(b.clone()), vec![]);
    let err = decrypt_fields(&records[0], &only_b).unwrap_err();
    assert!(
        matches!(
            err,
            AuditError::Decrypt {
                seq: 1,
                field: "args",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("no key with id"), "{err}");
    // A wrong key under the right id (a forged kid) fails authentication, not with garbage.
    let mut forged = records[1].clone();
    if let Some(Sealed::Encrypted { kid, .. }) = &mut forged.args {
        *kid = a.kid().to_owned();
    }
    let err = decrypt_fields(&forged, &both).unwrap_err();
    assert!(err.to_string().contains("authentication failed"), "{err}");
    // Moving a ciphertext to another record fails too (bound to the request id).
    let mut moved = records[1].clone();
    moved.request_id = "another".into();
    assert!(decrypt_fields(&moved, &both).is_err());
}

#[tokio::test]
async fn without_a_key_only_digests_or_redacted_values_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = testing::sqlite(dir.path()).await.unwrap();
    let log = AuditLog::open(store.clone(), &config(10), dir.path())
        .await
        .unwrap();
    log.append(secret_draft(1)).await.unwrap();
    let redactor = |value: &mut Value| {
        if let Some(token) = value.get_mut("token") {
            *token = json!("[REDACTED:secret]");
        }
    };
    let log = log.with_redactor(Arc::new(redactor));
    log.append(secret_draft(2)).await.unwrap();
    log.shutdown().await.unwrap();
    let records = all_records(&store).await;
    assert_eq!(records[0].args, None);
    assert_eq!(
        records[0].args_digest,
        Some(canonical::digest(&secret_draft(1).args.unwrap()))
    );
    assert_eq!(
        records[1].args,
        Some(Sealed::Redacted {
            value: json!({"path": "/srv/x", "token": "[REDACTED:secret]"})
        })
    );
    // The digest is of what was called, not of what was kept.
    assert_eq!(
        records[1].args_digest,
        Some(canonical::digest(&secret_draft(2).args.unwrap()))
    );
    assert!(!dump(&store).await.contains(&format!("{MARKER}-2")));
    assert_eq!(records[1].kid(), None);
}

/// A field larger than `max_field_bytes` keeps only its digest, encrypted or not; a smaller one
/// in the same record is kept as usual, and the chain still verifies.
#[tokio::test]
async fn fields_over_the_size_limit_keep_only_their_digest() {
    let dir = tempfile::tempdir().unwrap();
    let store = testing::sqlite(dir.path()).await.unwrap();
    let mut cfg = with_key(config(10), KEY_A);
    cfg.max_field_bytes = 1024;
    let log = AuditLog::open(store.clone(), &cfg, dir.path())
        .await
        .unwrap();
    let mut big = draft(1);
    let huge = json!({"content": [{"type": "text", "text": "x".repeat(4096)}]});
    big.result = Some(huge.clone());
    log.append(big).await.unwrap();
    log.shutdown().await.unwrap();
    let records = all_records(&store).await;
    assert_eq!(records[0].result, None, "over the limit: not stored");
    assert_eq!(records[0].result_digest, Some(canonical::digest(&huge)));
    assert!(
        matches!(records[0].args, Some(Sealed::Encrypted { .. })),
        "under the limit: stored encrypted"
    );
    assert!(!dump(&store).await.contains(&"x".repeat(1025)));
}

#[test]
fn key_parsing() {
    assert!(FieldKey::parse(KEY_A).is_ok());
    assert!(FieldKey::parse(KEY_B).is_ok());
    assert_eq!(
        FieldKey::parse(&KEY_A.to_uppercase()).unwrap().kid(),
        FieldKey::parse(KEY_A).unwrap().kid()
    );
    assert!(FieldKey::parse("audit-key-6").is_err());
    assert!(
        FieldKey::parse("not base64 !")
            .unwrap_err()
            .contains("base64")
    );
    assert!(
        FieldKey::parse("AAAA")
            .unwrap_err()
            .contains("need exactly 32")
    );
    assert!(format!("{:?}", FieldKey::parse(KEY_A).unwrap()).starts_with("FieldKey("));
    assert!(!format!("{:?}", FieldKey::parse(KEY_A).unwrap()).contains("0001020304"));
}
