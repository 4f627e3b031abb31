//! `[[upstream.tool]]`: per-tool operator rules and their argument rules.

use std::collections::BTreeMap;

use super::context::{Ctx, subkey};
use crate::model::{ArgRule, RedactScope, ToolRule};
use crate::net;
use crate::raw::{RawArgRule, RawTool};

/// The tool rules of `upstream[i]` (`at`), unique by tool name.
pub(super) fn tool_rules(at: &str, raw: Vec<RawTool>, ctx: &mut Ctx<'_>) -> Vec<ToolRule> {
    let mut rules = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (j, raw) in raw.into_iter().enumerate() {
        let prefix = format!("{at}.tool[{j}]");
        let Some(name) = ctx.required(&format!("{prefix}.name"), raw.name) else {
            continue;
        };
        if let Some(first) = seen.insert(name.clone(), j) {
            ctx.error(
                &format!("{prefix}.name"),
                format!("duplicate rule for tool {name:?} (also {at}.tool[{first}])"),
            );
        }
        let args = raw
            .args
            .unwrap_or_default()
            .into_iter()
            .map(|(arg, rule)| {
                let rule = arg_rule(&subkey(&format!("{prefix}.args"), &arg), rule, ctx);
                (arg, rule)
            })
            .collect();
        let redact = match raw.redact.as_deref() {
            None => None,
            Some("results") => Some(RedactScope::Results),
            Some("logs") => Some(RedactScope::Logs),
            Some(other) => {
                ctx.error(
                    &format!("{prefix}.redact"),
                    format!("unknown scope {other:?}: expected \"results\" or \"logs\""),
                );
                None
            }
        };
        rules.push(ToolRule {
            name,
            read_only: raw.read_only,
            approval: raw.approval.unwrap_or(false),
            args,
            redact,
        });
    }
    rules
}

/// `[upstream.resources]`: the same keys as an argument rule, applied to `resources/read` URIs
/// (numbers make no sense for a URI).
pub(super) fn resource_rule(key: &str, raw: RawArgRule, ctx: &mut Ctx<'_>) -> ArgRule {
    if raw.min.is_some() || raw.max.is_some() {
        ctx.error(key, "`min`/`max` do not apply to resource URIs");
    }
    arg_rule(key, raw, ctx)
}

/// One argument rule. A value is a path (`within`), a URL (`allow_hosts`, `deny_private`), a
/// number (`min`, `max`) or a string (`pattern`, `enum`, `max_length`, also for paths and URLs).
pub(super) fn arg_rule(key: &str, raw: RawArgRule, ctx: &mut Ctx<'_>) -> ArgRule {
    let sub = |field: &str| format!("{key}.{field}");
    let mut rule = ArgRule::default();
    for (k, text) in raw.within.iter().flatten().enumerate() {
        if let Some(path) = ctx.path(&format!("{}[{k}]", sub("within")), text) {
            rule.within.push(path);
        }
    }
    for (k, text) in raw.allow_hosts.iter().flatten().enumerate() {
        match net::parse_host_pattern(text) {
            Ok(pattern) => rule.allow_hosts.push(pattern),
            Err(reason) => ctx.error(&format!("{}[{k}]", sub("allow_hosts")), reason),
        }
    }
    rule.deny_private = raw.deny_private.unwrap_or(false);
    rule.min = raw.min.filter(|n| finite(&sub("min"), *n, ctx));
    rule.max = raw.max.filter(|n| finite(&sub("max"), *n, ctx));
    if let (Some(min), Some(max)) = (rule.min, rule.max)
        && min > max
    {
        ctx.error(
            &sub("min"),
            format!("min ({min}) is greater than max ({max})"),
        );
    }
    rule.pattern = raw
        .pattern
        .and_then(|pattern| match regex::Regex::new(&pattern) {
            Ok(_) => Some(pattern),
            Err(err) => {
                ctx.error(&sub("pattern"), regex_reason(&err));
                None
            }
        });
    let has_enum = raw.r#enum.is_some();
    if let Some(values) = raw.r#enum {
        if values.is_empty() {
            ctx.error(
                &sub("enum"),
                "must not be empty (no value would be allowed)",
            );
        }
        rule.r#enum = values;
    }
    rule.max_length = ctx.count(&sub("max_length"), raw.max_length, 0);

    let is_path = raw.within.is_some();
    let is_url = raw.allow_hosts.is_some() || raw.deny_private.is_some();
    let is_number = raw.min.is_some() || raw.max.is_some();
    let is_string = rule.pattern.is_some() || has_enum || raw.max_length.is_some();
    if is_path && is_url {
        ctx.error(
            key,
            "`within` (a path) cannot be combined with `allow_hosts`/`deny_private` (a URL)",
        );
    }
    if is_number && (is_path || is_url || is_string) {
        ctx.error(
            key,
            "`min`/`max` apply to numbers and cannot be combined with path, URL or string rules",
        );
    }
    if !(is_path || is_url || is_number || is_string) {
        ctx.warn(format!("{key}: empty rule has no effect"));
    }
    rule
}

fn finite(key: &str, n: f64, ctx: &mut Ctx<'_>) -> bool {
    if !n.is_finite() {
        ctx.error(key, format!("must be a finite number, not {n}"));
    }
    n.is_finite()
}

/// The one-line reason of a regex error (its `Display` spans several lines).
pub(super) fn regex_reason(err: &regex::Error) -> String {
    let text = err.to_string();
    let detail = text
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("error: "));
    match detail {
        Some(detail) => format!("invalid regex: {detail}"),
        None => {
            let lines: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            format!("invalid regex: {}", lines.join("; "))
        }
    }
}
