//! Clients for upstream MCP servers.
//!
//! Both transports implement [`Upstream`]: the gateway hands a [`Call`] and gets the outcome,
//! while messages the server sends *about* that call (progress, logging, sampling or elicitation
//! requests) arrive on the call's event channel. Messages about nothing in particular (list
//! changes, resource updates) go to [`Upstream::notifications`].
//!
//! Each upstream is dual-era: at connect it probes `server/discover` (2026-07-28) and falls back
//! to the `initialize` handshake (2025-era), holding one shared session.

mod handshake;
mod http;
mod meta;
mod peer;
mod stdio;
mod subscriptions;

use std::sync::Arc;

use async_trait::async_trait;
use portcullis_mcp::{Era, Notification, Outcome};
use serde_json::value::RawValue;
use tokio::sync::{broadcast, mpsc, oneshot};

pub use http::{HttpUpstream, ResultStream, StreamEnd};
pub use meta::REQUEST_ID;
pub use stdio::StdioUpstream;

/// What the downstream client declared about itself; a 2026-era upstream needs it on every request.
#[derive(Debug, Clone, Default)]
pub struct ClientContext {
    pub capabilities: Option<Arc<RawValue>>,
    pub client_info: Option<Arc<RawValue>>,
    /// The least severe log level the client wants (`logging/setLevel` of a 2025-era session);
    /// sent to a 2026-era upstream as `_meta` logLevel when the request carries none.
    pub log_level: Option<Arc<str>>,
    /// The gateway's id of the client request this call serves (its audit record's
    /// `request_id`), sent upstream as `_meta["io.portcullis/requestId"]` so logs on both
    /// sides can be joined.
    pub request_id: Option<Arc<str>>,
    /// `Mcp-Param-*` headers for this call (full name, wire value), sent by the HTTP
    /// transport: the arguments the upstream's tool declares with `x-mcp-header`.
    pub param_headers: Vec<(String, String)>,
}

/// One request to an upstream. `params` are already rewritten for the upstream (names without
/// the gateway's prefix); ids and progress tokens are assigned by the transport.
#[derive(Debug)]
pub struct Call {
    pub method: String,
    pub params: Option<Box<RawValue>>,
    pub client: ClientContext,
    /// Where messages related to this call go; `None` drops them (and refuses server requests).
    pub events: Option<mpsc::Sender<Event>>,
}

/// A message from the upstream that belongs to an in-flight call.
#[derive(Debug)]
pub enum Event {
    /// A notification (progress carries the client's own token again).
    Notification(Notification),
    /// A server-to-client request (sampling, elicitation); answer through `reply`.
    Request(ServerRequest),
}

#[derive(Debug)]
pub struct ServerRequest {
    pub method: String,
    pub params: Option<Box<RawValue>>,
    pub reply: oneshot::Sender<Outcome>,
}

/// Connection state, for `/readyz` and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Starting,
    Up,
    Down,
}

/// What an upstream said about itself at connect.
#[derive(Debug, Clone)]
pub struct ServerIdentity {
    pub era: Era,
    pub protocol_version: String,
    pub capabilities: Arc<RawValue>,
    pub server_info: Option<Arc<RawValue>>,
    pub instructions: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream is not available: {0}")]
    Unavailable(String),
    #[error("upstream connection failed: {0}")]
    Connect(String),
    #[error("upstream sent an invalid message: {0}")]
    Protocol(String),
    #[error("upstream response exceeds {0} bytes")]
    TooLarge(u64),
    #[error("upstream answered HTTP {0}")]
    Status(u16),
}

#[async_trait]
pub trait Upstream: Send + Sync + 'static {
    fn name(&self) -> &str;
    fn health(&self) -> Health;
    /// The server's identity once connected.
    fn identity(&self) -> Option<ServerIdentity>;
    /// Sends a request and waits for its outcome. Dropping the future cancels the call upstream.
    async fn call(&self, call: Call) -> Result<Outcome, UpstreamError>;
    /// [`Upstream::call`], but with `streaming` a result longer than `streaming.above` may
    /// come back as a [`ResultStream`] that passes it on as it arrives. Transports that cannot
    /// stream (stdio) deliver every result whole.
    async fn call_streaming(
        &self,
        call: Call,
        streaming: Option<Streaming>,
    ) -> Result<Delivery, UpstreamError> {
        let _ = streaming;
        self.call(call).await.map(Delivery::Whole)
    }
    /// Sends a notification that is not tied to a call.
    async fn notify(&self, notification: Notification) -> Result<(), UpstreamError>;
    /// Notifications not tied to any call (list changes, resource updates, logging).
    fn notifications(&self) -> broadcast::Receiver<Notification>;
    /// Stops the upstream (child process, sessions).
    async fn shutdown(&self);
}

/// When a call's result may be streamed ([`Upstream::call_streaming`]).
#[derive(Debug, Clone)]
pub struct Streaming {
    /// A result body longer than this is streamed; a shorter one is read whole.
    pub above: u64,
    /// Most bytes a streamed body may have.
    pub max: u64,
    /// Characters removed from the strings of the result's content
    /// ([`portcullis_mcp::result_stream::ResultScanner`]).
    pub hidden: fn(char) -> bool,
    /// Written in front of the result's links (`ResultScanner::with_link_prefix`); empty: none.
    pub link_prefix: Arc<str>,
}

/// A call's outcome, whole or as a stream.
#[derive(Debug)]
pub enum Delivery {
    Whole(Outcome),
    Streamed(Box<ResultStream>),
}

/// Limits that apply to every upstream.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamLimits {
    pub max_response_bytes: u64,
    pub max_json_depth: usize,
}

/// Where an HTTP upstream's bearer token comes from when the gateway obtains it itself (an
/// OAuth client credentials grant): fetched, cached and refreshed by the implementation.
#[async_trait]
pub trait TokenSource: Send + Sync + 'static {
    /// A valid access token. The error text names no secret.
    async fn token(&self) -> Result<secrecy::SecretString, String>;
    /// Forgets the cached token (the upstream refused it).
    async fn invalidate(&self);
}

/// Builds the configured upstream. `tokens` supplies the bearer of an HTTP upstream whose
/// `auth.client_credentials` is set.
pub fn connect(
    config: &portcullis_config::Upstream,
    limits: UpstreamLimits,
    tokens: Option<Arc<dyn TokenSource>>,
) -> Result<Arc<dyn Upstream>, UpstreamError> {
    match &config.transport {
        portcullis_config::UpstreamTransport::Http {
            url,
            bearer,
            headers,
            ..
        } => Ok(Arc::new(HttpUpstream::new(
            &config.name,
            url,
            bearer.clone(),
            headers,
            limits,
            tokens,
        )?)),
        portcullis_config::UpstreamTransport::Stdio { command, env, cwd } => {
            Ok(Arc::new(StdioUpstream::spawn(
                &config.name,
                command.clone(),
                env.clone(),
                cwd.clone(),
                limits,
            )))
        }
    }
}
