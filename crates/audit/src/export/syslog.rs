//! RFC 5424 syslog messages: one per record, facility 13 (log audit).
//!
//! `<PRI>1 TIMESTAMP HOSTNAME portcullis PROCID DECISION [audit@32473 seq="…" …] MSG`.
//! PRI = 13 × 8 + severity (anomaly alert 1, error 3, deny/rejected warning 4, approved notice
//! 5, allow informational 6). Every field is a PARAM-VALUE of the `audit@32473` structured data
//! element (32473 is the enterprise number RFC 5612 reserves for documentation), with `"`, `\`
//! and `]` escaped by a backslash (RFC 5424 §6.3.3). CR, LF and TAB are written as `\r`, `\n`,
//! `\t` and other control characters become spaces, so a message is always one line. MSG is a
//! short human summary; the structured data is the record.

use std::fmt::Write as _;

use crate::record::{Decision, Record};
use crate::report::is_anomaly;

/// Facility `log audit` (RFC 5424 table 1).
pub const FACILITY_LOG_AUDIT: u8 = 13;

/// The SD-ID of the element holding the record's fields.
pub const SD_ID: &str = "audit@32473";

/// Who sends the messages: HOSTNAME, APP-NAME and PROCID of the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub hostname: String,
    pub app_name: String,
    pub procid: String,
}

impl Origin {
    /// This host (`/proc/sys/kernel/hostname`, else `-`), `portcullis`, this process id.
    pub fn local() -> Origin {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "-".to_owned());
        Origin {
            hostname: header_field(&hostname, 255),
            app_name: "portcullis".to_owned(),
            procid: std::process::id().to_string(),
        }
    }
}

/// Syslog severity (0–7) for a record.
pub fn syslog_severity(record: &Record) -> u8 {
    if is_anomaly(record) {
        return 1;
    }
    match record.decision {
        Decision::Allow => 6,
        Decision::Approved => 5,
        Decision::Deny | Decision::Rejected => 4,
        Decision::Error => 3,
    }
}

/// PRI = facility × 8 + severity.
pub fn syslog_pri(record: &Record) -> u8 {
    FACILITY_LOG_AUDIT * 8 + syslog_severity(record)
}

/// Escapes a PARAM-VALUE: `"`, `\`, `]` get a backslash; CR, LF, TAB are written `\r`, `\n`,
/// `\t`; other control characters become spaces.
pub fn sd_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' | '\\' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A header field (HOSTNAME, APP-NAME, PROCID, MSGID): printable US-ASCII without spaces,
/// at most `max` characters, `-` when empty.
pub fn header_field(text: &str, max: usize) -> String {
    let field: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if field.is_empty() {
        "-".to_owned()
    } else {
        field
    }
}

/// The free-text MSG: control characters as in [`sd_escape`], nothing else escaped.
fn msg_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The RFC 5424 message for `record` (no trailing newline, no framing).
pub fn syslog_line(record: &Record, origin: &Origin) -> String {
    let mut line = format!(
        "<{}>1 {} {} {} {} {} [{SD_ID}",
        syslog_pri(record),
        header_field(&record.ts, 32),
        header_field(&origin.hostname, 255),
        header_field(&origin.app_name, 48),
        header_field(&origin.procid, 128),
        record.decision.as_str(),
    );
    let mut param = |name: &str, value: &str| {
        let _ = write!(line, " {name}=\"{}\"", sd_escape(value));
    };
    param("seq", &record.seq.to_string());
    param("request_id", &record.request_id);
    let optional = [
        ("principal", record.principal.as_deref()),
        ("auth_method", record.auth_method.as_deref()),
        ("client_ip", record.client_ip.as_deref()),
        ("upstream", record.upstream.as_deref()),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            param(name, value);
        }
    }
    param("method", &record.method);
    if let Some(name) = record.name.as_deref() {
        param("name", name);
    }
    param("decision", record.decision.as_str());
    if let Some(reason) = record.reason.as_deref() {
        param("reason", reason);
    }
    for id in &record.policy_ids {
        param("policy_id", id);
    }
    let optional = [
        ("args_digest", record.args_digest.as_deref()),
        ("result_digest", record.result_digest.as_deref()),
        ("kid", record.kid()),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            param(name, value);
        }
    }
    if let Some(status) = record.status {
        param("status", &status.to_string());
    }
    param("latency_ms", &record.latency_ms.to_string());
    param("prev_hash", &record.prev_hash);
    param("hash", &record.hash);
    line.push_str("] ");
    let mut summary = format!(
        "{} {} {}",
        record.decision,
        record.method,
        record.name.as_deref().unwrap_or("-")
    );
    if let Some(principal) = record.principal.as_deref() {
        let _ = write!(summary, " by {principal}");
    }
    if let Some(reason) = record.reason.as_deref() {
        let _ = write!(summary, ": {reason}");
    }
    line.push_str(&msg_text(&summary));
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_value_escaping() {
        let rows = [
            ("plain", "plain"),
            ("say \"hi\"", "say \\\"hi\\\""),
            ("back\\slash", "back\\\\slash"),
            ("close]", "close\\]"),
            ("x\"]\\", "x\\\"\\]\\\\"),
            ("a=b [c]", "a=b [c\\]"),
            ("two\nlines\r", "two\\nlines\\r"),
            ("tab\tnul\u{0}", "tab\\tnul "),
            ("ünï", "ünï"),
        ];
        for (input, want) in rows {
            assert_eq!(sd_escape(input), want, "input {input:?}");
        }
    }

    #[test]
    fn header_fields_are_printable_ascii() {
        let rows = [
            ("host.example", 255, "host.example"),
            ("with space", 255, "withspace"),
            ("", 255, "-"),
            ("ünï", 255, "n"),
            ("ü", 255, "-"),
            ("abcdef", 3, "abc"),
        ];
        for (input, max, want) in rows {
            assert_eq!(header_field(input, max), want, "input {input:?}");
        }
    }
}
