//! Sending one authorized call to its upstream and relaying everything that comes back: the
//! final response, and meanwhile progress, logging and server-to-client requests.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use portcullis_mcp::{
    ErrorCode, ErrorObject, Id, Message, Method, Outcome, RawEdit, RawFields, RawObject, Request,
    Response,
};
use portcullis_transport::{
    Call, ClientContext, Delivery, Event, ResultStream, ServerRequest, Streaming, UpstreamError,
};
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::Gateway;
use crate::audit::Entry;
use crate::catalog::ToolDef;
use crate::error::GatewayError;
use crate::federation::{Kind, Member};
use crate::pipeline::EraCtx;
use crate::proof::Validated;
use crate::stream::{EventLog, RestPiece};
use crate::{mrtr, results};
use portcullis_authz::{Action, Target as AuthzTarget};
use serde_json::Value;

/// Where a call goes: the upstream, the name there, and params rewritten for it.
#[derive(Debug)]
pub struct Target {
    /// What the name designates (a completion's `ref` kind for `completion/complete`).
    pub kind: Kind,
    pub upstream: usize,
    pub exposed: String,
    pub inner: String,
    pub params: Option<Box<RawValue>>,
}

impl Target {
    pub fn resolve(
        gw: &Gateway,
        method: Method,
        params: Option<&RawValue>,
    ) -> Result<Target, GatewayError> {
        let params =
            params.ok_or_else(|| GatewayError::InvalidParams("params are required".into()))?;
        let mut obj =
            RawEdit::parse(params).map_err(|e| GatewayError::InvalidParams(e.to_string()))?;
        if method == Method::Complete {
            return Self::resolve_completion(gw, obj);
        }
        let (kind, field) = match method {
            Method::ToolsCall => (Kind::Tool, "name"),
            Method::PromptsGet => (Kind::Prompt, "name"),
            _ => (Kind::Resource, "uri"),
        };
        let (upstream, exposed, inner) = rename(gw, &mut obj, kind, field, "")?;
        Self::finish(obj, kind, upstream, exposed, inner)
    }

    fn resolve_completion(gw: &Gateway, mut obj: RawEdit<'_>) -> Result<Target, GatewayError> {
        let reference = obj
            .original()
            .get("ref")
            .ok_or_else(|| GatewayError::InvalidParams("ref is required".into()))?;
        let mut r =
            RawEdit::parse(reference).map_err(|e| GatewayError::InvalidParams(e.to_string()))?;
        let (kind, field) = match r.original().get_str("type").as_deref() {
            Some("ref/prompt") => (Kind::Prompt, "name"),
            Some("ref/resource") => (Kind::Resource, "uri"),
            _ => {
                return Err(GatewayError::InvalidParams(
                    "ref.type must be ref/prompt or ref/resource".into(),
                ));
            }
        };
        let (upstream, exposed, inner) = rename(gw, &mut r, kind, field, "ref.")?;
        if r.is_changed() {
            obj.set_raw("ref", r.to_raw().map_err(internal)?);
        }
        Self::finish(obj, kind, upstream, exposed, inner)
    }

    fn finish(
        obj: RawEdit<'_>,
        kind: Kind,
        upstream: usize,
        exposed: String,
        inner: String,
    ) -> Result<Target, GatewayError> {
        let params = obj.to_raw().map_err(internal)?;
        Ok(Target {
            kind,
            upstream,
            exposed,
            inner,
            params: Some(params),
        })
    }
}

fn internal(e: serde_json::Error) -> GatewayError {
    GatewayError::Internal(e.to_string())
}

/// The call's arguments as the client sent them (`arguments` of a tool call or prompt, the
/// `argument` of a completion): what policies see as `context.args` and the audit record keeps.
pub fn arguments(method: Method, params: Option<&RawValue>) -> Option<Value> {
    let key = match method {
        Method::ToolsCall | Method::PromptsGet => "arguments",
        Method::Complete => "argument",
        _ => return None,
    };
    let obj = RawFields::parse(params?).ok()?;
    serde_json::from_str(obj.get(key)?.get()).ok()
}

