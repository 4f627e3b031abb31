//! Every failure the gateway can answer with, and the one place that maps it to the outside:
//! HTTP status, JSON-RPC code, public message. The operator's log gets the detail; the caller
//! gets a message that names no internals (no upstream text, paths or stack).

use http::StatusCode;
use portcullis_mcp::headers::HeaderMismatch;
use portcullis_mcp::{ErrorCode, ErrorObject, ParseError};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("malformed message: {0}")]
    Parse(#[from] ParseError),
    #[error("body larger than {0} bytes")]
    BodyTooLarge(u64),
    #[error("origin {0:?} is not allowed")]
    OriginRejected(String),
    #[error("host {0:?} is not a loopback name (DNS rebinding)")]
    HostRejected(String),
    #[error("request _meta invalid: {0}")]
    MetaInvalid(&'static str),
    #[error("authentication failed: {0}")]
    Auth(Box<portcullis_authn::AuthFailure>),
    #[error("denied by policy: {reason}")]
    Denied { reason: String },
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    #[error("{0} is blocked until an operator reviews it: {1}")]
    Blocked(String, String),
    #[error("audit trail unavailable: {0}")]
    AuditUnavailable(String),
    #[error("header mismatch: {0}")]
    HeaderMismatch(#[from] HeaderMismatch),
    #[error("unsupported protocol version {0:?}")]
    UnsupportedVersion(String),
    #[error("session required: send initialize first or use the 2026-07-28 revision")]
    SessionRequired,
    #[error("unknown or ended session")]
    UnknownSession,
    #[error("too many sessions")]
    TooManySessions,
    #[error("method not found: {0}")]
    MethodNotFound(String),
    #[error("method {0} does not exist in the 2026-07-28 revision")]
    RemovedMethod(String),
    #[error("invalid params: {0}")]
    InvalidParams(String),
    /// The client did not declare a capability the request needs (-32021).
    #[error("missing client capability: {message}")]
    MissingCapability {
        message: String,
        required: serde_json::Value,
    },
    /// An upstream's JSON-RPC error, already made public (see `relay::public_upstream_error`).
    #[error("upstream error {}: {}", .0.code, .0.message)]
    Upstream(portcullis_mcp::ErrorObject),
    #[error("no upstream serves {0:?}")]
    UnknownTarget(String),
    #[error("name {0:?} is offered by more than one upstream")]
    Collision(String),
    #[error("upstream {upstream} unavailable: {detail}")]
    UpstreamUnavailable { upstream: String, detail: String },
    #[error("upstream {upstream} failed: {detail}")]
    UpstreamFailed { upstream: String, detail: String },
    #[error("upstream {0} timed out")]
    Timeout(String),
    #[error("upstream {upstream} response larger than {limit} bytes")]
    ResponseTooLarge { upstream: String, limit: u64 },
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("internal error: {0}")]
    Internal(String),
}

/// How an error is shown to the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Public {
    pub status: StatusCode,
    pub error: ErrorObject,
}

/// Gateway-defined JSON-RPC codes (outside the JSON-RPC reserved range, per the MCP policy).
pub mod codes {
    pub const UNAUTHENTICATED: i64 = -31001;
    pub const UPSTREAM_UNAVAILABLE: i64 = -31002;
    pub const TIMEOUT: i64 = -31003;
    pub const TOO_LARGE: i64 = -31004;
    pub const SESSION: i64 = -31005;
    pub const FORBIDDEN: i64 = -31006;
    pub const RATE_LIMITED: i64 = -31007;
    pub const BLOCKED: i64 = -31008;
    pub const AUDIT_UNAVAILABLE: i64 = -31009;
}

