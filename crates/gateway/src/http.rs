//! The downstream HTTP surface: `POST/GET/DELETE /mcp`, health, readiness and metrics.
//!
//! Transport-level checks happen here, in this order: origin, body size, JSON-RPC parse,
//! authentication, era (session or 2026 headers). Everything after is [`crate::pipeline`].

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use http_body_util::BodyExt;
use portcullis_mcp::headers::{self as mh, MetaHeaders};
use portcullis_mcp::version::meta;
use portcullis_mcp::{Era, Id, Message, Method, RawFields, Response as RpcResponse, Revision};
use portcullis_transport::{ClientContext, Health, sse};
use serde_json::json;

use crate::Gateway;
use crate::error::GatewayError;
use crate::pipeline::{self, EraCtx, Inbound, Reply};
use crate::proof::Authenticated;
use crate::serve::Peer;
use crate::session::ClientCaps;
use crate::stream::{EventLog, parse_event_id};
use crate::{audit, authn};

pub fn router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/mcp", get(get_mcp).post(post_mcp).delete(delete_mcp))
        .route(
            "/.well-known/oauth-protected-resource",
            get(protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(protected_resource),
        )
        .route("/.well-known/jwks.json", get(jwks))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(gw)
}

async fn post_mcp(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let (reply, modern) = match accept(&gw, &headers, body, &peer, uri.query()).await {
        Ok(inbound) => {
            let modern = inbound.era.is_modern();
            (pipeline::handle(&gw, inbound).await, modern)
        }
        Err(refused) => {
            let (err, id) = refuse(&gw, &peer, refused).await;
            (Reply::Error { err, id }, false)
        }
    };
    if let Reply::Error { err, .. } = &reply {
        tracing::info!(client.ip = %peer.addr.ip(), error = %err, latency_ms = started.elapsed().as_secs_f64() * 1000.0, "request refused");
    }
    render(&gw, reply, modern).await
}

/// A request refused before the pipeline: what was known of it.
struct Refused {
    err: GatewayError,
    id: Option<Id>,
    method: Option<String>,
}

impl Refused {
    fn bare(err: GatewayError) -> Self {
        Refused {
            err,
            id: None,
            method: None,
        }
    }
}

/// Audits a refusal (every request leaves a record); returns the error to answer with (the
/// audit trail's own failure, if it could not record this one) and the request id.
async fn refuse(gw: &Gateway, peer: &Peer, refused: Refused) -> (GatewayError, Option<Id>) {
    let mut entry = audit::Entry::new(refused.method.as_deref().unwrap_or("(unreadable)"));
    entry.client_ip(peer.addr.ip());
    if let GatewayError::Auth(f) = &refused.err {
        entry.attempt(f.attempt());
    }
    entry.failed(&refused.err);
    let err = match entry.commit(gw).await {
        Ok(()) => refused.err,
        Err(e) => e,
    };
    (err, refused.id)
}

/// Every check before the pipeline, in the order of DESIGN §1: origin, size, credentials,
/// JSON-RPC, era.
async fn accept(
    gw: &Arc<Gateway>,
    headers: &HeaderMap,
    body: Body,
    peer: &Peer,
    query: Option<&str>,
) -> Result<Inbound, Refused> {
    check_origin(gw, headers).map_err(Refused::bare)?;
    let limit = gw.limits.max_request_bytes;
    let bytes = read_limited(body, limit).await.map_err(Refused::bare)?;
    let seen = authn::Seen {
        headers,
        peer: peer.addr,
        client_cert: peer.client_cert.as_ref(),
        query,
    };
    let authenticating = Instant::now();
    let who = authn::authenticate(gw, &seen).await;
    gw.metrics
        .stage(crate::metrics::Stage::Authn, authenticating.elapsed());
    let who = match who {
        Ok(who) => who,
        Err(failure) => {
            // Read the message only to say in the record what was refused.
            let message = portcullis_mcp::parse(&bytes, gw.limits.max_json_depth).ok();
            let (id, method) = match &message {
                Some(Message::Request(r)) => (Some(r.id.clone()), Some(r.method.clone())),
                Some(Message::Notification(n)) => (None, Some(n.method.clone())),
                _ => (None, None),
            };
            return Err(Refused {
                err: GatewayError::Auth(failure),
                id,
                method,
            });
        }
    };
    let message = portcullis_mcp::parse(&bytes, gw.limits.max_json_depth).map_err(|e| Refused {
        id: e.id().cloned(),
        err: GatewayError::Parse(e),
        method: None,
    })?;
    let (id, method) = match &message {
        Message::Request(r) => (Some(r.id.clone()), Some(r.method.clone())),
        Message::Notification(n) => (None, Some(n.method.clone())),
        Message::Response(_) => (None, None),
    };
    let era = classify(gw, headers, &message, &who).map_err(|err| Refused { err, id, method })?;
    Ok(Inbound { message, who, era })
}

