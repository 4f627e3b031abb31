//! A remote MCP server over Streamable HTTP (2026-07-28 stateless, or a 2025-era session).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use portcullis_config::Secret;
use portcullis_mcp::headers::{self as mcp_headers, encode_value};
use portcullis_mcp::result_stream::ResultScanner;
use portcullis_mcp::{Era, Id, Message, Method, Notification, Outcome, Request, Response};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;
use serde_json::value::RawValue;
use tokio::sync::{RwLock, broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{
    Call, Delivery, Event, Health, ServerIdentity, ServerRequest, Streaming, Upstream,
    UpstreamError, UpstreamLimits, handshake, meta,
};
use crate::sse::{SsePiece, SsePieces};

#[derive(Clone)]
struct Session {
    identity: ServerIdentity,
    id: Option<String>,
}

/// What a request's routing headers say besides its method: `Mcp-Name` and `Mcp-Param-*`.
#[derive(Clone, Copy, Default)]
struct Route<'a> {
    name: Option<&'a str>,
    params: &'a [(String, String)],
}

struct Shared {
    name: String,
    /// Parsed once: parsing on every request (IDNA and all) showed in profiles.
    url: reqwest::Url,
    client: reqwest::Client,
    /// POSTs to a plain-HTTP upstream go through connections the calling task drives itself
    /// ([`direct`]); `None` for `https://`, which reqwest serves.
    direct: Option<Arc<direct::Direct>>,
    headers: HeaderMap,
    limits: UpstreamLimits,
    session: RwLock<Option<Session>>,
    health: AtomicU8,
    next_id: AtomicI64,
    notifications: broadcast::Sender<Notification>,
    stop: CancellationToken,
    /// Resource URIs clients subscribed to (2026-era servers: part of the listen filter).
    subs: super::subscriptions::Subscriptions,
    /// The gateway's own OAuth token for this upstream, when it obtains one.
    tokens: Option<Arc<dyn super::TokenSource>>,
}

#[path = "http_listen.rs"]
mod listen;

#[path = "direct.rs"]
mod direct;

pub struct HttpUpstream {
    shared: Arc<Shared>,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const RECONNECT_EVERY: Duration = Duration::from_secs(5);

fn health_code(h: Health) -> u8 {
    match h {
        Health::Starting => 0,
        Health::Up => 1,
        Health::Down => 2,
    }
}

/// What one POST produced.
enum Posted {
    Outcome(Outcome),
    /// A long result, passed on as it arrives.
    Streamed(Box<ResultStream>),
    Accepted,
    SessionExpired,
}

impl HttpUpstream {
    pub fn new(
        name: &str,
        url: &str,
        bearer: Option<Secret>,
        extra: &BTreeMap<String, Secret>,
        limits: UpstreamLimits,
        tokens: Option<Arc<dyn super::TokenSource>>,
    ) -> Result<Self, UpstreamError> {
        let mut headers = HeaderMap::new();
        if let Some(b) = bearer {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", b.expose())).map_err(|_| {
                UpstreamError::Connect(format!(
                    "{}: bearer token is not a valid header value",
                    b.origin()
                ))
            })?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        for (k, v) in extra {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| UpstreamError::Connect(format!("bad header name {k}")))?;
            let mut value = HeaderValue::from_str(v.expose())
                .map_err(|_| UpstreamError::Connect(format!("bad value for header {k}")))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .no_proxy()
            // An upstream is one configured address: a redirect would carry the gateway's
            // credentials and the client's call somewhere the operator never named.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| UpstreamError::Connect(e.to_string()))?;
        let (notifications, _) = broadcast::channel(256);
        let url = reqwest::Url::parse(url)
            .map_err(|e| UpstreamError::Connect(format!("upstream url: {e}")))?;
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            direct: direct::Direct::new(&url, CONNECT_TIMEOUT).map(Arc::new),
            url,
            client,
            headers,
            limits,
            session: RwLock::new(None),
            health: AtomicU8::new(health_code(Health::Starting)),
            next_id: AtomicI64::new(1),
            notifications,
            stop: CancellationToken::new(),
            subs: super::subscriptions::Subscriptions::default(),
            tokens,
        });
        tokio::spawn(keep_connected(Arc::clone(&shared)));
        tokio::spawn(listen::run(Arc::clone(&shared)));
        Ok(Self { shared })
    }
}

