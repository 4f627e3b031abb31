//! `portcullis audit verify` on a real store: exit 0 intact, 1 tampered (naming the first bad
//! record), 2 when the store has signed checkpoints but no key is available.

#![expect(
    clippy::unwrap_used,
    reason = "helpers outside #[test] functions set up the fixture"
)]

use std::path::Path;
use std::process::Command;

use portcullis_audit::{AuditLog, Decision, RecordDraft};

fn config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("portcullis.toml");
    std::fs::write(
        &path,
        "[storage]\nurl = \"sqlite://data/portcullis.db\"\n[audit]\ncheckpoint_records = 4\n",
    )
    .unwrap();
    path
}

fn verify(config: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["audit", "verify", "--config"])
        .arg(config)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path());
    let loaded = portcullis_config::load(&path).unwrap();
    let store = portcullis_store::Store::open(&loaded.storage.url)
        .await
        .unwrap();
    let key_dir = portcullis_audit::key_dir(&loaded);
    assert_eq!(key_dir, dir.path().join("data"));
    let log = AuditLog::open(store.clone(), &loaded.audit, &key_dir)
        .await
        .unwrap();
    for i in 0..10 {
        let mut draft = RecordDraft::new(format!("r{i}"), "tools/call", Decision::Allow);
        draft.args = Some(serde_json::json!({"i": i}));
        log.append(draft).await.unwrap();
    }
    log.shutdown().await.unwrap();

    let (code, stdout, stderr) = verify(&path, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.starts_with("intact: 10 record(s) (seq 1..=10)"),
        "{stdout}"
    );

    let (code, stdout, _) = verify(&path, &["--format", "json"]);
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["records"], 10);
    assert_eq!(report["problem"], serde_json::Value::Null);

    portcullis_store::sqlx::query("UPDATE audit_records SET decision = 'deny' WHERE seq = 3")
        .execute(store.pool())
        .await
        .unwrap();
    let (code, stdout, _) = verify(&path, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.starts_with("tampered: first bad record seq 3 (hash_mismatch)"),
        "{stdout}"
    );

    // Without the generated key nothing can check the signatures: a setup problem.
    std::fs::remove_file(key_dir.join(portcullis_audit::signing::GENERATED_KEY_FILE)).unwrap();
    let (code, _, stderr) = verify(&path, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no key to check them"), "{stderr}");
    store.close().await;
}