fn check_origin(gw: &Gateway, headers: &HeaderMap) -> Result<(), GatewayError> {
    gw.origins.check(headers)
}

async fn read_limited(body: Body, limit: u64) -> Result<Bytes, GatewayError> {
    let limited = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(GatewayError::BodyTooLarge(limit))
        }
        Err(e) => Err(GatewayError::Internal(format!("reading body: {e}"))),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<Result<&'a str, ()>> {
    headers.get(name).map(|v| v.to_str().map_err(|_| ()))
}

/// Decides the era of a message: a 2025-era session, a handshake, or a 2026 stateless request.
fn classify(
    gw: &Gateway,
    headers: &HeaderMap,
    message: &Message,
    who: &Authenticated,
) -> Result<EraCtx, GatewayError> {
    let header_version = header_str(headers, mh::PROTOCOL_VERSION);
    let header_is_modern = matches!(header_version, Some(Ok(v)) if Revision::parse(v).is_some_and(|r| r.era() == Era::Modern));
    if let Message::Request(r) = message
        && r.method == "initialize"
    {
        // A 2026-07-28 client has no handshake: `initialize` is a removed method there.
        return if header_is_modern {
            Err(GatewayError::RemovedMethod(r.method.clone()))
        } else {
            Ok(EraCtx::Handshake)
        };
    }
    if let Some(sid) = header_str(headers, mh::SESSION_ID) {
        let sid = sid.map_err(|()| GatewayError::UnknownSession)?;
        return gw
            .sessions
            .get_owned(sid, &who.principal().id)
            .map(EraCtx::Legacy);
    }
    let (method, params) = match message {
        Message::Request(r) => (r.method.as_str(), r.params.as_deref()),
        Message::Notification(_) | Message::Response(_) => {
            // 2026-07-28 defines no client notifications or responses over HTTP; accept and ignore.
            return Ok(EraCtx::Modern {
                client: ClientContext::default(),
                caps: ClientCaps::default(),
                params: Vec::new(),
            });
        }
    };
    let params_obj = params.and_then(|p| RawFields::parse(p).ok());
    let meta_obj = params_obj
        .as_ref()
        .and_then(|p| p.get("_meta"))
        .and_then(|m| RawFields::parse(m).ok());
    let body_version = meta_obj
        .as_ref()
        .and_then(|m| m.get_str(meta::PROTOCOL_VERSION));
    if header_is_modern {
        // Every 2026-07-28 request carries its protocol version and capabilities in `_meta`.
        let Some(meta_obj) = meta_obj.as_ref() else {
            return Err(GatewayError::MetaInvalid("params._meta is required"));
        };
        if body_version.is_none() {
            return Err(GatewayError::MetaInvalid(
                "params._meta is missing io.modelcontextprotocol/protocolVersion",
            ));
        }
        if meta_obj.get(meta::CLIENT_CAPABILITIES).is_none() {
            return Err(GatewayError::MetaInvalid(
                "params._meta is missing io.modelcontextprotocol/clientCapabilities",
            ));
        }
    }
    if body_version.is_none() && !header_is_modern {
        return match header_version {
            Some(Ok(v)) if Revision::parse(v).is_none() => {
                Err(GatewayError::UnsupportedVersion(v.to_owned()))
            }
            _ => Err(GatewayError::SessionRequired),
        };
    }
    let m = Method::parse(method);
    let body_name = m
        .name_field()
        .and_then(|f| params_obj.as_ref().and_then(|p| p.get_str(f)));
    let meta_headers = MetaHeaders {
        protocol_version: header_version,
        method: header_str(headers, mh::METHOD),
        name: header_str(headers, mh::NAME),
    };
    mh::check(
        &meta_headers,
        Some(body_version.as_deref().unwrap_or("")),
        method,
        body_name.as_deref(),
        m.requires_name_header(),
    )?;
    let version = body_version.unwrap_or_default();
    match Revision::parse(&version) {
        Some(r) if r.era() == Era::Modern => {}
        _ => return Err(GatewayError::UnsupportedVersion(version.into_owned())),
    }
    let capabilities = meta_obj
        .as_ref()
        .and_then(|m| m.get(meta::CLIENT_CAPABILITIES))
        .map(|c| Arc::from(c.to_owned()));
    let client_info = meta_obj
        .as_ref()
        .and_then(|m| m.get(meta::CLIENT_INFO))
        .map(|c| Arc::from(c.to_owned()));
    let caps = ClientCaps::from_json(capabilities.as_deref());
    let mut params = Vec::new();
    for (name, value) in headers {
        if let Some(suffix) = name.as_str().strip_prefix(mh::PARAM_PREFIX) {
            let value = value.to_str().map_err(|_| mh::HeaderMismatch::Param {
                name: suffix.to_owned(),
                problem: "is not text",
            })?;
            params.push((suffix.to_owned(), value.to_owned()));
        }
    }
    Ok(EraCtx::Modern {
        client: ClientContext {
            capabilities,
            client_info,
            ..ClientContext::default()
        },
        caps,
        params,
    })
}