/// Connects at start and reconnects while the upstream is down, so readiness reflects reality.
async fn keep_connected(shared: Arc<Shared>) {
    loop {
        let down = shared.health.load(Ordering::Relaxed) != health_code(Health::Up);
        if down && shared.session().await.is_ok() {
            tracing::info!(upstream = %shared.name, "upstream connected");
        }
        tokio::select! {
            () = tokio::time::sleep(RECONNECT_EVERY) => {}
            () = shared.stop.cancelled() => return,
        }
    }
}

impl Shared {
    fn set_health(&self, h: Health) {
        self.health.store(health_code(h), Ordering::Relaxed);
    }

    /// The current session, establishing one when there is none.
    async fn session(self: &Arc<Self>) -> Result<Session, UpstreamError> {
        if let Some(s) = self.session.read().await.clone() {
            return Ok(s);
        }
        let mut slot = self.session.write().await;
        if let Some(s) = slot.clone() {
            return Ok(s);
        }
        match self.connect().await {
            Ok(s) => {
                self.set_health(Health::Up);
                *slot = Some(s.clone());
                Ok(s)
            }
            Err(e) => {
                self.set_health(Health::Down);
                Err(e)
            }
        }
    }

    async fn connect(self: &Arc<Self>) -> Result<Session, UpstreamError> {
        // 2026-07-28 first; anything but a modern discover result means a 2025-era server.
        let probe_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let probe = Request {
            id: Id::Int(probe_id),
            method: "server/discover".into(),
            params: Some(handshake::discover_params()),
        };
        let modern = Session {
            identity: ServerIdentity {
                era: Era::Modern,
                protocol_version: "2026-07-28".into(),
                capabilities: Arc::from(meta::empty_object()),
                server_info: None,
                instructions: None,
            },
            id: None,
        };
        match self.post(&probe, &modern, None, None, &[], None).await {
            Ok(Posted::Outcome(Outcome::Result(r))) => {
                if let Some(identity) = handshake::read_discover(&r) {
                    return Ok(Session { identity, id: None });
                }
            }
            Err(UpstreamError::Connect(e)) => return Err(UpstreamError::Connect(e)),
            _ => {}
        }
        let init_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let init = Request {
            id: Id::Int(init_id),
            method: "initialize".into(),
            params: Some(handshake::initialize_params()),
        };
        let resp = self
            .send(&init, None, "2025-11-25", Route::default())
            .await?;
        let session_id = resp
            .headers()
            .get(mcp_headers::SESSION_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let provisional = Session {
            identity: modern.identity.clone(),
            id: session_id.clone(),
        };
        let identity = match self
            .read(resp, init_id, &provisional, None, None, None)
            .await?
        {
            Posted::Outcome(Outcome::Result(r)) => handshake::read_initialize(&r)?,
            Posted::Outcome(Outcome::Error(e)) => {
                return Err(UpstreamError::Connect(format!(
                    "initialize refused: {} ({})",
                    e.message, e.code
                )));
            }
            _ => return Err(UpstreamError::Protocol("no answer to initialize".into())),
        };
        let session = Session {
            identity,
            id: session_id,
        };
        let initialized = Notification {
            method: "notifications/initialized".into(),
            params: None,
        };
        let bytes = initialized.to_bytes();
        let _ = self
            .send_bytes(bytes, &session, "notifications/initialized", None)
            .await?;
        Ok(session)
    }

    async fn send(
        &self,
        req: &Request,
        session_id: Option<&str>,
        version: &str,
        route: Route<'_>,
    ) -> Result<Reply, UpstreamError> {
        self.post_bytes(
            req.to_bytes(),
            Some(&req.method),
            version,
            session_id,
            route,
        )
        .await
    }

    async fn send_bytes(
        &self,
        bytes: Vec<u8>,
        session: &Session,
        method: &str,
        name: Option<&str>,
    ) -> Result<Reply, UpstreamError> {
        let method = (!method.is_empty()).then_some(method);
        let version = session.identity.protocol_version.as_str();
        let route = Route { name, params: &[] };
        self.post_bytes(bytes, method, version, session.id.as_deref(), route)
            .await
    }

    /// One POST to the MCP endpoint with the transport's headers; `method` is absent for the
    /// responses the gateway sends back to server requests.
    async fn post_bytes(
        &self,
        bytes: Vec<u8>,
        method: Option<&str>,
        version: &str,
        session_id: Option<&str>,
        route: Route<'_>,
    ) -> Result<Reply, UpstreamError> {
        // With a token the gateway obtains itself, a 401 means the token went stale (revoked,
        // keys rotated): fetch a new one and send once more.
        let bytes = bytes::Bytes::from(bytes);
        let retry = self.tokens.as_ref().map(|_| bytes.clone());
        let resp = self
            .post_once(bytes, method, version, session_id, route)
            .await?;
        match (resp.status(), retry, &self.tokens) {
            (reqwest::StatusCode::UNAUTHORIZED, Some(bytes), Some(tokens)) => {
                tracing::info!(upstream = %self.name, "upstream refused the gateway's token; fetching a new one");
                tokens.invalidate().await;
                self.post_once(bytes, method, version, session_id, route)
                    .await
            }
            _ => Ok(resp),
        }
    }

    /// `rb` with the `Authorization` header of the gateway's own token, if it obtains one.
    pub(super) async fn authorize(
        &self,
        rb: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, UpstreamError> {
        Ok(match self.bearer().await? {
            Some(value) => rb.header(reqwest::header::AUTHORIZATION, value),
            None => rb,
        })
    }

    /// The `Authorization` value of the gateway's own token, if it obtains one.
    async fn bearer(&self) -> Result<Option<HeaderValue>, UpstreamError> {
        let Some(tokens) = &self.tokens else {
            return Ok(None);
        };
        let token = tokens.token().await.map_err(|e| {
            UpstreamError::Connect(format!("no access token for the upstream: {e}"))
        })?;
        let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| {
                UpstreamError::Connect("access token is not a valid header value".into())
            })?;
        value.set_sensitive(true);
        Ok(Some(value))
    }

    async fn post_once(
        &self,
        bytes: bytes::Bytes,
        method: Option<&str>,
        version: &str,
        session_id: Option<&str>,
        route: Route<'_>,
    ) -> Result<Reply, UpstreamError> {
        let mut headers = self.headers.clone();
        let mut add = |name: HeaderName, value: &str| {
            let value = HeaderValue::from_str(value).map_err(|_| {
                UpstreamError::Protocol(format!("{name}: not a valid header value"))
            })?;
            headers.append(name, value);
            Ok::<(), UpstreamError>(())
        };
        add(ACCEPT, "application/json, text/event-stream")?;
        add(CONTENT_TYPE, "application/json")?;
        add(
            HeaderName::from_static(mcp_headers::PROTOCOL_VERSION),
            version,
        )?;
        if let Some(m) = method {
            add(HeaderName::from_static(mcp_headers::METHOD), m)?;
        }
        if let Some(n) = route.name {
            add(HeaderName::from_static(mcp_headers::NAME), &encode_value(n))?;
        }
        for (header, value) in route.params {
            let name = HeaderName::from_bytes(header.as_bytes())
                .map_err(|_| UpstreamError::Protocol(format!("{header}: not a header name")))?;
            add(name, value)?;
        }
        if let Some(s) = session_id {
            add(HeaderName::from_static(mcp_headers::SESSION_ID), s)?;
        }
        if let Some(value) = self.bearer().await? {
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        if let Some(direct) = &self.direct {
            return direct.post(headers, bytes).await.map(Reply::from);
        }
        self.client
            .post(self.url.clone())
            .headers(headers)
            .body(bytes)
            .send()
            .await
            .map(Reply::from)
            .map_err(|e| UpstreamError::Connect(without_url(&e)))
    }

    async fn post(
        self: &Arc<Self>,
        req: &Request,
        session: &Session,
        events: Option<&mpsc::Sender<Event>>,
        client_token: Option<&RawValue>,
        params: &[(String, String)],
        streaming: Option<Streaming>,
    ) -> Result<Posted, UpstreamError> {
        let name = Method::parse(&req.method)
            .name_field()
            .and_then(|f| meta::params_str(req.params.as_deref(), f));
        let route = Route {
            name: name.as_deref(),
            params,
        };
        let resp = self
            .send(
                req,
                session.id.as_deref(),
                &session.identity.protocol_version,
                route,
            )
            .await?;
        let Id::Int(id) = req.id else {
            return Err(UpstreamError::Protocol("non-numeric id".into()));
        };
        self.read(resp, id, session, events, client_token, streaming)
            .await
    }

    async fn read(
        self: &Arc<Self>,
        mut resp: Reply,
        id: i64,
        session: &Session,
        events: Option<&mpsc::Sender<Event>>,
        client_token: Option<&RawValue>,
        streaming: Option<Streaming>,
    ) -> Result<Posted, UpstreamError> {
        let status = resp.status();
        if status == reqwest::StatusCode::ACCEPTED {
            return Ok(Posted::Accepted);
        }
        if status == reqwest::StatusCode::NOT_FOUND && session.id.is_some() {
            return Ok(Posted::SessionExpired);
        }
        let is_sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let limit = self.limits.max_response_bytes;
        if !is_sse {
            if let Some(streaming) = streaming.filter(|_| status.is_success()) {
                return read_or_stream(resp, id, streaming, self.limits).await;
            }
            let body = read_limited(resp, limit).await?;
            return whole(&body, status, self.limits.max_json_depth);
        }
        // The stream's events one by one: the data of each is collected (within `limit`) and
        // handled whole, unless it is this call's long result, which is handed on as it
        // arrives once more than `streaming.above` bytes of it have come.
        let mut reader = SsePieces::new();
        let mut data = Vec::new();
        let mut scanner = streaming.as_ref().map(|s| scanner_for(s, &self.limits));
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await {
            let chunk = chunk?;
            let mut pieces = Vec::new();
            reader.feed(&chunk, &mut pieces);
            let mut pieces = pieces.into_iter();
            while let Some(piece) = pieces.next() {
                let SsePiece::Data(bytes) = piece else {
                    let event = std::mem::take(&mut data);
                    scanner = streaming.as_ref().map(|s| scanner_for(s, &self.limits));
                    out.clear();
                    if let Some(outcome) = self.on_event(&event, id, session, events, client_token)
                    {
                        resp.finish();
                        return Ok(Posted::Outcome(outcome));
                    }
                    continue;
                };
                data.extend_from_slice(bytes);
                if let Some(s) = scanner.as_mut()
                    && s.feed(bytes, &mut out).is_err()
                {
                    scanner = None;
                    out.clear();
                }
                match (&streaming, scanner.take()) {
                    (Some(streaming), Some(scanner))
                        if data.len() as u64 > streaming.above && scanner.in_result() =>
                    {
                        let mut stream = ResultStream {
                            reply: resp,
                            scanner,
                            pending: Vec::new(),
                            id,
                            read: data.len() as u64,
                            max: streaming.max,
                            sse: Some(reader),
                            done: false,
                        };
                        // The rest of this chunk's pieces belong to the stream too.
                        stream.take_pieces(pieces, &mut out)?;
                        stream.pending = out;
                        return Ok(Posted::Streamed(Box::new(stream)));
                    }
                    (_, kept) => scanner = kept,
                }
                if data.len() as u64 > limit {
                    return Err(UpstreamError::TooLarge(limit));
                }
            }
        }
        Err(UpstreamError::Protocol(
            "stream ended without a response".into(),
        ))
    }

    /// One SSE event's data, handled whole: this call's response ends the read; notifications
    /// and server requests go to the call's events; anything else is logged and skipped.
    fn on_event(
        self: &Arc<Self>,
        data: &[u8],
        id: i64,
        session: &Session,
        events: Option<&mpsc::Sender<Event>>,
        client_token: Option<&RawValue>,
    ) -> Option<Outcome> {
        if data.trim_ascii().is_empty() {
            return None;
        }
        let msg = match portcullis_mcp::parse(data, self.limits.max_json_depth) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(upstream = %self.name, error = %e, "invalid message on SSE stream");
                return None;
            }
        };
        match msg {
            Message::Response(Response {
                id: Some(Id::Int(rid)),
                outcome,
            }) if rid == id => return Some(outcome),
            Message::Response(_) => {
                tracing::debug!(upstream = %self.name, "stray response on stream")
            }
            Message::Notification(n) => self.on_notification(n, events, client_token),
            Message::Request(r) => self.on_request(r, session, events),
        }
        None
    }

