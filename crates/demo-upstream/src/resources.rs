//! Resources: every regular file under the root, as `file:///<absolute path>` (percent-encoded).
//!
//! `resources/list` pages by 50 with an opaque cursor; `resources/read` resolves the URI through
//! [`Root`], so a URI outside the root, or through a symlink out of it, is "not found".

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

use crate::era::Era;
use crate::files::{FileError, Root};
use crate::jsonrpc::{INTERNAL_ERROR, RESOURCE_NOT_FOUND_LEGACY, RpcError};

pub(crate) const PAGE_SIZE: usize = 50;
const CURSOR_PREFIX: &str = "offset:";

/// `file://` + the absolute path, with every byte outside `[A-Za-z0-9-._~/]` percent-encoded.
pub(crate) fn file_uri(path: &Path) -> String {
    let raw = path.to_string_lossy();
    let mut uri = String::with_capacity(raw.len() + 8);
    uri.push_str("file://");
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri
}

/// The absolute path a `file:///…` URI names, or `None` when it is not one.
pub(crate) fn parse_file_uri(uri: &str) -> Option<PathBuf> {
    let encoded = uri.strip_prefix("file://")?;
    if !encoded.starts_with('/') {
        return None;
    }
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = tail.get(..2)?;
            let hex = std::str::from_utf8(hex).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = tail.get(2..)?;
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    let path = String::from_utf8(bytes).ok()?;
    (!path.contains('\0')).then(|| PathBuf::from(path))
}

fn encode_cursor(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{offset}"))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    std::str::from_utf8(&raw)
        .ok()?
        .strip_prefix(CURSOR_PREFIX)?
        .parse()
        .ok()
}

fn internal(e: &FileError) -> RpcError {
    tracing::warn!(error = %e, "listing the served directory failed");
    RpcError::new(INTERNAL_ERROR, "Internal error")
}

pub(crate) async fn list(root: &Root, params: &Map<String, Value>) -> Result<Value, RpcError> {
    let offset = match params.get("cursor") {
        None | Some(Value::Null) => 0,
        Some(Value::String(c)) => decode_cursor(c)
            .ok_or_else(|| RpcError::invalid_params("Invalid params: unknown cursor"))?,
        Some(_) => {
            return Err(RpcError::invalid_params(
                "Invalid params: cursor must be a string",
            ));
        }
    };
    let files = root.walk().await.map_err(|e| internal(&e))?;
    let resources: Vec<Value> = files
        .iter()
        .skip(offset)
        .take(PAGE_SIZE)
        .map(|path| {
            let name = path.strip_prefix(root.dir()).unwrap_or(path);
            json!({
                "uri": file_uri(path),
                "name": name.to_string_lossy(),
                "mimeType": "text/plain",
            })
        })
        .collect();
    let mut result = json!({ "resources": resources });
    let next = offset.saturating_add(PAGE_SIZE);
    if next < files.len() {
        result["nextCursor"] = Value::from(encode_cursor(next));
    }
    Ok(result)
}

pub(crate) fn templates() -> Value {
    json!({
        "resourceTemplates": [{
            "uriTemplate": "file:///{path}",
            "name": "files",
            "title": "Files in the demo directory",
            "description": "Any file under the served directory, by absolute path",
            "mimeType": "text/plain",
        }]
    })
}

/// Not found: `-32002` before 2026-07-28, `-32602` from it on.
fn not_found(uri: &str, era: Era) -> RpcError {
    let code = match era {
        Era::Legacy(_) => RESOURCE_NOT_FOUND_LEGACY,
        Era::Modern => crate::jsonrpc::INVALID_PARAMS,
    };
    RpcError::new(code, "Resource not found").with_data(json!({ "uri": uri }))
}

pub(crate) async fn read(
    root: &Root,
    params: &Map<String, Value>,
    era: Era,
) -> Result<Value, RpcError> {
    let Some(uri) = params.get("uri").and_then(Value::as_str) else {
        return Err(RpcError::invalid_params(
            "Invalid params: uri (a string) is required",
        ));
    };
    let path = parse_file_uri(uri).ok_or_else(|| not_found(uri, era))?;
    let bytes = match root.read_bytes(&path).await {
        Ok(bytes) => bytes,
        Err(FileError::TooLarge) => {
            return Err(RpcError::invalid_params(
                "Invalid params: resource is too large to read",
            ));
        }
        Err(FileError::Io(kind)) => {
            tracing::warn!(?kind, "reading a resource failed");
            return Err(RpcError::new(INTERNAL_ERROR, "Internal error"));
        }
        Err(_) => return Err(not_found(uri, era)),
    };
    let content = match String::from_utf8(bytes) {
        Ok(text) => json!({ "uri": uri, "mimeType": "text/plain", "text": text }),
        Err(e) => json!({
            "uri": uri,
            "mimeType": "application/octet-stream",
            "blob": STANDARD.encode(e.into_bytes()),
        }),
    };
    Ok(json!({ "contents": [content] }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip_and_reject_other_shapes() {
        let path = Path::new("/tmp/dir with space/ä%.txt");
        let uri = file_uri(path);
        assert_eq!(uri, "file:///tmp/dir%20with%20space/%C3%A4%25.txt");
        assert_eq!(parse_file_uri(&uri).as_deref(), Some(path));
        assert_eq!(
            parse_file_uri("file:///a%2Fb").as_deref(),
            Some(Path::new("/a/b"))
        );
        for bad in [
            "http://x/y",
            "file://host/x",
            "file:///x%2",
            "file:///x%zz",
            "file:///%00",
            "file:///%FF",
        ] {
            assert_eq!(parse_file_uri(bad), None, "{bad}");
        }
    }

    #[test]
    fn cursors_are_opaque_and_checked() {
        assert_eq!(decode_cursor(&encode_cursor(150)), Some(150));
        assert_eq!(decode_cursor("50"), None);
        assert_eq!(decode_cursor("!!"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("offset:-1")), None);
    }
}
