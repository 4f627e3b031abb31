//! `portcullis audit report`: who did what over a period, denials with reasons and policies,
//! approvals, errors, anomalies, top talkers and a time series.
//!
//! [`build_report`] (or [`ReportBuilder`] for a stream of records) is a pure function of the
//! records, the start of the period and `now`; [`render_markdown`], [`render_json`] and
//! [`render_html`] turn the [`Report`] into text. [`report_from_store`] pages through the store.

mod html;
mod markdown;
mod model;
pub mod svg;

use std::str::FromStr;

pub use html::render_html;
pub use markdown::{md_cell, render_markdown};
pub use model::{
    ANOMALY_PREFIX, Bucket, CountRow, DecisionCounts, Point, PrincipalRow, RECENT_LIMIT,
    REPORT_SCHEMA, ReasonRow, RecordRef, Report, ReportBuilder, Section, Series, TOP_LIMIT, Talker,
    ToolRow, Totals, UNAUTHENTICATED, build_report, is_anomaly,
};

use portcullis_store::Store;

use crate::error::AuditError;
use crate::query::Pages;

/// What `audit verify` said about the chain, shown with the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStatus {
    pub state: ChainState,
    /// One line: the checked range, or the first bad record and why.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainState {
    Intact,
    Tampered,
    NotVerified,
}

impl ChainStatus {
    pub fn summary(&self) -> String {
        let state = match self.state {
            ChainState::Intact => "intact",
            ChainState::Tampered => "TAMPERED",
            ChainState::NotVerified => "not verified",
        };
        if self.detail.is_empty() {
            state.to_owned()
        } else {
            format!("{state} ({})", self.detail)
        }
    }
}

/// A report output format (`--format md,json,html`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportFormat {
    Markdown,
    Json,
    Html,
}

impl ReportFormat {
    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Markdown => "md",
            ReportFormat::Json => "json",
            ReportFormat::Html => "html",
        }
    }

    /// `md,json` or `md` → the formats in order, without repeats.
    pub fn parse_list(text: &str) -> Result<Vec<ReportFormat>, String> {
        let mut formats = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let format = part.parse()?;
            if !formats.contains(&format) {
                formats.push(format);
            }
        }
        if formats.is_empty() {
            return Err("no report format given: expected md, json or html".to_owned());
        }
        Ok(formats)
    }
}

impl FromStr for ReportFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Ok(ReportFormat::Markdown),
            "json" => Ok(ReportFormat::Json),
            "html" => Ok(ReportFormat::Html),
            other => Err(format!(
                "unknown report format {other:?}: expected md, json or html"
            )),
        }
    }
}

/// The report as pretty JSON (schema [`REPORT_SCHEMA`]; the chain status is not part of it).
pub fn render_json(report: &Report) -> String {
    // Only strings, integers, floats and arrays: serialization cannot fail.
    serde_json::to_string_pretty(report).unwrap_or_default()
}

/// Renders `report` in `format`.
pub fn render(
    report: &Report,
    format: ReportFormat,
    chain: &ChainStatus,
) -> Result<String, askama::Error> {
    Ok(match format {
        ReportFormat::Markdown => render_markdown(report, &chain.summary()),
        ReportFormat::Json => render_json(report),
        ReportFormat::Html => render_html(report, chain)?,
    })
}

/// Builds the report over `[since_ms, now_ms)` from the store, a page of records at a time.
pub async fn report_from_store(
    store: &Store,
    since_ms: i64,
    now_ms: i64,
) -> Result<Report, AuditError> {
    let mut builder = ReportBuilder::new(since_ms, now_ms);
    let mut pages = Pages::since(store, since_ms);
    while let Some(page) = pages.next().await? {
        for record in &page {
            builder.add(record);
        }
    }
    Ok(builder.finish())
}
