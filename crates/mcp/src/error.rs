//! JSON-RPC / MCP error codes and the error object.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Error codes the gateway emits. Values follow JSON-RPC 2.0 and the MCP error-code policy
/// (`-32020..=-32099` reserved for the specification).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    ParseError,
    InvalidRequest,
    MethodNotFound,
    InvalidParams,
    InternalError,
    /// MCP `HeaderMismatch` (2026-07-28).
    HeaderMismatch,
    /// MCP `MissingRequiredClientCapability` (2026-07-28).
    MissingRequiredClientCapability,
    /// MCP `UnsupportedProtocolVersion` (2026-07-28).
    UnsupportedProtocolVersion,
    /// Implementation-defined: the gateway refused the request (policy, limits, upstream state).
    /// Outside the JSON-RPC reserved range, as the MCP error-code policy asks.
    Gateway(i64),
}

impl ErrorCode {
    pub const fn code(self) -> i64 {
        match self {
            Self::ParseError => -32700,
            Self::InvalidRequest => -32600,
            Self::MethodNotFound => -32601,
            Self::InvalidParams => -32602,
            Self::InternalError => -32603,
            Self::HeaderMismatch => -32020,
            Self::MissingRequiredClientCapability => -32021,
            Self::UnsupportedProtocolVersion => -32022,
            Self::Gateway(c) => c,
        }
    }
}

/// A JSON-RPC error object. `data` stays raw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorObject {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<RawValue>>,
}

impl ErrorObject {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code.code(),
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: &serde_json::Value) -> Self {
        self.data = serde_json::value::to_raw_value(data).ok();
        self
    }
}

impl PartialEq for ErrorObject {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code
            && self.message == other.message
            && self.data.as_ref().map(|d| d.get()) == other.data.as_ref().map(|d| d.get())
    }
}
