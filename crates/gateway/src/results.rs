//! Results the gateway writes itself, and rewrites of upstream results for the client.

use portcullis_mcp::version::meta;
use portcullis_mcp::{Method, RawObject, Revision};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

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

/// How an upstream's result is rewritten for the client (see [`rewrite`]).
#[derive(Debug, Clone, Copy)]
pub struct Rewrite {
    pub method: Method,
    pub upstream: usize,
    /// A 2026-era client, which gets `resultType`.
    pub modern: bool,
}

/// What [`rewrite`] changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    /// A name or URI got the upstream's prefix.
    pub uris: bool,
    /// `"resultType": "complete"` was added.
    pub result_type: bool,
}

/// Rewrites an upstream's result for the client: names and URIs get the upstream's prefix
/// (so a link can be followed back through the gateway) and 2026-era clients get `resultType`.
pub fn rewrite(gw: &Gateway, how: Rewrite, result: &mut Value) -> Rewritten {
    let prefix = gw
        .federation
        .member(how.upstream)
        .map(|m| &*m.prefix)
        .unwrap_or("");
    rewrite_with(prefix, how.method, how.modern, result)
}

fn rewrite_with(prefix: &str, method: Method, modern: bool, result: &mut Value) -> Rewritten {
    let Some(obj) = result.as_object_mut() else {
        return Rewritten::default();
    };
    let uris = !prefix.is_empty()
        && match method {
            Method::ResourcesRead => {
                each_object(obj, "contents", |item| prefix_uri(item, "uri", prefix))
            }
            Method::ToolsCall => each_object(obj, "content", |item| prefix_content(item, prefix)),
            Method::PromptsGet => each_object(obj, "messages", |msg| {
                msg.get_mut("content")
                    .and_then(Value::as_object_mut)
                    .is_some_and(|content| prefix_content(content, prefix))
            }),
            _ => false,
        };
    let result_type = modern && !obj.contains_key("resultType");
    if result_type {
        obj.insert("resultType".to_owned(), Value::from("complete"));
    }
    Rewritten { uris, result_type }
}

/// Whether `raw` is a JSON object with a top-level `resultType` (read without building it).
pub fn has_result_type(raw: &RawValue) -> bool {
    #[derive(serde::Deserialize)]
    struct Top<'a> {
        #[serde(rename = "resultType", borrow, default)]
        result_type: Option<&'a RawValue>,
    }
    // A derived struct would also read an array (`[x]` as its one field): objects only.
    raw.get().trim_start().starts_with('{')
        && serde_json::from_str::<Top<'_>>(raw.get()).is_ok_and(|top| top.result_type.is_some())
}

/// `raw`, a JSON object, with `"resultType":"complete"` as its first member: the rest of the
/// text is kept as the upstream wrote it.
pub fn with_result_type(raw: &RawValue) -> Option<Box<RawValue>> {
    let body = raw.get().trim_start().strip_prefix('{')?;
    let separator = if body.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    RawValue::from_string(format!("{{\"resultType\":\"complete\"{separator}{body}")).ok()
}

/// Applies `f` to each object in the array at `field`; true when anything changed.
fn each_object(
    obj: &mut Map<String, Value>,
    field: &str,
    f: impl Fn(&mut Map<String, Value>) -> bool,
) -> bool {
    let Some(Value::Array(items)) = obj.get_mut(field) else {
        return false;
    };
    items
        .iter_mut()
        .filter_map(Value::as_object_mut)
        .fold(false, |changed, item| f(item) | changed)
}

fn prefix_uri(obj: &mut Map<String, Value>, key: &str, prefix: &str) -> bool {
    match obj.get_mut(key) {
        Some(Value::String(uri)) => {
            uri.insert_str(0, prefix);
            true
        }
        _ => false,
    }
}

/// `resource_link` content carries `uri`; embedded `resource` content carries `resource.uri`.
fn prefix_content(item: &mut Map<String, Value>, prefix: &str) -> bool {
    match item.get("type").and_then(Value::as_str) {
        Some("resource_link") => prefix_uri(item, "uri", prefix),
        Some("resource") => item
            .get_mut("resource")
            .and_then(Value::as_object_mut)
            .is_some_and(|res| prefix_uri(res, "uri", prefix)),
        _ => false,
    }
}