    fn on_notification(
        &self,
        n: Notification,
        events: Option<&mpsc::Sender<Event>>,
        client_token: Option<&RawValue>,
    ) {
        let Some(events) = events else {
            let _ = self.notifications.send(n);
            return;
        };
        let n = match (n.method.as_str(), client_token) {
            ("notifications/progress", Some(token)) => Notification {
                params: meta::restore_token(n.params, token),
                method: n.method,
            },
            ("notifications/progress", None) => return,
            _ => n,
        };
        let _ = events.try_send(Event::Notification(n));
    }

    fn on_request(
        self: &Arc<Self>,
        r: Request,
        session: &Session,
        events: Option<&mpsc::Sender<Event>>,
    ) {
        let (reply, rx) = oneshot::channel();
        let relayed = events
            .map(|e| {
                e.try_send(Event::Request(ServerRequest {
                    method: r.method.clone(),
                    params: r.params,
                    reply,
                }))
                .is_ok()
            })
            .unwrap_or(false);
        let shared = Arc::clone(self);
        let session = session.clone();
        let id = r.id;
        tokio::spawn(async move {
            let outcome = if relayed {
                rx.await.unwrap_or_else(|_| {
                    Outcome::Error(portcullis_mcp::ErrorObject::new(
                        portcullis_mcp::ErrorCode::InternalError,
                        "the call ended first",
                    ))
                })
            } else {
                Outcome::Error(portcullis_mcp::ErrorObject::new(
                    portcullis_mcp::ErrorCode::MethodNotFound,
                    format!("{} cannot be relayed", r.method),
                ))
            };
            let bytes = Response {
                id: Some(id),
                outcome,
            }
            .to_bytes();
            if let Err(e) = shared.send_bytes(bytes, &session, "", None).await {
                tracing::warn!(upstream = %shared.name, error = %e, "could not deliver a response to the upstream");
            }
        });
    }

