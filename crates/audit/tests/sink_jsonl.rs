//! The JSONL file sink (rotation, crash repair) and the cursor rules every sink shares: new
//! sinks start at the head, restarts resume, records gone from the store are counted as gaps.

#[cfg(test)]
#[path = "sink_support/mod.rs"]
mod support;

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::support::{append, fast, open_log, wait_for};
    use portcullis_audit::Record;
    use portcullis_audit::sink::{JsonlWriter, SinkSet, SinkSpec};
    use portcullis_store::testing;
    use tokio_util::sync::CancellationToken;

    const SECRET: &str = "sk-live-jsonl-0b8e44";

    fn lines(path: &Path) -> Vec<String> {
        match std::fs::read_to_string(path) {
            Ok(text) => text.lines().map(str::to_owned).collect(),
            Err(_) => Vec::new(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rotates_by_size_and_keeps_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = testing::sqlite(dir.path()).await.unwrap();
        let log = open_log(&store, dir.path()).await;
        let path = dir.path().join("out/audit.jsonl");
        let max_bytes = 8 * 1024;
        let shutdown = CancellationToken::new();
        let mut sinks = SinkSet::spawn(
            store.clone(),
            vec![SinkSpec::Jsonl {
                path: path.clone(),
                max_bytes,
                keep: 3,
            }],
            fast(),
            shutdown.clone(),
        )
        .await
        .unwrap();
        sinks.follow(log.committed());
        append(&log, 0, 300, SECRET).await;
        wait_for(Duration::from_secs(15), "300 records in the file", || {
            sinks.status()[0].delivered_seq == 300
        })
        .await;

        let stored = portcullis_audit::records_after(&store, 0, 1000)
            .await
            .unwrap();
        assert!(!JsonlWriter::rotated(&path, 4).exists(), "keep = 3");
        // Oldest file first: path.3, path.2, path.1, path.
        let mut all = Vec::new();
        for file in [3, 2, 1]
            .map(|n| JsonlWriter::rotated(&path, n))
            .into_iter()
            .chain([path.clone()])
        {
            assert!(file.exists(), "{} missing", file.display());
            let size = std::fs::metadata(&file).unwrap().len();
            assert!(size <= max_bytes, "{} is {size} bytes", file.display());
            all.extend(lines(&file));
        }
        // The kept files hold the newest records, contiguous, each exactly as stored.
        let first = serde_json::from_str::<Record>(&all[0]).unwrap().seq;
        assert!(first > 1, "older files were dropped");
        assert_eq!(all.len() as u64, 300 - first + 1);
        for (line, record) in all.iter().zip(&stored[(first - 1) as usize..]) {
            assert_eq!(line, &record.to_json_line());
            assert!(!line.contains(SECRET));
        }
        shutdown.cancel();
        sinks.join().await;
        log.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crash_between_write_and_cursor_neither_duplicates_nor_corrupts() {
        let dir = tempfile::tempdir().unwrap();
        let store = testing::sqlite(dir.path()).await.unwrap();
        let log = open_log(&store, dir.path()).await;
        append(&log, 0, 30, SECRET).await;
        let stored = portcullis_audit::records_after(&store, 0, 100)
            .await
            .unwrap();
        let line = |r: &Record| (r.seq, r.to_json_line());
        let path = dir.path().join("audit.jsonl");

        let mut writer = JsonlWriter::new(path.clone(), 1 << 20, 2);
        writer
            .write(&stored[..20].iter().map(line).collect::<Vec<_>>())
            .unwrap();
        // The process dies mid-line, before its cursor moved past 10.
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(&stored[20].to_json_line().as_bytes()[..40])
            .unwrap();
        drop(file);

        // After the restart the sink replays from its durable cursor (10).
        let mut writer = JsonlWriter::new(path.clone(), 1 << 20, 2);
        writer
            .write(&stored[10..].iter().map(line).collect::<Vec<_>>())
            .unwrap();
        let got: Vec<String> = lines(&path);
        let want: Vec<String> = stored.iter().map(Record::to_json_line).collect();
        assert_eq!(got, want);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn new_sinks_start_at_the_head_and_restarts_resume() {
        let dir = tempfile::tempdir().unwrap();
        let store = testing::sqlite(dir.path()).await.unwrap();
        let log = open_log(&store, dir.path()).await;
        append(&log, 0, 20, SECRET).await;
        let path = dir.path().join("late.jsonl");
        let spec = SinkSpec::Jsonl {
            path: path.clone(),
            max_bytes: 1 << 20,
            keep: 2,
        };

        let shutdown = CancellationToken::new();
        let sinks = SinkSet::spawn(store.clone(), vec![spec.clone()], fast(), shutdown.clone())
            .await
            .unwrap();
        append(&log, 20, 25, SECRET).await;
        sinks.notify();
        wait_for(Duration::from_secs(10), "5 new records", || {
            lines(&path).len() == 5
        })
        .await;
        shutdown.cancel();
        sinks.join().await;

        // Written while no sink ran: delivered after the restart.
        append(&log, 25, 40, SECRET).await;
        let shutdown = CancellationToken::new();
        let sinks = SinkSet::spawn(store.clone(), vec![spec], fast(), shutdown.clone())
            .await
            .unwrap();
        wait_for(Duration::from_secs(10), "records 21..40", || {
            lines(&path).len() == 20
        })
        .await;
        let seqs: Vec<u64> = lines(&path)
            .iter()
            .map(|l| serde_json::from_str::<Record>(l).unwrap().seq)
            .collect();
        assert_eq!(seqs, (21..=40).collect::<Vec<_>>());
        shutdown.cancel();
        sinks.join().await;
        log.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_gone_from_the_store_are_reported_as_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let store = testing::sqlite(dir.path()).await.unwrap();
        let log = open_log(&store, dir.path()).await;
        let path = dir.path().join("gaps.jsonl");
        let spec = SinkSpec::Jsonl {
            path: path.clone(),
            max_bytes: 1 << 20,
            keep: 2,
        };
        // Register the sink at seq 0, then stop it.
        let shutdown = CancellationToken::new();
        let sinks = SinkSet::spawn(store.clone(), vec![spec.clone()], fast(), shutdown.clone())
            .await
            .unwrap();
        shutdown.cancel();
        sinks.join().await;

        append(&log, 0, 50, SECRET).await;
        portcullis_store::sqlx::query("DELETE FROM audit_records WHERE seq >= 10 AND seq <= 20")
            .execute(store.pool())
            .await
            .unwrap();
        let shutdown = CancellationToken::new();
        let sinks = SinkSet::spawn(store.clone(), vec![spec], fast(), shutdown.clone())
            .await
            .unwrap();
        wait_for(Duration::from_secs(10), "delivery up to 50", || {
            sinks.status()[0].delivered_seq == 50
        })
        .await;
        let status = &sinks.status()[0];
        assert_eq!(
            (status.gaps, status.delivered, status.lag),
            (11, 39, 0),
            "{status:?}"
        );
        assert_eq!(lines(&path).len(), 39);
        shutdown.cancel();
        sinks.join().await;
        log.shutdown().await.unwrap();
    }
}
