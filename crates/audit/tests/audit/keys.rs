//! The checkpoint signing key: configured, or generated next to a SQLite store; required with
//! PostgreSQL.

use portcullis_audit::signing::GENERATED_KEY_FILE;
use portcullis_audit::{AuditError, AuditLog, trusted_keys, verify};
use portcullis_store::testing;

use super::support::{config, draft, signing_key_pem, with_signing_key};

#[tokio::test]
async fn sqlite_without_a_key_generates_one_once_with_private_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let store = testing::sqlite(dir.path()).await.unwrap();
    let log = AuditLog::open(store.clone(), &config(1), dir.path())
        .await
        .unwrap();
    let path = dir.path().join(GENERATED_KEY_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    let id = log.signer().id().to_owned();
    log.append(draft(1)).await.unwrap();
    log.shutdown().await.unwrap();
    // A restart (and `audit verify`) use the same key.
    let again = AuditLog::open(store.clone(), &config(1), dir.path())
        .await
        .unwrap();
    assert_eq!(again.signer().id(), id);
    again.shutdown().await.unwrap();
    let trusted = trusted_keys(&config(1), dir.path(), []).unwrap();
    assert_eq!(trusted.ids(), [id.as_str()]);
    let report = verify(&store, &trusted).await.unwrap();
    assert!(report.intact() && report.checkpoints == 1, "{report:?}");
}

#[tokio::test]
async fn postgres_requires_a_configured_signing_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = testing::postgres().await.unwrap();
    let err = AuditLog::open(store.clone(), &config(1), dir.path())
        .await
        .unwrap_err();
    assert!(matches!(err, AuditError::SigningKeyRequired), "{err}");
    assert!(!dir.path().join(GENERATED_KEY_FILE).exists());
    let log = AuditLog::open(
        store.clone(),
        &with_signing_key(config(1), &signing_key_pem()),
        dir.path(),
    )
    .await
    .unwrap();
    log.shutdown().await.unwrap();
    store.close().await;
}

#[tokio::test]
async fn checkpoints_from_an_untrusted_key_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = testing::sqlite(dir.path()).await.unwrap();
    let (mine, theirs) = (signing_key_pem(), signing_key_pem());
    let log = AuditLog::open(
        store.clone(),
        &with_signing_key(config(3), &theirs),
        dir.path(),
    )
    .await
    .unwrap();
    for i in 1..=4 {
        log.append(draft(i)).await.unwrap();
    }
    log.shutdown().await.unwrap();
    let trusted = trusted_keys(&with_signing_key(config(3), &mine), dir.path(), []).unwrap();
    let report = verify(&store, &trusted).await.unwrap();
    let problem = report.problem.unwrap();
    let first = portcullis_audit::checkpoints(&store).await.unwrap()[0].seq;
    assert_eq!(
        (problem.seq, problem.kind),
        (first, portcullis_audit::ProblemKind::BadCheckpointSignature)
    );
    assert!(problem.detail.contains("not trusted"), "{problem:?}");
    // With their public key as an extra trusted key (a rotated key), it verifies.
    let extra = portcullis_audit::signing::verifying_key_from_pem(&theirs).unwrap();
    let trusted = trusted_keys(&with_signing_key(config(3), &mine), dir.path(), [extra]).unwrap();
    assert!(verify(&store, &trusted).await.unwrap().intact());
}

#[test]
fn check_keys_reports_what_the_secrets_hold() {
    let mut cfg = config(1);
    cfg.encryption_key = Some(portcullis_config::Secret::new("env:K", "short"));
    cfg.signing_key = Some(portcullis_config::Secret::new("file:k.pem", "not a pem"));
    let problems = portcullis_audit::check_keys(&cfg);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].starts_with("audit.encryption_key (env:K)"),
        "{problems:?}"
    );
    assert!(
        problems[1].starts_with("audit.signing_key (file:k.pem)"),
        "{problems:?}"
    );
    assert!(
        portcullis_audit::check_keys(&with_signing_key(config(1), &signing_key_pem())).is_empty()
    );
}