    async fn call(
        self: &Arc<Self>,
        call: Call,
        streaming: Option<Streaming>,
    ) -> Result<Delivery, UpstreamError> {
        for attempt in 0..2 {
            let session = self.session().await?;
            if session.identity.era == Era::Modern
                && super::subscriptions::is_subscription(&call.method)
            {
                return Ok(Delivery::Whole(
                    self.subs.change(&call.method, call.params.as_deref()),
                ));
            }
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let prepared = meta::prepare(
                call.params.clone(),
                &format!("pc-{id}"),
                session.identity.era == Era::Modern,
                &call.client,
            )
            .map_err(|e| UpstreamError::Protocol(format!("params: {e}")))?;
            let req = Request {
                id: Id::Int(id),
                method: call.method.clone(),
                params: prepared.params,
            };
            let guard = CancelGuard {
                shared: Arc::clone(self),
                session: session.clone(),
                id,
                armed: true,
            };
            let posted = self
                .post(
                    &req,
                    &session,
                    call.events.as_ref(),
                    prepared.client_token.as_deref(),
                    &call.client.param_headers,
                    streaming.clone(),
                )
                .await;
            let mut guard = guard;
            guard.armed = false;
            match posted {
                Ok(Posted::Outcome(o)) => return Ok(Delivery::Whole(o)),
                Ok(Posted::Streamed(s)) => return Ok(Delivery::Streamed(s)),
                Ok(Posted::Accepted) => {
                    return Err(UpstreamError::Protocol("request answered with 202".into()));
                }
                Ok(Posted::SessionExpired) if attempt == 0 => {
                    tracing::info!(upstream = %self.name, "upstream session expired; starting a new one");
                    *self.session.write().await = None;
                }
                Ok(Posted::SessionExpired) => {
                    return Err(UpstreamError::Unavailable("session keeps expiring".into()));
                }
                Err(UpstreamError::Connect(e)) => {
                    self.set_health(Health::Down);
                    *self.session.write().await = None;
                    return Err(UpstreamError::Unavailable(e));
                }
                Err(e) => return Err(e),
            }
        }
        Err(UpstreamError::Unavailable("session keeps expiring".into()))
    }
}

