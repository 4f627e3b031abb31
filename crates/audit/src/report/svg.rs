//! Inline SVG charts for the HTML report: no script, no external assets. Every text that
//! comes from a record is escaped here, since the page inserts the markup as is.

use std::f64::consts::PI;
use std::fmt::Write as _;

use super::model::{Bucket, DecisionCounts, Series};
use crate::record::Decision;

/// Colour of each decision, shared with the page's legend and badges.
pub fn decision_color(decision: Decision) -> &'static str {
    match decision {
        Decision::Allow => "#2f855a",
        Decision::Deny => "#c53030",
        Decision::Approved => "#2b6cb0",
        Decision::Rejected => "#dd6b20",
        Decision::Error => "#6b46c1",
    }
}

/// Escapes text for SVG/HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A round axis maximum ≥ `max` and its tick step (1, 2, 5 × 10ⁿ).
fn nice_scale(max: u64) -> (u64, u64) {
    let max = max.max(1);
    let raw = max.div_ceil(4);
    let mut magnitude = 1u64;
    while magnitude.saturating_mul(10) <= raw {
        magnitude = magnitude.saturating_mul(10);
    }
    let step = [1, 2, 5, 10]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(raw);
    (max.div_ceil(step) * step, step)
}

/// Stacked bars per bucket, one colour per decision, with a y axis and dated x labels.
pub fn timeline(series: &Series) -> String {
    let (width, height) = (1120.0, 280.0);
    let (left, right, top, bottom) = (48.0, 12.0, 16.0, 46.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let max = series
        .points
        .iter()
        .map(|p| p.decisions.total())
        .max()
        .unwrap_or(0);
    let (axis_max, step) = nice_scale(max);
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="Records over time, stacked by decision" xmlns="http://www.w3.org/2000/svg">"#
    );
    let y_of = |value: u64| top + plot_h - plot_h * value as f64 / axis_max as f64;
    let mut tick = 0;
    while tick <= axis_max {
        let y = y_of(tick);
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="#e2e8f0"/><text x="{tx}" y="{ty:.1}" class="axis" text-anchor="end">{tick}</text>"##,
            x2 = width - right,
            tx = left - 6.0,
            ty = y + 4.0,
        );
        tick += step;
    }
    let n = series.points.len().max(1);
    let slot = plot_w / n as f64;
    let bar = (slot * 0.78).max(1.0);
    let label_every = n.div_ceil(12).max(1);
    for (i, point) in series.points.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let mut base = 0;
        for decision in Decision::ALL {
            let count = point.decisions.get(decision);
            if count == 0 {
                continue;
            }
            let y0 = y_of(base);
            let y1 = y_of(base + count);
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{y1:.1}" width="{bar:.1}" height="{h:.1}" fill="{color}"><title>{start}: {count} {decision}</title></rect>"#,
                h = (y0 - y1).max(0.5),
                color = decision_color(decision),
                start = escape(&point.start),
            );
            base += count;
        }
        if point.anomalies > 0 {
            let _ = write!(
                svg,
                r##"<circle cx="{cx:.1}" cy="{cy:.1}" r="4" fill="#d69e2e" stroke="#fff"><title>{start}: {a} anomalies</title></circle>"##,
                cx = x + bar / 2.0,
                cy = y_of(base) - 7.0,
                a = point.anomalies,
                start = escape(&point.start),
            );
        }
        if i % label_every == 0 {
            let label = match series.bucket {
                Bucket::Hour => point.start.get(5..13).unwrap_or("").replace('T', " ") + ":00",
                Bucket::Day => point.start.get(5..10).unwrap_or("").to_owned(),
            };
            let _ = write!(
                svg,
                r#"<text x="{lx:.1}" y="{ly}" class="axis" text-anchor="middle">{label}</text>"#,
                lx = x + bar / 2.0,
                ly = height - bottom + 16.0,
                label = escape(&label),
            );
        }
    }
    let _ = write!(
        svg,
        r##"<line x1="{left}" x2="{x2}" y1="{y}" y2="{y}" stroke="#a0aec0"/>"##,
        x2 = width - right,
        y = top + plot_h,
    );
    let mut lx = left;
    for decision in Decision::ALL {
        let _ = write!(
            svg,
            r#"<rect x="{lx}" y="{ly}" width="10" height="10" rx="2" fill="{color}"/><text x="{tx}" y="{ty}" class="legend">{decision}</text>"#,
            ly = height - 14.0,
            color = decision_color(decision),
            tx = lx + 14.0,
            ty = height - 5.0,
        );
        lx += 96.0;
    }
    let _ = write!(
        svg,
        r##"<circle cx="{cx}" cy="{cy}" r="4" fill="#d69e2e"/><text x="{tx}" y="{ty}" class="legend">anomaly</text>"##,
        cx = lx + 5.0,
        cy = height - 9.0,
        tx = lx + 14.0,
        ty = height - 5.0,
    );
    svg.push_str("</svg>");
    svg
}

