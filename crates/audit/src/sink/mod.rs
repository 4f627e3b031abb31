//! Live sinks (`[[audit.sink]]`): copies of every record for a SIEM, delivered from the store.
//!
//! Records are durable in the store before any sink sees them, so a sink is a reader with a
//! durable cursor (the last `seq` it delivered, table `audit_sink_cursors`): a delivery task
//! per sink reads the records after its cursor in batches, delivers a batch, then moves the
//! cursor. A slow or dead sink therefore never blocks a request and never loses a record: it
//! falls behind (its [`SinkStatus::lag`]), retries with exponential backoff, and catches up
//! when the receiver is back. Records missing between the cursor and the next stored record
//! (pruned by retention or deleted) are reported as gaps.
//!
//! Delivery is at least once (a batch whose acknowledgement was lost is sent again; every
//! record carries `seq` and `hash` for deduplication), except the JSONL file, which skips
//! what it already holds. Syslog has no acknowledgement: a record counts as delivered once
//! written to the socket.
//!
//! A new sink starts at the chain head when it is first configured (the cursor is created
//! then); `audit export` backfills history.

mod cursor;
mod http;
mod jsonl;
mod otlp;
mod set;
mod syslog;
mod webhook;

use std::path::PathBuf;
use std::time::Duration;

use portcullis_config::Secret;
use sha2::{Digest, Sha256};

pub use cursor::{migrate, read as read_cursor};
pub use jsonl::{JsonlSink, JsonlWriter};
pub use otlp::{ATTRIBUTE_PREFIX, OtlpSink, export_request, log_record, logs_url};
pub use set::{SinkNotifier, SinkSet, SinkStatus};
pub use syslog::{SyslogSink, SyslogTarget, octet_frame, tls_client_config};
pub use webhook::{WebhookSink, webhook_body};

use crate::error::AuditError;

/// Default rotation size of a JSONL sink file.
pub const DEFAULT_JSONL_MAX_BYTES: u64 = 100 * 1024 * 1024;
/// Default number of rotated JSONL files kept.
pub const DEFAULT_JSONL_KEEP: u32 = 10;

/// One configured sink, resolved.
#[derive(Debug, Clone)]
pub enum SinkSpec {
    Jsonl {
        path: PathBuf,
        max_bytes: u64,
        keep: u32,
    },
    Syslog {
        target: SyslogTarget,
    },
    Otlp {
        endpoint: String,
        headers: Vec<(String, Secret)>,
    },
    Webhook {
        url: String,
        headers: Vec<(String, Secret)>,
    },
}

impl SinkSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            SinkSpec::Jsonl { .. } => "jsonl",
            SinkSpec::Syslog { .. } => "syslog",
            SinkSpec::Otlp { .. } => "otlp",
            SinkSpec::Webhook { .. } => "webhook",
        }
    }

    /// What the sink points at, for the id (may hold a URL's path and query).
    fn target(&self) -> String {
        match self {
            SinkSpec::Jsonl { path, .. } => {
                // Each host writes its own file: its own cursor.
                let host = crate::export::Origin::local().hostname;
                format!("{host}:{}", path.display())
            }
            SinkSpec::Syslog { target } => target.describe(),
            SinkSpec::Otlp { endpoint, .. } => logs_url(endpoint),
            SinkSpec::Webhook { url, .. } => url.clone(),
        }
    }

    /// The stable id of the sink's cursor: `KIND-` and 16 hex digits of SHA-256 of the kind
    /// and target, so it names no URL (which may hold a token). Changing the target makes a
    /// new sink.
    pub fn id(&self) -> String {
        let digest = Sha256::digest(format!("{}\n{}", self.kind(), self.target()).as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("{}-{hex}", self.kind())
    }

    /// For logs: kind and where, without URL paths, queries or header values.
    pub fn label(&self) -> String {
        match self {
            SinkSpec::Jsonl { path, .. } => format!("jsonl {}", path.display()),
            SinkSpec::Syslog { target } => format!("syslog {}", target.describe()),
            SinkSpec::Otlp { endpoint, .. } => format!("otlp {}", url_origin(endpoint)),
            SinkSpec::Webhook { url, .. } => format!("webhook {}", url_origin(url)),
        }
    }

    /// The spec for a configured `[[audit.sink]]`.
    pub fn from_config(sink: &portcullis_config::Sink) -> SinkSpec {
        use portcullis_config::{Sink, SyslogTransport};
        let headers = |map: &std::collections::BTreeMap<String, Secret>| {
            map.iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Vec<_>>()
        };
        match sink {
            Sink::Jsonl {
                path,
                max_size,
                keep,
            } => SinkSpec::Jsonl {
                path: path.clone(),
                max_bytes: *max_size,
                keep: *keep,
            },
            Sink::Syslog {
                address,
                transport,
                ca,
            } => SinkSpec::Syslog {
                target: match (address, transport) {
                    (None, _) => SyslogTarget::Local(PathBuf::from("/dev/log")),
                    (Some(address), SyslogTransport::Udp) => SyslogTarget::Udp(address.to_string()),
                    (Some(address), SyslogTransport::Tcp) => SyslogTarget::Tcp(address.to_string()),
                    (Some(address), SyslogTransport::Tls) => SyslogTarget::Tls {
                        address: address.to_string(),
                        server_name: address.host.clone(),
                        ca: ca.clone(),
                    },
                },
            },
            Sink::Otlp {
                endpoint,
                headers: h,
            } => SinkSpec::Otlp {
                endpoint: endpoint.clone(),
                headers: headers(h),
            },
            Sink::Webhook { url, headers: h } => SinkSpec::Webhook {
                url: url.clone(),
                headers: headers(h),
            },
        }
    }
}

