//! Merged lists across upstreams: one upstream's page per client page, names prefixed, and a
//! cursor that says which upstream (and which of its pages) comes next.

use std::sync::Arc;

use portcullis_mcp::{Outcome, RawObject, Request};
use portcullis_transport::Call;
use serde_json::value::RawValue;

use crate::Gateway;
use crate::authorize::ListFilter;
use crate::error::GatewayError;
use crate::federation::{Federation, Kind};
use crate::pipeline::EraCtx;
use crate::proof::Authenticated;
use crate::relay::upstream_error;
use crate::results::prefix_key;
use portcullis_authz::{Action, Lister, Target};

fn method_of(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Tool => ("tools/list", "tools"),
        Kind::Prompt => ("prompts/list", "prompts"),
        Kind::Resource => ("resources/list", "resources"),
        Kind::Template => ("resources/templates/list", "resourceTemplates"),
    }
}

/// One merged page.
pub async fn list(
    gw: &Arc<Gateway>,
    who: &Authenticated,
    era: &EraCtx,
    kind: Kind,
    req: &Request,
) -> Result<Box<RawValue>, GatewayError> {
    let params = match req.params.as_deref() {
        Some(p) => {
            RawObject::from_raw(p).map_err(|e| GatewayError::InvalidParams(e.to_string()))?
        }
        None => RawObject::new(),
    };
    let cursor = params.get_str("cursor");
    let (mut idx, mut inner_cursor) = gw.federation.decode_cursor(cursor.as_deref())?;
    let (method, key) = method_of(kind);
    let n = gw.federation.members().len();
    let mut ttl: Option<u64> = None;
    let filter = ListFilter::new(&gw.policy, who, era.protocol_version());
    // The caller's entity is built once for the whole page, not per item.
    let lister = filter.lister();
    let list_action = match kind {
        Kind::Tool => Action::ListTools,
        Kind::Prompt => Action::ListPrompts,
        Kind::Resource | Kind::Template => Action::ListResources,
    };
    while idx < n {
        let upstream = gw.federation.members()[idx].name.clone();
        let page = if filter.may_list(list_action, &upstream) {
            fetch_page(gw, era, idx, method, key, &params, inner_cursor.as_deref()).await
        } else {
            // Not permitted to list this upstream: it shows nothing.
            Ok((Vec::new(), None))
        };
        let (items, next) = match page {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(upstream = %gw.federation.members().get(idx).map(|m| m.name.as_str()).unwrap_or("?"), error = %e, "list skipped an unavailable upstream");
                (Vec::new(), None)
            }
        };
        let mut visible = Vec::with_capacity(items.len());
        for mut item in items {
            let Some(inner) = item.get_str(kind.name_field()) else {
                continue;
            };
            let exposed = gw.federation.expose(idx, &inner);
            if !gw.federation.record(kind, &exposed, idx) {
                continue;
            }
            if !permitted(gw, &lister, idx, &upstream, kind, &inner, &exposed, &item).await {
                continue;
            }
            if prefix_key(
                &mut item,
                kind.name_field(),
                &gw.federation.members()[idx].prefix,
            ) {
                visible.push(item);
            }
        }
        let next_cursor = match next {
            Some(c) => Some(Federation::encode_cursor(idx, Some(&c))),
            None if idx + 1 < n => Some(Federation::encode_cursor(idx + 1, None)),
            None => None,
        };
        if !visible.is_empty() || next_cursor.is_none() {
            return build(key, visible, next_cursor, era.is_modern(), &mut ttl);
        }
        // An empty page: go on to what comes next instead of handing the client an empty page.
        match next_cursor
            .as_deref()
            .map(|c| gw.federation.decode_cursor(Some(c)))
        {
            Some(Ok((i, c))) => {
                idx = i;
                inner_cursor = c;
            }
            _ => break,
        }
    }
    build(key, Vec::new(), None, era.is_modern(), &mut ttl)
}

