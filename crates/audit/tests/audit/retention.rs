//! Retention prunes old records behind a signed anchor; the rest still verifies, and tampering
//! before a prune stops the prune.

use std::time::Duration;

use portcullis_audit::{
    AuditError, AuditLog, ProblemKind, PruneOutcome, TrustedKeys, clock, verify,
};
use portcullis_store::{Store, testing};

use super::support::{all_records, config, draft, exec};

const DAY: Duration = Duration::from_secs(86_400);

async fn open(store: &Store, dir: &std::path::Path, retention: Option<Duration>) -> AuditLog {
    let mut cfg = config(4);
    cfg.retention = retention;
    AuditLog::open(store.clone(), &cfg, dir).await.unwrap()
}

#[tokio::test]
async fn pruning_keeps_the_rest_verifiable_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    for store in testing::both(dir.path()).await.unwrap() {
        let pem = super::support::signing_key_pem();
        let mut cfg = super::support::with_signing_key(config(4), &pem);
        cfg.retention = Some(DAY);
        let log = AuditLog::open(store.clone(), &cfg, dir.path())
            .await
            .unwrap();
        let trusted = TrustedKeys::new([log.signer().verifying_key()]);
        for i in 1..=10 {
            log.append(draft(i)).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        for i in 11..=15 {
            log.append(draft(i)).await.unwrap();
        }
        log.flush().await.unwrap();
        let records = all_records(&store).await;
        let second_batch_ms = clock::parse_ms(&records[10].ts).unwrap();
        assert!(clock::parse_ms(&records[9].ts).unwrap() < second_batch_ms);
        // A day after the second batch began: the first ten are older than the retention.
        let now = second_batch_ms + 86_400_000;
        assert_eq!(
            log.prune_once(now).await.unwrap(),
            PruneOutcome::Pruned {
                anchor_seq: 10,
                deleted: 10
            }
        );
        assert_eq!(
            log.prune_once(now).await.unwrap(),
            PruneOutcome::NothingToPrune
        );
        let report = verify(&store, &trusted).await.unwrap();
        assert!(report.intact(), "{report:?}");
        assert_eq!(
            (report.anchor, report.first_seq, report.records),
            (Some(10), Some(11), 5)
        );
        // New records continue the chain after pruning.
        log.append(draft(16)).await.unwrap();
        log.shutdown().await.unwrap();
        assert!(verify(&store, &trusted).await.unwrap().intact());
        // Deleting the anchor is noticed: the chain no longer starts where it should.
        exec(
            &store,
            "DELETE FROM audit_checkpoints WHERE kind = 'anchor'",
        )
        .await;
        let problem = verify(&store, &trusted).await.unwrap().problem.unwrap();
        assert_eq!((problem.seq, problem.kind), (1, ProblemKind::SeqGap));
        store.close().await;
    }
}

#[tokio::test]
async fn pruning_everything_leaves_an_anchored_empty_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = testing::sqlite(dir.path()).await.unwrap();
    let log = open(&store, dir.path(), Some(Duration::from_secs(60))).await;
    for i in 1..=6 {
        log.append(draft(i)).await.unwrap();
    }
    let later = portcullis_store::now_ms() + 3_600_000;
    assert_eq!(
        log.prune_once(later).await.unwrap(),
        PruneOutcome::Pruned {
            anchor_seq: 6,
            deleted: 6
        }
    );
    let trusted = TrustedKeys::new([log.signer().verifying_key()]);
    let report = verify(&store, &trusted).await.unwrap();
    assert!(report.intact(), "{report:?}");
    assert_eq!((report.records, report.anchor), (0, Some(6)));
    assert_eq!(log.append(draft(7)).await.unwrap().seq, 7);
    log.shutdown().await.unwrap();
    assert!(verify(&store, &trusted).await.unwrap().intact());
}

#[tokio::test]
async fn tampering_before_a_prune_stops_it_and_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = testing::sqlite(dir.path()).await.unwrap();
    let log = open(&store, dir.path(), Some(Duration::from_secs(60))).await;
    for i in 1..=6 {
        log.append(draft(i)).await.unwrap();
    }
    exec(
        &store,
        "UPDATE audit_records SET principal = 'mallory' WHERE seq = 3",
    )
    .await;
    let err = log
        .prune_once(portcullis_store::now_ms() + 3_600_000)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuditError::PruneRefused { seq: 3, .. }),
        "{err}"
    );
    assert_eq!(all_records(&store).await.len(), 6);
    log.shutdown().await.unwrap();
}

#[tokio::test]
async fn retention_off_prunes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = testing::sqlite(dir.path()).await.unwrap();
    let log = open(&store, dir.path(), None).await;
    log.append(draft(1)).await.unwrap();
    assert_eq!(
        log.prune_once(i64::MAX / 2).await.unwrap(),
        PruneOutcome::Disabled
    );
    assert!(log.spawn_retention(Duration::from_secs(1)).is_none());
    log.shutdown().await.unwrap();
}
