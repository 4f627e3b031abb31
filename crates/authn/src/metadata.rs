//! OAuth 2.0 Protected Resource Metadata (RFC 9728) and the well-known URLs derived from
//! `auth.resource`.

use serde_json::{Value, json};

/// Path of the gateway's own JWKS document (its minted-token verification keys).
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// RFC 9728 well-known prefix.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// `https://gw.example/mcp` → (`https://gw.example`, `/mcp`). A resource without a path gives
/// an empty path.
pub(crate) fn split_resource(resource: &str) -> (&str, &str) {
    let after_scheme = resource.find("://").map_or(0, |i| i + 3);
    match resource.get(after_scheme..).and_then(|rest| rest.find('/')) {
        Some(slash) => resource.split_at(after_scheme + slash),
        None => (resource, ""),
    }
}

/// RFC 9728 §3.1: the well-known path inserted between the origin and the resource's path:
/// `https://gw.example/mcp` → `https://gw.example/.well-known/oauth-protected-resource/mcp`.
pub fn metadata_url(resource: &str) -> String {
    let (origin, path) = split_resource(resource);
    let path = path.trim_end_matches('/');
    format!("{origin}{METADATA_PATH}{path}")
}

/// `https://gw.example/mcp` → `https://gw.example/.well-known/jwks.json`.
pub fn jwks_url(resource: &str) -> String {
    let (origin, _) = split_resource(resource);
    format!("{origin}{JWKS_PATH}")
}

/// The metadata document: `resource`, `authorization_servers` (the `[[auth.jwt]]` issuers),
/// `bearer_methods_supported` (header only: never the query string), `scopes_supported`
/// (`auth.required_scopes`, when set) and `jwks_uri` (the gateway's own token keys).
pub(crate) fn document(resource: &str, issuers: &[String], required_scopes: &[String]) -> Value {
    let mut doc = json!({
        "resource": resource,
        "authorization_servers": issuers,
        "bearer_methods_supported": ["header"],
        "jwks_uri": jwks_url(resource),
        "resource_name": "Portcullis MCP gateway",
    });
    if !required_scopes.is_empty() {
        doc["scopes_supported"] = json!(required_scopes);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_table() {
        let rows = [
            (
                "https://gw.example/mcp",
                "https://gw.example/.well-known/oauth-protected-resource/mcp",
                "https://gw.example/.well-known/jwks.json",
            ),
            (
                "http://127.0.0.1:8080/mcp",
                "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp",
                "http://127.0.0.1:8080/.well-known/jwks.json",
            ),
            (
                "https://gw.example",
                "https://gw.example/.well-known/oauth-protected-resource",
                "https://gw.example/.well-known/jwks.json",
            ),
            (
                "https://gw.example/a/mcp/",
                "https://gw.example/.well-known/oauth-protected-resource/a/mcp",
                "https://gw.example/.well-known/jwks.json",
            ),
            (
                "http://[::1]:9/mcp",
                "http://[::1]:9/.well-known/oauth-protected-resource/mcp",
                "http://[::1]:9/.well-known/jwks.json",
            ),
        ];
        for (resource, meta, jwks) in rows {
            assert_eq!(metadata_url(resource), meta);
            assert_eq!(jwks_url(resource), jwks);
        }
    }

    #[test]
    fn document_fields() {
        let doc = document(
            "https://gw.example/mcp",
            &["https://idp.example".to_owned()],
            &["mcp".to_owned()],
        );
        assert_eq!(doc["resource"], "https://gw.example/mcp");
        assert_eq!(doc["authorization_servers"][0], "https://idp.example");
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
        assert_eq!(doc["scopes_supported"], json!(["mcp"]));
        let bare = document("https://gw.example/mcp", &[], &[]);
        assert!(bare.get("scopes_supported").is_none());
    }
}
