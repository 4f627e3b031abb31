//! The report over a fixed record set and a fixed `now`: Markdown and JSON snapshots, the
//! numbers a reviewer relies on, and the HTML page rendered by headless Chromium.

#[cfg(test)]
#[path = "report_fixture/mod.rs"]
mod fixture;

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::process::Command;

    use crate::fixture::{DAY, NOW_MS, records};
    use portcullis_audit::Decision;
    use portcullis_audit::report::{
        Bucket, ChainState, ChainStatus, ReportFormat, build_report, is_anomaly, render_html,
        render_json, render_markdown,
    };

    fn intact() -> ChainStatus {
        ChainStatus {
            state: ChainState::Intact,
            detail: "records 1–50 and 5 signed checkpoints verified".to_owned(),
        }
    }

    #[test]
    fn markdown_snapshot() {
        let records = records();
        let report = build_report(&records, NOW_MS - 7 * DAY, NOW_MS);
        insta::assert_snapshot!("report_md", render_markdown(&report, &intact().summary()));
    }

    #[test]
    fn json_snapshot() {
        let records = records();
        let report = build_report(&records, NOW_MS - 7 * DAY, NOW_MS);
        insta::assert_snapshot!("report_json", render_json(&report));
    }

    #[test]
    fn counts_what_a_reviewer_relies_on() {
        let records = records();
        let report = build_report(&records, NOW_MS - 7 * DAY, NOW_MS);
        let t = &report.totals;
        // Two records are older than seven days.
        assert_eq!(t.records, records.len() as u64 - 2);
        assert_eq!(t.decisions.deny, 8);
        assert_eq!(t.decisions.approved, 1);
        assert_eq!(t.decisions.rejected, 1);
        assert_eq!(t.decisions.error, 2);
        assert_eq!(t.anomalies, 2);
        assert_eq!(t.decisions.total(), t.records);
        assert_eq!(report.series.bucket, Bucket::Day);
        let series_total: u64 = report
            .series
            .points
            .iter()
            .map(|p| p.decisions.total())
            .sum();
        assert_eq!(series_total, t.records);
        assert_eq!(report.series.points.len(), 7);

        // Denials grouped by reason, most first, with their policies.
        let top = &report.denials.by_reason[0];
        assert_eq!(top.reason, "forbidden by policy deny-writes");
        assert_eq!(top.policy_ids, vec!["deny-writes"]);
        assert_eq!(top.count, 4);
        assert_eq!(top.principals, vec!["mallory"]);
        let unauth = report
            .denials
            .by_reason
            .iter()
            .find(|r| r.reason == "missing credentials")
            .unwrap();
        assert_eq!(unauth.principals, vec!["(unauthenticated)"]);
        assert_eq!(unauth.count, 2);

        // The busiest principal comes first; approvals keep both outcomes.
        assert_eq!(report.principals[0].principal, "alice");
        assert_eq!(report.top_talkers.principals[0].key, "alice");
        let outcomes: Vec<Decision> = report.approvals.recent.iter().map(|r| r.decision).collect();
        assert_eq!(outcomes, vec![Decision::Rejected, Decision::Approved]);
        assert!(
            report.anomalies.recent.iter().all(|r| r
                .reason
                .as_deref()
                .unwrap()
                .starts_with("anomaly:"))
        );
    }

    #[test]
    fn short_periods_use_hourly_buckets_covering_the_period() {
        let records = records();
        let report = build_report(&records, NOW_MS - 24 * crate::fixture::HOUR, NOW_MS);
        assert_eq!(report.series.bucket, Bucket::Hour);
        assert_eq!(report.series.points.len(), 24);
        assert_eq!(report.series.points[0].start, "2026-03-01T00:00:00.000Z");
        let in_window = records
            .iter()
            .filter(|r| {
                let ts = portcullis_audit::clock::parse_ms(&r.ts).unwrap();
                (NOW_MS - 24 * crate::fixture::HOUR..NOW_MS).contains(&ts)
            })
            .count() as u64;
        assert_eq!(report.totals.records, in_window);
    }

    #[test]
    fn empty_period_renders_everywhere() {
        let report = build_report(&[], NOW_MS - 7 * DAY, NOW_MS);
        assert_eq!(report.totals.records, 0);
        assert!(render_markdown(&report, "not verified").contains("No records in this period."));
        assert!(render_json(&report).contains("\"records\": 0"));
        assert!(
            render_html(&report, &intact())
                .unwrap()
                .contains("No request was denied")
        );
    }

    #[test]
    fn anomaly_marker() {
        let rows = [
            (Some("anomaly: burst"), true),
            (Some("  Anomaly: odd hour"), true),
            (Some("ANOMALY:x"), true),
            (Some("not an anomaly: really"), false),
            (Some("anomal"), false),
            (None, false),
        ];
        for (reason, want) in rows {
            let mut r = crate::fixture::record(
                1,
                NOW_MS,
                Some("a"),
                "tools/call",
                None,
                Decision::Allow,
                None,
                &[],
            );
            r.reason = reason.map(str::to_owned);
            assert_eq!(is_anomaly(&r), want, "reason {reason:?}");
        }
    }

    #[test]
    fn format_lists() {
        assert_eq!(
            ReportFormat::parse_list("md,json, html,md").unwrap(),
            vec![
                ReportFormat::Markdown,
                ReportFormat::Json,
                ReportFormat::Html
            ]
        );
        assert_eq!(
            ReportFormat::parse_list("html").unwrap(),
            vec![ReportFormat::Html]
        );
        assert!(ReportFormat::parse_list("pdf").is_err());
        assert!(ReportFormat::parse_list("").is_err());
    }

    #[test]
    fn html_escapes_record_text_and_loads_nothing() {
        let records = records();
        let report = build_report(&records, NOW_MS - 7 * DAY, NOW_MS);
        let html = render_html(&report, &intact()).unwrap();
        assert!(
            !html.contains("<script>"),
            "a principal's markup must be escaped"
        );
        assert!(html.contains("eve|&#60;script&#62;") || html.contains("eve|&lt;script&gt;"));
        assert!(!html.contains("<b>markup</b>"));
        for forbidden in [
            "src=\"http",
            "href=\"http",
            "@import",
            "url(http",
            "<script",
        ] {
            assert!(
                !html.contains(forbidden),
                "external asset or script: {forbidden}"
            );
        }
        assert!(html.contains("<svg"));
        assert!(html.contains("Chain intact"));
    }

    fn artifacts_dir() -> PathBuf {
        let dir = std::env::var_os("PORTCULLIS_TEST_ARTIFACTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts")
            });
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Width and height from a PNG's IHDR chunk.
    fn png_size(bytes: &[u8]) -> (u32, u32) {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
        assert_eq!(&bytes[12..16], b"IHDR");
        let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        (w, h)
    }

    #[test]
    fn html_report_renders_in_headless_chromium() {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("chromium is not installed: run scripts/setup-test-deps");
        let records = records();
        // Two days: hourly bars.
        let report = build_report(&records, NOW_MS - 2 * DAY, NOW_MS);
        let html = render_html(&report, &intact()).unwrap();
        let artifacts = artifacts_dir();
        let page = artifacts.join("audit-report.html");
        let shot = artifacts.join("audit-report.png");
        std::fs::write(&page, &html).unwrap();
        let _ = std::fs::remove_file(&shot);
        let profile = tempfile::tempdir().unwrap();
        let output = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--screenshot={}", shot.display()))
            .arg("--window-size=1280,2000")
            .arg(format!("file://{}", page.canonicalize().unwrap().display()))
            .output()
            .unwrap();
        assert!(
            shot.exists(),
            "no screenshot; chromium said: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let png = std::fs::read(&shot).unwrap();
        assert_eq!(png_size(&png), (1280, 2000));
        // A blank page compresses to a few kilobytes; charts, tables and text do not.
        assert!(png.len() > 60_000, "screenshot is only {} bytes", png.len());
        eprintln!("screenshot: {}", shot.display());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn report_from_the_store_pages_through_every_record() {
        use portcullis_audit::report::report_from_store;
        use portcullis_audit::{AuditLog, RecordDraft};
        let dir = tempfile::tempdir().unwrap();
        let store = portcullis_store::testing::sqlite(dir.path()).await.unwrap();
        let config = portcullis_config::Audit {
            signing_key: None,
            encryption_key: None,
            old_encryption_keys: Vec::new(),
            retention: None,
            checkpoint_records: 1000,
            checkpoint_interval: std::time::Duration::from_secs(3600),
            max_field_bytes: 256 * 1024,
            sinks: Vec::new(),
        };
        let log = AuditLog::open(store.clone(), &config, dir.path())
            .await
            .unwrap();
        // More than one page (1000 records).
        for i in 0..1_100u64 {
            let decision = if i % 10 == 0 {
                Decision::Deny
            } else {
                Decision::Allow
            };
            let mut d = RecordDraft::new(format!("r{i}"), "tools/call", decision);
            d.principal = Some(format!("p{}", i % 3));
            d.name = Some("fs__read_file".to_owned());
            d.reason = (i % 10 == 0).then(|| "no policy permits this call".to_owned());
            log.append(d).await.unwrap();
        }
        log.shutdown().await.unwrap();
        let now = portcullis_store::now_ms() + 1;
        let report = report_from_store(&store, now - DAY, now).await.unwrap();
        assert_eq!(report.totals.records, 1_100);
        assert_eq!(report.totals.decisions.deny, 110);
        assert_eq!((report.first_seq, report.last_seq), (Some(1), Some(1_100)));
        assert_eq!(report.denials.by_reason[0].count, 110);
        assert_eq!(report.denials.recent.len(), 100);
        assert_eq!(report.denials.omitted, 10);
        assert_eq!(report.principals.len(), 3);
        // A period that ended before the records: nothing.
        let empty = report_from_store(&store, now - 2 * DAY, now - DAY)
            .await
            .unwrap();
        assert_eq!(empty.totals.records, 0);
    }
}
