//! What the gateway checks, records and reports: guard rules, audit, approval, anomaly alerts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::HostPort;
use crate::secret::Secret;

/// `[guard]`. Defaults (table or key absent): redact `secrets`, pin and scan tools.
#[derive(Debug, Clone)]
pub struct Guard {
    /// Built-in rule sets applied to results.
    pub redact: Vec<RedactSet>,
    /// `[[guard.redact_pattern]]`: operator patterns applied after the built-in sets.
    pub redact_patterns: Vec<RedactPattern>,
    /// Changed tool definitions are blocked until `portcullis pins accept`.
    pub pin_tools: bool,
    /// Tools whose descriptions look poisoned are blocked.
    pub scan_tools: bool,
    /// `scan_action`: what a `block`-severity poisoning finding does (default `Block`).
    pub scan_action: ScanAction,
    /// `redact_results` (default true): mask secrets in results returned to clients. When false
    /// (or a tool says `redact = "logs"`), results pass unmasked and only logs and audit records
    /// are redacted.
    pub redact_results: bool,
}

/// What a poisoning finding of severity `block` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanAction {
    /// The definition is hidden from lists and calls to it are refused.
    Block,
    /// Logged and reported (`portcullis scan`) only.
    Warn,
}

/// Where redaction applies for a tool's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedactScope {
    /// Masked in the result returned to the client (and in logs and audit records).
    Results,
    /// Returned unmasked; masked only in logs and audit records.
    Logs,
}

/// A built-in redaction rule set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RedactSet {
    /// API keys, tokens, private keys, passwords in URLs (`secrets`).
    Secrets,
    /// Personal data: e-mail addresses, phone numbers, card numbers (`pii`).
    Pii,
}

/// One `[[guard.redact_pattern]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactPattern {
    /// Unique; shown in place of the match (`[REDACTED:name]`).
    pub name: String,
    /// A `regex` crate pattern, already checked to compile.
    pub pattern: String,
}

/// `[audit]`.
#[derive(Debug, Clone)]
pub struct Audit {
    /// Ed25519 key (PEM) signing checkpoints. `None`: generated next to the store on first start.
    pub signing_key: Option<Secret>,
    /// AES-256-GCM key for arguments and results. `None`: they are stored redacted.
    pub encryption_key: Option<Secret>,
    /// `old_encryption_keys`: earlier encryption keys, only for decrypting older records
    /// after a rotation (each record names its key id). Default empty.
    pub old_encryption_keys: Vec<Secret>,
    /// Records older than this are deleted (after a signed checkpoint). `None`: kept forever.
    pub retention: Option<Duration>,
    /// A checkpoint is signed after this many records (default 1000) …
    pub checkpoint_records: u64,
    /// … or after this much time with new records (default 60s), whichever comes first.
    pub checkpoint_interval: Duration,
    /// Arguments or a result whose canonical JSON is larger than this keep only their digest
    /// (default 256KiB), so one huge result cannot grow the store without bound.
    pub max_field_bytes: u64,
    /// `[[audit.sink]]`: copies of every record for a SIEM.
    pub sinks: Vec<Sink>,
}

/// Where records or alerts are sent (`[[audit.sink]]`, `[[anomaly.alert]]`).
#[derive(Debug, Clone)]
pub enum Sink {
    /// `kind = "jsonl"`: appended to a file, one JSON object a line; the file is rotated
    /// past `max_size` (default 100MiB) to `path.1` … `path.KEEP` (`keep`, default 10).
    Jsonl {
        path: PathBuf,
        max_size: u64,
        keep: u32,
    },
    /// `kind = "syslog"`: RFC 5424 to `address` over `transport` (default UDP), or the local
    /// `/dev/log` when `address` is `None`. `ca` (TLS only): PEM bundle the receiver's
    /// certificate must chain to (default: the public web roots).
    Syslog {
        address: Option<HostPort>,
        transport: SyslogTransport,
        ca: Option<PathBuf>,
    },
    /// `kind = "otlp"`: OpenTelemetry logs (OTLP/HTTP) to a collector, with optional headers.
    Otlp {
        endpoint: String,
        headers: BTreeMap<String, Secret>,
    },
    /// `kind = "webhook"`: JSON POSTs of records or alerts.
    Webhook {
        url: String,
        headers: BTreeMap<String, Secret>,
    },
}

/// `transport` of a syslog sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyslogTransport {
    /// RFC 5426: one datagram a message.
    #[default]
    Udp,
    /// RFC 6587 octet counting over TCP.
    Tcp,
    /// RFC 5425: octet counting over TLS.
    Tls,
}

/// `[approval]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// No decision within this time → the call is denied (default 10m).
    pub timeout: Duration,
    /// Principals with this role may decide (default `approver`).
    pub approvers_role: String,
}

/// `[anomaly]`.
#[derive(Debug, Clone)]
pub struct Anomaly {
    /// Default false.
    pub enabled: bool,
    /// `[[anomaly.alert]]`: where alerts go besides the audit log.
    pub alerts: Vec<Sink>,
}