/// A donut of the decisions with the total in the middle.
pub fn donut(decisions: &DecisionCounts) -> String {
    let total = decisions.total();
    let (cx, cy, r, stroke) = (110.0, 110.0, 80.0, 34.0);
    let mut svg = format!(
        r##"<svg class="donut" viewBox="0 0 220 220" role="img" aria-label="Decisions" xmlns="http://www.w3.org/2000/svg"><circle cx="{cx}" cy="{cy}" r="{r}" fill="none" stroke="#edf2f7" stroke-width="{stroke}"/>"##
    );
    if total > 0 {
        let mut angle = -PI / 2.0;
        for decision in Decision::ALL {
            let count = decisions.get(decision);
            if count == 0 {
                continue;
            }
            let sweep = 2.0 * PI * count as f64 / total as f64;
            let color = decision_color(decision);
            if count == total {
                let _ = write!(
                    svg,
                    r#"<circle cx="{cx}" cy="{cy}" r="{r}" fill="none" stroke="{color}" stroke-width="{stroke}"><title>{decision}: {count}</title></circle>"#
                );
            } else {
                let (x0, y0) = (cx + r * angle.cos(), cy + r * angle.sin());
                let end = angle + sweep;
                let (x1, y1) = (cx + r * end.cos(), cy + r * end.sin());
                let large = u8::from(sweep > PI);
                let _ = write!(
                    svg,
                    r#"<path d="M {x0:.2} {y0:.2} A {r} {r} 0 {large} 1 {x1:.2} {y1:.2}" fill="none" stroke="{color}" stroke-width="{stroke}"><title>{decision}: {count}</title></path>"#
                );
            }
            angle += sweep;
        }
    }
    let _ = write!(
        svg,
        r#"<text x="{cx}" y="{ty}" text-anchor="middle" class="donut-total">{total}</text><text x="{cx}" y="{sy}" text-anchor="middle" class="donut-label">records</text></svg>"#,
        ty = cy + 6.0,
        sy = cy + 26.0,
    );
    svg
}

/// One row of a horizontal bar chart: a label and its per-decision counts.
#[derive(Debug, Clone)]
pub struct BarRow<'a> {
    pub label: &'a str,
    pub decisions: &'a DecisionCounts,
}

/// Horizontal stacked bars, one row per item, longest first as given, `width` user units
/// wide (the page scales the chart to its box: give the box's width in pixels).
pub fn bars(rows: &[BarRow<'_>], aria: &str, width: f64) -> String {
    let row_h = 26.0;
    let (label_w, count_w) = ((width * 0.3).clamp(120.0, 300.0), 56.0);
    let label_chars = (label_w / 7.2) as usize;
    let height = (rows.len().max(1) as f64) * row_h + 8.0;
    let max = rows
        .iter()
        .map(|r| r.decisions.total())
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_w = width - label_w - count_w;
    let mut svg = format!(
        r#"<svg class="bars" viewBox="0 0 {width} {height}" role="img" aria-label="{aria}" xmlns="http://www.w3.org/2000/svg">"#,
        aria = escape(aria)
    );
    if rows.is_empty() {
        svg.push_str(r#"<text x="0" y="18" class="axis">no records</text>"#);
    }
    for (i, row) in rows.iter().enumerate() {
        let y = 4.0 + i as f64 * row_h;
        let label: String = if row.label.chars().count() > label_chars {
            row.label
                .chars()
                .take(label_chars.saturating_sub(1))
                .chain(['…'])
                .collect()
        } else {
            row.label.to_owned()
        };
        let _ = write!(
            svg,
            r#"<text x="{tx}" y="{ty:.1}" class="bar-label" text-anchor="end">{label}<title>{full}</title></text>"#,
            tx = label_w - 8.0,
            ty = y + 15.0,
            label = escape(&label),
            full = escape(row.label),
        );
        let mut x = label_w;
        for decision in Decision::ALL {
            let count = row.decisions.get(decision);
            if count == 0 {
                continue;
            }
            let w = plot_w * count as f64 / max as f64;
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="18" fill="{color}"><title>{label}: {count} {decision}</title></rect>"#,
                color = decision_color(decision),
                label = escape(row.label),
            );
            x += w;
        }
        let _ = write!(
            svg,
            r#"<text x="{cx:.1}" y="{ty:.1}" class="bar-count">{total}</text>"#,
            cx = x + 6.0,
            ty = y + 14.0,
            total = row.decisions.total(),
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_are_round() {
        // (largest value, axis maximum, tick step)
        let rows = [
            (0, 1, 1),
            (1, 1, 1),
            (7, 8, 2),
            (10, 10, 5),
            (37, 40, 10),
            (120, 150, 50),
            (999, 1000, 500),
        ];
        for (max, axis, step) in rows {
            assert_eq!(nice_scale(max), (axis, step), "max {max}");
        }
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<img src=x onerror="a">&'"#),
            "&lt;img src=x onerror=&quot;a&quot;&gt;&amp;&#39;"
        );
    }
}
