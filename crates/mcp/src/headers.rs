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
