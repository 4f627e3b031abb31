//! The order of stages for one message on `POST /mcp`. This file is the one place that says
//! what runs before what; each stage lives in its own module and returns a typed decision.
//!
//! ```text
//! http.rs:  origin check → body limit → authenticate (authn.rs) → JSON-RPC parse
//!           → era: session lookup, owner checked (2025) | header/body consistency + version (2026)
//! here:     dispatch by message kind; every request gets one audit record (audit.rs),
//!           durable before its reply
//!             request      → gateway-answered (initialize, discover, ping, setLevel)
//!                          | lists: fan out, authorize per upstream and item, hide blocked
//!                            tools, merge pages                            (lists.rs)
//!                          | routed: name → upstream → [rate limit] → authorize (authorize.rs)
//!                            → validate arguments (validate.rs) → [approval] → call (relay.rs)
//!                            → screen the result (validate.rs) → audit → reply
//!             notification → cancellation / ignored; 202
//!             response     → answer to a server-to-client request; 202
//! ```
//!
//! Stages still to come (rate limit, approval) plug in at the marked points of `routed`.

use std::sync::Arc;

use bytes::Bytes;
use portcullis_mcp::headers as mh;
use portcullis_mcp::{
    Id, Message, Method, Notification, Outcome, RawFields, RawObject, Request, Response, Revision,
};
use portcullis_transport::ClientContext;
use serde_json::value::RawValue;
use tokio_util::sync::DropGuard;
use tracing::Instrument;

use crate::Gateway;
use crate::audit::Entry;
use crate::error::GatewayError;
use crate::federation::Kind;
use crate::proof::{Authenticated, Validated};
use crate::session::{ClientCaps, Session};
use crate::stream::{EventLog, Producer};
use crate::{listen, lists, relay, results, validate};

/// Which protocol era a message arrived in, and its state.
#[derive(Clone)]
pub enum EraCtx {
    /// `initialize`: a 2025-era session is about to start.
    Handshake,
    /// Inside a 2025-era session.
    Legacy(Arc<Session>),
    /// A stateless 2026-07-28 request.
    Modern {
        client: ClientContext,
        caps: ClientCaps,
        /// The request's `Mcp-Param-*` headers: (lowercase suffix, raw value).
        params: Vec<(String, String)>,
    },
}

impl EraCtx {
    pub fn is_modern(&self) -> bool {
        matches!(self, EraCtx::Modern { .. })
    }

    /// The protocol revision the client speaks (policies see it as `context.protocol_version`).
    pub fn protocol_version(&self) -> &'static str {
        match self {
            EraCtx::Handshake => "",
            EraCtx::Legacy(s) => s.revision.as_str(),
            EraCtx::Modern { .. } => Revision::LATEST.as_str(),
        }
    }

    pub fn client(&self) -> ClientContext {
        match self {
            EraCtx::Handshake => ClientContext::default(),
            EraCtx::Legacy(s) => ClientContext {
                log_level: Some(Arc::from(s.log_level())),
                ..s.client.clone()
            },
            EraCtx::Modern { client, .. } => client.clone(),
        }
    }
}

/// A message that passed every transport-level check.
pub struct Inbound {
    pub message: Message,
    pub who: Authenticated,
    pub era: EraCtx,
}

/// What to send back.
pub enum Reply {
    /// JSON-RPC response body (and a new session id after `initialize`).
    Json {
        body: Bytes,
        session: Option<String>,
    },
    /// A response stream: sent as one JSON body when its first event is the final response,
    /// else as SSE. `producer`, when set, fills the log and is run by whoever sends the reply
    /// ([`Producer::first`]); `cancel` cancels it when the reply is dropped (2026 era).
    Stream {
        log: Arc<EventLog>,
        producer: Option<Producer>,
        cancel: Option<DropGuard>,
    },
    Accepted,
    Error {
        err: GatewayError,
        id: Option<Id>,
    },
}