/// The policy action and entity a routed call is about.
pub fn authz_target(
    gw: &Gateway,
    method: Method,
    target: &Target,
    upstream: &str,
    tool: Option<&ToolDef>,
) -> Result<(Action, AuthzTarget), GatewayError> {
    let item = || match target.kind {
        Kind::Tool => AuthzTarget::Tool(gw.policy.overrides.tool(
            upstream,
            &target.inner,
            &target.exposed,
            tool.and_then(ToolDef::annotations),
        )),
        Kind::Prompt => AuthzTarget::Prompt {
            upstream: upstream.to_owned(),
            name: target.exposed.clone(),
        },
        Kind::Resource | Kind::Template => AuthzTarget::Resource {
            upstream: upstream.to_owned(),
            uri: target.inner.clone(),
        },
    };
    let action = match method {
        Method::ToolsCall => Action::CallTool,
        Method::PromptsGet => Action::GetPrompt,
        Method::ResourcesRead => Action::ReadResource,
        Method::Complete => Action::Complete,
        Method::ResourcesSubscribe => Action::Subscribe,
        _ => {
            return Err(GatewayError::Internal(format!(
                "no policy action for {method:?}"
            )));
        }
    };
    Ok((action, item()))
}

/// Routes the exposed name in `obj[field]` and replaces it with the upstream's own name.
fn rename(
    gw: &Gateway,
    obj: &mut RawEdit<'_>,
    kind: Kind,
    field: &str,
    path: &str,
) -> Result<(usize, String, String), GatewayError> {
    let exposed = obj
        .original()
        .get_str(field)
        .ok_or_else(|| GatewayError::InvalidParams(format!("{path}{field} must be a string")))?
        .into_owned();
    let (upstream, inner) = gw.federation.route(kind, &exposed)?;
    if inner != exposed {
        obj.set(field, &inner).map_err(internal)?;
    }
    Ok((upstream, exposed, inner))
}

/// Maps a transport failure to the gateway's error, keeping the detail for the operator.
pub fn upstream_error(name: &str, e: UpstreamError) -> GatewayError {
    match e {
        UpstreamError::Unavailable(d) | UpstreamError::Connect(d) => {
            GatewayError::UpstreamUnavailable {
                upstream: name.to_owned(),
                detail: d,
            }
        }
        UpstreamError::TooLarge(limit) => GatewayError::ResponseTooLarge {
            upstream: name.to_owned(),
            limit,
        },
        other => GatewayError::UpstreamFailed {
            upstream: name.to_owned(),
            detail: other.to_string(),
        },
    }
}

/// An upstream's JSON-RPC error, as the client sees it: the code is kept, the text is not
/// (upstream text may carry paths and internals); the operator's log has the original. Data
/// the spec defines for a code is kept: the capabilities a client lacks (-32021), the supported
/// versions (-32022), and the missing resource's URI as the client named it (-32002).
pub fn public_upstream_error(upstream: &str, exposed: &str, e: &ErrorObject) -> ErrorObject {
    tracing::info!(upstream, code = e.code, message = %e.message, "upstream returned an error");
    let message = match e.code {
        -32700 => "Parse error",
        -32600 => "Invalid request",
        -32601 => "Method not found",
        -32602 => "Invalid params",
        -32002 => "Resource not found",
        -32021 => "Missing required client capability",
        -32022 => "Unsupported protocol version",
        _ => "Upstream error",
    };
    let mut out = ErrorObject {
        code: e.code,
        message: message.to_owned(),
        data: None,
    };
    match e.code {
        -32021 | -32022 => out.data = e.data.clone(),
        // A missing resource (SEP-2164: -32602 with `data.uri`; formerly -32002) is named
        // as the client named it, never by the upstream's own URI.
        _ if e
            .data
            .as_deref()
            .and_then(|d| RawFields::parse(d).ok())
            .is_some_and(|d| d.contains("uri")) =>
        {
            out.data = serde_json::value::to_raw_value(&serde_json::json!({ "uri": exposed })).ok();
        }
        _ => {}
    }
    out
}

/// One call without streaming (subscribe/unsubscribe): waits for the outcome.
pub async fn call_once(
    gw: &Arc<Gateway>,
    call: Validated<Target>,
    method: &str,
    client: ClientContext,
) -> Result<Outcome, GatewayError> {
    let target = call.into_inner();
    let member = gw
        .federation
        .member(target.upstream)
        .ok_or_else(|| GatewayError::Internal("no such upstream".into()))?;
    let c = Call {
        method: method.to_owned(),
        params: target.params,
        client,
        events: None,
    };
    match tokio::time::timeout(gw.limits.call_timeout, member.upstream.call(c)).await {
        Ok(Ok(o)) => Ok(o),
        Ok(Err(e)) => Err(upstream_error(&member.name, e)),
        Err(_) => Err(GatewayError::Timeout(member.name.clone())),
    }
}

