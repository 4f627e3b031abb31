//! Any single edit, deletion, reordering, insertion or truncation made directly in the database
//! makes `verify` fail and name the first bad record; an untouched chain verifies.

use std::path::Path;

use portcullis_audit::{AuditLog, ProblemKind, chain, verify};
use portcullis_store::{Store, testing};
use proptest::prelude::*;

use super::support::{
    all_records, config, draft, exec, insert_raw, signing_key_pem, trusted, with_signing_key,
};

#[derive(Debug, Clone)]
enum Tamper {
    None,
    /// Set one column of record `seq` to a value it never has.
    Edit {
        seq: u64,
        column: usize,
    },
    Delete {
        seq: u64,
    },
    /// Swap the positions (seq) of two records.
    Swap {
        a: u64,
        b: u64,
    },
    /// Shift records `seq..` up by one and put a forged record, correctly chained to its
    /// predecessor, at `seq`.
    InsertForged {
        seq: u64,
    },
    /// Append a correctly chained forged record after the last one.
    AppendForged,
    /// Delete every record after `keep`.
    Truncate {
        keep: u64,
    },
    /// Change the hash a checkpoint vouches for.
    EditCheckpoint {
        index: usize,
    },
    /// Delete the latest checkpoint.
    DeleteLastCheckpoint,
}

const EDITS: &[&str] = &[
    "principal = 'mallory'",
    "decision = CASE WHEN decision = 'deny' THEN 'allow' ELSE 'deny' END",
    "latency_ms = latency_ms + 1000000",
    "args_digest = 'ffff'",
    "ts = '1999-01-01T00:00:00.000Z'",
    "policy_ids = '[\"forged\"]'",
    "hash = '1111111111111111111111111111111111111111111111111111111111111111'",
    "prev_hash = '2222222222222222222222222222222222222222222222222222222222222222'",
    "reason = 'rewritten'",
    "request_id = 'forged'",
    "decision = 'bogus'",
    "policy_ids = 'not json'",
];

fn tamper_strategy(n: u64) -> impl Strategy<Value = Tamper> {
    prop_oneof![
        Just(Tamper::None),
        (1..=n, 0..EDITS.len()).prop_map(|(seq, column)| Tamper::Edit { seq, column }),
        (1..=n).prop_map(|seq| Tamper::Delete { seq }),
        // Two distinct records (with a single record, a swap degenerates to no tampering).
        (1..=n.max(2) - 1).prop_flat_map(move |a| {
            ((a + 1)..=n.max(a + 1)).prop_map(move |b| {
                if b <= n {
                    Tamper::Swap { a, b }
                } else {
                    Tamper::None
                }
            })
        }),
        (1..=n).prop_map(|seq| Tamper::InsertForged { seq }),
        Just(Tamper::AppendForged),
        (0..n).prop_map(|keep| Tamper::Truncate { keep }),
        (0_usize..64).prop_map(|index| Tamper::EditCheckpoint { index }),
        Just(Tamper::DeleteLastCheckpoint),
    ]
}

/// Appends `n` records through the real writer, in `batches` concurrent groups.
async fn fill(store: &Store, key_pem: &str, n: u64, every: u64, sign_tail: bool, dir: &Path) {
    let log = AuditLog::open(
        store.clone(),
        &with_signing_key(config(every), key_pem),
        dir,
    )
    .await
    .unwrap();
    let mut i = 1;
    while i <= n {
        let group: Vec<_> = (i..=(i + 3).min(n)).map(|j| log.append(draft(j))).collect();
        for appended in futures::future::join_all(group).await {
            appended.unwrap();
        }
        i += 4;
    }
    if sign_tail {
        log.shutdown().await.unwrap();
    } else {
        log.flush().await.unwrap();
    }
}

