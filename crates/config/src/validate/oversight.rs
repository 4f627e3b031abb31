//! `[guard]`, `[audit]`, `[anomaly]` and the sinks records and alerts go to.

use std::collections::BTreeSet;
use std::time::Duration;

use super::context::{Ctx, PlainHttp};
use super::tools::regex_reason;
use super::upstream::headers;
use crate::model::{
    Anomaly, Audit, Guard, RedactPattern, RedactSet, ScanAction, Sink, SyslogTransport,
};
use crate::net;
use crate::raw::{RawAnomaly, RawAudit, RawGuard, RawRedactPattern, RawSink};

pub(super) fn guard(raw: RawGuard, ctx: &mut Ctx<'_>) -> Guard {
    let mut redact = Vec::new();
    let sets = raw.redact.unwrap_or_else(|| vec!["secrets".to_owned()]);
    for (i, name) in sets.iter().enumerate() {
        let set = match name.as_str() {
            "secrets" => RedactSet::Secrets,
            "pii" => RedactSet::Pii,
            other => {
                ctx.error(
                    &format!("guard.redact[{i}]"),
                    format!("unknown rule set {other:?}: expected \"secrets\" or \"pii\""),
                );
                continue;
            }
        };
        if !redact.contains(&set) {
            redact.push(set);
        }
    }
    let mut redact_patterns = Vec::new();
    let mut names = BTreeSet::new();
    for (i, raw) in raw
        .redact_pattern
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        if let Some(pattern) = redact_pattern(i, raw, ctx) {
            if !names.insert(pattern.name.clone()) {
                ctx.error(
                    &format!("guard.redact_pattern[{i}].name"),
                    format!("duplicate pattern name {:?}", pattern.name),
                );
            }
            redact_patterns.push(pattern);
        }
    }
    Guard {
        redact,
        redact_patterns,
        pin_tools: raw.pin_tools.unwrap_or(true),
        scan_tools: raw.scan_tools.unwrap_or(true),
        scan_action: match raw.scan_action.as_deref() {
            None | Some("block") => ScanAction::Block,
            Some("warn") => ScanAction::Warn,
            Some(other) => {
                ctx.error(
                    "guard.scan_action",
                    format!("unknown action {other:?}: expected \"block\" or \"warn\""),
                );
                ScanAction::Block
            }
        },
        redact_results: raw.redact_results.unwrap_or(true),
    }
}

fn redact_pattern(i: usize, raw: RawRedactPattern, ctx: &mut Ctx<'_>) -> Option<RedactPattern> {
    let key = |field: &str| format!("guard.redact_pattern[{i}].{field}");
    let name = ctx.required(&key("name"), raw.name);
    let pattern = ctx
        .required(&key("pattern"), raw.pattern)
        .and_then(|pattern| match regex::Regex::new(&pattern) {
            Ok(_) => Some(pattern),
            Err(err) => {
                ctx.error(&key("pattern"), regex_reason(&err));
                None
            }
        });
    Some(RedactPattern {
        name: name?,
        pattern: pattern?,
    })
}

pub(super) fn audit(raw: RawAudit, ctx: &mut Ctx<'_>) -> Audit {
    let signing_key = raw
        .signing_key
        .and_then(|text| ctx.secret("audit.signing_key", &text, true));
    let encryption_key = raw
        .encryption_key
        .and_then(|text| ctx.secret("audit.encryption_key", &text, true));
    let old_encryption_keys = raw
        .old_encryption_keys
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter_map(|(i, text)| ctx.secret(&format!("audit.old_encryption_keys[{i}]"), &text, true))
        .collect();
    let retention = ctx.duration("audit.retention", raw.retention.as_deref());
    let checkpoint_records = ctx
        .count("audit.checkpoint_records", raw.checkpoint_records, 1)
        .unwrap_or(1000);
    let checkpoint_interval = ctx
        .duration(
            "audit.checkpoint_interval",
            raw.checkpoint_interval.as_deref(),
        )
        .unwrap_or(Duration::from_secs(60));
    let max_field_bytes = ctx
        .size("audit.max_field_bytes", raw.max_field_bytes.as_ref())
        .unwrap_or(DEFAULT_MAX_FIELD_BYTES);
    let sinks = sinks("audit.sink", raw.sink.unwrap_or_default(), ctx);
    Audit {
        signing_key,
        encryption_key,
        old_encryption_keys,
        retention,
        checkpoint_records,
        checkpoint_interval,
        max_field_bytes,
        sinks,
    }
}

/// `[audit] max_field_bytes` when unset.
pub const DEFAULT_MAX_FIELD_BYTES: u64 = 256 * 1024;

pub(super) fn anomaly(raw: RawAnomaly, ctx: &mut Ctx<'_>) -> Anomaly {
    let enabled = raw.enabled.unwrap_or(false);
    let alerts = sinks("anomaly.alert", raw.alert.unwrap_or_default(), ctx);
    if !enabled && !alerts.is_empty() {
        ctx.warn("[[anomaly.alert]] is set but anomaly.enabled is false: no alerts will be sent");
    }
    Anomaly { enabled, alerts }
}

