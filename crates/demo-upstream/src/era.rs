//! Protocol revisions and eras: which rules a request is served under.
//!
//! A request whose `params._meta` names `io.modelcontextprotocol/protocolVersion` as a modern
//! revision is served statelessly (2026-07-28). `initialize` opens the legacy era, scoped to the
//! stdio process or the HTTP session. Everything else is legacy and needs that scope.

use serde_json::{Map, Value, json};

use crate::jsonrpc::{INVALID_PARAMS, RpcError, UNSUPPORTED_PROTOCOL_VERSION};

pub(crate) const MODERN: &str = "2026-07-28";
pub(crate) const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub(crate) const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub(crate) const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// Every revision served, newest first (the `supportedVersions` of `server/discover`).
pub(crate) const SUPPORTED_VERSIONS: [&str; 3] = [MODERN, "2025-11-25", "2025-06-18"];

/// A legacy revision, negotiated by `initialize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Legacy {
    V2025_06_18,
    V2025_11_25,
}

impl Legacy {
    pub(crate) const LATEST: Self = Self::V2025_11_25;

    pub(crate) fn parse(version: &str) -> Option<Self> {
        match version {
            "2025-06-18" => Some(Self::V2025_06_18),
            "2025-11-25" => Some(Self::V2025_11_25),
            _ => None,
        }
    }

    /// Answer with the client's version when supported, else the latest legacy one.
    pub(crate) fn negotiate(requested: &str) -> Self {
        Self::parse(requested).unwrap_or(Self::LATEST)
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::V2025_06_18 => "2025-06-18",
            Self::V2025_11_25 => "2025-11-25",
        }
    }
}

/// The rules a request is served under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Era {
    Legacy(Legacy),
    Modern,
}

impl Era {
    pub(crate) fn is_modern(self) -> bool {
        self == Self::Modern
    }
}

/// The client capabilities this server acts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ClientCaps {
    /// Form-mode elicitation (`elicitation: {}` or `elicitation: {form: {}}`).
    pub elicitation_form: bool,
}

impl ClientCaps {
    pub(crate) fn from_value(caps: Option<&Value>) -> Self {
        let form = match caps.and_then(|c| c.get("elicitation")) {
            Some(Value::Object(e)) => e.is_empty() || e.contains_key("form"),
            _ => false,
        };
        Self {
            elicitation_form: form,
        }
    }
}

/// A modern request's envelope, before its version is checked against the supported set.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModernEnvelope {
    pub requested: String,
    pub caps: ClientCaps,
}

impl ModernEnvelope {
    /// The `-32022` check; run after the HTTP header check so a self-contradicting client is told so.
    pub(crate) fn accept(&self) -> Result<ClientCaps, RpcError> {
        if self.requested == MODERN {
            Ok(self.caps)
        } else {
            Err(unsupported_version(&self.requested))
        }
    }
}

pub(crate) fn unsupported_version(requested: &str) -> RpcError {
    RpcError::new(UNSUPPORTED_PROTOCOL_VERSION, "Unsupported protocol version")
        .with_data(json!({ "supported": SUPPORTED_VERSIONS, "requested": requested }))
}

/// How a request opens, decided from its body alone.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Route {
    /// Per-request metadata: served statelessly.
    Modern(ModernEnvelope),
    /// `initialize`: opens (or reopens) a legacy scope.
    Initialize,
    /// Anything else: served in the legacy scope the transport holds, if any.
    Legacy,
}

pub(crate) fn route(method: &str, params: &Map<String, Value>) -> Result<Route, RpcError> {
    let meta = params.get("_meta").and_then(Value::as_object);
    let Some(version) = meta.and_then(|m| m.get(META_PROTOCOL_VERSION)) else {
        return Ok(if method == "initialize" {
            Route::Initialize
        } else {
            Route::Legacy
        });
    };
    let Some(version) = version.as_str() else {
        return Err(RpcError::new(
            INVALID_PARAMS,
            format!("Invalid params: _meta[\"{META_PROTOCOL_VERSION}\"] must be a string"),
        ));
    };
    if Legacy::parse(version).is_some() {
        // A legacy revision named per request: legacy rules (the transport's scope decides).
        return Ok(if method == "initialize" {
            Route::Initialize
        } else {
            Route::Legacy
        });
    }
    let caps = meta.and_then(|m| m.get(META_CLIENT_CAPABILITIES));
    if !matches!(caps, Some(Value::Object(_))) {
        return Err(RpcError::new(
            INVALID_PARAMS,
            format!(
                "Invalid params: _meta[\"{META_CLIENT_CAPABILITIES}\"] is required (an object) on every request"
            ),
        ));
    }
    Ok(Route::Modern(ModernEnvelope {
        requested: version.to_owned(),
        caps: ClientCaps::from_value(caps),
    }))
}