/// Applies `tamper`; returns the seq `verify` must name and the kinds it may report.
async fn apply(store: &Store, tamper: &Tamper, n: u64) -> Option<(u64, Vec<ProblemKind>)> {
    use ProblemKind::*;
    let checkpoints = portcullis_audit::checkpoints(store).await.unwrap();
    let records = all_records(store).await;
    match *tamper {
        Tamper::None => None,
        Tamper::Edit { seq, column } => {
            exec(
                store,
                &format!(
                    "UPDATE audit_records SET {} WHERE seq = {seq}",
                    EDITS[column]
                ),
            )
            .await;
            Some((seq, vec![HashMismatch, PrevHashMismatch, Malformed]))
        }
        Tamper::Delete { seq } => {
            exec(
                store,
                &format!("DELETE FROM audit_records WHERE seq = {seq}"),
            )
            .await;
            Some((seq, vec![SeqGap, Truncated, TruncatedAfterCheckpoint]))
        }
        Tamper::Swap { a, b } => {
            exec(
                store,
                &format!("UPDATE audit_records SET seq = -1 WHERE seq = {a}"),
            )
            .await;
            exec(
                store,
                &format!("UPDATE audit_records SET seq = {a} WHERE seq = {b}"),
            )
            .await;
            exec(
                store,
                &format!("UPDATE audit_records SET seq = {b} WHERE seq = -1"),
            )
            .await;
            Some((a, vec![PrevHashMismatch, HashMismatch]))
        }
        Tamper::InsertForged { seq } => {
            exec(
                store,
                &format!("UPDATE audit_records SET seq = seq + 1000000 WHERE seq >= {seq}"),
            )
            .await;
            exec(
                store,
                "UPDATE audit_records SET seq = seq - 999999 WHERE seq >= 1000000",
            )
            .await;
            let mut forged = records[(seq - 1) as usize].clone();
            forged.principal = Some("mallory".into());
            let forged = chain::seal(forged);
            insert_raw(store, &forged).await;
            // The forged record itself is consistent; the record it displaced is not, unless
            // a signed checkpoint already vouched for the original at this seq.
            if checkpoints.iter().any(|c| c.seq == seq) {
                Some((seq, vec![CheckpointMismatch]))
            } else {
                Some((seq + 1, vec![PrevHashMismatch]))
            }
        }
        Tamper::AppendForged => {
            let last = records.last().unwrap();
            let mut forged = last.clone();
            forged.seq = n + 1;
            forged.prev_hash = last.hash.clone();
            let forged = chain::seal(forged);
            insert_raw(store, &forged).await;
            Some((n + 1, vec![BeyondHead]))
        }
        Tamper::Truncate { keep } => {
            exec(
                store,
                &format!("DELETE FROM audit_records WHERE seq > {keep}"),
            )
            .await;
            Some((keep + 1, vec![Truncated, TruncatedAfterCheckpoint]))
        }
        Tamper::EditCheckpoint { index } => {
            if checkpoints.is_empty() {
                return None;
            }
            let c = &checkpoints[index % checkpoints.len()];
            exec(
                store,
                &format!(
                    "UPDATE audit_checkpoints SET hash = '{}' WHERE seq = {} AND kind = '{}'",
                    "3".repeat(64),
                    c.seq,
                    c.kind.as_str()
                ),
            )
            .await;
            Some((c.seq, vec![BadCheckpointSignature]))
        }
        Tamper::DeleteLastCheckpoint => {
            let last = checkpoints.last()?;
            exec(
                store,
                &format!("DELETE FROM audit_checkpoints WHERE seq = {}", last.seq),
            )
            .await;
            Some((last.seq, vec![MissingCheckpoint]))
        }
    }
}

