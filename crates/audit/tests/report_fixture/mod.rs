//! A fixed, varied set of records for the report and export tests (shared with `#[path]`).

use portcullis_audit::{Decision, Record, Sealed};
use serde_json::json;

/// 2026-03-02T00:00:00.000Z: the `now` of the report snapshots.
pub const NOW_MS: i64 = 1_772_409_600_000;
pub const HOUR: i64 = 3_600_000;
pub const DAY: i64 = 24 * HOUR;

#[expect(clippy::too_many_arguments)]
pub fn record(
    seq: u64,
    ts_ms: i64,
    principal: Option<&str>,
    method: &str,
    name: Option<&str>,
    decision: Decision,
    reason: Option<&str>,
    policy_ids: &[&str],
) -> Record {
    Record {
        seq,
        ts: portcullis_audit::clock::format_ms(ts_ms),
        request_id: format!("req-{seq:04}"),
        principal: principal.map(str::to_owned),
        auth_method: principal.map(|_| "api_key".to_owned()),
        client_ip: Some(format!("10.0.0.{}", seq % 4 + 1)),
        upstream: name.map(|n| {
            let end = n.find("__").or_else(|| n.find(':')).unwrap_or(n.len());
            n[..end].to_owned()
        }),
        method: method.to_owned(),
        name: name.map(str::to_owned),
        decision,
        reason: reason.map(str::to_owned),
        policy_ids: policy_ids.iter().map(|p| (*p).to_owned()).collect(),
        args_digest: name.map(|_| format!("{:064x}", seq)),
        args: name.map(|_| Sealed::Redacted {
            value: json!({"path": "[REDACTED]"}),
        }),
        result_digest: Some(format!("{:064x}", seq * 7)),
        result: None,
        status: Some(if decision == Decision::Deny { 403 } else { 200 }),
        latency_ms: seq * 3 % 50,
        prev_hash: format!("{:064x}", seq - 1),
        hash: format!("{:064x}", seq),
    }
}

/// 48 records over the two days before [`NOW_MS`], plus two outside the 7-day window.
pub fn records() -> Vec<Record> {
    use Decision::*;
    let mut out = Vec::new();
    let mut seq = 0;
    let mut push = |ts: i64,
                    p: Option<&str>,
                    m: &str,
                    n: Option<&str>,
                    d: Decision,
                    r: Option<&str>,
                    ids: &[&str]| {
        seq += 1;
        out.push(record(seq, ts, p, m, n, d, r, ids));
    };
    // Older than seven days: left out of a `--since 7d` report.
    push(
        NOW_MS - 9 * DAY,
        Some("alice"),
        "tools/call",
        Some("fs__read_file"),
        Allow,
        None,
        &["allow-readers"],
    );
    push(
        NOW_MS - 8 * DAY,
        Some("mallory"),
        "tools/call",
        Some("fs__write_file"),
        Deny,
        Some("no policy permits this call"),
        &[],
    );
    let start = NOW_MS - 2 * DAY;
    for i in 0..20 {
        push(
            start + i * 2 * HOUR,
            Some("alice"),
            "tools/call",
            Some("fs__read_file"),
            Allow,
            None,
            &["allow-readers"],
        );
    }
    for i in 0..6 {
        push(
            start + i * 3 * HOUR + 600_000,
            Some("ci-bot"),
            "tools/list",
            None,
            Allow,
            None,
            &[],
        );
        push(
            start + i * 3 * HOUR + 900_000,
            Some("ci-bot"),
            "tools/call",
            Some("search__query"),
            Allow,
            None,
            &["allow-ci"],
        );
    }
    for i in 0..4 {
        push(
            start + DAY + i * HOUR,
            Some("mallory"),
            "tools/call",
            Some("fs__write_file"),
            Deny,
            Some("forbidden by policy deny-writes"),
            &["deny-writes"],
        );
    }
    push(
        start + DAY + 5 * HOUR,
        Some("mallory"),
        "tools/call",
        Some("fs__read_file"),
        Deny,
        Some("argument path: /etc/shadow is outside /srv/data"),
        &[],
    );
    push(
        start + DAY + 6 * HOUR,
        None,
        "initialize",
        None,
        Deny,
        Some("missing credentials"),
        &[],
    );
    push(
        start + DAY + 6 * HOUR + 1000,
        None,
        "initialize",
        None,
        Deny,
        Some("missing credentials"),
        &[],
    );
    push(
        start + DAY + 7 * HOUR,
        Some("bob"),
        "tools/call",
        Some("fs__delete_file"),
        Approved,
        Some("approved by carol: cleanup ticket #42"),
        &["approve-deletes"],
    );
    push(
        start + DAY + 8 * HOUR,
        Some("bob"),
        "tools/call",
        Some("fs__delete_file"),
        Rejected,
        Some("rejected by carol: not in the change window"),
        &["approve-deletes"],
    );
    push(
        start + DAY + 9 * HOUR,
        Some("bob"),
        "tools/call",
        Some("search__query"),
        Error,
        Some("upstream search timed out after 30s"),
        &["allow-ci"],
    );
    push(
        start + DAY + 10 * HOUR,
        Some("alice"),
        "tools/call",
        Some("fs__read_file"),
        Error,
        Some("upstream fs returned an invalid result"),
        &["allow-readers"],
    );
    push(
        start + DAY + 3 * HOUR + 60_000,
        Some("mallory"),
        "tools/call",
        Some("fs__read_file"),
        Allow,
        Some("anomaly: 40 calls in one minute (burst)"),
        &["allow-readers"],
    );
    push(
        start + DAY + 23 * HOUR,
        Some("alice"),
        "resources/read",
        Some("fs:file:///srv/data/payroll.xlsx"),
        Allow,
        Some("anomaly: sensitive resource read at 23:00 (unusual hour)"),
        &["allow-readers"],
    );
    push(
        start + DAY + 12 * HOUR,
        Some("eve|<script>"),
        "tools/call",
        Some("fs__read_file"),
        Deny,
        Some("name with | pipe, `ticks` and <b>markup</b>"),
        &["deny-all"],
    );
    out
}