fn sinks(table: &str, raw: Vec<RawSink>, ctx: &mut Ctx<'_>) -> Vec<Sink> {
    raw.into_iter()
        .enumerate()
        .filter_map(|(i, raw)| sink(&format!("{table}[{i}]"), raw, ctx))
        .collect()
}

/// One sink; `kind` decides which of `path`, `max_size`, `keep`, `url`, `endpoint`,
/// `address`, `transport`, `ca`, `headers` apply.
fn sink(prefix: &str, raw: RawSink, ctx: &mut Ctx<'_>) -> Option<Sink> {
    let key = |field: &str| format!("{prefix}.{field}");
    let kind = ctx.required(&key("kind"), raw.kind)?;
    let allowed: &[&str] = match kind.as_str() {
        "jsonl" => &["path", "max_size", "keep"],
        "syslog" => &["address", "transport", "ca"],
        "otlp" => &["endpoint", "headers"],
        "webhook" => &["url", "headers"],
        other => {
            ctx.error(
                &key("kind"),
                format!("unknown kind {other:?}: expected jsonl, syslog, otlp or webhook"),
            );
            return None;
        }
    };
    let present = [
        ("path", raw.path.is_some()),
        ("url", raw.url.is_some()),
        ("endpoint", raw.endpoint.is_some()),
        ("address", raw.address.is_some()),
        ("headers", raw.headers.is_some()),
        ("transport", raw.transport.is_some()),
        ("ca", raw.ca.is_some()),
        ("max_size", raw.max_size.is_some()),
        ("keep", raw.keep.is_some()),
    ];
    for (field, _) in present
        .iter()
        .filter(|(field, set)| *set && !allowed.contains(field))
    {
        ctx.error(&key(field), format!("not used by kind = {kind:?}"));
    }
    match kind.as_str() {
        "jsonl" => {
            let max_size = ctx
                .size(&key("max_size"), raw.max_size.as_ref())
                .unwrap_or(100 * 1024 * 1024);
            let keep = ctx.count(&key("keep"), raw.keep, 1).unwrap_or(10);
            let path = ctx.required(&key("path"), raw.path)?;
            Some(Sink::Jsonl {
                path: ctx.path(&key("path"), &path)?,
                max_size,
                keep,
            })
        }
        "syslog" => syslog_sink(prefix, raw.address, raw.transport, raw.ca, ctx),
        "otlp" => {
            let headers = headers(&key("headers"), raw.headers.unwrap_or_default(), ctx);
            let endpoint = ctx.required(&key("endpoint"), raw.endpoint)?;
            Some(Sink::Otlp {
                endpoint: ctx.http_url(&key("endpoint"), &endpoint, PlainHttp::Warn)?,
                headers,
            })
        }
        _ => {
            let url = ctx
                .required(&key("url"), raw.url)
                .and_then(|url| ctx.http_url(&key("url"), &url, PlainHttp::Warn));
            let headers = headers(&key("headers"), raw.headers.unwrap_or_default(), ctx);
            Some(Sink::Webhook { url: url?, headers })
        }
    }
}

/// `kind = "syslog"`: `address` (absent: `/dev/log`), `transport` (udp, tcp, tls) and the TLS `ca`.
fn syslog_sink(
    prefix: &str,
    address: Option<String>,
    transport: Option<String>,
    ca: Option<String>,
    ctx: &mut Ctx<'_>,
) -> Option<Sink> {
    let key = |field: &str| format!("{prefix}.{field}");
    let transport = match transport.as_deref() {
        None | Some("udp") => SyslogTransport::Udp,
        Some("tcp") => SyslogTransport::Tcp,
        Some("tls") => SyslogTransport::Tls,
        Some(other) => {
            ctx.error(
                &key("transport"),
                format!("unknown transport {other:?}: expected udp, tcp or tls"),
            );
            return None;
        }
    };
    let ca = match ca {
        Some(_) if transport != SyslogTransport::Tls => {
            ctx.error(&key("ca"), "only used with transport = \"tls\"");
            return None;
        }
        Some(text) => Some(ctx.existing_file(&key("ca"), &text)?),
        None => None,
    };
    let address = match address {
        None if transport != SyslogTransport::Udp => {
            ctx.error(
                &key("address"),
                "required with transport = \"tcp\" or \"tls\" (only UDP can use the local /dev/log)",
            );
            return None;
        }
        None => None,
        Some(text) => match net::parse_host_port(&text) {
            Ok(address) => Some(address),
            Err(reason) => {
                ctx.error(&key("address"), reason);
                return None;
            }
        },
    };
    Some(Sink::Syslog {
        address,
        transport,
        ca,
    })
}
