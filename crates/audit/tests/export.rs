//! `audit export`: the line formats (snapshots and parse-back properties for escaping) and the
//! streaming export from a real store.

#[cfg(test)]
#[path = "report_fixture/mod.rs"]
mod fixture;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use portcullis_audit::export::{
        ExportFormat, Origin, cef_line, export, format_record, sd_escape, syslog_line, syslog_pri,
    };
    use portcullis_audit::{AuditLog, Decision, Record, RecordDraft};
    use portcullis_store::testing;
    use proptest::prelude::*;

    fn origin() -> Origin {
        Origin {
            hostname: "gw-1.example".to_owned(),
            app_name: "portcullis".to_owned(),
            procid: "4242".to_owned(),
        }
    }

    /// The records whose lines are snapshotted: an allow, a denial without principal, an
    /// approval, an error, an anomaly and the one full of characters that need escaping.
    fn sample() -> Vec<Record> {
        let all = crate::fixture::records();
        let mut sample: Vec<Record> = [3, 40, 42, 44, 46, 48]
            .into_iter()
            .map(|seq| all[seq - 1].clone())
            .collect();
        let mut hostile = all[47].clone();
        hostile.seq = 49;
        hostile.principal = Some("a=b\\c\"d]e".to_owned());
        hostile.reason = Some("line one\nline two\r\tend | cs1=forged".to_owned());
        hostile.client_ip = Some("unix:socket".to_owned());
        sample.push(hostile);
        sample
    }

    #[test]
    fn cef_snapshot() {
        let lines: Vec<String> = sample().iter().map(cef_line).collect();
        insta::assert_snapshot!("export_cef", lines.join("\n"));
    }

    #[test]
    fn syslog_snapshot() {
        let lines: Vec<String> = sample().iter().map(|r| syslog_line(r, &origin())).collect();
        insta::assert_snapshot!("export_syslog", lines.join("\n"));
    }

    #[test]
    fn jsonl_is_the_stored_record() {
        for record in crate::fixture::records() {
            let line = format_record(ExportFormat::Jsonl, &record, &origin());
            assert!(!line.contains('\n'));
            let back: Record = serde_json::from_str(&line).unwrap();
            assert_eq!(back, record);
        }
    }

    #[test]
    fn severities_follow_the_decision() {
        // (decision, reason, syslog PRI = 13*8 + severity, CEF severity)
        let rows = [
            (Decision::Allow, None, 110, 2),
            (Decision::Approved, None, 109, 3),
            (Decision::Error, Some("upstream failed"), 107, 5),
            (Decision::Rejected, Some("rejected by carol"), 108, 6),
            (Decision::Deny, Some("no policy"), 108, 7),
            (Decision::Allow, Some("anomaly: burst"), 105, 9),
        ];
        for (decision, reason, pri, cef) in rows {
            let mut r = crate::fixture::record(
                1,
                crate::fixture::NOW_MS,
                Some("a"),
                "tools/call",
                Some("t"),
                decision,
                reason,
                &[],
            );
            r.reason = reason.map(str::to_owned);
            assert_eq!(syslog_pri(&r), pri, "{decision:?} {reason:?}");
            assert!(
                cef_line(&r).split('|').nth(6) == Some(&cef.to_string()),
                "{decision:?} {reason:?}"
            );
        }
    }

    /// Splits a CEF line into its 7 header fields and its extension map, undoing the escapes.
    fn parse_cef(line: &str) -> (Vec<String>, BTreeMap<String, String>) {
        let mut header = Vec::new();
        let mut field = String::new();
        let mut chars = line.chars();
        while header.len() < 7 {
            match chars.next() {
                Some('\\') => field.push(chars.next().unwrap()),
                Some('|') => header.push(std::mem::take(&mut field)),
                Some(c) => field.push(c),
                None => panic!("truncated header: {line}"),
            }
        }
        let ext: String = chars.collect();
        // Keys are the words before an unescaped `=`; a value runs to the next key.
        let mut tokens: Vec<(String, String)> = Vec::new();
        let mut current = String::new();
        let mut it = ext.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '\\' => match it.next().unwrap() {
                    'n' => current.push('\n'),
                    'r' => current.push('\r'),
                    other => current.push(other),
                },
                '=' => {
                    // `current` ends with " key" (or is "key" at the start).
                    let (value, key) = match current.rfind(' ') {
                        Some(i) => (current[..i].to_owned(), current[i + 1..].to_owned()),
                        None => (String::new(), current.clone()),
                    };
                    if let Some(last) = tokens.last_mut() {
                        last.1 = value;
                    }
                    tokens.push((key, String::new()));
                    current.clear();
                }
                c => current.push(c),
            }
        }
        if let Some(last) = tokens.last_mut() {
            last.1 = current;
        }
        (header, tokens.into_iter().collect())
    }

    /// The SD-PARAMs of the `audit@32473` element, unescaped (repeated names joined by `,`).
    fn parse_syslog_sd(line: &str) -> BTreeMap<String, String> {
        let start = line.find("[audit@32473 ").unwrap() + "[audit@32473 ".len();
        let mut params: BTreeMap<String, String> = BTreeMap::new();
        let mut chars = line[start..].chars();
        loop {
            let mut name = String::new();
            for c in chars.by_ref() {
                if c == '=' {
                    break;
                }
                name.push(c);
            }
            assert_eq!(chars.next(), Some('"'));
            let mut value = String::new();
            loop {
                match chars.next().unwrap() {
                    '\\' => value.push(chars.next().unwrap()),
                    '"' => break,
                    c => value.push(c),
                }
            }
            params
                .entry(name.trim().to_owned())
                .and_modify(|v| {
                    v.push(',');
                    v.push_str(&value);
                })
                .or_insert(value);
            match chars.next() {
                Some(' ') => continue,
                Some(']') => return params,
                other => panic!("unexpected {other:?} after a param in {line}"),
            }
        }
    }

    /// Text as the formats keep it: CR/LF survive (escaped), other control characters become
    /// spaces.
    fn visible(text: &str) -> String {
        text.chars()
            .map(|c| {
                if c.is_control() && c != '\n' && c != '\r' {
                    ' '
                } else {
                    c
                }
            })
            .collect()
    }

    proptest! {
        #[test]
        fn cef_fields_round_trip(principal in "\\PC{0,20}", reason in "[ -~\\n\\r|=\\\\]{0,40}", name in "[a-z_|\\\\=]{1,12}") {
            let mut r = crate::fixture::record(7, crate::fixture::NOW_MS, Some("x"), "tools/call", Some("x"), Decision::Deny, None, &["p1", "p=2"]);
            r.principal = Some(principal.clone());
            r.reason = Some(reason.clone());
            r.name = Some(name.clone());
            let line = cef_line(&r);
            prop_assert!(!line.contains('\n') && !line.contains('\r'));
            let (header, ext) = parse_cef(&line);
            prop_assert_eq!(header.len(), 7);
            prop_assert_eq!(&header[4], "tools/call");
            prop_assert_eq!(ext.get("suser").cloned(), Some(visible(&principal)));
            prop_assert_eq!(ext.get("reason").cloned(), Some(visible(&reason)));
            prop_assert_eq!(ext.get("cs2").cloned(), Some(name));
            prop_assert_eq!(ext.get("cs3").cloned(), Some("p1,p=2".to_owned()));
            prop_assert_eq!(ext.get("cn1").cloned(), Some("7".to_owned()));
        }

        #[test]
        fn syslog_params_round_trip(principal in "\\PC{0,20}", reason in "[ -~\\]\\[\"\\\\]{0,40}") {
            let mut r = crate::fixture::record(9, crate::fixture::NOW_MS, Some("x"), "tools/call", Some("fs__read_file"), Decision::Allow, None, &["a", "b]"]);
            r.principal = Some(principal.clone());
            r.reason = Some(reason.clone());
            let line = syslog_line(&r, &origin());
            prop_assert!(!line.contains('\n'));
            let params = parse_syslog_sd(&line);
            prop_assert_eq!(params.get("principal").cloned(), Some(sd_unescaped(&principal)));
            prop_assert_eq!(params.get("reason").cloned(), Some(reason));
            prop_assert_eq!(params.get("policy_id").cloned(), Some("a,b]".to_owned()));
            prop_assert_eq!(params.get("seq").cloned(), Some("9".to_owned()));
        }
    }

    /// What a plain RFC 5424 parser reads back from a value: CR/LF/TAB arrive as the
    /// two-character escapes, other control characters as spaces.
    fn sd_unescaped(text: &str) -> String {
        let escaped = sd_escape(text);
        let mut out = String::new();
        let mut chars = escaped.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                let next = chars.next().unwrap();
                if matches!(next, '"' | '\\' | ']') {
                    out.push(next);
                } else {
                    out.push('\\');
                    out.push(next);
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    fn audit_config() -> portcullis_config::Audit {
        portcullis_config::Audit {
            signing_key: None,
            encryption_key: None,
            old_encryption_keys: Vec::new(),
            retention: None,
            checkpoint_records: 1000,
            checkpoint_interval: Duration::from_secs(3600),
            max_field_bytes: 256 * 1024,
            sinks: Vec::new(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn export_streams_every_record_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = testing::sqlite(dir.path()).await.unwrap();
        let log = AuditLog::open(store.clone(), &audit_config(), dir.path())
            .await
            .unwrap();
        let total = 2_345u64;
        let tasks: Vec<_> = (0..total)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut d = RecordDraft::new(
                        format!("r{i}"),
                        "tools/call",
                        Decision::ALL[(i % 5) as usize],
                    );
                    d.principal = Some(format!("p{}", i % 7));
                    d.reason = Some(format!("reason with | and = and \"quotes\" {i}"));
                    log.append(d).await.unwrap()
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        log.shutdown().await.unwrap();

        for format in [ExportFormat::Jsonl, ExportFormat::Cef, ExportFormat::Syslog] {
            let mut out = Vec::new();
            let n = export(&store, format, None, &mut out).await.unwrap();
            assert_eq!(n, total);
            let text = String::from_utf8(out).unwrap();
            assert_eq!(text.lines().count() as u64, total, "{format:?}");
            if format == ExportFormat::Jsonl {
                let stored = portcullis_audit::records_after(&store, 0, 10_000)
                    .await
                    .unwrap();
                for (line, record) in text.lines().zip(&stored) {
                    assert_eq!(line, record.to_json_line());
                }
                let seqs: Vec<u64> = stored.iter().map(|r| r.seq).collect();
                assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
            }
        }

        // `--since` in the future: nothing; in the past: everything.
        let mut out = Vec::new();
        let future = portcullis_store::now_ms() + 60_000;
        assert_eq!(
            export(&store, ExportFormat::Jsonl, Some(future), &mut out)
                .await
                .unwrap(),
            0
        );
        let past = portcullis_store::now_ms() - 3_600_000;
        assert_eq!(
            export(&store, ExportFormat::Cef, Some(past), &mut out)
                .await
                .unwrap(),
            total
        );
    }

    #[test]
    fn export_format_names() {
        assert_eq!(
            "jsonl".parse::<ExportFormat>().unwrap(),
            ExportFormat::Jsonl
        );
        assert_eq!("CEF".parse::<ExportFormat>().unwrap(), ExportFormat::Cef);
        assert_eq!(
            "syslog".parse::<ExportFormat>().unwrap(),
            ExportFormat::Syslog
        );
        assert!("xml".parse::<ExportFormat>().is_err());
    }
}