pub fn prefix_key(obj: &mut RawObject, key: &str, prefix: &str) -> bool {
    match obj.get_str(key) {
        Some(v) => obj.set(key, &format!("{prefix}{v}")).is_ok(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn result_type_goes_in_front_of_the_text_as_written() {
        for (text, expected) in [
            ("{}", r#"{"resultType":"complete"}"#),
            (" { } ", r#"{"resultType":"complete" }"#),
            (
                r#"{"content":[{"type":"text","text":"1.50"}],"n":1.50}"#,
                r#"{"resultType":"complete","content":[{"type":"text","text":"1.50"}],"n":1.50}"#,
            ),
            (
                "\n{ \"isError\" : false }",
                "{\"resultType\":\"complete\", \"isError\" : false }",
            ),
        ] {
            let with = with_result_type(&raw(text)).unwrap();
            assert_eq!(with.get(), expected, "from {text:?}");
            let value: Value = serde_json::from_str(with.get()).unwrap();
            assert_eq!(value["resultType"], "complete");
        }
        assert!(has_result_type(
            &with_result_type(&raw("{\"a\":{\"resultType\":1}}")).unwrap()
        ));
        assert!(
            !has_result_type(&raw("{\"a\":{\"resultType\":1}}")),
            "nested only"
        );
        assert!(!has_result_type(&raw("[1]")));
        assert!(with_result_type(&raw("[1]")).is_none());
        assert!(with_result_type(&raw("\"{\"")).is_none());
    }

    #[test]
    fn links_in_results_get_the_upstream_prefix() {
        let call = || {
            json!({"content": [
                {"type": "text", "text": "file:///a"},
                {"type": "resource_link", "uri": "file:///a", "name": "a"},
                {"type": "resource", "resource": {"uri": "file:///b", "text": "b"}},
                "not an object"
            ]})
        };
        let mut result = call();
        let done = rewrite_with("fs__", Method::ToolsCall, false, &mut result);
        assert_eq!(
            done,
            Rewritten {
                uris: true,
                result_type: false
            }
        );
        assert_eq!(result["content"][0]["text"], "file:///a");
        assert_eq!(result["content"][1]["uri"], "fs__file:///a");
        assert_eq!(result["content"][2]["resource"]["uri"], "fs__file:///b");

        let mut read = json!({"contents": [{"uri": "file:///c", "text": "c"}]});
        assert!(rewrite_with("fs__", Method::ResourcesRead, false, &mut read).uris);
        assert_eq!(read["contents"][0]["uri"], "fs__file:///c");

        let mut prompt = json!({"messages": [
            {"role": "user", "content": {"type": "resource_link", "uri": "file:///d", "name": "d"}},
            {"role": "user", "content": {"type": "text", "text": "hi"}}
        ]});
        assert!(rewrite_with("fs__", Method::PromptsGet, false, &mut prompt).uris);
        assert_eq!(prompt["messages"][0]["content"]["uri"], "fs__file:///d");

        // No prefix, nothing to rewrite: the result is left alone.
        let mut same = call();
        assert_eq!(
            rewrite_with("", Method::ToolsCall, false, &mut same),
            Rewritten::default()
        );
        assert_eq!(same, call());
        let mut text = json!({"content": [{"type": "text", "text": "x"}]});
        assert!(!rewrite_with("fs__", Method::ToolsCall, false, &mut text).uris);
    }

    #[test]
    fn result_type_is_added_for_modern_clients_only_when_missing() {
        let mut result = json!({"content": []});
        assert!(!rewrite_with("", Method::ToolsCall, false, &mut result).result_type);
        assert!(result.get("resultType").is_none());
        assert!(rewrite_with("", Method::ToolsCall, true, &mut result).result_type);
        assert_eq!(result["resultType"], "complete");
        let mut asked = json!({"resultType": "input_required"});
        assert!(!rewrite_with("", Method::ToolsCall, true, &mut asked).result_type);
        assert_eq!(asked["resultType"], "input_required");
    }
}
