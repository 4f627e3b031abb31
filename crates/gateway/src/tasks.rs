//! The tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663, 2026-07-28): an upstream may
//! answer a `tools/call` with a task handle (`resultType: "task"`); the client then polls
//! `tasks/get`, answers `tasks/update` and may `tasks/cancel`. The gateway remembers which
//! upstream made each task and for whom, so these go to that upstream, for that principal only:
//! another caller presenting the id gets the same answer as for an unknown one. A completed
//! task's result passes the same response guard as a direct call's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_mcp::{Method, Outcome, RawFields, RawObject, Request};
use portcullis_transport::ClientContext;
use serde_json::value::RawValue;

use crate::Gateway;
use crate::audit::Entry;
use crate::catalog::ToolDef;
use crate::error::GatewayError;
use crate::federation::Kind;
use crate::pipeline::EraCtx;
use crate::proof::{Authenticated, Authorized};

/// The extension's identifier, in client and server capabilities (`extensions`).
pub const EXTENSION: &str = "io.modelcontextprotocol/tasks";

/// How long a task is remembered when the upstream states no `ttlMs`, and at most.
const DEFAULT_TTL: Duration = Duration::from_secs(3600);
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Tasks remembered at once; past this, expired ones are dropped, then new ones are refused
/// (the client's call still gets its handle, but later polls answer "unknown").
const MAX_TASKS: usize = 100_000;

/// Who a task belongs to and where it runs.
#[derive(Clone)]
pub struct Owner {
    pub upstream: usize,
    pub principal: String,
    /// The tool as the client named it, and as the upstream knows it with its definition (for
    /// the result's `outputSchema` check and redaction scope).
    pub exposed: String,
    pub tool: Option<(String, Arc<ToolDef>)>,
}

/// The tasks upstreams created for this gateway's callers.
#[derive(Default)]
pub struct Tasks {
    /// Task id → its owner and when the gateway forgets it.
    owners: Mutex<HashMap<String, (Owner, Instant)>>,
}

