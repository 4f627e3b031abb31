//! The validation stage: an authorized call's arguments against the tool's `inputSchema` and
//! the operator's rules (paths, URLs with their resolved addresses, ranges, patterns), and a
//! resource URI against `[upstream.resources]`. Only a [`Validated`] call reaches an upstream.
//!
//! The response side lives here too: `outputSchema`, content sanitizing and redaction of what
//! comes back.

use portcullis_config::RedactScope;
use portcullis_guard::rules::{self, SystemResolver};
use portcullis_guard::sanitize::{SanitizeOptions, sanitize_result};
use portcullis_guard::schema;
use serde_json::Value;

use crate::Gateway;
use crate::catalog::ToolDef;
use crate::error::GatewayError;
use crate::proof::{Authorized, Validated};
use crate::relay::Target;

/// What the call is, for the checks that depend on it.
pub enum Subject<'a> {
    Tool(&'a ToolDef),
    Resource,
    Other,
}

/// Checks `call`'s arguments (`args`: the `arguments` the client sent).
pub async fn validate(
    gw: &Gateway,
    call: Authorized<Target>,
    subject: Subject<'_>,
    args: Option<&Value>,
) -> Result<Validated<Target>, GatewayError> {
    let target = call.call();
    let upstream = gw
        .federation
        .member(target.upstream)
        .map(|m| m.name.as_str())
        .unwrap_or_default();
    let principal = call.principal.id.as_str();
    match subject {
        // Whether the tool is blocked was decided before authorization (pipeline.rs::admit).
        Subject::Tool(def) => {
            let compiled = match &def.schema {
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    return Err(GatewayError::Blocked(
                        target.exposed.clone(),
                        format!("its schema is unusable: {e}"),
                    ));
                }
                None => {
                    return Err(GatewayError::Internal(
                        "a tool definition without schemas".into(),
                    ));
                }
            };
            schema::check_args(compiled, args)
                .map_err(|v| GatewayError::InvalidArguments(v.to_string()))?;
            let pending = gw
                .guard
                .check_args(upstream, &target.inner, args, principal)
                .map_err(|v| GatewayError::InvalidArguments(v.to_string()))?;
            rules::check_resolved(&pending, &SystemResolver)
                .await
                .map_err(|v| GatewayError::InvalidArguments(v.to_string()))?;
        }
        Subject::Resource => {
            let pending = gw
                .guard
                .check_resource_uri(upstream, &target.inner, principal)
                .map_err(|v| GatewayError::InvalidArguments(v.to_string()))?;
            if let Some(p) = pending {
                rules::check_resolved(std::slice::from_ref(&p), &SystemResolver)
                    .await
                    .map_err(|v| GatewayError::InvalidArguments(v.to_string()))?;
            }
        }
        Subject::Other => {}
    }
    Ok(Validated::assert(call))
}

/// What the response guard did to a result.
#[derive(Debug, Default)]
pub struct Screened {
    pub redactions: usize,
    pub removed_hidden: usize,
    pub truncated_bytes: usize,
}

impl Screened {
    /// Whether the result was changed (and must be serialized again).
    pub fn changed(&self) -> bool {
        self.redactions > 0 || self.removed_hidden > 0 || self.truncated_bytes > 0
    }
}

/// Whether screening a result ([`screen_result`]) needs the whole of it: an `outputSchema` to
/// check, or redaction of results. Hidden characters do not: a result passed through loses
/// them string by string as it goes (`ResultScanner`).
pub fn needs_whole_result(gw: &Gateway, upstream: &str, tool: Option<(&str, &ToolDef)>) -> bool {
    let schema = tool.is_some_and(|(_, def)| matches!(&def.schema, Some(Ok(c)) if c.has_output()));
    let scope = match tool {
        Some((name, _)) => gw.guard.redact_scope(upstream, name),
        None => gw.guard.default_redact,
    };
    schema || scope == RedactScope::Results
}

/// Checks and cleans a successful result before it goes back: the tool's `outputSchema`,
/// hidden characters and malformed content items, and (where the scope says so) secrets and
/// personal data. An output that breaks its schema is refused as the upstream's failure.
pub fn screen_result(
    gw: &Gateway,
    upstream: &str,
    tool: Option<(&str, &ToolDef)>,
    result: &mut Value,
) -> Result<Screened, GatewayError> {
    if let Some((_, def)) = tool
        && let Some(Ok(compiled)) = &def.schema
    {
        schema::check_output(compiled, result).map_err(|v| GatewayError::UpstreamFailed {
            upstream: upstream.to_owned(),
            detail: format!("result does not match the tool's outputSchema: {v}"),
        })?;
    }
    let options = SanitizeOptions {
        max_text_bytes: usize::try_from(gw.limits.max_response_bytes).unwrap_or(usize::MAX),
    };
    let report = sanitize_result(result, &options);
    for issue in &report.issues {
        tracing::info!(upstream, at = %issue.at, reason = %issue.reason, "result content item does not follow MCP");
    }
    let scope = match tool {
        Some((name, _)) => gw.guard.redact_scope(upstream, name),
        None => gw.guard.default_redact,
    };
    let redactions = if scope == RedactScope::Results {
        gw.guard.redactor.redact_json(result).count
    } else {
        0
    };
    Ok(Screened {
        redactions,
        removed_hidden: report.removed_total(),
        truncated_bytes: report.truncated_bytes,
    })
}
