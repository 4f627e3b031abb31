//! The HTML report: one self-contained page (inline CSS and SVG, no script, no external
//! asset, a CSP that forbids loading any), rendered by askama (every value HTML-escaped).

use askama::Template;

use super::model::{Bucket, RECENT_LIMIT, Report, TOP_LIMIT};
use super::svg::{self, BarRow};
use super::{ChainState, ChainStatus};
use crate::record::Decision;

struct LegendItem {
    name: &'static str,
    color: &'static str,
    count: u64,
    percent: String,
}

#[derive(Template)]
#[template(path = "report.html")]
struct Page<'a> {
    r: &'a Report,
    chain: &'a ChainStatus,
    bucket: &'static str,
    timeline: String,
    donut: String,
    principal_bars: String,
    tool_bars: String,
    legend: Vec<LegendItem>,
    recent_limit: usize,
    top_limit: usize,
    version: &'static str,
}

impl Page<'_> {
    fn percent(&self, count: &u64) -> String {
        percent_of(*count, self.r.totals.records)
    }

    /// `2026-03-01T03:01:00.000Z` → `2026-03-01 03:01:00` (the page says times are UTC).
    fn when(&self, ts: &str) -> String {
        match (ts.get(..10), ts.get(11..19)) {
            (Some(date), Some(time)) if ts.as_bytes().get(10) == Some(&b'T') => {
                format!("{date} {time}")
            }
            _ => ts.to_owned(),
        }
    }
}

impl ChainState {
    fn css_class(&self) -> &'static str {
        match self {
            ChainState::Intact => "intact",
            ChainState::Tampered => "tampered",
            ChainState::NotVerified => "unknown",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ChainState::Intact => "Chain intact",
            ChainState::Tampered => "Chain TAMPERED",
            ChainState::NotVerified => "Chain not verified",
        }
    }
}

fn percent_of(count: u64, total: u64) -> String {
    if total == 0 {
        "0%".to_owned()
    } else {
        format!("{:.1}%", count as f64 * 100.0 / total as f64)
    }
}

/// The report as one HTML page; `chain` is shown in the header and the methodology footer.
pub fn render_html(report: &Report, chain: &ChainStatus) -> Result<String, askama::Error> {
    let principal_rows: Vec<BarRow<'_>> = report
        .principals
        .iter()
        .take(TOP_LIMIT)
        .map(|p| BarRow {
            label: &p.principal,
            decisions: &p.decisions,
        })
        .collect();
    let tool_rows: Vec<BarRow<'_>> = report
        .tools
        .iter()
        .take(TOP_LIMIT)
        .map(|t| BarRow {
            label: &t.name,
            decisions: &t.decisions,
        })
        .collect();
    let legend = Decision::ALL
        .into_iter()
        .map(|d| LegendItem {
            name: d.as_str(),
            color: svg::decision_color(d),
            count: report.totals.decisions.get(d),
            percent: percent_of(report.totals.decisions.get(d), report.totals.records),
        })
        .collect();
    let page = Page {
        r: report,
        chain,
        bucket: match report.series.bucket {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
        },
        timeline: svg::timeline(&report.series),
        donut: svg::donut(&report.totals.decisions),
        principal_bars: svg::bars(&principal_rows, "Top principals by records", 540.0),
        tool_bars: svg::bars(&tool_rows, "Top tools by calls", 1090.0),
        legend,
        recent_limit: RECENT_LIMIT,
        top_limit: TOP_LIMIT,
        version: env!("CARGO_PKG_VERSION"),
    };
    page.render()
}
