//! Throughput of the audit writer on SQLite (WAL, synchronous=FULL): `cargo bench -p
//! portcullis-audit --bench audit_append`. Each iteration appends a burst of records from
//! concurrent tasks, as concurrent requests would, and waits until all are committed.

use divan::counter::ItemsCount;
use portcullis_audit::{AuditLog, Decision, RecordDraft};
use serde_json::json;

fn main() {
    divan::main();
}

fn draft(i: usize) -> RecordDraft {
    let mut d = RecordDraft::new(format!("req-{i}"), "tools/call", Decision::Allow);
    d.principal = Some("alice".into());
    d.upstream = Some("fs".into());
    d.name = Some("fs__read_file".into());
    d.policy_ids = vec!["allow-read".into()];
    d.args = Some(json!({"path": format!("/srv/data/{i}.txt")}));
    d.result = Some(json!({"content": [{"type": "text", "text": "x".repeat(200)}]}));
    d.status = Some(200);
    d
}

fn config(encrypted: bool) -> portcullis_config::Audit {
    portcullis_config::Audit {
        signing_key: None,
        encryption_key: encrypted.then(|| {
            portcullis_config::Secret::new(
                "bench",
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
            )
        }),
        old_encryption_keys: Vec::new(),
        retention: None,
        checkpoint_records: 1000,
        checkpoint_interval: std::time::Duration::from_secs(60),
        max_field_bytes: 256 * 1024,
        sinks: Vec::new(),
    }
}

#[divan::bench(args = [1, 64, 1024], sample_count = 10, sample_size = 1)]
fn append_burst(bencher: divan::Bencher<'_, '_>, burst: usize) {
    bench(bencher, burst, true);
}

#[divan::bench(args = [1024], sample_count = 10, sample_size = 1)]
fn append_burst_redacted(bencher: divan::Bencher<'_, '_>, burst: usize) {
    bench(bencher, burst, false);
}

fn bench(bencher: divan::Bencher<'_, '_>, burst: usize, encrypted: bool) {
    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let Ok(dir) = tempfile::tempdir() else { return };
    let Ok(log) = runtime.block_on(async {
        let store = portcullis_store::testing::sqlite(dir.path()).await?;
        AuditLog::open(store, &config(encrypted), dir.path())
            .await
            .map_err(|e| portcullis_store::StoreError::Scheme(e.to_string()))
    }) else {
        return;
    };
    bencher.counter(ItemsCount::new(burst)).bench_local(|| {
        runtime.block_on(async {
            let tasks: Vec<_> = (0..burst)
                .map(|i| {
                    let log = log.clone();
                    tokio::spawn(async move { log.append(draft(i)).await })
                })
                .collect();
            for task in tasks {
                assert!(matches!(task.await, Ok(Ok(_))));
            }
        });
    });
    let _ = runtime.block_on(log.shutdown());
}