/// A client's retry of a call that was answered with `input_required` (2026-07-28 MRTR),
/// delivered to the task that still holds the upstream call.
pub struct Retry {
    pub log: Arc<EventLog>,
    pub id: Id,
    pub cancel: CancellationToken,
    pub responses: Option<RawObject>,
}

/// A call waiting for a client's retry, found by the opaque handle in `requestState`.
pub struct Parked {
    pub principal: String,
    pub tx: oneshot::Sender<Retry>,
}

/// Marks a `requestState` minted by the gateway (others belong to 2026-era upstreams).
pub const STATE_PREFIX: &str = "portcullis.";

/// The request currently answering for a running call: the first request, then each retry.
struct Current {
    log: Arc<EventLog>,
    id: Id,
    cancel: CancellationToken,
}

/// A routed call that passed every stage, ready to run.
pub struct Run {
    pub call: Validated<Target>,
    /// The verified definition, for `tools/call`.
    pub tool: Option<Arc<ToolDef>>,
    /// The call's arguments, as read by the checks before it.
    pub args: Option<Value>,
    pub req: Request,
    pub method: Method,
    pub era: EraCtx,
    pub entry: Entry,
}

/// Runs a routed call to completion, writing every message for the client into `log`; the
/// final response goes out only after its audit record is durable.
pub async fn run(gw: Arc<Gateway>, run: Run, log: Arc<EventLog>, cancel: CancellationToken) {
    let Run {
        call,
        tool,
        args,
        req,
        method,
        era,
        mut entry,
    } = run;
    let started = Instant::now();
    let principal = call.principal.id.clone();
    let policy_ids = call.policy_ids.clone();
    let target = call.into_inner();
    let Some(member) = gw.federation.member(target.upstream) else {
        log.finish();
        return;
    };
    let mut current = Current {
        log,
        id: req.id.clone(),
        cancel,
    };
    let (etx, mut erx) = mpsc::channel(64);
    let param_headers = tool.as_deref().map_or_else(Vec::new, |def| {
        portcullis_mcp::headers::params_for(&def.param_headers, args.as_ref())
    });
    let client = ClientContext {
        request_id: Some(Arc::from(entry.request_id())),
        param_headers,
        ..era.client()
    };
    let streaming = streaming(
        &gw,
        method,
        member,
        tool.as_deref().map(|def| (target.inner.as_str(), def)),
        &era,
    );
    let send = |params: Option<Box<RawValue>>| {
        let call = Call {
            method: req.method.clone(),
            params,
            client: client.clone(),
            events: Some(etx.clone()),
        };
        member.upstream.call_streaming(call, streaming.clone())
    };
    let mut fut = send(target.params.clone());
    let deadline = tokio::time::sleep(gw.limits.call_timeout);
    tokio::pin!(deadline);
    let mut rounds = 0u32;
    let mut input_rounds = 0u32;
    let result = loop {
        tokio::select! {
            biased;
            () = current.cancel.cancelled() => {
                tracing::info!(upstream = %member.name, mcp.method = %req.method, mcp.name = %target.exposed, "call cancelled");
                entry.abandoned("cancelled by the client");
                // The client is gone: nothing to answer, but the record must still be written.
                let _ = entry.commit(&gw).await;
                current.log.finish();
                end_call(&era, &current.id);
                return;
            }
            r = &mut fut => {
                // A 2026-era upstream asking a 2025-era client for input: ask, then retry.
                let (Ok(Delivery::Whole(Outcome::Result(raw))), EraCtx::Legacy(session)) = (&r, &era) else {
                    break r.map_err(|e| upstream_error(&member.name, e));
                };
                let Some(asked) = mrtr::input_required(raw) else {
                    break r.map_err(|e| upstream_error(&member.name, e));
                };
                input_rounds += 1;
                if input_rounds > mrtr::MAX_ROUNDS {
                    break Err(GatewayError::UpstreamFailed {
                        upstream: member.name.clone(),
                        detail: format!("asked for input more than {} times", mrtr::MAX_ROUNDS),
                    });
                }
                let answered = tokio::select! {
                    a = mrtr::ask_legacy(session, &current.log, &member.name, target.params.as_deref(), &asked) => a,
                    () = current.cancel.cancelled() => continue,
                    () = &mut deadline => break Err(GatewayError::Timeout(member.name.clone())),
                };
                match answered {
                    Ok(params) => fut = send(Some(params)),
                    Err(e) => break Err(e),
                }
            }
            Some(ev) = erx.recv() => match ev {
                Event::Request(sr) if era_wants_input_required(&era, &sr.method) => {
                    rounds += 1;
                    match park(&gw, &principal, &current, sr, rounds).await {
                        Some(next) => current = next,
                        None => {
                            tracing::info!(upstream = %member.name, mcp.name = %target.exposed, "no retry came for input_required; call dropped");
                            entry.abandoned("the client did not answer input_required");
                            let _ = entry.commit(&gw).await;
                            return;
                        }
                    }
                }
                ev => relay_event(&era, &current.log, ev),
            },
            () = &mut deadline => break Err(GatewayError::Timeout(member.name.clone())),
        }
    };
    while let Ok(ev) = erx.try_recv() {
        relay_event(&era, &current.log, ev);
    }
    let named = Named {
        principal: &principal,
        method: &req.method,
        exposed: &target.exposed,
        upstream: &member.name,
        policy_ids: &policy_ids,
    };
    let result = match result {
        Ok(Delivery::Whole(outcome)) => Ok(outcome),
        // The reply is still to start: it takes the result as it arrives.
        Ok(Delivery::Streamed(stream)) if current.log.next_seq() == 0 => {
            let passing = Passing {
                stream,
                named: &named,
                modern: era.is_modern(),
                started,
            };
            pass_through(&gw, passing, &current, entry, deadline).await;
            end_call(&era, &current.id);
            return;
        }
        // Events went first, so the reply is an SSE stream: the result is one event, whole.
        Ok(Delivery::Streamed(stream)) => stream
            .collect(gw.limits.max_response_bytes)
            .await
            .map(|(raw, _)| Outcome::Result(raw))
            .map_err(|e| upstream_error(&member.name, e)),
        Err(e) => Err(e),
    };
    gw.metrics
        .stage(crate::metrics::Stage::Upstream, started.elapsed());
    let id = current.id.clone();
    let tool = tool.as_deref().map(|def| (target.inner.as_str(), def));
    let (response, decision) = match result {
        Ok(Outcome::Result(r)) => {
            // A task handle (only for a client that declared the tasks extension) carries no
            // content yet: its result comes later, through tasks/get, to this caller only.
            let task = if matches!(&era, EraCtx::Modern { caps, .. } if caps.tasks) {
                crate::tasks::handle(&r)
            } else {
                None
            };
            let handle = task.is_some();
            let rewrite = (!handle).then_some(results::Rewrite {
                method,
                upstream: target.upstream,
                modern: era.is_modern(),
            });
            match clear(
                &gw,
                &member.name,
                if handle { None } else { tool },
                r,
                rewrite,
            ) {
                Ok(Cleared { raw, value }) => {
                    let recorded = match &task {
                        Some(task) => {
                            let owner = crate::tasks::Owner {
                                upstream: member.name.clone(),
                                principal: principal.clone(),
                                exposed: target.exposed.clone(),
                                tool: tool.is_some().then(|| target.inner.clone()),
                            };
                            gw.tasks.created(task, &owner).await
                        }
                        None => Ok(()),
                    };
                    match recorded {
                        Ok(()) => {
                            entry.result(Some(value));
                            (Response::result(id, raw), "allow")
                        }
                        // A handle the client could never poll is not handed out.
                        Err(e) => {
                            tracing::error!(upstream = %member.name, mcp.name = %target.exposed, error = %e, "the task could not be recorded; the call fails");
                            let err = GatewayError::Internal(format!("task store: {e}"));
                            entry.failed(&err);
                            (Response::error(Some(id), err.public().error), err.label())
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(upstream = %member.name, mcp.name = %target.exposed, error = %err, "result refused");
                    entry.failed(&err);
                    (Response::error(Some(id), err.public().error), err.label())
                }
            }
        }
        Ok(Outcome::Error(e)) => {
            let public = public_upstream_error(&member.name, &target.exposed, &e);
            entry
                .upstream_error(&public)
                .reason(format!("upstream error {}: {}", e.code, e.message));
            (Response::error(Some(id), public), "allow")
        }
        Err(err) => {
            tracing::warn!(upstream = %member.name, mcp.method = %req.method, mcp.name = %target.exposed, error = %err, "call failed");
            entry.failed(&err);
            (Response::error(Some(id), err.public().error), err.label())
        }
    };
    named.log(decision, started, false);
    let response = match entry.commit(&gw).await {
        Ok(()) => response,
        Err(err) => Response::error(Some(current.id.clone()), err.public().error),
    };
    current.log.push_response(&response);
    end_call(&era, &current.id);
}

/// Whether this call's result may pass through as it arrives ([`pass_through`]) once it is
/// longer than `limits.stream_results_above`: a `tools/call` or `resources/read` result that
/// nothing needs whole. The guard may (`validate::needs_whole_result`), and a task handle is
/// read by the gateway (a client that declared the tasks extension). Links get the upstream's
/// prefix on the way.
fn streaming(
    gw: &Gateway,
    method: Method,
    member: &Member,
    tool: Option<(&str, &ToolDef)>,
    era: &EraCtx,
) -> Option<Streaming> {
    let above = gw.limits.stream_results_above?;
    let whole = match method {
        Method::ToolsCall => tool.is_none(),
        Method::ResourcesRead => false,
        _ => true,
    } || crate::validate::needs_whole_result(gw, &member.name, tool)
        || match era {
            EraCtx::Modern { caps, .. } => caps.tasks,
            EraCtx::Legacy(_) => false,
            EraCtx::Handshake => true,
        };
    (!whole).then(|| Streaming {
        above,
        max: gw.limits.max_streamed_bytes,
        hidden: portcullis_guard::sanitize::is_hidden,
        link_prefix: Arc::clone(&member.prefix),
    })
}

/// What a finished call's log line names.
struct Named<'a> {
    principal: &'a str,
    method: &'a str,
    exposed: &'a str,
    upstream: &'a str,
    policy_ids: &'a [String],
}

impl Named<'_> {
    /// The one line a finished call logs; `passed_through`: its result was not held.
    fn log(&self, decision: &str, started: Instant, passed_through: bool) {
        tracing::info!(
            client.id = %self.principal, mcp.method = %self.method, mcp.name = %self.exposed,
            upstream = %self.upstream, policy.ids = ?self.policy_ids, decision, passed_through,
            latency_ms = started.elapsed().as_secs_f64() * 1000.0, "call"
        );
    }
}

