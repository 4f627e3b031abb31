//! Results the gateway writes itself, and rewrites of upstream results for the client.

use portcullis_mcp::version::meta;
use portcullis_mcp::{Method, RawObject, Revision};
use serde_json::json;
use serde_json::value::RawValue;

use crate::Gateway;

fn raw(v: &serde_json::Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(v).unwrap_or_else(|_| empty())
}

pub fn empty() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).unwrap_or_default()
}

/// What the gateway serves; `modern`: to a 2026-07-28 client (extensions are relayed to those).
fn capabilities(gw: &Gateway, modern: bool) -> serde_json::Value {
    let mut caps = json!({
        "tools": {"listChanged": true},
        "prompts": {"listChanged": true},
        "resources": {"subscribe": true, "listChanged": true},
        "completions": {},
        "logging": {}
    });
    // Extensions the gateway relays, when an upstream offers them.
    if modern && crate::tasks::offered(gw) {
        caps["extensions"] = json!({ crate::tasks::EXTENSION: {} });
    }
    caps
}

fn server_info() -> serde_json::Value {
    json!({"name": "portcullis", "title": "Portcullis MCP gateway", "version": env!("CARGO_PKG_VERSION")})
}

pub fn initialize(gw: &Gateway, revision: Revision) -> Box<RawValue> {
    let mut result = json!({
        "protocolVersion": revision.as_str(),
        "capabilities": capabilities(gw, false),
        "serverInfo": server_info(),
    });
    if let Some(text) = instructions(gw) {
        result["instructions"] = json!(text);
    }
    raw(&result)
}

pub fn discover(gw: &Gateway) -> Box<RawValue> {
    let mut result = json!({
        "resultType": "complete",
        "supportedVersions": Revision::supported_strings(),
        "capabilities": capabilities(gw, true),
        "_meta": { meta::SERVER_INFO: server_info() },
        "ttlMs": 0,
        "cacheScope": "private",
    });
    if let Some(text) = instructions(gw) {
        result["instructions"] = json!(text);
    }
    raw(&result)
}

/// The connected upstreams' instructions, each under its upstream's name and prefix. The model
/// reads them as guidance, so they pass the same poisoning scan as tool definitions: text with
/// a blocking finding is left out (and logged).
pub fn instructions(gw: &Gateway) -> Option<String> {
    use portcullis_guard::pins::{Definition, Kind as PinKind};
    use portcullis_guard::scan;
    let mut parts = Vec::new();
    for m in gw.federation.members() {
        let Some(text) = m.upstream.identity().and_then(|id| id.instructions) else {
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        if gw.guard.scan_tools {
            let def = Definition::new(
                PinKind::Tool,
                json!({ "name": m.name, "description": text }),
            );
            let findings = def
                .map(|d| scan::scan(&[d], &[], &gw.guard.scan_options))
                .unwrap_or_default();
            if scan::blocks(&findings, gw.guard.scan_action) {
                tracing::warn!(upstream = %m.name, findings = ?findings, "upstream instructions failed the poisoning scan; left out");
                continue;
            }
        }
        let prefix = if m.prefix.is_empty() {
            String::from("unprefixed")
        } else {
            format!("prefixed \"{}\"", m.prefix)
        };
        parts.push(format!("[{} — names {prefix}]\n{}", m.name, text.trim()));
    }
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

/// Rewrites an upstream's result for the client: names and URIs get the upstream's prefix
/// (so a link can be followed back through the gateway) and 2026-era clients get `resultType`.
pub fn rewrite(
    gw: &Gateway,
    method: Method,
    upstream: usize,
    result: Box<RawValue>,
    modern: bool,
) -> Box<RawValue> {
    let Ok(mut obj) = RawObject::from_raw(&result) else {
        return result;
    };
    let prefix = gw
        .federation
        .member(upstream)
        .map(|m| m.prefix.as_str())
        .unwrap_or("");
    let changed_uris = match method {
        Method::ResourcesRead => prefix_array_field(&mut obj, "contents", prefix, |item| {
            prefix_key(item, "uri", prefix)
        }),
        Method::ToolsCall => prefix_array_field(&mut obj, "content", prefix, |item| {
            prefix_content(item, prefix)
        }),
        Method::PromptsGet => prefix_array_field(&mut obj, "messages", prefix, |msg| {
            let Some(content) = msg.get("content").and_then(|c| RawObject::from_raw(c).ok()) else {
                return false;
            };
            let mut content = content;
            if prefix_content(&mut content, prefix) {
                content.to_raw().map(|r| msg.set_raw("content", r)).is_ok()
            } else {
                false
            }
        }),
        _ => false,
    };
    let mut changed = changed_uris;
    if modern && !obj.contains("resultType") && obj.set("resultType", "complete").is_ok() {
        changed = true;
    }
    if !changed {
        return result;
    }
    obj.to_raw().unwrap_or(result)
}

/// Applies `f` to each object in the array at `field`; true when anything changed.
fn prefix_array_field(
    obj: &mut RawObject,
    field: &str,
    prefix: &str,
    f: impl Fn(&mut RawObject) -> bool,
) -> bool {
    if prefix.is_empty() {
        return false;
    }
    let Some(Ok(items)) = obj.get_as::<Vec<Box<RawValue>>>(field) else {
        return false;
    };
    let mut changed = false;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let rewritten = RawObject::from_raw(&item)
            .ok()
            .and_then(|mut o| if f(&mut o) { o.to_raw().ok() } else { None });
        match rewritten {
            Some(r) => {
                changed = true;
                out.push(r);
            }
            None => out.push(item),
        }
    }
    changed && obj.set(field, &out).is_ok()
}

pub fn prefix_key(obj: &mut RawObject, key: &str, prefix: &str) -> bool {
    match obj.get_str(key) {
        Some(v) => obj.set(key, &format!("{prefix}{v}")).is_ok(),
        None => false,
    }
}

/// `resource_link` content carries `uri`; embedded `resource` content carries `resource.uri`.
fn prefix_content(item: &mut RawObject, prefix: &str) -> bool {
    match item.get_str("type").as_deref() {
        Some("resource_link") => prefix_key(item, "uri", prefix),
        Some("resource") => {
            let Some(mut res) = item
                .get("resource")
                .and_then(|r| RawObject::from_raw(r).ok())
            else {
                return false;
            };
            prefix_key(&mut res, "uri", prefix)
                && res.to_raw().map(|r| item.set_raw("resource", r)).is_ok()
        }
        _ => false,
    }
}