/// Sends `notifications/cancelled` to a 2025-era upstream when the caller stops waiting. In the
/// 2026 era closing the response stream (dropping the request) is itself the cancellation.
struct CancelGuard {
    shared: Arc<Shared>,
    session: Session,
    id: i64,
    armed: bool,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.armed || self.session.identity.era == Era::Modern {
            return;
        }
        let n = meta::cancelled(self.id);
        let shared = Arc::clone(&self.shared);
        let session = self.session.clone();
        tokio::spawn(async move {
            let _ = shared
                .send_bytes(n.to_bytes(), &session, "notifications/cancelled", None)
                .await;
        });
    }
}

/// A JSON body read whole: the response it holds.
fn whole(body: &[u8], status: reqwest::StatusCode, depth: usize) -> Result<Posted, UpstreamError> {
    match portcullis_mcp::parse(body, depth) {
        Ok(Message::Response(Response { outcome, .. })) => Ok(Posted::Outcome(outcome)),
        _ if !status.is_success() => Err(UpstreamError::Status(status.as_u16())),
        Ok(_) => Err(UpstreamError::Protocol("expected a response".into())),
        Err(e) => Err(UpstreamError::Protocol(e.to_string())),
    }
}

/// A JSON body of a successful POST that may be streamed: read whole when it ends within
/// `streaming.above` bytes, is not a result (an error response), or is not JSON (the whole
/// read reports why); otherwise, once more than `above` bytes have arrived and the result's
/// text has begun, handed on as a [`ResultStream`]. Until then the body is held, so the
/// fallback loses nothing.
async fn read_or_stream(
    mut resp: Reply,
    id: i64,
    streaming: Streaming,
    limits: UpstreamLimits,
) -> Result<Posted, UpstreamError> {
    let status = resp.status();
    let declared = resp.content_length();
    if declared.is_some_and(|l| l <= streaming.above) {
        let body = read_limited(resp, limits.max_response_bytes).await?;
        return whole(&body, status, limits.max_json_depth);
    }
    if declared.is_some_and(|l| l > streaming.max) {
        return Err(UpstreamError::TooLarge(streaming.max));
    }
    let mut scanner = Some(scanner_for(&streaming, &limits));
    let mut held = Vec::new();
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await {
        let chunk = chunk?;
        held.extend_from_slice(&chunk);
        if let Some(s) = scanner.as_mut()
            && s.feed(&chunk, &mut out).is_err()
        {
            scanner = None;
            out = Vec::new();
        }
        match scanner {
            Some(scanner) if held.len() as u64 > streaming.above && scanner.in_result() => {
                return Ok(Posted::Streamed(Box::new(ResultStream {
                    reply: resp,
                    scanner,
                    pending: out,
                    id,
                    read: held.len() as u64,
                    max: streaming.max,
                    sse: None,
                    done: false,
                })));
            }
            _ if held.len() as u64 > limits.max_response_bytes => {
                return Err(UpstreamError::TooLarge(limits.max_response_bytes));
            }
            _ => {}
        }
    }
    whole(&held, status, limits.max_json_depth)
}

