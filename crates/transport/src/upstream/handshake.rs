//! Era detection and the legacy `initialize` handshake, shared by both transports.

use std::sync::Arc;

use portcullis_mcp::version::meta;
use portcullis_mcp::{Era, RawObject, Revision};
use serde_json::value::RawValue;

use super::{ServerIdentity, UpstreamError};

/// Capabilities the gateway declares to 2025-era upstreams. Roots are deliberately absent: an
/// upstream's filesystem view is the operator's decision, not something a client may widen.
pub(crate) const CLIENT_CAPABILITIES: &str =
    r#"{"sampling":{},"elicitation":{"form":{},"url":{}}}"#;

pub(crate) fn discover_params() -> Box<RawValue> {
    raw(&format!(
        r#"{{"_meta":{{"{}":"2026-07-28","{}":{},"{}":{{"name":"portcullis","version":"{}"}}}}}}"#,
        meta::PROTOCOL_VERSION,
        meta::CLIENT_CAPABILITIES,
        CLIENT_CAPABILITIES,
        meta::CLIENT_INFO,
        env!("CARGO_PKG_VERSION")
    ))
}

pub(crate) fn initialize_params() -> Box<RawValue> {
    raw(&format!(
        r#"{{"protocolVersion":"{}","capabilities":{},"clientInfo":{{"name":"portcullis","version":"{}"}}}}"#,
        Revision::LATEST_LEGACY.as_str(),
        CLIENT_CAPABILITIES,
        env!("CARGO_PKG_VERSION")
    ))
}

fn raw(s: &str) -> Box<RawValue> {
    RawValue::from_string(s.to_owned()).unwrap_or_else(|_| super::meta::empty_object())
}

fn arc(raw: &RawValue) -> Arc<RawValue> {
    Arc::from(raw.to_owned())
}

/// Reads a `server/discover` result; `None` when it does not offer 2026-07-28.
pub(crate) fn read_discover(result: &RawValue) -> Option<ServerIdentity> {
    let obj = RawObject::from_raw(result).ok()?;
    let versions: Vec<String> = obj.get_as("supportedVersions")?.ok()?;
    if !versions.iter().any(|v| v == Revision::V2026_07_28.as_str()) {
        return None;
    }
    let capabilities = obj
        .get("capabilities")
        .map(arc)
        .unwrap_or_else(|| arc(&super::meta::empty_object()));
    let server_info = obj
        .get("_meta")
        .and_then(|m| RawObject::from_raw(m).ok())
        .and_then(|m| m.get(meta::SERVER_INFO).map(arc));
    Some(ServerIdentity {
        era: Era::Modern,
        protocol_version: Revision::V2026_07_28.as_str().to_owned(),
        capabilities,
        server_info,
        instructions: obj.get_str("instructions"),
    })
}

/// Reads an `initialize` result.
pub(crate) fn read_initialize(result: &RawValue) -> Result<ServerIdentity, UpstreamError> {
    let obj = RawObject::from_raw(result)
        .map_err(|e| UpstreamError::Protocol(format!("initialize result: {e}")))?;
    let version = obj
        .get_str("protocolVersion")
        .ok_or_else(|| UpstreamError::Protocol("initialize result lacks protocolVersion".into()))?;
    match Revision::parse(&version) {
        Some(r) if r.era() == Era::Legacy => {}
        _ => {
            return Err(UpstreamError::Protocol(format!(
                "upstream chose unsupported protocol version {version:?}"
            )));
        }
    }
    Ok(ServerIdentity {
        era: Era::Legacy,
        protocol_version: version,
        capabilities: obj
            .get("capabilities")
            .map(arc)
            .unwrap_or_else(|| arc(&super::meta::empty_object())),
        server_info: obj.get("serverInfo").map(arc),
        instructions: obj.get_str("instructions"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_valid_json() {
        for p in [discover_params(), initialize_params()] {
            let _: serde_json::Value = serde_json::from_str(p.get()).unwrap();
        }
    }

    #[test]
    fn discover_table() {
        let modern = RawValue::from_string(
            r#"{"supportedVersions":["2026-07-28"],"capabilities":{"tools":{}}}"#.into(),
        )
        .unwrap();
        assert_eq!(read_discover(&modern).unwrap().era, Era::Modern);
        let other =
            RawValue::from_string(r#"{"supportedVersions":["2027-01-01"]}"#.into()).unwrap();
        assert!(read_discover(&other).is_none());
        let junk = RawValue::from_string(r#"[]"#.into()).unwrap();
        assert!(read_discover(&junk).is_none());
    }

    #[test]
    fn initialize_table() {
        let ok =
            RawValue::from_string(r#"{"protocolVersion":"2025-06-18","capabilities":{}}"#.into())
                .unwrap();
        assert_eq!(read_initialize(&ok).unwrap().protocol_version, "2025-06-18");
        let bad = RawValue::from_string(r#"{"protocolVersion":"1999-01-01"}"#.into()).unwrap();
        assert!(read_initialize(&bad).is_err());
    }
}
