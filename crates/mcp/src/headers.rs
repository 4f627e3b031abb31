//! The 2026-07-28 request-metadata headers and their consistency with the body.
//!
//! Pure functions: the caller passes header values as read from the request.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
pub const METHOD: &str = "mcp-method";
pub const NAME: &str = "mcp-name";
pub const SESSION_ID: &str = "mcp-session-id";
pub const LAST_EVENT_ID: &str = "last-event-id";

/// Why headers and body disagree (HTTP 400, JSON-RPC -32020).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderMismatch {
    #[error("missing required header {0}")]
    Missing(&'static str),
    #[error("header {header} is malformed")]
    Malformed { header: &'static str },
    #[error("header {header} value does not match the request body")]
    Differs { header: &'static str },
    /// A tool argument declared with `x-mcp-header` (SEP-2243) and its `Mcp-Param-*` header
    /// disagree: missing, malformed, or a different value.
    #[error("header Mcp-Param-{name} {problem}")]
    Param { name: String, problem: &'static str },
}

/// The `Mcp-Param-*` header prefix (compared case-insensitively).
pub const PARAM_PREFIX: &str = "mcp-param-";

/// The arguments of a tool that travel as headers: `(argument, header suffix)` for every
/// property of `input_schema` with an `x-mcp-header` string.
pub fn param_headers(input_schema: Option<&serde_json::Value>) -> Vec<(String, String)> {
    input_schema
        .and_then(|s| s.get("properties"))
        .and_then(serde_json::Value::as_object)
        .map(|props| {
            props
                .iter()
                .filter_map(|(arg, p)| {
                    let header = p.get("x-mcp-header")?.as_str()?;
                    Some((arg.clone(), header.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// An argument's value as its header carries it: strings as they are, numbers and booleans
/// as JSON text; other values (and `null`) have no header form.
pub fn param_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Checks a `tools/call`'s `Mcp-Param-*` headers against its arguments (SEP-2243): every
/// argument declared with `x-mcp-header` that the body carries must come with its header, and
/// a header must decode (`=?base64?…?=` strictly; anything else is literal, surrounding
/// whitespace removed) to exactly the body's value. `headers` are (lowercase suffix, raw value).
pub fn check_params(
    declared: &[(String, String)],
    arguments: Option<&serde_json::Value>,
    headers: &[(String, String)],
) -> Result<(), HeaderMismatch> {
    for (arg, name) in declared {
        let body = arguments.and_then(|a| a.get(arg)).and_then(param_text);
        let lower = name.to_ascii_lowercase();
        let header = headers.iter().find(|(n, _)| *n == lower).map(|(_, v)| v);
        let problem = |problem| HeaderMismatch::Param {
            name: name.clone(),
            problem,
        };
        match (body, header) {
            (None, None) => {}
            (Some(_), None) => return Err(problem("is missing")),
            (body, Some(raw)) => {
                let decoded = decode_value(raw.trim_matches([' ', '\t']))
                    .map_err(|BadValue| problem("is malformed"))?;
                if body.as_deref() != Some(decoded.as_str()) {
                    return Err(problem("does not match the argument"));
                }
            }
        }
    }
    Ok(())
}

/// The `Mcp-Param-*` headers a call with `arguments` carries to a server whose tool declares
/// `declared` (full header names, values encoded for the wire).
pub fn params_for(
    declared: &[(String, String)],
    arguments: Option<&serde_json::Value>,
) -> Vec<(String, String)> {
    declared
        .iter()
        .filter_map(|(arg, name)| {
            let value = arguments?.get(arg).and_then(param_text)?;
            Some((format!("Mcp-Param-{name}"), encode_value(&value)))
        })
        .collect()
}

/// A header value that is neither header-safe text nor valid `=?base64?…?=` UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("header value is not valid")]
pub struct BadValue;

/// Decodes a header value that may use the `=?base64?…?=` sentinel form.
pub fn decode_value(raw: &str) -> Result<String, BadValue> {
    if let Some(inner) = raw
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        let bytes = STANDARD.decode(inner).map_err(|_| BadValue)?;
        return String::from_utf8(bytes).map_err(|_| BadValue);
    }
    if raw
        .bytes()
        .all(|b| b == b'\t' || (0x20..=0x7e).contains(&b))
    {
        Ok(raw.to_owned())
    } else {
        Err(BadValue)
    }
}

/// Encodes a value for `Mcp-Name` / `Mcp-Param-*`: plain when header-safe, sentinel otherwise.
pub fn encode_value(value: &str) -> String {
    let looks_encoded = value.starts_with("=?base64?") && value.ends_with("?=");
    let safe = !value.is_empty()
        && value.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && !value.starts_with(' ')
        && !value.ends_with(' ')
        && !looks_encoded;
    if safe {
        value.to_owned()
    } else {
        format!("=?base64?{}?=", STANDARD.encode(value.as_bytes()))
    }
}

/// Header values of one request (already converted to `&str`; a non-UTF-8 value is `Err`).
#[derive(Debug, Default, Clone)]
pub struct MetaHeaders<'a> {
    pub protocol_version: Option<Result<&'a str, ()>>,
    pub method: Option<Result<&'a str, ()>>,
    pub name: Option<Result<&'a str, ()>>,
}

/// Checks the modern-era rules: `MCP-Protocol-Version` equals the body's `_meta` version,
/// `Mcp-Method` equals `method`, and `Mcp-Name` (decoded) equals `params.name`/`params.uri`
/// for the methods that require it.
pub fn check(
    headers: &MetaHeaders<'_>,
    body_version: Option<&str>,
    body_method: &str,
    body_name: Option<&str>,
    name_required: bool,
) -> Result<(), HeaderMismatch> {
    let version = match headers.protocol_version {
        None => return Err(HeaderMismatch::Missing("MCP-Protocol-Version")),
        Some(Err(())) => {
            return Err(HeaderMismatch::Malformed {
                header: "MCP-Protocol-Version",
            });
        }
        Some(Ok(v)) => v,
    };
    if body_version.is_some_and(|b| b != version) {
        return Err(HeaderMismatch::Differs {
            header: "MCP-Protocol-Version",
        });
    }
    match headers.method {
        None => return Err(HeaderMismatch::Missing("Mcp-Method")),
        Some(Err(())) => {
            return Err(HeaderMismatch::Malformed {
                header: "Mcp-Method",
            });
        }
        Some(Ok(m)) if m != body_method => {
            return Err(HeaderMismatch::Differs {
                header: "Mcp-Method",
            });
        }
        Some(Ok(_)) => {}
    }
    match (headers.name, body_name) {
        (None, Some(_)) if name_required => Err(HeaderMismatch::Missing("Mcp-Name")),
        (None, _) => Ok(()),
        (Some(Err(())), _) => Err(HeaderMismatch::Malformed { header: "Mcp-Name" }),
        (Some(Ok(h)), body) => {
            let decoded = decode_value(h)
                .map_err(|BadValue| HeaderMismatch::Malformed { header: "Mcp-Name" })?;
            if Some(decoded.as_str()) == body {
                Ok(())
            } else {
                Err(HeaderMismatch::Differs { header: "Mcp-Name" })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_header_table() {
        use serde_json::json;
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "limit": {"type": "integer", "x-mcp-header": "Limit"},
            "note": {"type": "string"}
        }});
        let declared = param_headers(Some(&schema));
        assert_eq!(declared.len(), 2);
        let hello_b64 = "=?base64?SGVsbG8=?=";
        // (arguments, headers, ok)
        type Row<'a> = (serde_json::Value, Vec<(&'a str, &'a str)>, bool);
        let rows: Vec<Row<'_>> = vec![
            (json!({"region": "eu"}), vec![("region", "eu")], true),
            (json!({"region": "eu"}), vec![("region", "  eu  ")], true),
            (
                json!({"region": "Hello"}),
                vec![("region", hello_b64)],
                true,
            ),
            (
                json!({"region": "Hello"}),
                vec![("region", "=?base64?SGVsbG8?=")],
                false,
            ),
            (
                json!({"region": "Hello"}),
                vec![("region", "=?base64?SGVs!!!bG8=?=")],
                false,
            ),
            (
                json!({"region": "SGVsbG8="}),
                vec![("region", "SGVsbG8=")],
                true,
            ),
            (
                json!({"region": "=?base64?SGVsbG8="}),
                vec![("region", "=?base64?SGVsbG8=")],
                true,
            ),
            (json!({"region": "eu"}), vec![], false),
            (json!({"region": "eu"}), vec![("region", "us")], false),
            (json!({}), vec![("region", "eu")], false),
            (json!({}), vec![], true),
            (
                json!({"region": "eu", "limit": 5}),
                vec![("region", "eu"), ("limit", "5")],
                true,
            ),
            (
                json!({"region": "eu", "limit": 5}),
                vec![("region", "eu")],
                false,
            ),
            (json!({"note": "x"}), vec![], true),
        ];
        for (args, headers, ok) in rows {
            let headers: Vec<(String, String)> = headers
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect();
            assert_eq!(
                check_params(&declared, Some(&args), &headers).is_ok(),
                ok,
                "{args} {headers:?}"
            );
        }
        // What the gateway sends upstream round-trips through the check.
        for value in ["eu", " padded ", "Grüße", "=?base64?x?="] {
            let args = json!({"region": value});
            let sent: Vec<(String, String)> = params_for(&declared, Some(&args))
                .into_iter()
                .map(|(n, v)| {
                    (
                        n.to_ascii_lowercase()
                            .trim_start_matches(PARAM_PREFIX)
                            .to_owned(),
                        v,
                    )
                })
                .collect();
            assert!(
                check_params(&declared, Some(&args), &sent).is_ok(),
                "{value:?} {sent:?}"
            );
        }
    }

    fn h<'a>(v: Option<&'a str>, m: Option<&'a str>, n: Option<&'a str>) -> MetaHeaders<'a> {
        MetaHeaders {
            protocol_version: v.map(Ok),
            method: m.map(Ok),
            name: n.map(Ok),
        }
    }

    #[test]
    fn check_table() {
        let v = Some("2026-07-28");
        type Row<'a> = (
            MetaHeaders<'a>,
            Option<&'a str>,
            &'a str,
            Option<&'a str>,
            bool,
            Result<(), HeaderMismatch>,
        );
        let rows: Vec<Row<'_>> = vec![
            (
                h(v, Some("tools/call"), Some("echo")),
                v,
                "tools/call",
                Some("echo"),
                true,
                Ok(()),
            ),
            (
                h(v, Some("tools/list"), None),
                v,
                "tools/list",
                None,
                false,
                Ok(()),
            ),
            (
                h(None, Some("tools/list"), None),
                v,
                "tools/list",
                None,
                false,
                Err(HeaderMismatch::Missing("MCP-Protocol-Version")),
            ),
            (
                h(Some("2025-11-25"), Some("tools/list"), None),
                v,
                "tools/list",
                None,
                false,
                Err(HeaderMismatch::Differs {
                    header: "MCP-Protocol-Version",
                }),
            ),
            (
                h(v, None, None),
                v,
                "tools/list",
                None,
                false,
                Err(HeaderMismatch::Missing("Mcp-Method")),
            ),
            (
                h(v, Some("tools/list"), None),
                v,
                "tools/call",
                Some("x"),
                true,
                Err(HeaderMismatch::Differs {
                    header: "Mcp-Method",
                }),
            ),
            (
                h(v, Some("tools/call"), None),
                v,
                "tools/call",
                Some("x"),
                true,
                Err(HeaderMismatch::Missing("Mcp-Name")),
            ),
            (
                h(v, Some("tools/call"), Some("y")),
                v,
                "tools/call",
                Some("x"),
                true,
                Err(HeaderMismatch::Differs { header: "Mcp-Name" }),
            ),
            (
                h(
                    v,
                    Some("resources/read"),
                    Some("=?base64?ZmlsZTovLy/kuJbnlYw=?="),
                ),
                v,
                "resources/read",
                Some("file:///世界"),
                true,
                Ok(()),
            ),
            (
                h(v, Some("resources/read"), Some("=?base64?!!!?=")),
                v,
                "resources/read",
                Some("x"),
                true,
                Err(HeaderMismatch::Malformed { header: "Mcp-Name" }),
            ),
        ];
        for (i, (headers, bv, bm, bn, req, want)) in rows.into_iter().enumerate() {
            assert_eq!(check(&headers, bv, bm, bn, req), want, "row {i}");
        }
    }

    #[test]
    fn encoding_table() {
        let rows = [
            ("us-west1", "us-west1"),
            ("Hello, 世界", "=?base64?SGVsbG8sIOS4lueVjA==?="),
            (" padded ", "=?base64?IHBhZGRlZCA=?="),
            ("line1\nline2", "=?base64?bGluZTEKbGluZTI=?="),
            ("=?base64?literal?=", "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="),
        ];
        for (plain, encoded) in rows {
            assert_eq!(encode_value(plain), encoded);
            assert_eq!(decode_value(encoded).as_deref(), Ok(plain));
            assert_eq!(decode_value("a\u{1}b"), Err(BadValue));
        }
    }
}