/// A result on its way through, and what its log line names.
struct Passing<'a> {
    stream: Box<ResultStream>,
    named: &'a Named<'a>,
    modern: bool,
    started: Instant,
}

/// Passes a long result to the client as it arrives, without holding it: the reply's head
/// and each piece of the result's text go out at once; the end of the reply (the result
/// object's closing brace, and `resultType` for a 2026-era client) only after the audit
/// record, which carries the size and SHA-256 of the result's text as sent, is durable. If the
/// result breaks off (the upstream fails, the text is not JSON, it grows past
/// `limits.max_streamed_bytes`, the call times out) or the record cannot be written, the reply
/// ends unfinished: the client sees a broken response, never a whole result.
async fn pass_through(
    gw: &Gateway,
    passing: Passing<'_>,
    current: &Current,
    mut entry: Entry,
    mut deadline: std::pin::Pin<&mut tokio::time::Sleep>,
) {
    use sha2::Digest as _;
    let Passing {
        mut stream,
        named,
        modern,
        started,
    } = passing;
    let (upstream, exposed) = (named.upstream, named.exposed);
    let (tx, rx) = mpsc::channel(4);
    let head = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{},\"result\":",
        serde_json::to_string(&current.id).unwrap_or_else(|_| "null".to_owned())
    );
    current.log.push_streamed(Bytes::from(head), rx);
    let mut digest = sha2::Sha256::new();
    let broke = loop {
        let piece = tokio::select! {
            biased;
            () = current.cancel.cancelled() => break Some(Broke::Gone("cancelled by the client")),
            () = &mut deadline => break Some(Broke::Failed(GatewayError::Timeout(upstream.to_owned()))),
            piece = stream.next() => piece,
        };
        match piece {
            Some(Ok(piece)) => {
                digest.update(&piece);
                // A client that reads slowly holds the upstream back, within the call's time.
                tokio::select! {
                    biased;
                    sent = tx.send(RestPiece { bytes: piece, last: false }) => if sent.is_err() {
                        break Some(Broke::Gone("the client went away"));
                    },
                    () = &mut deadline => break Some(Broke::Failed(GatewayError::Timeout(upstream.to_owned()))),
                }
            }
            Some(Err(e)) => break Some(Broke::Failed(upstream_error(upstream, e))),
            None => break None,
        }
    };
    let ended = match broke {
        None => stream.end().map_err(|e| upstream_error(upstream, e)),
        Some(Broke::Failed(err)) => Err(err),
        Some(Broke::Gone(why)) => {
            tracing::info!(upstream, mcp.name = %exposed, "passed-through call {why}");
            entry.abandoned(why);
            let _ = entry.commit(gw).await;
            return;
        }
    };
    gw.metrics
        .stage(crate::metrics::Stage::Upstream, started.elapsed());
    // A 2026-era upstream asking a 2025-era client for input mid-result cannot be bridged
    // (`mrtr.rs` needs the result whole): the reply breaks off.
    let ended = ended.and_then(|end| match end.result_type.as_deref() {
        Some(kind) if !modern && kind != "complete" => Err(GatewayError::UpstreamFailed {
            upstream: upstream.to_owned(),
            detail: format!("a result passed through has resultType {kind:?}"),
        }),
        _ => Ok(end),
    });
    let tail: &[u8] = match &ended {
        Ok(end) if modern && end.result_type.is_none() && end.members => {
            b",\"resultType\":\"complete\"}"
        }
        Ok(end) if modern && end.result_type.is_none() => b"\"resultType\":\"complete\"}",
        _ => b"}",
    };
    let decision = match &ended {
        Ok(end) => {
            digest.update(tail);
            let bytes = end.bytes + tail.len() as u64;
            entry.result(Some(serde_json::json!({
                "passedThrough": {
                    "bytes": bytes,
                    "sha256": hex::encode(digest.finalize()),
                    "hiddenRemoved": end.removed,
                }
            })));
            "allow"
        }
        Err(err) => {
            tracing::warn!(upstream, mcp.name = %exposed, error = %err, "passed-through result broke off");
            entry.failed(err);
            err.label()
        }
    };
    named.log(decision, started, true);
    if let (Ok(_), Ok(())) = (ended, entry.commit(gw).await) {
        let mut end = tail.to_vec();
        end.push(b'}');
        let last = RestPiece {
            bytes: Bytes::from(end),
            last: true,
        };
        tokio::select! {
            biased;
            _ = tx.send(last) => {}
            () = &mut deadline => {}
        }
    }
    // Otherwise (and if the client did not take the end in time) the sender goes away before
    // the last piece: the reply breaks off.
}

