//! ArcSight Common Event Format (CEF:0): one line per record.
//!
//! `CEF:0|Portcullis|portcullis|VERSION|SIGNATURE|NAME|SEVERITY|EXTENSION`. The signature is the
//! record's method (`tools/call`), the name `DECISION METHOD TARGET`. Header fields escape `\`
//! and `|`; extension values escape `\`, `=`, and write CR/LF as `\r`/`\n` (the CEF rules), so
//! no field can forge a header field, an extension key or a new event. Other control
//! characters become spaces.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::clock;
use crate::record::{Decision, Record};
use crate::report::is_anomaly;

/// CEF severity (0–10) for a record: anomalies 9, deny 7, rejected 6, error 5, approved 3,
/// allow 2.
pub fn cef_severity(record: &Record) -> u8 {
    if is_anomaly(record) {
        return 9;
    }
    match record.decision {
        Decision::Allow => 2,
        Decision::Approved => 3,
        Decision::Error => 5,
        Decision::Rejected => 6,
        Decision::Deny => 7,
    }
}

/// Escapes a header field: `\` → `\\`, `|` → `\|`, control characters → space.
pub fn cef_escape_header(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Escapes an extension value: `\` → `\\`, `=` → `\=`, CR → `\r`, LF → `\n`, other control
/// characters → space. `|` needs no escape in the extension.
pub fn cef_escape_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The CEF line for `record` (no trailing newline).
pub fn cef_line(record: &Record) -> String {
    let target = record.name.as_deref().unwrap_or("-");
    let mut line = format!(
        "CEF:0|Portcullis|portcullis|{}|{}|{}|{}|",
        cef_escape_header(env!("CARGO_PKG_VERSION")),
        cef_escape_header(&record.method),
        cef_escape_header(&format!("{} {} {}", record.decision, record.method, target)),
        cef_severity(record),
    );
    let mut ext = Extension::default();
    if let Some(ms) = clock::parse_ms(&record.ts) {
        ext.push("rt", &ms.to_string());
    }
    ext.push("externalId", &record.request_id);
    ext.push("act", record.decision.as_str());
    ext.opt("suser", record.principal.as_deref());
    match record.client_ip.as_deref() {
        Some(ip) if ip.parse::<IpAddr>().is_ok() => ext.push("src", ip),
        Some(other) => ext.labelled("flexString2", "client", other),
        None => {}
    }
    ext.opt("reason", record.reason.as_deref());
    ext.labelled("cn1", "seq", &record.seq.to_string());
    ext.labelled("cn2", "latency_ms", &record.latency_ms.to_string());
    if let Some(status) = record.status {
        ext.labelled("cn3", "status", &status.to_string());
    }
    if let Some(upstream) = record.upstream.as_deref() {
        ext.labelled("cs1", "upstream", upstream);
    }
    if let Some(name) = record.name.as_deref() {
        ext.labelled("cs2", "name", name);
    }
    if !record.policy_ids.is_empty() {
        ext.labelled("cs3", "policy_ids", &record.policy_ids.join(","));
    }
    if let Some(digest) = record.args_digest.as_deref() {
        ext.labelled("cs4", "args_digest", digest);
    }
    if let Some(digest) = record.result_digest.as_deref() {
        ext.labelled("cs5", "result_digest", digest);
    }
    ext.labelled("cs6", "hash", &record.hash);
    if let Some(method) = record.auth_method.as_deref() {
        ext.labelled("flexString1", "auth_method", method);
    }
    line.push_str(&ext.0);
    line
}

/// `key=value` pairs separated by single spaces, values escaped.
#[derive(Default)]
struct Extension(String);

impl Extension {
    fn push(&mut self, key: &str, value: &str) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        let _ = write!(self.0, "{key}={}", cef_escape_value(value));
    }

    fn opt(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.push(key, value);
        }
    }

    /// A custom field with its `…Label` companion (`cs1Label=upstream cs1=fs`).
    fn labelled(&mut self, key: &str, label: &str, value: &str) {
        self.push(&format!("{key}Label"), label);
        self.push(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_escaping() {
        let rows = [
            ("plain", "plain"),
            ("a|b", "a\\|b"),
            ("a\\b", "a\\\\b"),
            ("a\\|b", "a\\\\\\|b"),
            ("a=b", "a=b"),
            ("line\nbreak\r", "line break "),
            ("tab\there", "tab here"),
            ("", ""),
            ("ünïcode|", "ünïcode\\|"),
        ];
        for (input, want) in rows {
            assert_eq!(cef_escape_header(input), want, "input {input:?}");
        }
    }

    #[test]
    fn extension_escaping() {
        let rows = [
            ("plain", "plain"),
            ("a=b", "a\\=b"),
            ("a\\b", "a\\\\b"),
            ("a\\=b", "a\\\\\\=b"),
            ("a|b", "a|b"),
            ("x\ny", "x\\ny"),
            ("x\r\ny", "x\\r\\ny"),
            ("bell\u{7}", "bell "),
            ("k=v act=allow", "k\\=v act\\=allow"),
        ];
        for (input, want) in rows {
            assert_eq!(cef_escape_value(input), want, "input {input:?}");
        }
    }
}