/// The error for a legacy-shaped request that arrives outside any legacy scope.
pub(crate) fn not_initialized() -> RpcError {
    RpcError::new(
        INVALID_PARAMS,
        format!(
            "Invalid params: no session; send initialize first, or carry _meta[\"{META_PROTOCOL_VERSION}\"] = \"{MODERN}\" on every request"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn requests_route_by_body() {
        let caps = json!({ META_CLIENT_CAPABILITIES: {} });
        let modern =
            json!({ "_meta": { META_PROTOCOL_VERSION: MODERN, META_CLIENT_CAPABILITIES: {} } });
        let rows: Vec<(&str, Value, Result<Route, i64>)> = vec![
            ("initialize", json!({}), Ok(Route::Initialize)),
            ("tools/list", json!({}), Ok(Route::Legacy)),
            (
                "tools/list",
                json!({ "_meta": { "progressToken": 1 } }),
                Ok(Route::Legacy),
            ),
            (
                "tools/list",
                modern.clone(),
                Ok(Route::Modern(ModernEnvelope {
                    requested: MODERN.into(),
                    caps: ClientCaps::default(),
                })),
            ),
            (
                "tools/list",
                json!({ "_meta": { META_PROTOCOL_VERSION: "1900-01-01", META_CLIENT_CAPABILITIES: {} } }),
                Ok(Route::Modern(ModernEnvelope {
                    requested: "1900-01-01".into(),
                    caps: ClientCaps::default(),
                })),
            ),
            (
                "tools/list",
                json!({ "_meta": { META_PROTOCOL_VERSION: MODERN } }),
                Err(INVALID_PARAMS),
            ),
            (
                "tools/list",
                json!({ "_meta": { META_PROTOCOL_VERSION: 5 } }),
                Err(INVALID_PARAMS),
            ),
            (
                "tools/list",
                json!({ "_meta": { META_PROTOCOL_VERSION: "2025-11-25" } }),
                Ok(Route::Legacy),
            ),
            ("tools/list", caps, Ok(Route::Legacy)),
        ];
        for (method, p, want) in rows {
            let got = route(method, &params(p.clone())).map_err(|e| e.code);
            assert_eq!(got, want, "{method} {p}");
        }
    }

    #[test]
    fn unsupported_modern_version_lists_what_is_served() {
        let env = ModernEnvelope {
            requested: "1900-01-01".into(),
            caps: ClientCaps::default(),
        };
        let err = env.accept().unwrap_err();
        assert_eq!(err.code, UNSUPPORTED_PROTOCOL_VERSION);
        assert_eq!(
            err.data,
            Some(
                json!({ "supported": ["2026-07-28", "2025-11-25", "2025-06-18"], "requested": "1900-01-01" })
            )
        );
    }

    #[test]
    fn negotiation_and_capabilities() {
        assert_eq!(Legacy::negotiate("2025-06-18"), Legacy::V2025_06_18);
        assert_eq!(Legacy::negotiate("2025-11-25"), Legacy::V2025_11_25);
        assert_eq!(Legacy::negotiate("2024-11-05"), Legacy::V2025_11_25);
        assert_eq!(Legacy::negotiate(MODERN), Legacy::V2025_11_25);
        let form = |v: Value| ClientCaps::from_value(Some(&v)).elicitation_form;
        assert!(form(json!({ "elicitation": {} })));
        assert!(form(json!({ "elicitation": { "form": {} } })));
        assert!(!form(json!({ "elicitation": { "url": {} } })));
        assert!(!form(json!({ "sampling": {} })));
        assert!(!ClientCaps::from_value(None).elicitation_form);
    }
}
