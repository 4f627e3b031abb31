//! Streamable HTTP at `/mcp`: POST for every message, DELETE to end a legacy session, GET 405.
//!
//! A POST is answered in this order: Origin check (403) → JSON-RPC parse (400) → era: modern
//! requests check their mirrored headers (400 `-32020`) and version (400 `-32022`); `initialize`
//! mints a session; other legacy messages need a live `Mcp-Session-Id` (400 missing, 404
//! unknown) → the answer, as one JSON body, or as an SSE stream for requests that talk back
//! while running (`slow`, legacy `ask_name`). Closing that stream cancels the request.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::era::{self, ClientCaps, Era, Legacy, MODERN, Route};
use crate::headers::{self, SESSION_ID};
use crate::jsonrpc::{self, INVALID_REQUEST, Message, Request, RpcError};
use crate::jsonrpc::{HEADER_MISMATCH, INVALID_PARAMS, METHOD_NOT_FOUND, PARSE_ERROR};
use crate::jsonrpc::{MISSING_CLIENT_CAPABILITY, UNSUPPORTED_PROTOCOL_VERSION};
use crate::peer::Peer;
use crate::server::{Ctx, Server};
use crate::session::{Lookup, Session, Sessions};

/// Serves MCP (Streamable HTTP, `POST /mcp`) on `listener` until the listener fails.
pub async fn serve_http(listener: TcpListener, root: PathBuf) -> std::io::Result<()> {
    axum::serve(listener, router(root)?).await
}

/// The `/mcp` routes, for embedding in another server or a test harness.
pub fn router(root: PathBuf) -> std::io::Result<Router> {
    let app = Arc::new(App {
        server: Server::new(&root)?,
        sessions: Sessions::default(),
    });
    Ok(Router::new()
        .route("/mcp", post(post_mcp).get(get_mcp).delete(delete_mcp))
        .with_state(app))
}

struct App {
    server: Server,
    sessions: Sessions,
}