fn url_origin(url: &str) -> String {
    reqwest::Url::parse(url).map_or_else(
        |_| "(invalid url)".to_owned(),
        |u| u.origin().ascii_serialization(),
    )
}

/// Delivery tuning. The defaults suit production; tests shorten the waits.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// Records per delivery.
    pub batch: u32,
    /// How often an idle sink looks for new records without a [`SinkNotifier::notify`].
    pub poll_interval: Duration,
    /// First wait after a failed delivery; doubled per failure …
    pub backoff_min: Duration,
    /// … up to this. A receiver back after an outage is caught up within this time.
    pub backoff_max: Duration,
    /// How long one replica holds a sink before another may take over.
    pub lease: Duration,
    /// Timeout of one delivery (connect + send + answer).
    pub timeout: Duration,
    /// Warn (at most once a minute) while a sink is more records than this behind.
    pub lag_warn: u64,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            batch: 500,
            poll_interval: Duration::from_secs(1),
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(5),
            lease: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            lag_warn: 10_000,
        }
    }
}

/// Why a delivery failed (retried) or a sink could not start.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the receiver answered HTTP {0}")]
    Status(u16),
    #[error("HTTP request failed: {0}")]
    Http(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("address {0} does not resolve")]
    Resolve(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("sink configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] AuditError),
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use portcullis_config::{HostPort, Sink, SyslogTransport};

    use super::*;

    fn syslog(address: Option<(&str, u16)>, transport: SyslogTransport) -> Sink {
        Sink::Syslog {
            address: address.map(|(host, port)| HostPort {
                host: host.to_owned(),
                port,
            }),
            transport,
            ca: None,
        }
    }

    #[test]
    fn syslog_targets_from_config() {
        let rows = [
            (
                syslog(None, SyslogTransport::Udp),
                SyslogTarget::Local("/dev/log".into()),
            ),
            (
                syslog(Some(("siem", 514)), SyslogTransport::Udp),
                SyslogTarget::Udp("siem:514".into()),
            ),
            (
                syslog(Some(("::1", 601)), SyslogTransport::Tcp),
                SyslogTarget::Tcp("[::1]:601".into()),
            ),
            (
                syslog(Some(("siem.example", 6514)), SyslogTransport::Tls),
                SyslogTarget::Tls {
                    address: "siem.example:6514".into(),
                    server_name: "siem.example".into(),
                    ca: None,
                },
            ),
        ];
        for (sink, want) in rows {
            match SinkSpec::from_config(&sink) {
                SinkSpec::Syslog { target } => assert_eq!(target, want),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn ids_are_stable_and_name_no_url() {
        let hook = |url: &str| SinkSpec::Webhook {
            url: url.to_owned(),
            headers: Vec::new(),
        };
        let a = hook("https://siem.example/ingest?token=s3cr3t");
        assert_eq!(a.id(), a.clone().id());
        assert!(a.id().starts_with("webhook-") && a.id().len() == "webhook-".len() + 16);
        assert!(!a.id().contains("s3cr3t") && !a.label().contains("s3cr3t"));
        assert_eq!(a.label(), "webhook https://siem.example");
        assert_ne!(a.id(), hook("https://siem.example/other").id());
        let from_config = SinkSpec::from_config(&Sink::Webhook {
            url: "https://siem.example/ingest?token=s3cr3t".into(),
            headers: BTreeMap::new(),
        });
        assert_eq!(from_config.id(), a.id());
    }
}