pub fn json(id: Id, result: Box<RawValue>) -> Reply {
    Reply::Json {
        body: Bytes::from(Response::result(id, result).to_bytes()),
        session: None,
    }
}

pub async fn handle(gw: &Arc<Gateway>, inbound: Inbound) -> Reply {
    match inbound.message {
        Message::Request(req) => {
            let mut entry = Entry::new(&req.method);
            entry.who(inbound.who.principal());
            // Every log line about this request carries its id (the audit record's), the
            // caller and the method.
            let span = tracing::info_span!(
                "request",
                request_id = %entry.request_id(),
                client.id = %inbound.who.principal().id,
                auth.method = %inbound.who.principal().method,
                mcp.method = %req.method,
            );
            request(gw, req, inbound.who, inbound.era, entry)
                .instrument(span)
                .await
        }
        Message::Notification(n) => notification(&inbound.era, n),
        Message::Response(r) => response(&inbound.era, r),
    }
}

async fn request(
    gw: &Arc<Gateway>,
    req: Request,
    who: Authenticated,
    era: EraCtx,
    mut entry: Entry,
) -> Reply {
    let method = Method::parse(&req.method);
    let id = req.id.clone();
    let mut session = None;
    let outcome = match (method, &era) {
        (Method::Initialize, EraCtx::Handshake) => initialize(gw, &req, &who).map(|(r, sid)| {
            session = Some(sid);
            r
        }),
        (Method::Initialize, _) => Err(GatewayError::InvalidParams(
            "session already initialized".into(),
        )),
        (Method::Ping, EraCtx::Legacy(_)) => Ok(results::empty()),
        (Method::Discover, _) => Ok(results::discover(gw)),
        (Method::LoggingSetLevel, EraCtx::Legacy(s)) => set_level(s, req.params.as_deref()),
        (Method::ToolsList, _) => lists::list(gw, &who, &era, Kind::Tool, &req).await,
        (Method::PromptsList, _) => lists::list(gw, &who, &era, Kind::Prompt, &req).await,
        (Method::ResourcesList, _) => lists::list(gw, &who, &era, Kind::Resource, &req).await,
        (Method::ResourceTemplatesList, _) => {
            lists::list(gw, &who, &era, Kind::Template, &req).await
        }
        (Method::ToolsCall | Method::PromptsGet | Method::ResourcesRead | Method::Complete, _) => {
            return routed(gw, req, method, who, era, entry).await;
        }
        (Method::TasksGet | Method::TasksUpdate | Method::TasksCancel, EraCtx::Modern { .. }) => {
            crate::tasks::relay(gw, &req, method, &who, &era, &mut entry).await
        }
        (Method::SubscriptionsListen, EraCtx::Modern { .. }) => {
            return open_listen(gw, req, &who, entry).await;
        }
        (Method::ResourcesSubscribe | Method::ResourcesUnsubscribe, EraCtx::Legacy(s)) => {
            subscribe(gw, s, method, &req, &who, &era).await
        }
        _ => Err(GatewayError::MethodNotFound(req.method.clone())),
    };
    match finish(gw, entry, outcome).await {
        Ok(result) => Reply::Json {
            body: Bytes::from(Response::result(id, result).to_bytes()),
            session,
        },
        Err(err) => Reply::Error { err, id: Some(id) },
    }
}

/// Audits a request the gateway answered itself; a failed audit write replaces the result.
async fn finish(
    gw: &Gateway,
    entry: Entry,
    outcome: Result<Box<RawValue>, GatewayError>,
) -> Result<Box<RawValue>, GatewayError> {
    match outcome {
        Ok(result) => entry.commit(gw).await.map(|()| result),
        Err(err) => Err(refusal(gw, entry, err).await),
    }
}

