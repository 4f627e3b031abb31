//! The Markdown rendering of a [`Report`]: headings and pipe tables, for tickets and reviews.

use std::fmt::Write as _;

use super::model::{DecisionCounts, RecordRef, Report, Section};

/// Escapes text for a Markdown table cell: `|`, `\`, backticks, `*` and brackets (no
/// injected links) are backslash-escaped, `<` is written `&lt;` (no injected HTML), line
/// breaks become spaces. `_` is left alone: tool names are full of it and GitHub-flavoured
/// Markdown does not emphasise inside words.
pub fn md_cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' | '\\' | '`' | '*' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn decisions_cells(d: &DecisionCounts) -> String {
    format!(
        "{} | {} | {} | {} | {}",
        d.allow, d.deny, d.approved, d.rejected, d.error
    )
}

fn opt(text: Option<&str>) -> String {
    text.map_or_else(|| "–".to_owned(), md_cell)
}

/// The whole report as Markdown; `chain` is the verification status line to print (for
/// example the result of `audit verify`).
pub fn render_markdown(report: &Report, chain: &str) -> String {
    let mut out = String::new();
    let t = &report.totals;
    let _ = writeln!(out, "# Portcullis audit report\n");
    let range = match (report.first_seq, report.last_seq) {
        (Some(first), Some(last)) => format!("records seq {first}–{last}"),
        _ => "no records".to_owned(),
    };
    let _ = writeln!(
        out,
        "Period: {} → {} ({range})\n",
        report.since, report.until
    );
    let _ = writeln!(out, "Chain verification: {}\n", md_cell(chain));
    let _ = writeln!(out, "## Summary\n");
    let _ = writeln!(out, "| metric | value |\n|---|---:|");
    let rows = [
        ("records", t.records),
        ("allowed", t.decisions.allow),
        ("denied", t.decisions.deny),
        ("approved", t.decisions.approved),
        ("rejected", t.decisions.rejected),
        ("errors", t.decisions.error),
        ("anomalies", t.anomalies),
        ("principals", t.principals),
        ("tools", t.tools),
        ("client addresses", t.client_ips),
    ];
    for (name, value) in rows {
        let _ = writeln!(out, "| {name} | {value} |");
    }

    let _ = writeln!(out, "\n## Calls per principal\n");
    if report.principals.is_empty() {
        let _ = writeln!(out, "No records in this period.");
    } else {
        let _ = writeln!(
            out,
            "| principal | calls | allow | deny | approved | rejected | error | tools | first seen | last seen |\n|---|---:|---:|---:|---:|---:|---:|---:|---|---|"
        );
        for p in &report.principals {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                md_cell(&p.principal),
                p.calls,
                decisions_cells(&p.decisions),
                p.tools,
                p.first_seen,
                p.last_seen
            );
        }
    }

    let _ = writeln!(out, "\n## Calls per tool\n");
    if report.tools.is_empty() {
        let _ = writeln!(out, "No named calls in this period.");
    } else {
        let _ = writeln!(
            out,
            "| tool | upstream | calls | allow | deny | approved | rejected | error | principals | mean latency |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for tool in &report.tools {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} ms |",
                md_cell(&tool.name),
                md_cell(&tool.upstreams.join(", ")),
                tool.calls,
                decisions_cells(&tool.decisions),
                tool.principals,
                tool.mean_latency_ms
            );
        }
    }

    let _ = writeln!(out, "\n## Methods\n");
    let _ = writeln!(out, "| method | records |\n|---|---:|");
    for m in &report.methods {
        let _ = writeln!(out, "| {} | {} |", md_cell(&m.key), m.count);
    }

    let _ = writeln!(out, "\n## Top talkers\n");
    let _ = writeln!(out, "| principal | records | share |\n|---|---:|---:|");
    for talker in &report.top_talkers.principals {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1}% |",
            md_cell(&talker.key),
            talker.count,
            talker.share
        );
    }
    if !report.top_talkers.client_ips.is_empty() {
        let _ = writeln!(
            out,
            "\n| client address | records | share |\n|---|---:|---:|"
        );
        for talker in &report.top_talkers.client_ips {
            let _ = writeln!(
                out,
                "| {} | {} | {:.1}% |",
                md_cell(&talker.key),
                talker.count,
                talker.share
            );
        }
    }

    section(&mut out, "Denials", &report.denials);
    section(&mut out, "Approvals", &report.approvals);
    section(&mut out, "Errors", &report.errors);
    section(&mut out, "Anomalies", &report.anomalies);

    let _ = writeln!(
        out,
        "\n## Over time (per {})\n",
        match report.series.bucket {
            super::model::Bucket::Hour => "hour",
            super::model::Bucket::Day => "day",
        }
    );
    let _ = writeln!(
        out,
        "| start | allow | deny | approved | rejected | error | anomalies |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    for point in report
        .series
        .points
        .iter()
        .filter(|p| p.decisions.total() > 0)
    {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            point.start,
            decisions_cells(&point.decisions),
            point.anomalies
        );
    }
    let _ = writeln!(
        out,
        "\n---\nBuilt from the records whose `ts` lies in the period; denials, approvals and errors are records with that decision, anomalies records whose reason starts with `anomaly:`. Lists show the newest {} records of each kind.",
        super::model::RECENT_LIMIT
    );
    out
}

fn section(out: &mut String, title: &str, section: &Section) {
    let _ = writeln!(out, "\n## {title} ({})\n", section.total);
    if section.total == 0 {
        let _ = writeln!(out, "None.");
        return;
    }
    let _ = writeln!(
        out,
        "| decision | reason | policies | count | principals | tools | last seen |\n|---|---|---|---:|---|---|---|"
    );
    for row in &section.by_reason {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.decision,
            if row.reason.is_empty() {
                "–".to_owned()
            } else {
                md_cell(&row.reason)
            },
            if row.policy_ids.is_empty() {
                "–".to_owned()
            } else {
                md_cell(&row.policy_ids.join(", "))
            },
            row.count,
            md_cell(&row.principals.join(", ")),
            if row.tools.is_empty() {
                "–".to_owned()
            } else {
                md_cell(&row.tools.join(", "))
            },
            row.last_seen
        );
    }
    let _ = writeln!(out, "\n<details><summary>Newest records</summary>\n");
    let _ = writeln!(
        out,
        "| seq | ts | principal | client | method | name | decision | reason | policies | status |\n|---:|---|---|---|---|---|---|---|---|---:|"
    );
    for r in &section.recent {
        record_row(out, r);
    }
    if section.omitted > 0 {
        let _ = writeln!(out, "\n… and {} older.", section.omitted);
    }
    let _ = writeln!(out, "\n</details>");
}

fn record_row(out: &mut String, r: &RecordRef) {
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        r.seq,
        r.ts,
        md_cell(&r.principal),
        opt(r.client_ip.as_deref()),
        md_cell(&r.method),
        opt(r.name.as_deref()),
        r.decision,
        opt(r.reason.as_deref()),
        if r.policy_ids.is_empty() {
            "–".to_owned()
        } else {
            md_cell(&r.policy_ids.join(", "))
        },
        r.status.map_or("–".to_owned(), |s| s.to_string())
    );
}

#[cfg(test)]
mod tests {
    use super::md_cell;

    #[test]
    fn cells_cannot_break_tables() {
        let rows = [
            ("alice", "alice"),
            ("a|b", "a\\|b"),
            ("fs__read_file", "fs__read_file"),
            ("*bold*", "\\*bold\\*"),
            ("<script>", "&lt;script>"),
            ("two\nlines", "two lines"),
            ("`code`", "\\`code\\`"),
            ("[link](x)", "\\[link\\](x)"),
        ];
        for (input, want) in rows {
            assert_eq!(md_cell(input), want, "input {input:?}");
        }
    }
}
