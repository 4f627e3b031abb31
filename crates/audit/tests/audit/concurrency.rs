//! Many concurrent appends, and two writers on one store (two replicas on PostgreSQL, two
//! processes on one SQLite file), yield one gap-free chain that verifies.

use std::collections::BTreeSet;

use portcullis_audit::{AuditLog, TrustedKeys, verify};
use portcullis_store::testing;

use super::support::{all_records, config, draft, signing_key_pem, trusted, with_signing_key};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_form_one_gap_free_chain_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    for store in testing::both(dir.path()).await.unwrap() {
        let pem = signing_key_pem();
        let log = AuditLog::open(
            store.clone(),
            &with_signing_key(config(50), &pem),
            dir.path(),
        )
        .await
        .unwrap();
        let tasks: Vec<_> = (1..=400)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move { log.append(draft(i)).await.unwrap() })
            })
            .collect();
        let mut seqs = BTreeSet::new();
        for task in tasks {
            assert!(seqs.insert(task.await.unwrap().seq));
        }
        assert_eq!(seqs, (1..=400).collect::<BTreeSet<u64>>());
        log.shutdown().await.unwrap();
        let report = verify(&store, &trusted(&pem)).await.unwrap();
        assert!(report.intact(), "{report:?}");
        assert_eq!((report.records, report.last_checkpoint), (400, Some(400)));
        assert_eq!(report.unsigned_tail, 0);
        // Every request id landed exactly once.
        let ids: BTreeSet<String> = all_records(&store)
            .await
            .into_iter()
            .map(|r| r.request_id)
            .collect();
        assert_eq!(ids.len(), 400);
        store.close().await;
    }
}

/// Two writers on one chain: two replicas on one PostgreSQL schema, two processes (separate
/// pools) on one SQLite file. On SQLite each writer plans a batch on the head it last
/// committed, so the other's appends make it replan on the locked head: every seq once, every
/// record kept, the chain intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_writers_on_one_store_share_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = [
        {
            let a = testing::postgres().await.unwrap();
            (a.clone(), a)
        },
        (
            testing::sqlite(dir.path()).await.unwrap(),
            testing::sqlite(dir.path()).await.unwrap(),
        ),
    ];
    for (store_a, store_b) in pairs {
        let pem = signing_key_pem();
        let cfg = with_signing_key(config(7), &pem);
        let a = AuditLog::open(store_a.clone(), &cfg, dir.path())
            .await
            .unwrap();
        let b = AuditLog::open(store_b.clone(), &cfg, dir.path())
            .await
            .unwrap();
        let mut seqs = BTreeSet::new();
        // Alternating single appends: each writer's last head is stale at every batch.
        for i in 1..=40u64 {
            let log = if i % 2 == 0 { &a } else { &b };
            assert!(seqs.insert(log.append(draft(i)).await.unwrap().seq));
        }
        // Then both at once.
        let tasks: Vec<_> = (41..=300)
            .map(|i| {
                let log = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move { log.append(draft(i)).await.unwrap() })
            })
            .collect();
        for task in tasks {
            assert!(seqs.insert(task.await.unwrap().seq));
        }
        assert_eq!(seqs, (1..=300).collect::<BTreeSet<u64>>());
        a.shutdown().await.unwrap();
        b.shutdown().await.unwrap();
        let report = verify(&store_a, &trusted(&pem)).await.unwrap();
        assert!(report.intact(), "{report:?}");
        assert_eq!(report.records, 300);
        // Both writers wrote, interleaved by whole batches, nothing lost or doubled.
        let records = all_records(&store_a).await;
        let ids: BTreeSet<String> = records.iter().map(|r| r.request_id.clone()).collect();
        assert_eq!(ids.len(), 300);
        let from_even = records.iter().filter(|r| r.latency_ms % 2 == 0).count();
        assert_eq!(from_even, 150);
        store_a.close().await;
        store_b.close().await;
    }
}

#[tokio::test]
async fn append_after_shutdown_fails_and_flush_waits_for_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = testing::sqlite(dir.path()).await.unwrap();
    let log = AuditLog::open(store.clone(), &config(1000), dir.path())
        .await
        .unwrap();
    let first = log.append(draft(1)).await.unwrap();
    // Resolved means committed: another connection sees it.
    assert_eq!(
        portcullis_audit::read_head(&store).await.unwrap().seq,
        first.seq
    );
    assert_eq!(all_records(&store).await[0].hash, first.hash);
    log.shutdown().await.unwrap();
    assert!(matches!(
        log.append(draft(2)).await,
        Err(portcullis_audit::AuditError::Closed)
    ));
    // Reopening continues the chain.
    let log = AuditLog::open(store.clone(), &config(1000), dir.path())
        .await
        .unwrap();
    assert_eq!(log.append(draft(2)).await.unwrap().seq, 2);
    log.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failed_commit_reaches_every_waiter_and_the_writer_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let store = testing::sqlite(dir.path()).await.unwrap();
    let log = AuditLog::open(store.clone(), &config(1000), dir.path())
        .await
        .unwrap();
    log.append(draft(1)).await.unwrap();
    // Break the table so that inserts fail.
    super::support::exec(
        &store,
        "ALTER TABLE audit_records RENAME TO audit_records_away",
    )
    .await;
    let results = futures::future::join_all((2..6).map(|i| log.append(draft(i)))).await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(portcullis_audit::AuditError::Sql(_)))),
        "{results:?}"
    );
    super::support::exec(
        &store,
        "ALTER TABLE audit_records_away RENAME TO audit_records",
    )
    .await;
    // Nothing was half-written: the next record follows the first.
    assert_eq!(log.append(draft(7)).await.unwrap().seq, 2);
    log.shutdown().await.unwrap();
    let pem_less = TrustedKeys::new([log.signer().verifying_key()]);
    assert!(verify(&store, &pem_less).await.unwrap().intact());
}

#[tokio::test]
async fn a_time_based_checkpoint_signs_an_idle_tail() {
    let dir = tempfile::tempdir().unwrap();
    let store = testing::sqlite(dir.path()).await.unwrap();
    let mut cfg = config(1000);
    cfg.checkpoint_interval = std::time::Duration::from_millis(50);
    let log = AuditLog::open(store.clone(), &cfg, dir.path())
        .await
        .unwrap();
    log.append(draft(1)).await.unwrap();
    log.append(draft(2)).await.unwrap();
    let mut waited = 0;
    let last = async || {
        portcullis_audit::checkpoints(&store)
            .await
            .unwrap()
            .last()
            .map(|c| c.seq)
    };
    while last().await != Some(2) && waited < 100 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        waited += 1;
    }
    assert_eq!(last().await, Some(2));
    log.shutdown().await.unwrap();
}