/// Audits a refused request; the error to answer with.
async fn refusal(gw: &Gateway, mut entry: Entry, err: GatewayError) -> GatewayError {
    entry.failed(&err);
    match entry.commit(gw).await {
        Ok(()) => err,
        Err(audit) => audit,
    }
}

/// `subscriptions/listen` (2026-07-28): each resource the filter names must be one the caller
/// may subscribe to.
async fn open_listen(gw: &Arc<Gateway>, req: Request, who: &Authenticated, entry: Entry) -> Reply {
    let id = req.id.clone();
    let filter = listen::Filter::parse(req.params.as_deref()).and_then(|filter| {
        for uri in &filter.resource_subscriptions {
            let (upstream, inner) = gw.federation.route(Kind::Resource, uri)?;
            let target = portcullis_authz::Target::Resource {
                upstream: gw.federation.members()[upstream].name.clone(),
                uri: inner,
            };
            let decision = gw.policy.decide(
                who.principal(),
                portcullis_authz::Action::Subscribe,
                &target,
                None,
                Revision::LATEST.as_str(),
            );
            if !decision.is_allow() {
                return Err(GatewayError::Denied {
                    reason: decision.reason,
                });
            }
        }
        Ok(filter)
    });
    let filter = match filter {
        Ok(f) => f,
        Err(err) => {
            return Reply::Error {
                err: refusal(gw, entry, err).await,
                id: Some(id),
            };
        }
    };
    if let Err(err) = entry.commit(gw).await {
        return Reply::Error { err, id: Some(id) };
    }
    let log = EventLog::new(0, false);
    listen::open(gw, id, filter, Arc::clone(&log));
    Reply::Stream {
        log,
        producer: None,
        cancel: None,
    }
}

fn initialize(
    gw: &Arc<Gateway>,
    req: &Request,
    who: &Authenticated,
) -> Result<(Box<RawValue>, String), GatewayError> {
    let params = req
        .params
        .as_deref()
        .and_then(|p| RawObject::from_raw(p).ok())
        .unwrap_or_default();
    let asked = params.get_str("protocolVersion").unwrap_or_default();
    let revision = Revision::negotiate_legacy(&asked);
    let client = ClientContext {
        capabilities: params.get("capabilities").map(|c| Arc::from(c.to_owned())),
        client_info: params.get("clientInfo").map(|c| Arc::from(c.to_owned())),
        log_level: None,
        ..ClientContext::default()
    };
    let session = gw
        .sessions
        .create(revision, client, who.principal().id.clone())?;
    gw.metrics.sessions.set(gw.sessions.len() as i64);
    tracing::info!(session = %session.id, client.id = %who.principal().id, version = %revision, "session started");
    Ok((results::initialize(gw, revision), session.id.clone()))
}

fn set_level(session: &Session, params: Option<&RawValue>) -> Result<Box<RawValue>, GatewayError> {
    let level = params
        .and_then(|p| RawFields::parse(p).ok())
        .and_then(|p| p.get_str("level"))
        .ok_or_else(|| GatewayError::InvalidParams("level is required".into()))?;
    session.set_log_level(level.into_owned());
    Ok(results::empty())
}

async fn subscribe(
    gw: &Arc<Gateway>,
    session: &Session,
    method: Method,
    req: &Request,
    who: &Authenticated,
    era: &EraCtx,
) -> Result<Box<RawValue>, GatewayError> {
    let target = relay::Target::resolve(gw, method, req.params.as_deref())?;
    let exposed = target.exposed.clone();
    let upstream = gw.federation.members()[target.upstream].name.clone();
    let authz_target = portcullis_authz::Target::Resource {
        upstream: upstream.clone(),
        uri: target.inner.clone(),
    };
    // Unsubscribing needs no permission: it only narrows what the caller receives.
    let call = if method == Method::ResourcesSubscribe {
        let (_, authorized) = gw.policy.authorize(
            who,
            portcullis_authz::Action::Subscribe,
            &authz_target,
            None,
            era.protocol_version(),
            target,
        );
        authorized?
    } else {
        crate::proof::Authorized::assert(target, who, Vec::new())
    };
    let call = validate::validate(gw, call, validate::Subject::Resource, None).await?;
    let outcome = relay::call_once(gw, call, &req.method, ClientContext::default()).await?;
    if matches!(outcome, Outcome::Result(_)) {
        if method == Method::ResourcesSubscribe {
            session.subscribe(exposed);
        } else {
            session.unsubscribe(&exposed);
        }
    }
    match outcome {
        Outcome::Result(r) => Ok(r),
        Outcome::Error(e) => Err(GatewayError::UpstreamFailed {
            upstream,
            detail: e.message,
        }),
    }
}

