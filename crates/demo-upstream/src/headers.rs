//! Streamable HTTP header rules: the modern mirrored headers (`MCP-Protocol-Version`,
//! `Mcp-Method`, `Mcp-Name`) must be present, single, and equal to the body (`-32020`).
//! `Mcp-Name` may carry the `=?base64?…?=` sentinel; it is decoded before comparing.

use std::borrow::Cow;

use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::jsonrpc::{HEADER_MISMATCH, Request, RpcError};

pub(crate) const PROTOCOL_VERSION: &str = "mcp-protocol-version";
pub(crate) const METHOD: &str = "mcp-method";
pub(crate) const NAME: &str = "mcp-name";
pub(crate) const SESSION_ID: &str = "mcp-session-id";

fn mismatch(message: String) -> RpcError {
    RpcError::new(HEADER_MISMATCH, format!("Header mismatch: {message}"))
}

/// The one value of a header: `None` when absent; an error when repeated or not visible ASCII.
pub(crate) fn single<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, RpcError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(mismatch(format!("{name} is sent more than once")));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| mismatch(format!("{name} has invalid characters")))
}

/// A header value with the base64 sentinel removed; `None` when the sentinel is malformed.
pub(crate) fn decode_value(value: &str) -> Option<Cow<'_, str>> {
    match value
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    {
        Some(payload) => {
            let bytes = STANDARD.decode(payload).ok()?;
            String::from_utf8(bytes).ok().map(Cow::Owned)
        }
        None => Some(Cow::Borrowed(value)),
    }
}

/// The body field `Mcp-Name` mirrors for a method, if any.
fn name_field(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// Checks a modern request's headers against its body (`version` is the body's `_meta` one).
pub(crate) fn check_modern(
    headers: &HeaderMap,
    version: &str,
    req: &Request,
) -> Result<(), RpcError> {
    if single(headers, PROTOCOL_VERSION)? != Some(version) {
        return Err(mismatch(format!(
            "MCP-Protocol-Version header does not match _meta protocol version '{version}'"
        )));
    }
    if single(headers, METHOD)? != Some(req.method.as_str()) {
        return Err(mismatch(format!(
            "Mcp-Method header does not match body method '{}'",
            req.method
        )));
    }
    let Some(field) = name_field(&req.method) else {
        return Ok(());
    };
    let Some(body) = req.params.get(field).and_then(Value::as_str) else {
        return Ok(()); // no name in the body: the method itself rejects the request
    };
    let header = single(headers, NAME)?;
    if header.and_then(decode_value).as_deref() != Some(body) {
        return Err(mismatch(format!(
            "Mcp-Name header does not match body {field} '{body}'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    fn request(method: &str, params: Value) -> Request {
        crate::jsonrpc::parse(
            json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params })
                .to_string()
                .as_bytes(),
        )
        .map(|m| match m {
            crate::jsonrpc::Message::Request(r) => r,
            other => panic!("{other:?}"),
        })
        .unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn sentinel_values_decode() {
        assert_eq!(decode_value("echo").as_deref(), Some("echo"));
        assert_eq!(
            decode_value("=?base64?SGVsbG8sIOS4lueVjA==?=").as_deref(),
            Some("Hello, 世界")
        );
        assert_eq!(decode_value("=?base64?!!?="), None);
        assert_eq!(decode_value("=?base64?/w==?="), None); // not UTF-8
        assert_eq!(decode_value("=?base64?=").as_deref(), Some("=?base64?="));
    }

    #[test]
    fn modern_headers_must_mirror_the_body() {
        let call = request("tools/call", json!({ "name": "echo" }));
        let list = request("tools/list", json!({}));
        let v = "2026-07-28";
        let good = [
            ("mcp-protocol-version", v),
            ("mcp-method", "tools/call"),
            ("mcp-name", "echo"),
        ];
        type Pairs<'a> = Vec<(&'static str, &'a str)>;
        let rows: Vec<(&Request, Pairs<'_>, bool)> = vec![
            (&call, good.to_vec(), true),
            (
                &call,
                vec![good[0], good[1], ("mcp-name", "=?base64?ZWNobw==?=")],
                true,
            ),
            (&list, vec![good[0], ("mcp-method", "tools/list")], true),
            (&call, vec![good[1], good[2]], false),
            (
                &call,
                vec![("mcp-protocol-version", "2025-11-25"), good[1], good[2]],
                false,
            ),
            (&call, vec![good[0], good[2]], false),
            (
                &call,
                vec![good[0], ("mcp-method", "tools/list"), good[2]],
                false,
            ),
            (&call, vec![good[0], good[1]], false),
            (&call, vec![good[0], good[1], ("mcp-name", "add")], false),
            (
                &call,
                vec![good[0], good[1], good[2], ("mcp-name", "echo")],
                false,
            ),
            (&call, vec![good[0], good[0], good[1], good[2]], false),
        ];
        for (req, pairs, ok) in rows {
            let got = check_modern(&headers(&pairs), v, req);
            assert_eq!(got.is_ok(), ok, "{pairs:?}: {got:?}");
            if let Err(e) = got {
                assert_eq!(e.code, HEADER_MISMATCH);
            }
        }
    }
}