/// A scanner for a result that may be streamed.
fn scanner_for(streaming: &Streaming, limits: &UpstreamLimits) -> ResultScanner {
    let scanner = ResultScanner::new(limits.max_json_depth, streaming.hidden);
    if streaming.link_prefix.is_empty() {
        scanner
    } else {
        scanner.with_link_prefix(&streaming.link_prefix)
    }
}

/// The result of a call, passed on as it arrives: the text of the result object, checked as
/// JSON piece by piece, with hidden characters removed from its content
/// ([`ResultScanner`]). The object's closing brace is left to the reader.
pub struct ResultStream {
    reply: Reply,
    scanner: ResultScanner,
    /// Text already scanned and not yet taken.
    pending: Vec<u8>,
    /// The request's id, which the response must carry.
    id: i64,
    /// Bytes of the body (of an SSE body: of the event's data) read so far.
    read: u64,
    max: u64,
    /// For an SSE body: the reader of its events; the result is the current event's data.
    sse: Option<SsePieces>,
    /// The SSE event that carries the result has ended.
    done: bool,
}

impl std::fmt::Debug for ResultStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultStream")
            .field("id", &self.id)
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

/// What the whole of a streamed result showed ([`ResultStream::end`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEnd {
    /// The result object's `resultType` (empty when it is not a short string), if it has one.
    pub result_type: Option<String>,
    /// The result object has at least one member.
    pub members: bool,
    /// Hidden characters removed from its content.
    pub removed: u64,
    /// Bytes of result text passed on (without the closing brace).
    pub bytes: u64,
}