impl Tasks {
    fn owners(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Owner, Instant)>> {
        self.owners.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remembers the task `result` creates, if it is a task handle; `true` if it is one.
    pub fn created(&self, result: &RawValue, owner: Owner) -> bool {
        let Some((task_id, ttl)) = handle(result) else {
            return false;
        };
        let now = Instant::now();
        let mut owners = self.owners();
        if owners.len() >= MAX_TASKS {
            owners.retain(|_, (_, expires)| *expires > now);
        }
        if owners.len() >= MAX_TASKS && !owners.contains_key(&task_id) {
            tracing::warn!(task = %task_id, "too many tasks remembered; this one cannot be polled through the gateway");
            return true;
        }
        tracing::info!(task = %task_id, client.id = %owner.principal, mcp.name = %owner.exposed, "upstream created a task");
        owners.insert(task_id, (owner, now + ttl));
        true
    }

    /// The task's owner, when `principal` made it and it has not expired.
    pub fn find(&self, task_id: &str, principal: &str) -> Option<Owner> {
        let mut owners = self.owners();
        let (owner, expires) = owners.get(task_id)?;
        if *expires <= Instant::now() {
            owners.remove(task_id);
            return None;
        }
        if owner.principal != principal {
            tracing::warn!(task = %task_id, client.id = %principal, "task id presented by another principal");
            return None;
        }
        Some(owner.clone())
    }
}

/// `(taskId, ttl)` when `result` is a `CreateTaskResult`.
fn handle(result: &RawValue) -> Option<(String, Duration)> {
    let obj = RawFields::parse(result).ok()?;
    if obj.get_str("resultType").as_deref() != Some("task") {
        return None;
    }
    let task_id = obj.get_str("taskId")?.into_owned();
    let ttl = obj
        .get_as::<u64>("ttlMs")
        .and_then(Result::ok)
        .map_or(DEFAULT_TTL, Duration::from_millis)
        .min(MAX_TTL);
    Some((task_id, ttl))
}

/// Whether `result` is a task handle (its content comes later, through `tasks/get`).
pub fn is_handle(result: &RawValue) -> bool {
    handle(result).is_some()
}

/// Whether capabilities (a client's per-request ones, an upstream's) declare the extension.
pub fn declared(capabilities: Option<&RawValue>) -> bool {
    capabilities
        .and_then(|c| RawFields::parse(c).ok())
        .is_some_and(|c| declared_in(&c))
}

/// [`declared`], for capabilities already parsed.
pub fn declared_in(capabilities: &RawFields<'_>) -> bool {
    capabilities
        .get("extensions")
        .and_then(|e| RawFields::parse(e).ok())
        .is_some_and(|e| e.contains(EXTENSION))
}

/// Whether some connected upstream offers the extension (then the gateway offers it too).
pub fn offered(gw: &Gateway) -> bool {
    gw.federation.members().iter().any(|m| {
        m.upstream
            .identity()
            .is_some_and(|id| declared(Some(&id.capabilities)))
    })
}

/// `tasks/get`, `tasks/update`, `tasks/cancel` from a 2026-07-28 client.
pub async fn relay(
    gw: &Arc<Gateway>,
    req: &Request,
    method: Method,
    who: &Authenticated,
    era: &EraCtx,
    entry: &mut Entry,
) -> Result<Box<RawValue>, GatewayError> {
    let EraCtx::Modern { client, caps, .. } = era else {
        return Err(GatewayError::MethodNotFound(req.method.clone()));
    };
    if !caps.tasks {
        return Err(GatewayError::MissingCapability {
            message: format!("{} needs the client extension {EXTENSION}", req.method),
            required: serde_json::json!({ "extensions": { EXTENSION: {} } }),
        });
    }
    let task_id = req
        .params
        .as_deref()
        .and_then(|p| RawFields::parse(p).ok())
        .and_then(|p| p.get_str("taskId"))
        .ok_or_else(|| GatewayError::InvalidParams("taskId is required".into()))?;
    let owner = gw
        .tasks
        .find(&task_id, &who.principal().id)
        .ok_or_else(|| GatewayError::InvalidParams(format!("Unknown taskId: {task_id}")))?;
    let member = gw
        .federation
        .member(owner.upstream)
        .ok_or_else(|| GatewayError::Internal("task of an unknown upstream".into()))?;
    entry.target(&member.name, &owner.exposed);
    // Owning the task is the permission: the call that created it was authorized and
    // validated, and these methods only follow it up.
    let target = crate::relay::Target {
        kind: Kind::Tool,
        upstream: owner.upstream,
        exposed: owner.exposed.clone(),
        inner: task_id.into_owned(),
        params: req.params.clone(),
    };
    let owned = Authorized::assert(target, who, Vec::new());
    let call = crate::validate::validate(gw, owned, crate::validate::Subject::Other, None).await?;
    let client = ClientContext {
        request_id: Some(Arc::from(entry.request_id())),
        ..client.clone()
    };
    let outcome = crate::relay::call_once(gw, call, &req.method, client).await?;
    match outcome {
        Outcome::Result(r) if method == Method::TasksGet => {
            let screened = screen_task(gw, &member.name, &owner, &r)?;
            entry.result(serde_json::from_str(screened.get()).ok());
            Ok(screened)
        }
        Outcome::Result(r) => Ok(r),
        Outcome::Error(e) => Err(GatewayError::Upstream(crate::relay::public_upstream_error(
            &member.name,
            &owner.exposed,
            &e,
        ))),
    }
}

/// A task's `result` (present once it completed) gets the checks a direct call's result gets.
fn screen_task(
    gw: &Gateway,
    upstream: &str,
    owner: &Owner,
    raw: &RawValue,
) -> Result<Box<RawValue>, GatewayError> {
    let mut task = RawObject::from_raw(raw).map_err(|e| GatewayError::UpstreamFailed {
        upstream: upstream.to_owned(),
        detail: format!("task is not a JSON object: {e}"),
    })?;
    let Some(result) = task.remove("result") else {
        return Ok(raw.to_owned());
    };
    let tool = owner
        .tool
        .as_ref()
        .map(|(name, def)| (name.as_str(), def.as_ref()));
    let rewrite = crate::results::Rewrite {
        method: Method::ToolsCall,
        upstream: owner.upstream,
        modern: true,
    };
    let cleared = crate::relay::clear(gw, upstream, tool, result, Some(rewrite))?;
    task.set_raw("result", cleared.raw);
    task.to_raw()
        .map_err(|e| GatewayError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    fn owner(principal: &str) -> Owner {
        Owner {
            upstream: 0,
            principal: principal.into(),
            exposed: "slow".into(),
            tool: None,
        }
    }

    #[test]
    fn a_task_is_found_only_by_its_principal_and_only_until_it_expires() {
        let tasks = Tasks::default();
        let created =
            raw(r#"{"resultType":"task","taskId":"t-1","status":"working","ttlMs":60000}"#);
        assert!(tasks.created(&created, owner("alice")));
        assert!(tasks.find("t-1", "alice").is_some());
        assert!(tasks.find("t-1", "bob").is_none(), "another principal");
        assert!(tasks.find("t-2", "alice").is_none(), "unknown id");
        let short = raw(r#"{"resultType":"task","taskId":"t-3","status":"working","ttlMs":0}"#);
        assert!(tasks.created(&short, owner("alice")));
        assert!(tasks.find("t-3", "alice").is_none(), "expired");
        let plain = raw(r#"{"resultType":"complete","content":[]}"#);
        assert!(!tasks.created(&plain, owner("alice")));
    }

    #[test]
    fn the_extension_is_declared_under_extensions() {
        assert!(declared(Some(&raw(
            r#"{"extensions":{"io.modelcontextprotocol/tasks":{}}}"#
        ))));
        assert!(!declared(Some(&raw(r#"{"extensions":{}}"#))));
        assert!(!declared(Some(&raw(r#"{"tasks":{}}"#))));
        assert!(!declared(None));
    }
}