async fn case(store: &Store, dir: &Path, n: u64, every: u64, sign_tail: bool, tamper: &Tamper) {
    let pem = signing_key_pem();
    fill(store, &pem, n, every, sign_tail, dir).await;
    let before = verify(store, &trusted(&pem)).await.unwrap();
    assert!(before.intact(), "untouched chain: {before:?}");
    assert_eq!(before.records, n);
    let expected = apply(store, tamper, n).await;
    let report = verify(store, &trusted(&pem)).await.unwrap();
    match expected {
        None => assert!(report.intact(), "{tamper:?}: {report:?}"),
        Some((seq, kinds)) => {
            let problem = report
                .problem
                .unwrap_or_else(|| panic!("{tamper:?} not detected"));
            assert_eq!(problem.seq, seq, "{tamper:?}: {problem:?}");
            assert!(kinds.contains(&problem.kind), "{tamper:?}: {problem:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_detects_any_single_tampering(
        (n, tamper) in (1_u64..30).prop_flat_map(|n| (Just(n), tamper_strategy(n))),
        every in 1_u64..8,
        sign_tail in any::<bool>(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = testing::sqlite(dir.path()).await.unwrap();
            case(&store, dir.path(), n, every, sign_tail, &tamper).await;
            store.close().await;
        });
    }
}

/// The same cases, deterministic, on PostgreSQL.
#[tokio::test]
async fn postgres_detects_each_kind_of_tampering() {
    let n = 12;
    let cases = [
        Tamper::None,
        Tamper::Edit { seq: 5, column: 0 },
        Tamper::Edit { seq: 12, column: 6 },
        Tamper::Edit { seq: 1, column: 7 },
        Tamper::Delete { seq: 1 },
        Tamper::Delete { seq: 7 },
        Tamper::Delete { seq: 12 },
        Tamper::Swap { a: 3, b: 4 },
        Tamper::Swap { a: 2, b: 11 },
        Tamper::InsertForged { seq: 6 },
        Tamper::InsertForged { seq: 5 },
        Tamper::AppendForged,
        Tamper::Truncate { keep: 0 },
        Tamper::Truncate { keep: 9 },
        Tamper::EditCheckpoint { index: 1 },
        Tamper::DeleteLastCheckpoint,
        Tamper::Edit { seq: 4, column: 10 },
        Tamper::Edit { seq: 9, column: 11 },
    ];
    for (i, tamper) in cases.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let store = testing::postgres().await.unwrap();
        case(&store, dir.path(), n, 5, i % 2 == 0, tamper).await;
        store.close().await;
    }
}

/// `verify` run while a writer appends and signs checkpoints sees an intact chain: what it
/// reads at different moments (head, checkpoints, records) is never taken for tampering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_beside_a_busy_writer_finds_the_chain_intact() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = tempfile::tempdir().unwrap();
    for store in testing::both(dir.path()).await.unwrap() {
        let pem = signing_key_pem();
        // A checkpoint every 2 records: the head's checkpoint moves all the time.
        let log = AuditLog::open(
            store.clone(),
            &with_signing_key(config(2), &pem),
            dir.path(),
        )
        .await
        .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let writing = Arc::clone(&stop);
        // Appends groups of 4, a few milliseconds apart, until told to stop (or 2,000
        // records: each verify walks them all); returns how many it appended.
        let writer = tokio::spawn(async move {
            let mut next = 1;
            while !writing.load(Ordering::Relaxed) && next <= 2000 {
                tokio::time::sleep(std::time::Duration::from_millis(3)).await;
                let group: Vec<_> = (next..next + 4).map(|j| log.append(draft(j))).collect();
                for appended in futures::future::join_all(group).await {
                    appended.unwrap();
                }
                next += 4;
            }
            log.shutdown().await.unwrap();
            next - 1
        });
        for _ in 0..5 {
            let report = verify(&store, &trusted(&pem)).await.unwrap();
            assert!(report.intact(), "{report:?}");
        }
        stop.store(true, Ordering::Relaxed);
        let appended = writer.await.unwrap();
        let report = verify(&store, &trusted(&pem)).await.unwrap();
        assert!(report.intact(), "{report:?}");
        assert_eq!(report.records, appended);
        store.close().await;
    }
}