impl ResultStream {
    /// The next piece of the result's text; `None` at the end of the body, which
    /// [`ResultStream::end`] then checks.
    pub async fn next(&mut self) -> Option<Result<bytes::Bytes, UpstreamError>> {
        if !self.pending.is_empty() {
            return Some(Ok(bytes::Bytes::from(std::mem::take(&mut self.pending))));
        }
        while !self.done {
            let chunk = match self.reply.chunk().await? {
                Ok(chunk) => chunk,
                Err(e) => return Some(Err(e)),
            };
            let mut out = Vec::with_capacity(chunk.len());
            let fed = match self.sse.as_mut() {
                None => self.take(&chunk, &mut out),
                Some(reader) => {
                    let mut pieces = Vec::new();
                    reader.feed(&chunk, &mut pieces);
                    self.take_pieces(pieces.into_iter(), &mut out)
                }
            };
            if let Err(e) = fed {
                return Some(Err(e));
            }
            if !out.is_empty() {
                return Some(Ok(bytes::Bytes::from(out)));
            }
        }
        None
    }

    /// Scans the data of the SSE event that carries the result into `out`, up to its end.
    fn take_pieces<'a>(
        &mut self,
        pieces: impl Iterator<Item = SsePiece<'a>>,
        out: &mut Vec<u8>,
    ) -> Result<(), UpstreamError> {
        for piece in pieces {
            match piece {
                SsePiece::Data(bytes) => self.take(bytes, out)?,
                SsePiece::End => {
                    self.done = true;
                    break;
                }
            }
        }
        Ok(())
    }

    /// Scans `bytes` of the result's text into `out`, within the size limit.
    fn take(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), UpstreamError> {
        self.read += bytes.len() as u64;
        if self.read > self.max {
            return Err(UpstreamError::TooLarge(self.max));
        }
        self.scanner
            .feed(bytes, out)
            .map_err(|e| UpstreamError::Protocol(format!("result: {e}")))
    }

    /// Once [`ResultStream::next`] has returned `None`: whether the body was one complete
    /// JSON-RPC response to this request.
    pub fn end(self) -> Result<StreamEnd, UpstreamError> {
        if self.sse.is_some() {
            // The event is complete; the rest of the stream (if it arrived) keeps the
            // connection usable.
            self.reply.finish();
        }
        let end = self
            .scanner
            .finish()
            .map_err(|e| UpstreamError::Protocol(format!("result: {e}")))?;
        if end.id.as_deref() != Some(self.id.to_string().as_str()) {
            return Err(UpstreamError::Protocol(
                "the response's id is not the request's".into(),
            ));
        }
        Ok(StreamEnd {
            result_type: end.result_type,
            members: end.members,
            removed: end.removed,
            bytes: end.written,
        })
    }

    /// The rest of the result read whole (at most `limit` bytes of text): the result object's
    /// JSON text, for a reader that cannot take it in pieces.
    pub async fn collect(
        mut self,
        limit: u64,
    ) -> Result<(Box<RawValue>, StreamEnd), UpstreamError> {
        let mut text = Vec::new();
        while let Some(piece) = self.next().await {
            let piece = piece?;
            if (text.len() + piece.len()) as u64 >= limit {
                return Err(UpstreamError::TooLarge(limit));
            }
            text.extend_from_slice(&piece);
        }
        let end = self.end()?;
        text.push(b'}');
        let text = String::from_utf8(text)
            .map_err(|_| UpstreamError::Protocol("result is not UTF-8".into()))?;
        let raw = RawValue::from_string(text)
            .map_err(|e| UpstreamError::Protocol(format!("result: {e}")))?;
        Ok((raw, end))
    }
}