/// Calls that name one upstream's tool, prompt or resource: authorized, validated, relayed.
async fn routed(
    gw: &Arc<Gateway>,
    req: Request,
    method: Method,
    who: Authenticated,
    era: EraCtx,
    mut entry: Entry,
) -> Reply {
    let id = req.id.clone();
    if let Some(reply) = resume(gw, &req, &who, &era) {
        // A retry continues a call that already has its record.
        return reply;
    }
    match admit(gw, &req, method, &who, &era, &mut entry).await {
        Ok((call, tool, args)) => {
            // A 2025-era stream is resumable and outlives its connection; a 2026-era call is
            // cancelled when its reply is dropped (closing the stream is the cancellation signal).
            let (log, token) = match &era {
                EraCtx::Legacy(s) => (s.open_stream(), s.begin_call(&id)),
                _ => (EventLog::new(0, false), gw.shutdown.child_token()),
            };
            let cancel = era.is_modern().then(|| token.clone().drop_guard());
            let gw2 = Arc::clone(gw);
            let log2 = Arc::clone(&log);
            let run = relay::Run {
                call,
                tool,
                args,
                req,
                method,
                era,
                entry,
            };
            let producer = Producer::new(relay::run(gw2, run, log2, token).in_current_span());
            Reply::Stream {
                log,
                producer: Some(producer),
                cancel,
            }
        }
        Err(err) => Reply::Error {
            err: refusal(gw, entry, err).await,
            id: Some(id),
        },
    }
}

/// Every check a routed call passes before it may go upstream, in order.
async fn admit(
    gw: &Arc<Gateway>,
    req: &Request,
    method: Method,
    who: &Authenticated,
    era: &EraCtx,
    entry: &mut Entry,
) -> Result<
    (
        Validated<relay::Target>,
        Option<Arc<crate::catalog::ToolDef>>,
        Option<serde_json::Value>,
    ),
    GatewayError,
> {
    let target = relay::Target::resolve(gw, method, req.params.as_deref())?;
    let upstream = gw
        .federation
        .member(target.upstream)
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let args = relay::arguments(method, req.params.as_deref());
    entry.target(&upstream, &target.exposed).args(args.as_ref());
    // [rate limit (principal × upstream × name) plugs in here]
    let verified = match (method, crate::catalog::pin_kind(target.kind)) {
        (Method::ToolsCall | Method::PromptsGet, Some(kind)) => Some(
            gw.catalogs
                .for_use(gw, target.upstream, kind, &target.inner)
                .await?,
        ),
        _ => None,
    };
    if let Some(why) = verified.as_ref().and_then(|d| d.blocked.clone()) {
        return Err(GatewayError::Blocked(target.exposed.clone(), why));
    }
    let tool = verified.filter(|_| method == Method::ToolsCall);
    // 2026-07-28 over HTTP: arguments the tool declares with `x-mcp-header` also travel as
    // `Mcp-Param-*` headers, which must agree with the body (SEP-2243).
    if let (EraCtx::Modern { params, .. }, Some(def)) = (era, &tool) {
        mh::check_params(&def.param_headers, args.as_ref(), params)?;
    }
    let (action, authz_target) =
        relay::authz_target(gw, method, &target, &upstream, tool.as_deref())?;
    let deciding = std::time::Instant::now();
    let (decision, authorized) = gw.policy.authorize(
        who,
        action,
        &authz_target,
        args.as_ref(),
        era.protocol_version(),
        target,
    );
    gw.metrics
        .stage(crate::metrics::Stage::Authz, deciding.elapsed());
    entry.policies(&decision.policy_ids);
    let authorized = authorized?;
    let subject = match (&tool, method) {
        (Some(def), _) => validate::Subject::Tool(def),
        (None, Method::ResourcesRead) => validate::Subject::Resource,
        _ => validate::Subject::Other,
    };
    let validating = std::time::Instant::now();
    let call = validate::validate(gw, authorized, subject, args.as_ref()).await;
    gw.metrics
        .stage(crate::metrics::Stage::Validate, validating.elapsed());
    let call = call?;
    // [approval gate plugs in here: a policy's @approval("required") holds the call]
    Ok((call, tool, args))
}