impl GatewayError {
    /// The one mapping to status, code and public message.
    pub fn public(&self) -> Public {
        use GatewayError as E;
        use StatusCode as S;
        let (status, code, message): (StatusCode, ErrorCode, String) = match self {
            E::Parse(p) => (S::BAD_REQUEST, p.code(), public_parse(p)),
            E::BodyTooLarge(n) => (
                S::PAYLOAD_TOO_LARGE,
                ErrorCode::Gateway(codes::TOO_LARGE),
                format!("request body exceeds {n} bytes"),
            ),
            E::OriginRejected(_) => (
                S::FORBIDDEN,
                ErrorCode::InvalidRequest,
                "origin not allowed".into(),
            ),
            E::HostRejected(_) => (
                S::FORBIDDEN,
                ErrorCode::InvalidRequest,
                "host not allowed".into(),
            ),
            E::MetaInvalid(why) => (
                S::BAD_REQUEST,
                ErrorCode::InvalidParams,
                format!("Invalid params: {why}"),
            ),
            E::Auth(f) => (
                f.status(),
                ErrorCode::Gateway(match f.status() {
                    S::FORBIDDEN => codes::FORBIDDEN,
                    S::TOO_MANY_REQUESTS => codes::RATE_LIMITED,
                    _ => codes::UNAUTHENTICATED,
                }),
                f.public_reason().into(),
            ),
            E::Denied { reason } => (
                S::OK,
                ErrorCode::Gateway(codes::FORBIDDEN),
                format!("Forbidden: {reason}"),
            ),
            E::InvalidArguments(why) => (
                S::OK,
                ErrorCode::InvalidParams,
                format!("Invalid arguments: {why}"),
            ),
            E::Blocked(name, why) => (
                S::OK,
                ErrorCode::Gateway(codes::BLOCKED),
                format!("{name} is blocked until an operator reviews it ({why})"),
            ),
            E::AuditUnavailable(_) => (
                S::SERVICE_UNAVAILABLE,
                ErrorCode::Gateway(codes::AUDIT_UNAVAILABLE),
                "the audit trail is unavailable; request not completed".into(),
            ),
            E::HeaderMismatch(m) => (
                S::BAD_REQUEST,
                ErrorCode::HeaderMismatch,
                format!("Header mismatch: {m}"),
            ),
            E::UnsupportedVersion(_) => (
                S::BAD_REQUEST,
                ErrorCode::UnsupportedProtocolVersion,
                "Unsupported protocol version".into(),
            ),
            E::SessionRequired => (
                S::BAD_REQUEST,
                ErrorCode::Gateway(codes::SESSION),
                "Bad Request: no session; send initialize first".into(),
            ),
            E::UnknownSession => (
                S::NOT_FOUND,
                ErrorCode::Gateway(codes::SESSION),
                "session not found".into(),
            ),
            E::TooManySessions => (
                S::SERVICE_UNAVAILABLE,
                ErrorCode::Gateway(codes::SESSION),
                "too many sessions; try later".into(),
            ),
            E::MethodNotFound(m) => (
                S::OK,
                ErrorCode::MethodNotFound,
                format!("Method not found: {m}"),
            ),
            E::RemovedMethod(m) => (
                S::NOT_FOUND,
                ErrorCode::MethodNotFound,
                format!("Method not found: {m}"),
            ),
            E::InvalidParams(why) => (
                S::OK,
                ErrorCode::InvalidParams,
                format!("Invalid params: {why}"),
            ),
            E::MissingCapability { message, .. } => (
                S::OK,
                ErrorCode::MissingRequiredClientCapability,
                message.clone(),
            ),
            E::Upstream(e) => {
                return Public {
                    status: S::OK,
                    error: e.clone(),
                };
            }
            E::UnknownTarget(name) => (
                S::OK,
                ErrorCode::InvalidParams,
                format!("unknown tool, prompt or resource: {name}"),
            ),
            E::Collision(name) => (
                S::OK,
                ErrorCode::InvalidParams,
                format!("{name} is ambiguous: offered by more than one upstream"),
            ),
            E::UpstreamUnavailable { upstream, .. } => (
                S::OK,
                ErrorCode::Gateway(codes::UPSTREAM_UNAVAILABLE),
                format!("upstream {upstream} is unavailable"),
            ),
            E::UpstreamFailed { upstream, .. } => (
                S::OK,
                ErrorCode::Gateway(codes::UPSTREAM_UNAVAILABLE),
                format!("upstream {upstream} failed"),
            ),
            E::Timeout(upstream) => (
                S::OK,
                ErrorCode::Gateway(codes::TIMEOUT),
                format!("upstream {upstream} timed out"),
            ),
            E::ResponseTooLarge { upstream, .. } => (
                S::OK,
                ErrorCode::Gateway(codes::TOO_LARGE),
                format!("response from {upstream} is too large"),
            ),
            E::MethodNotAllowed => (
                S::METHOD_NOT_ALLOWED,
                ErrorCode::InvalidRequest,
                "method not allowed".into(),
            ),
            E::Internal(_) => (
                S::INTERNAL_SERVER_ERROR,
                ErrorCode::InternalError,
                "internal error".into(),
            ),
        };
        let mut error = ErrorObject::new(code, message);
        if let E::MissingCapability { required, .. } = self {
            error = error.with_data(&serde_json::json!({ "requiredCapabilities": required }));
        }
        if let E::UnsupportedVersion(requested) = self {
            error = error.with_data(&serde_json::json!({
                "supported": portcullis_mcp::Revision::supported_strings(),
                "requested": requested,
            }));
        }
        Public { status, error }
    }