async fn render(gw: &Gateway, reply: Reply, modern: bool) -> Response {
    match reply {
        Reply::Json { body, session } => {
            let mut resp = json_response(StatusCode::OK, body);
            if let Some(sid) = session.and_then(|s| HeaderValue::from_str(&s).ok()) {
                resp.headers_mut().insert(mh::SESSION_ID, sid);
            }
            resp
        }
        Reply::Accepted => StatusCode::ACCEPTED.into_response(),
        Reply::Error { err, id } => error_response(gw, &err, id, modern),
        Reply::Stream {
            log,
            producer,
            cancel,
        } => {
            let first = match producer {
                Some(producer) => producer.first(&log).await,
                None => log.first().await,
            };
            let Some(first) = first else {
                return error_response(
                    gw,
                    &GatewayError::Internal("call ended without a response".into()),
                    None,
                    modern,
                );
            };
            if first.last {
                if let Some(rest) = first.rest.as_ref().and_then(crate::stream::Rest::take) {
                    return passed_through(first.data, rest, cancel);
                }
                let status = if modern {
                    modern_error_status(first.error_code)
                } else {
                    StatusCode::OK
                };
                return json_response(status, first.data);
            }
            let body = sse_body(log, 0, cancel);
            sse_response(body)
        }
    }
}

