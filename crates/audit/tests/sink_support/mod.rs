//! Shared by the sink tests (`#[path]`-included): a writer on a test store, fast delivery
//! options, waiting with a deadline.

use std::path::Path;
use std::time::{Duration, Instant};

use portcullis_audit::sink::SinkOptions;
use portcullis_audit::{AuditLog, Decision, RecordDraft};
use portcullis_store::Store;
use serde_json::json;

/// A config with a fresh signing key (PostgreSQL stores need one configured).
pub fn audit_config() -> portcullis_config::Audit {
    let pem = portcullis_audit::CheckpointSigner::generate()
        .unwrap()
        .to_pem()
        .unwrap()
        .to_string();
    portcullis_config::Audit {
        signing_key: Some(portcullis_config::Secret::new("file:test.pem", pem)),
        encryption_key: None,
        old_encryption_keys: Vec::new(),
        retention: None,
        checkpoint_records: 1000,
        checkpoint_interval: Duration::from_secs(3600),
        max_field_bytes: 256 * 1024,
        sinks: Vec::new(),
    }
}

pub async fn open_log(store: &Store, dir: &Path) -> AuditLog {
    AuditLog::open(store.clone(), &audit_config(), dir)
        .await
        .unwrap()
}

/// Short waits so outages and recoveries fit in a test.
pub fn fast() -> SinkOptions {
    SinkOptions {
        batch: 40,
        poll_interval: Duration::from_millis(200),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        lease: Duration::from_secs(5),
        timeout: Duration::from_secs(2),
        lag_warn: 1_000,
    }
}

/// A draft carrying `secret` in its arguments (it must never reach a sink in clear).
pub fn draft(i: u64, secret: &str) -> RecordDraft {
    let mut d = RecordDraft::new(
        format!("req-{i}"),
        "tools/call",
        Decision::ALL[usize::try_from(i % 5).unwrap()],
    );
    d.principal = Some(format!("user-{}", i % 3));
    d.auth_method = Some("api_key".into());
    d.client_ip = Some("127.0.0.1".into());
    d.upstream = Some("fs".into());
    d.name = Some("fs__read_file".into());
    d.reason = i
        .is_multiple_of(2)
        .then(|| format!("reason \"{i}\" with ] and \\ and |"));
    d.policy_ids = vec![format!("p{}", i % 4)];
    d.args = Some(json!({"path": format!("/srv/{i}"), "token": secret}));
    d.result = Some(json!({"ok": true}));
    d.status = Some(200);
    d.latency_ms = i % 17;
    d
}

/// Appends drafts `from..to` concurrently; returns once all are committed.
pub async fn append(log: &AuditLog, from: u64, to: u64, secret: &str) {
    let tasks: Vec<_> = (from..to)
        .map(|i| {
            let log = log.clone();
            let d = draft(i, secret);
            tokio::spawn(async move { log.append(d).await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

/// Polls `done` every 20 ms until it holds or `limit` passes (then panics with `what`).
pub async fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