/// A 2026-era retry carrying a `requestState` the gateway minted: hand it to the waiting call.
fn resume(gw: &Arc<Gateway>, req: &Request, who: &Authenticated, era: &EraCtx) -> Option<Reply> {
    if !era.is_modern() {
        return None;
    }
    let params = RawFields::parse(req.params.as_deref()?).ok()?;
    let state = params
        .get_str("requestState")
        .filter(|s| s.starts_with(relay::STATE_PREFIX))?;
    let invalid = || Reply::Error {
        err: GatewayError::InvalidParams("unknown or expired requestState".into()),
        id: Some(req.id.clone()),
    };
    let Some(parked) = gw.unpark(&state) else {
        return Some(invalid());
    };
    if parked.principal != who.principal().id {
        tracing::warn!(client.id = %who.principal().id, "requestState presented by another principal");
        return Some(invalid());
    }
    let log = EventLog::new(0, false);
    let cancel = gw.shutdown.child_token();
    let responses = params
        .get("inputResponses")
        .and_then(|r| RawObject::from_raw(r).ok());
    let retry = relay::Retry {
        log: Arc::clone(&log),
        id: req.id.clone(),
        cancel: cancel.clone(),
        responses,
    };
    if parked.tx.send(retry).is_err() {
        return Some(invalid());
    }
    Some(Reply::Stream {
        log,
        producer: None,
        cancel: Some(cancel.drop_guard()),
    })
}

fn notification(era: &EraCtx, n: Notification) -> Reply {
    match (era, n.method.as_str()) {
        (EraCtx::Legacy(s), "notifications/cancelled") => {
            let id = n
                .params
                .as_deref()
                .and_then(|p| RawFields::parse(p).ok())
                .and_then(|p| p.get_as::<Id>("requestId").and_then(Result::ok));
            if let Some(id) = id {
                let found = s.cancel_call(&id);
                tracing::debug!(session = %s.id, request = %id, found, "client cancelled a request");
            }
            Reply::Accepted
        }
        // `initialized`, roots changes (roots are not relayed), progress from the client: nothing to do.
        _ => Reply::Accepted,
    }
}

fn response(era: &EraCtx, r: Response) -> Reply {
    let EraCtx::Legacy(session) = era else {
        return Reply::Error {
            err: GatewayError::Parse(invalid("clients must not send responses")),
            id: None,
        };
    };
    let Some(id) = r.id else {
        return Reply::Error {
            err: GatewayError::Parse(invalid("response without id")),
            id: None,
        };
    };
    if session.answer(&id, r.outcome) {
        Reply::Accepted
    } else {
        Reply::Error {
            err: GatewayError::Parse(invalid("no pending request has this id")),
            id: None,
        }
    }
}

fn invalid(reason: &str) -> portcullis_mcp::ParseError {
    portcullis_mcp::ParseError::Invalid {
        reason: reason.into(),
        id: None,
    }
}