/// 2026-07-28 over HTTP: some JSON-RPC errors carry an HTTP status too (a missing client
/// capability is 400, an unknown method 404), whoever raised them.
fn modern_error_status(code: Option<i64>) -> StatusCode {
    match code {
        Some(-32021) => StatusCode::BAD_REQUEST,
        Some(-32601) => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    let body: Body = body.into();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error_response(gw: &Gateway, err: &GatewayError, id: Option<Id>, modern: bool) -> Response {
    let public = err.public();
    let mut status = public.status;
    if modern && public.error.code == -32601 {
        status = StatusCode::NOT_FOUND;
    }
    let body = Bytes::from(RpcResponse::error(id, public.error).to_bytes());
    let mut resp = json_response(status, body);
    for (name, value) in err.headers() {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    let _ = gw;
    resp
}

/// A response that passes through as it arrives: `head`, then the pieces up to the last one.
/// If the pieces stop before it, the body ends unfinished (an error: HTTP/1.1 sends no last
/// chunk), so the client sees a broken reply, never a whole result that was not meant to be.
fn passed_through(
    head: Bytes,
    rest: crate::stream::RestReceiver,
    cancel: Option<tokio_util::sync::DropGuard>,
) -> Response {
    use crate::stream::RestPiece;
    let pieces = futures::stream::unfold((Some(rest), cancel), |(rest, cancel)| async move {
        // The guard lives as long as the body: dropping the body cancels the call.
        let mut rest = rest?;
        Some(match rest.recv().await {
            Some(RestPiece { bytes, last: false }) => (Ok(bytes), (Some(rest), cancel)),
            Some(RestPiece { bytes, last: true }) => (Ok(bytes), (None, cancel)),
            None => (
                Err(std::io::Error::other("the response broke off")),
                (None, cancel),
            ),
        })
    });
    let body = futures::stream::once(async move { Ok(head) }).chain(pieces);
    json_response(StatusCode::OK, Body::from_stream(body))
}

fn sse_body(log: Arc<EventLog>, from: u64, cancel: Option<tokio_util::sync::DropGuard>) -> Body {
    let resumable = log.resumable;
    let ids = Arc::clone(&log);
    let stream = log.reader(from).map(move |ev| {
        // Keep the guard alive as long as the body: dropping the body cancels the call.
        let _ = &cancel;
        let id = resumable.then(|| ids.event_id(ev.seq));
        Ok::<_, std::convert::Infallible>(sse::encode(id.as_deref(), &ev.data))
    });
    Body::from_stream(stream)
}

fn sse_response(body: Body) -> Response {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

/// Authenticates a `GET` or `DELETE`: the session must be the caller's own.
async fn session_request(
    gw: &Gateway,
    method: &http::Method,
    headers: &HeaderMap,
    peer: &Peer,
    query: Option<&str>,
) -> Result<Arc<crate::session::Session>, GatewayError> {
    check_origin(gw, headers)?;
    let seen = authn::Seen {
        headers,
        peer: peer.addr,
        client_cert: peer.client_cert.as_ref(),
        query,
    };
    let who = match authn::authenticate(gw, &seen).await {
        Ok(who) => who,
        Err(failure) => {
            let method = if method == http::Method::DELETE {
                "(DELETE /mcp)"
            } else {
                "(GET /mcp)"
            };
            let refused = Refused {
                err: GatewayError::Auth(failure),
                id: None,
                method: Some(method.to_owned()),
            };
            return Err(refuse(gw, peer, refused).await.0);
        }
    };
    let Some(Ok(sid)) = header_str(headers, mh::SESSION_ID) else {
        return Err(GatewayError::MethodNotAllowed);
    };
    gw.sessions.get_owned(sid, &who.principal().id)
}

/// The caller's own 2025-era session, for `GET` and `DELETE /mcp`; the refusal otherwise.
struct OwnSession(Arc<crate::session::Session>);

impl axum::extract::FromRequestParts<Arc<Gateway>> for OwnSession {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        gw: &Arc<Gateway>,
    ) -> Result<Self, Response> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<Peer>>().cloned() else {
            let e = GatewayError::Internal("no connection info".into());
            return Err(error_response(gw, &e, None, false));
        };
        session_request(gw, &parts.method, &parts.headers, &peer, parts.uri.query())
            .await
            .map(OwnSession)
            .map_err(|e| error_response(gw, &e, None, false))
    }
}

/// `GET /mcp`: a 2025-era session's notification stream, or the resumption of a response stream.
async fn get_mcp(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    OwnSession(session): OwnSession,
) -> Response {
    if let Some(Ok(last)) = header_str(&headers, mh::LAST_EVENT_ID) {
        let Some((stream, seq)) = parse_event_id(last) else {
            return error_response(
                &gw,
                &GatewayError::InvalidParams("bad Last-Event-ID".into()),
                None,
                false,
            );
        };
        return match session.stream(stream) {
            Some(log) => sse_response(sse_body(log, seq + 1, None)),
            None => error_response(&gw, &GatewayError::UnknownSession, None, false),
        };
    }
    let log = Arc::clone(&session.standalone);
    let from = log.next_seq();
    sse_response(sse_body(log, from, None))
}

/// `DELETE /mcp`: ends a 2025-era session.
async fn delete_mcp(State(gw): State<Arc<Gateway>>, OwnSession(session): OwnSession) -> Response {
    if gw.sessions.remove_owned(&session.id, &session.owner) {
        gw.metrics.sessions.set(gw.sessions.len() as i64);
        tracing::info!(session = %session.id, "session ended by client");
        StatusCode::NO_CONTENT.into_response()
    } else {
        error_response(&gw, &GatewayError::UnknownSession, None, false)
    }
}

/// RFC 9728 protected-resource metadata, when OAuth is configured.
async fn protected_resource(State(gw): State<Arc<Gateway>>) -> Response {
    match gw.authn.protected_resource_metadata() {
        Some(doc) => ([(header::CACHE_CONTROL, "max-age=300")], axum::Json(doc)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The public keys of the gateway's own tokens (`portcullis token mint`).
async fn jwks(State(gw): State<Arc<Gateway>>) -> Response {
    match gw.authn.jwks_document().await {
        Ok(doc) => ([(header::CACHE_CONTROL, "max-age=60")], axum::Json(doc)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the token signing keys");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

async fn readyz(State(gw): State<Arc<Gateway>>) -> Response {
    let mut all_up = true;
    let mut upstreams = serde_json::Map::new();
    for m in gw.federation.members() {
        let h = m.upstream.health();
        all_up &= h == Health::Up;
        let label = match h {
            Health::Up => "up",
            Health::Starting => "starting",
            Health::Down => "down",
        };
        upstreams.insert(m.name.clone(), json!(label));
    }
    let store = match tokio::time::timeout(std::time::Duration::from_secs(2), gw.store.ping()).await
    {
        Ok(Ok(())) => "up",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "store unreachable");
            "down"
        }
        Err(_) => "down",
    };
    all_up &= store == "up";
    let status = if all_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(json!({"ready": all_up, "store": store, "upstreams": upstreams})),
    )
        .into_response()
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    gw.refresh_gauges();
    for m in gw.federation.members() {
        let up = i64::from(m.upstream.health() == Health::Up);
        gw.metrics
            .upstream_up
            .get_or_create(&crate::metrics::UpstreamLabels {
                upstream: m.name.clone(),
            })
            .set(up);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        gw.metrics.encode(),
    )
        .into_response()
}