async fn read_limited(mut resp: Reply, limit: u64) -> Result<Vec<u8>, UpstreamError> {
    let declared = resp.content_length();
    if declared.is_some_and(|l| l > limit) {
        return Err(UpstreamError::TooLarge(limit));
    }
    // A declared length (at most `limit`, checked above) sizes the buffer once: no copies
    // while it grows, no capacity left over.
    let capacity = declared.and_then(|l| usize::try_from(l).ok()).unwrap_or(0);
    let mut out = Vec::with_capacity(capacity);
    while let Some(chunk) = resp.chunk().await {
        let chunk = chunk?;
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(UpstreamError::TooLarge(limit));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// An upstream's HTTP response, from either client.
pub(super) struct Reply {
    status: reqwest::StatusCode,
    headers: HeaderMap,
    body: ReplyBody,
}

enum ReplyBody {
    Direct(direct::Body),
    Reqwest(reqwest::Response),
}

impl From<http::Response<direct::Body>> for Reply {
    fn from(resp: http::Response<direct::Body>) -> Reply {
        let (parts, body) = resp.into_parts();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: ReplyBody::Direct(body),
        }
    }
}

impl From<reqwest::Response> for Reply {
    fn from(mut resp: reqwest::Response) -> Reply {
        Reply {
            status: resp.status(),
            headers: std::mem::take(resp.headers_mut()),
            body: ReplyBody::Reqwest(resp),
        }
    }
}

impl Reply {
    fn status(&self) -> reqwest::StatusCode {
        self.status
    }

    fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    fn content_length(&self) -> Option<u64> {
        self.headers
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    }

    /// Reads the rest of the body if it already arrived, so the connection can serve another
    /// request; otherwise drops it.
    fn finish(self) {
        match self.body {
            ReplyBody::Direct(body) => body.finish(),
            ReplyBody::Reqwest(_) => {}
        }
    }

    /// The body's next chunk; `None` at its end.
    async fn chunk(&mut self) -> Option<Result<bytes::Bytes, UpstreamError>> {
        match &mut self.body {
            ReplyBody::Direct(body) => body.chunk().await,
            ReplyBody::Reqwest(resp) => resp
                .chunk()
                .await
                .map_err(|e| UpstreamError::Connect(without_url(&e)))
                .transpose(),
        }
    }
}

/// reqwest errors carry the URL, which may hold credentials in its query; keep only the kind.
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.without_url_ref().to_string();
    if let Some(src) = std::error::Error::source(e) {
        s.push_str(": ");
        s.push_str(&src.to_string());
    }
    s
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        if self.is_timeout() {
            "timed out".into()
        } else if self.is_connect() {
            "connection failed".into()
        } else if self.is_body() || self.is_decode() {
            "response body failed".into()
        } else {
            "request failed".into()
        }
    }
}

#[async_trait]
impl Upstream for HttpUpstream {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn health(&self) -> Health {
        match self.shared.health.load(Ordering::Relaxed) {
            0 => Health::Starting,
            1 => Health::Up,
            _ => Health::Down,
        }
    }

    fn identity(&self) -> Option<ServerIdentity> {
        self.shared
            .session
            .try_read()
            .ok()
            .and_then(|s| s.as_ref().map(|s| s.identity.clone()))
    }

    async fn call(&self, call: Call) -> Result<Outcome, UpstreamError> {
        match self.shared.call(call, None).await? {
            Delivery::Whole(outcome) => Ok(outcome),
            // Not asked for: never produced, but whole is what the caller wants.
            Delivery::Streamed(stream) => stream
                .collect(self.shared.limits.max_response_bytes)
                .await
                .map(|(raw, _)| Outcome::Result(raw)),
        }
    }

    async fn call_streaming(
        &self,
        call: Call,
        streaming: Option<Streaming>,
    ) -> Result<Delivery, UpstreamError> {
        self.shared.call(call, streaming).await
    }

    async fn notify(&self, notification: Notification) -> Result<(), UpstreamError> {
        let session = self.shared.session().await?;
        let method = notification.method.clone();
        let _ = self
            .shared
            .send_bytes(notification.to_bytes(), &session, &method, None)
            .await?;
        Ok(())
    }

    fn notifications(&self) -> broadcast::Receiver<Notification> {
        self.shared.notifications.subscribe()
    }

    async fn shutdown(&self) {
        self.shared.stop.cancel();
        let session = self.shared.session.write().await.take();
        if let Some(Session { id: Some(id), .. }) = session {
            let rb = self
                .shared
                .client
                .delete(self.shared.url.clone())
                .headers(self.shared.headers.clone())
                .header(mcp_headers::SESSION_ID, id)
                .timeout(Duration::from_secs(2));
            if let Ok(rb) = self.shared.authorize(rb).await {
                let _ = rb.send().await;
            }
        }
    }
}