/// The HTTP status for a JSON-RPC error: modern rules give protocol errors 4xx statuses.
fn status_for(code: i64, modern: bool) -> StatusCode {
    match code {
        PARSE_ERROR | INVALID_REQUEST => StatusCode::BAD_REQUEST,
        METHOD_NOT_FOUND if modern => StatusCode::NOT_FOUND,
        INVALID_PARAMS
        | HEADER_MISMATCH
        | MISSING_CLIENT_CAPABILITY
        | UNSUPPORTED_PROTOCOL_VERSION
            if modern =>
        {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    }
}

fn json(status: StatusCode, body: String) -> Response {
    let content_type = HeaderValue::from_static("application/json");
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// A JSON-RPC reply with the status its outcome calls for.
fn reply(modern: bool, id: Option<&jsonrpc::Id>, outcome: &Result<Value, RpcError>) -> Response {
    let status = match outcome {
        Ok(_) => StatusCode::OK,
        Err(e) => status_for(e.code, modern),
    };
    json(status, jsonrpc::response(id, outcome))
}

/// A transport-level refusal with an explicit status and a JSON-RPC error body.
fn refuse(status: StatusCode, id: Option<&jsonrpc::Id>, error: RpcError) -> Response {
    json(status, jsonrpc::response(id, &Err(error)))
}

/// Origin (DNS-rebinding guard): absent is fine; present must be a loopback origin.
fn origin_allowed(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(authority) = origin.to_str().ok().and_then(|o| o.split_once("://")) else {
        return false;
    };
    let authority = authority.1.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

async fn post_mcp(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    if !origin_allowed(&headers) {
        let error = RpcError::new(INVALID_REQUEST, "Forbidden: Origin not allowed");
        return refuse(StatusCode::FORBIDDEN, None, error);
    }
    let message = match jsonrpc::parse(&body) {
        Ok(message) => message,
        Err(rejected) => return reply(true, rejected.id.as_ref(), &Err(rejected.error)),
    };
    let session = match headers::single(&headers, SESSION_ID) {
        Ok(header) => app.sessions.lookup(header),
        Err(_) => Lookup::Unknown,
    };
    match message {
        Message::Request(req) => app.on_request(&headers, session, req).await,
        Message::Notification { method, params } => match session {
            Lookup::Unknown => session_refusal(&headers, Lookup::Unknown, None),
            Lookup::Found(s) if method == "notifications/cancelled" => {
                s.inflight.cancel(&params);
                StatusCode::ACCEPTED.into_response()
            }
            _ => StatusCode::ACCEPTED.into_response(),
        },
        Message::Response { id, outcome } => match session {
            Lookup::Found(s) if s.pending.resolve(&id, outcome) => {
                StatusCode::ACCEPTED.into_response()
            }
            Lookup::Found(_) => refuse(
                StatusCode::BAD_REQUEST,
                None,
                RpcError::new(
                    INVALID_REQUEST,
                    "Invalid request: no pending request has that id",
                ),
            ),
            other => session_refusal(&headers, other, None),
        },
    }
}

/// 400 for a missing session (or a modern request without its `_meta`), 404 for an unknown one.
fn session_refusal(headers: &HeaderMap, lookup: Lookup, id: Option<&jsonrpc::Id>) -> Response {
    match lookup {
        Lookup::Unknown => refuse(
            StatusCode::NOT_FOUND,
            id,
            RpcError::new(INVALID_REQUEST, "Invalid request: unknown or ended session"),
        ),
        _ if headers
            .get(headers::PROTOCOL_VERSION)
            .is_some_and(|v| v == MODERN) =>
        {
            refuse(StatusCode::BAD_REQUEST, id, era::not_initialized())
        }
        _ => refuse(
            StatusCode::BAD_REQUEST,
            id,
            RpcError::new(
                INVALID_REQUEST,
                "Bad Request: Mcp-Session-Id header is required",
            ),
        ),
    }
}

/// Requests whose answer is an SSE stream: they send messages before their result.
fn streams(req: &Request, era: Era) -> bool {
    if req.method != "tools/call" {
        return false;
    }
    match req.params.get("name").and_then(Value::as_str) {
        Some("slow") => true,
        Some("ask_name") => !era.is_modern(),
        _ => false,
    }
}

impl App {
    async fn on_request(
        self: Arc<Self>,
        headers: &HeaderMap,
        session: Lookup,
        req: Request,
    ) -> Response {
        tracing::debug!(mcp.method = %req.method, "http request");
        let id = Some(&req.id);
        let (era, caps, session) = match era::route(&req.method, &req.params) {
            Err(error) => return reply(true, id, &Err(error)),
            Ok(Route::Modern(envelope)) => {
                let checked = headers::check_modern(headers, &envelope.requested, &req)
                    .and_then(|()| envelope.accept());
                match checked {
                    Ok(caps) => (Era::Modern, caps, None),
                    Err(error) => return reply(true, id, &Err(error)),
                }
            }
            Ok(Route::Initialize) => return self.initialize(&req),
            Ok(Route::Legacy) => match session {
                Lookup::Found(s) => {
                    let version_ok = match headers::single(headers, headers::PROTOCOL_VERSION) {
                        Ok(None) => true,
                        Ok(Some(v)) => Legacy::parse(v).is_some(),
                        Err(_) => false,
                    };
                    if !version_ok {
                        let error = RpcError::new(
                            INVALID_REQUEST,
                            "Bad Request: unsupported MCP-Protocol-Version",
                        );
                        return refuse(StatusCode::BAD_REQUEST, id, error);
                    }
                    (Era::Legacy(s.version), s.caps, Some(s))
                }
                other => return session_refusal(headers, other, id),
            },
        };
        if streams(&req, era) {
            return self.stream(req, era, caps, session);
        }
        let ctx = Ctx {
            era,
            caps,
            peer: Peer::none(),
        };
        let outcome = self.server.handle(&req, &ctx).await;
        reply(era.is_modern(), Some(&req.id), &outcome)
    }

    fn initialize(&self, req: &Request) -> Response {
        let (version, caps, result) = match self.server.initialize(&req.params) {
            Ok(opened) => opened,
            Err(error) => return reply(false, Some(&req.id), &Err(error)),
        };
        let Some(session) = self.sessions.open(version, caps) else {
            let error = RpcError::new(
                jsonrpc::INTERNAL_ERROR,
                "Too many sessions; try again later",
            );
            return refuse(StatusCode::SERVICE_UNAVAILABLE, Some(&req.id), error);
        };
        let mut response = json(
            StatusCode::OK,
            jsonrpc::response(Some(&req.id), &Ok(result)),
        );
        if let Ok(value) = HeaderValue::from_str(&session) {
            response.headers_mut().insert(SESSION_ID, value);
        }
        response
    }

    /// Runs the request in its own task, sending its messages, then its result, as SSE events.
    /// Closing the stream cancels it; so does `notifications/cancelled` in a legacy session.
    fn stream(
        self: Arc<Self>,
        req: Request,
        era: Era,
        caps: ClientCaps,
        session: Option<Arc<Session>>,
    ) -> Response {
        let (tx, rx) = mpsc::channel::<String>(16);
        let pending = session.as_ref().map(|s| s.pending.clone());
        let ctx = Ctx {
            era,
            caps,
            peer: Peer::new(tx.clone(), pending),
        };
        let id = req.id.clone();
        let scope = session.clone();
        let task = async move {
            tokio::select! {
                outcome = self.server.handle(&req, &ctx) => {
                    if let Some(s) = &scope {
                        s.inflight.finished(&req.id);
                    }
                    let _ = tx.send(jsonrpc::response(Some(&req.id), &outcome)).await;
                }
                () = tx.closed() => {
                    tracing::debug!(mcp.method = %req.method, "stream closed by the client: request cancelled");
                }
            }
        };
        match session {
            Some(s) => s.inflight.start(&id, || tokio::spawn(task).abort_handle()),
            None => drop(tokio::spawn(task)),
        }
        let events = futures::stream::unfold(rx, |mut rx| async move {
            let message = rx.recv().await?;
            let event = Bytes::from(format!("event: message\ndata: {message}\n\n"));
            Some((Ok::<_, Infallible>(event), rx))
        });
        let headers = [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ];
        (StatusCode::OK, headers, Body::from_stream(events)).into_response()
    }
}

async fn get_mcp() -> Response {
    let allow = HeaderValue::from_static("POST, DELETE");
    (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, allow)]).into_response()
}

async fn delete_mcp(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    match headers::single(&headers, SESSION_ID) {
        Ok(Some(id)) if app.sessions.close(id) => StatusCode::OK.into_response(),
        Ok(Some(_)) | Err(_) => session_refusal(&headers, Lookup::Unknown, None),
        Ok(None) => session_refusal(&headers, Lookup::Missing, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_must_be_loopback() {
        let rows = [
            (None, true),
            (Some("http://localhost:3000"), true),
            (Some("http://127.0.0.1"), true),
            (Some("https://[::1]:8443"), true),
            (Some("http://evil.example"), false),
            (Some("http://localhost.evil.example"), false),
            (Some("null"), false),
        ];
        for (origin, ok) in rows {
            let mut headers = HeaderMap::new();
            if let Some(o) = origin {
                headers.insert(header::ORIGIN, HeaderValue::from_static(o));
            }
            assert_eq!(origin_allowed(&headers), ok, "{origin:?}");
        }
    }

    #[test]
    fn statuses_follow_the_era() {
        assert_eq!(status_for(METHOD_NOT_FOUND, true), StatusCode::NOT_FOUND);
        assert_eq!(status_for(METHOD_NOT_FOUND, false), StatusCode::OK);
        assert_eq!(
            status_for(UNSUPPORTED_PROTOCOL_VERSION, true),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(status_for(PARSE_ERROR, false), StatusCode::BAD_REQUEST);
        assert_eq!(status_for(INVALID_PARAMS, false), StatusCode::OK);
        assert_eq!(status_for(jsonrpc::INTERNAL_ERROR, true), StatusCode::OK);
    }
}
