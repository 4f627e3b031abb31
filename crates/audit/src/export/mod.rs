//! `portcullis audit export`: the records for a SIEM, one line each, streamed page by page.
//!
//! - `jsonl`: the stored record exactly ([`Record::to_json_line`]), DESIGN §3.5.
//! - `cef`: ArcSight Common Event Format ([`cef_line`]).
//! - `syslog`: RFC 5424 messages ([`syslog_line`]), one a line.
//!
//! The formatters are pure; [`export`] pages through the store by sequence number.

mod cef;
mod syslog;

use std::io::{self, Write};
use std::str::FromStr;

use portcullis_store::Store;

pub use cef::{cef_escape_header, cef_escape_value, cef_line, cef_severity};
pub use syslog::{
    FACILITY_LOG_AUDIT, Origin, SD_ID, header_field, sd_escape, syslog_line, syslog_pri,
    syslog_severity,
};

use crate::error::AuditError;
use crate::query::Pages;
use crate::record::Record;

/// An export format (`--format jsonl|cef|syslog`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Cef,
    Syslog,
}

impl FromStr for ExportFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "jsonl" | "json" => Ok(ExportFormat::Jsonl),
            "cef" => Ok(ExportFormat::Cef),
            "syslog" => Ok(ExportFormat::Syslog),
            other => Err(format!(
                "unknown export format {other:?}: expected jsonl, cef or syslog"
            )),
        }
    }
}

/// One record as one line of `format` (no trailing newline).
pub fn format_record(format: ExportFormat, record: &Record, origin: &Origin) -> String {
    match format {
        ExportFormat::Jsonl => record.to_json_line(),
        ExportFormat::Cef => cef_line(record),
        ExportFormat::Syslog => syslog_line(record, origin),
    }
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("cannot write the export: {0}")]
    Write(#[from] io::Error),
}

/// Writes every record (or those with `ts` at or after `since_ms`) to `out` in `format`, one
/// a line, a page at a time; returns how many. A closed pipe (`| head`) ends the export
/// quietly.
pub async fn export(
    store: &Store,
    format: ExportFormat,
    since_ms: Option<i64>,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    let origin = Origin::local();
    let mut pages = match since_ms {
        Some(ms) => Pages::since(store, ms),
        None => Pages::all(store),
    };
    let mut written = 0;
    while let Some(page) = pages.next().await? {
        let mut text = String::new();
        for record in &page {
            text.push_str(&format_record(format, record, &origin));
            text.push('\n');
        }
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => written += page.len() as u64,
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(written),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(written)
}