/// Why a result stopped passing through before its end.
enum Broke {
    /// It cannot be completed: the reply breaks off.
    Failed(GatewayError),
    /// Nobody is reading it any more.
    Gone(&'static str),
}

/// A result as the client gets it, from one parse: the text to send, and the value the audit
/// record keeps.
pub(crate) struct Cleared {
    pub raw: Box<RawValue>,
    pub value: Value,
}

/// The response guard over an upstream's result, then the rewrite for the client (if any):
/// parsed once, checked, cleaned and rewritten in place. The text goes out as the upstream
/// wrote it unless something changed; a `resultType` a 2026-era client needs is written in
/// front of that text before it is parsed, so only a cleaned or re-linked result is serialized
/// again, and the text is never held twice beside its parsed value.
pub(crate) fn clear(
    gw: &Gateway,
    upstream: &str,
    tool: Option<(&str, &ToolDef)>,
    raw: Box<RawValue>,
    rewrite: Option<results::Rewrite>,
) -> Result<Cleared, GatewayError> {
    let raw = match rewrite {
        Some(how) if how.modern && !results::has_result_type(&raw) => {
            results::with_result_type(&raw).unwrap_or(raw)
        }
        _ => raw,
    };
    let mut value: Value =
        serde_json::from_str(raw.get()).map_err(|e| GatewayError::UpstreamFailed {
            upstream: upstream.to_owned(),
            detail: format!("result is not JSON: {e}"),
        })?;
    // The guard's reports count every change it makes (the guard's tests hold them to it), so
    // an unchanged result goes back as it came, without a copy kept to compare against.
    let screened = crate::validate::screen_result(gw, upstream, tool, &mut value)?;
    if screened.changed() {
        tracing::info!(
            upstream,
            redactions = screened.redactions,
            hidden_removed = screened.removed_hidden,
            "result cleaned"
        );
    }
    let rewritten = rewrite.map_or_else(results::Rewritten::default, |how| {
        results::rewrite(gw, how, &mut value)
    });
    let raw = if screened.changed() || rewritten != results::Rewritten::default() {
        drop(raw);
        serde_json::value::to_raw_value(&value).map_err(internal)?
    } else {
        raw
    };
    Ok(Cleared { raw, value })
}

/// A 2026-era client answers server requests by retrying the call (MRTR), when it declared the
/// capability; a 2025-era upstream asked mid-call, so the gateway bridges the two.
fn era_wants_input_required(era: &EraCtx, method: &str) -> bool {
    matches!(era, EraCtx::Modern { caps, .. } if caps.allows(method))
}

/// Answers the current request with `input_required`, waits for the client's retry, hands the
/// client's answer to the upstream, and returns the retry as the new current request.
async fn park(
    gw: &Gateway,
    principal: &str,
    current: &Current,
    sr: ServerRequest,
    round: u32,
) -> Option<Current> {
    let key = format!("input-{round}");
    let handle = format!("{STATE_PREFIX}{}", uuid::Uuid::new_v4().simple());
    let (tx, rx) = oneshot::channel();
    gw.park(
        handle.clone(),
        Parked {
            principal: principal.to_owned(),
            tx,
        },
    );
    let mut request = RawObject::new();
    let _ = request.set("method", &sr.method);
    if let Some(p) = &sr.params {
        request.set_raw("params", p.clone());
    }
    let mut requests = RawObject::new();
    let _ = requests.set(&key, &request);
    let mut result = RawObject::new();
    let _ = result.set("resultType", "input_required");
    let _ = result.set("inputRequests", &requests);
    let _ = result.set("requestState", &handle);
    match result.to_raw() {
        Ok(raw) => current
            .log
            .push_response(&Response::result(current.id.clone(), raw)),
        Err(_) => current.log.finish(),
    }
    let retry = match tokio::time::timeout(gw.limits.call_timeout, rx).await {
        Ok(Ok(r)) => r,
        _ => {
            gw.unpark(&handle);
            let _ = sr.reply.send(Outcome::Error(ErrorObject::new(
                ErrorCode::InternalError,
                "the client did not answer",
            )));
            return None;
        }
    };
    let answer = retry
        .responses
        .as_ref()
        .and_then(|r| r.get(&key))
        .map(|raw| Outcome::Result(raw.to_owned()))
        .unwrap_or_else(|| {
            Outcome::Error(ErrorObject::new(
                ErrorCode::InvalidParams,
                "the client sent no answer for this request",
            ))
        });
    let _ = sr.reply.send(answer);
    Some(Current {
        log: retry.log,
        id: retry.id,
        cancel: retry.cancel,
    })
}

fn end_call(era: &EraCtx, id: &Id) {
    if let EraCtx::Legacy(s) = era {
        s.end_call(id);
    }
}
fn relay_event(era: &EraCtx, log: &EventLog, ev: Event) {
    match ev {
        Event::Notification(n) => {
            if let EraCtx::Legacy(s) = era
                && n.method == "notifications/message"
            {
                let level = n
                    .params
                    .as_deref()
                    .and_then(|p| RawFields::parse(p).ok())
                    .and_then(|p| p.get_str("level"));
                if !s.wants_log(level.as_deref().unwrap_or("info")) {
                    return;
                }
            }
            log.push(Bytes::from(Message::Notification(n).to_bytes()), false);
        }
        Event::Request(sr) => match era {
            EraCtx::Legacy(s) if s.caps.allows(&sr.method) => {
                let id = s.await_client(sr.reply);
                let msg = Request {
                    id: Id::Str(id),
                    method: sr.method,
                    params: sr.params,
                };
                log.push(Bytes::from(msg.to_bytes()), false);
            }
            _ => {
                let e = ErrorObject::new(
                    ErrorCode::MethodNotFound,
                    format!("the client does not support {}", sr.method),
                );
                let _ = sr.reply.send(Outcome::Error(e));
            }
        },
    }
}