    /// Headers the reply must carry besides the body: the `WWW-Authenticate` challenge and
    /// `Retry-After`.
    pub fn headers(&self) -> Vec<(http::HeaderName, String)> {
        let mut out = Vec::new();
        match self {
            GatewayError::Auth(f) => {
                if let Some(c) = f.www_authenticate() {
                    out.push((http::header::WWW_AUTHENTICATE, c));
                }
                if let Some(s) = f.retry_after_secs() {
                    out.push((http::header::RETRY_AFTER, s.to_string()));
                }
            }
            GatewayError::MethodNotAllowed => out.push((http::header::ALLOW, "POST".to_owned())),
            _ => {}
        }
        out
    }

    /// A short stable label for metrics and audit (`decision`/`status` fields).
    pub fn label(&self) -> &'static str {
        use GatewayError as E;
        match self {
            E::Parse(_) => "parse",
            E::BodyTooLarge(_) => "too_large",
            E::OriginRejected(_) | E::HostRejected(_) => "origin",
            E::MetaInvalid(_) => "invalid_params",
            E::Auth(_) => "unauthenticated",
            E::Denied { .. } => "deny",
            E::InvalidArguments(_) => "invalid_arguments",
            E::Blocked(..) => "blocked",
            E::AuditUnavailable(_) => "audit_unavailable",
            E::HeaderMismatch(_) => "header_mismatch",
            E::UnsupportedVersion(_) => "unsupported_version",
            E::SessionRequired | E::UnknownSession | E::TooManySessions => "session",
            E::MethodNotFound(_) | E::RemovedMethod(_) => "method_not_found",
            E::InvalidParams(_) | E::UnknownTarget(_) | E::Collision(_) => "invalid_params",
            E::MissingCapability { .. } => "missing_capability",
            E::Upstream(_) => "upstream_error",
            E::UpstreamUnavailable { .. } | E::UpstreamFailed { .. } => "upstream_error",
            E::Timeout(_) => "timeout",
            E::ResponseTooLarge { .. } => "response_too_large",
            E::MethodNotAllowed => "method_not_allowed",
            E::Internal(_) => "internal",
        }
    }
}

fn public_parse(p: &ParseError) -> String {
    match p {
        ParseError::NotJson(_) => "Parse error".into(),
        ParseError::TooDeep(n) => format!("Invalid Request: JSON nested deeper than {n}"),
        ParseError::Batch => "Invalid Request: batch requests are not supported".into(),
        ParseError::Invalid { reason, .. } => format!("Invalid Request: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_table() {
        let rows: Vec<(GatewayError, u16, i64)> = vec![
            (
                GatewayError::Parse(ParseError::NotJson("x".into())),
                400,
                -32700,
            ),
            (GatewayError::Parse(ParseError::Batch), 400, -32600),
            (GatewayError::Parse(ParseError::TooDeep(64)), 400, -32600),
            (GatewayError::BodyTooLarge(10), 413, codes::TOO_LARGE),
            (
                GatewayError::OriginRejected("http://evil".into()),
                403,
                -32600,
            ),
            (
                GatewayError::HeaderMismatch(HeaderMismatch::Missing("Mcp-Method")),
                400,
                -32020,
            ),
            (
                GatewayError::UnsupportedVersion("1900-01-01".into()),
                400,
                -32022,
            ),
            (GatewayError::UnknownSession, 404, codes::SESSION),
            (GatewayError::MethodNotFound("x".into()), 200, -32601),
            (GatewayError::UnknownTarget("x".into()), 200, -32602),
            (GatewayError::Timeout("fs".into()), 200, codes::TIMEOUT),
            (GatewayError::Internal("db".into()), 500, -32603),
        ];
        for (err, status, code) in rows {
            let p = err.public();
            assert_eq!((p.status.as_u16(), p.error.code), (status, code), "{err}");
        }
    }

    #[test]
    fn public_messages_hide_upstream_detail() {
        let e = GatewayError::UpstreamFailed {
            upstream: "fs".into(),
            detail: "/secret/path: stack trace".into(),
        };
        assert!(!e.public().error.message.contains("/secret"));
        let e = GatewayError::Internal("password=hunter2".into());
        assert!(!e.public().error.message.contains("hunter2"));
    }
}