/// Whether one listed item shows: a tool, prompt or template must be verified (not blocked by
/// its pin or the poisoning scan), and its use must not be definitely denied to this caller.
#[expect(
    clippy::too_many_arguments,
    reason = "one item's facts, read once by the caller"
)]
async fn permitted(
    gw: &Arc<Gateway>,
    lister: &Lister<'_>,
    idx: usize,
    upstream: &str,
    kind: Kind,
    inner: &str,
    exposed: &str,
    item: &RawObject,
) -> bool {
    // Pinned kinds must be verified (not blocked by their pin or the poisoning scan).
    let verified = match crate::catalog::pin_kind(kind) {
        None => None,
        Some(pin) => {
            let Some(value) = item
                .to_raw()
                .ok()
                .and_then(|r| serde_json::from_str::<serde_json::Value>(r.get()).ok())
            else {
                return false;
            };
            let Some(def) = gw.catalogs.listed(gw, idx, pin, inner, &value).await else {
                return false;
            };
            if def.blocked.is_some() {
                return false;
            }
            Some(def)
        }
    };
    match kind {
        Kind::Tool => {
            let annotations = verified.as_ref().and_then(|d| d.annotations());
            let attrs = gw
                .policy
                .overrides
                .tool(upstream, inner, exposed, annotations);
            lister.visible(Action::CallTool, &Target::Tool(attrs))
        }
        Kind::Prompt => lister.visible(
            Action::GetPrompt,
            &Target::Prompt {
                upstream: upstream.to_owned(),
                name: exposed.to_owned(),
            },
        ),
        Kind::Resource | Kind::Template => lister.visible(
            Action::ReadResource,
            &Target::Resource {
                upstream: upstream.to_owned(),
                uri: inner.to_owned(),
            },
        ),
    }
}

fn build(
    key: &str,
    items: Vec<RawObject>,
    next: Option<String>,
    modern: bool,
    ttl: &mut Option<u64>,
) -> Result<Box<RawValue>, GatewayError> {
    let mut out = RawObject::new();
    let internal = |e: serde_json::Error| GatewayError::Internal(e.to_string());
    out.set(key, &items).map_err(internal)?;
    if let Some(c) = next {
        out.set("nextCursor", &c).map_err(internal)?;
    }
    if modern {
        out.set("resultType", "complete").map_err(internal)?;
        out.set("ttlMs", &ttl.unwrap_or(0)).map_err(internal)?;
        // Lists are per caller once authorization filters them: never for shared caches.
        out.set("cacheScope", "private").map_err(internal)?;
    }
    out.to_raw().map_err(internal)
}

pub(crate) async fn fetch_page(
    gw: &Gateway,
    era: &EraCtx,
    idx: usize,
    method: &str,
    key: &str,
    client_params: &RawObject,
    cursor: Option<&str>,
) -> Result<(Vec<RawObject>, Option<String>), GatewayError> {
    let member = gw
        .federation
        .member(idx)
        .ok_or_else(|| GatewayError::Internal("no such upstream".into()))?;
    let mut params = RawObject::new();
    if let Some(m) = client_params.get("_meta") {
        params.set_raw("_meta", m.to_owned());
    }
    if let Some(c) = cursor {
        params
            .set("cursor", c)
            .map_err(|e| GatewayError::Internal(e.to_string()))?;
    }
    let raw_params = if params.is_empty() {
        None
    } else {
        params.to_raw().ok()
    };
    let call = Call {
        method: method.to_owned(),
        params: raw_params,
        client: era.client(),
        events: None,
    };
    let outcome = tokio::time::timeout(gw.limits.call_timeout, member.upstream.call(call))
        .await
        .map_err(|_| GatewayError::Timeout(member.name.clone()))?
        .map_err(|e| upstream_error(&member.name, e))?;
    let result = match outcome {
        Outcome::Result(r) => r,
        // An upstream without this feature answers "method not found": it simply has none.
        Outcome::Error(e) if e.code == -32601 => return Ok((Vec::new(), None)),
        Outcome::Error(e) => {
            return Err(GatewayError::UpstreamFailed {
                upstream: member.name.clone(),
                detail: e.message,
            });
        }
    };
    let obj = RawObject::from_raw(&result).map_err(|e| GatewayError::UpstreamFailed {
        upstream: member.name.clone(),
        detail: e.to_string(),
    })?;
    let items: Vec<RawObject> = match obj.get_as(key) {
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            return Err(GatewayError::UpstreamFailed {
                upstream: member.name.clone(),
                detail: e.to_string(),
            });
        }
        None => Vec::new(),
    };
    Ok((items, obj.get_str("nextCursor")))
}
