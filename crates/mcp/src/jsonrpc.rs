//! The JSON-RPC 2.0 envelope: one message per body, params and results kept raw.

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::depth;
use crate::error::{ErrorCode, ErrorObject};

/// A request id: JSON-RPC allows strings and numbers (integers here; MCP forbids `null`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Id {
    Int(i64),
    Str(String),
}

impl Id {
    fn from_raw(raw: &RawValue) -> Option<Id> {
        if let Ok(n) = serde_json::from_str::<i64>(raw.get()) {
            return Some(Id::Int(n));
        }
        serde_json::from_str::<String>(raw.get()).ok().map(Id::Str)
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Id::Int(n) => write!(f, "{n}"),
            Id::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Id::Int(n) => s.serialize_i64(*n),
            Id::Str(v) => s.serialize_str(v),
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        Id::from_raw(&raw)
            .ok_or_else(|| serde::de::Error::custom("id must be a string or an integer"))
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub id: Id,
    pub method: String,
    pub params: Option<Box<RawValue>>,
}

#[derive(Debug, Clone)]
pub struct Notification {
    pub method: String,
    pub params: Option<Box<RawValue>>,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Result(Box<RawValue>),
    Error(ErrorObject),
}

#[derive(Debug, Clone)]
pub struct Response {
    pub id: Option<Id>,
    pub outcome: Outcome,
}

/// One JSON-RPC message.
#[derive(Debug, Clone)]
pub enum Message {
    Request(Request),
    Notification(Notification),
    Response(Response),
}

/// Why a body is not one valid JSON-RPC message. Carries the request id when one could be read,
/// so the error response can name it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("body is not valid JSON: {0}")]
    NotJson(String),
    #[error("JSON nesting deeper than {0}")]
    TooDeep(usize),
    #[error("batch requests are not supported")]
    Batch,
    #[error("invalid JSON-RPC message: {reason}")]
    Invalid { reason: String, id: Option<Id> },
}

impl ParseError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ParseError::NotJson(_) => ErrorCode::ParseError,
            ParseError::TooDeep(_) | ParseError::Batch | ParseError::Invalid { .. } => {
                ErrorCode::InvalidRequest
            }
        }
    }

    pub fn id(&self) -> Option<&Id> {
        match self {
            ParseError::Invalid { id, .. } => id.as_ref(),
            _ => None,
        }
    }
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default, deserialize_with = "present")]
    jsonrpc: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    id: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    method: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    params: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    result: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "present")]
    error: Option<Box<RawValue>>,
}

fn first_non_ws(bytes: &[u8]) -> Option<u8> {
    bytes.iter().copied().find(|b| !b.is_ascii_whitespace())
}

/// Parses one message. Never panics; depth is checked before the parse allocates.
pub fn parse(bytes: &[u8], max_depth: usize) -> Result<Message, ParseError> {
    if depth::exceeds(bytes, max_depth) {
        return Err(ParseError::TooDeep(max_depth));
    }
    match first_non_ws(bytes) {
        Some(b'[') => {
            // Still reject unparseable arrays as parse errors: JSON first, then shape.
            serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
                .map_err(|e| ParseError::NotJson(e.to_string()))?;
            return Err(ParseError::Batch);
        }
        Some(b'{') => {}
        _ => {
            serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
                .map_err(|e| ParseError::NotJson(e.to_string()))?;
            return Err(invalid("a message must be a JSON object", None));
        }
    }
    let env: Envelope = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ParseError::NotJson(e.to_string())
        } else {
            invalid(&e.to_string(), None)
        }
    })?;
    from_envelope(env)
}

fn invalid(reason: &str, id: Option<Id>) -> ParseError {
    ParseError::Invalid {
        reason: reason.to_owned(),
        id,
    }
}

fn from_envelope(env: Envelope) -> Result<Message, ParseError> {
    let id = match &env.id {
        None => None,
        Some(raw) => match Id::from_raw(raw) {
            Some(id) => Some(id),
            None => return Err(invalid("id must be a string or an integer", None)),
        },
    };
    match env.jsonrpc.as_deref().map(RawValue::get) {
        Some("\"2.0\"") => {}
        _ => return Err(invalid("jsonrpc must be \"2.0\"", id)),
    }
    if let Some(params) = &env.params {
        match first_non_ws(params.get().as_bytes()) {
            Some(b'{') => {}
            _ => return Err(invalid("params must be an object", id)),
        }
    }
    match (env.method, env.result, env.error) {
        (Some(method), None, None) => {
            let method: String = serde_json::from_str(method.get())
                .map_err(|_| invalid("method must be a string", id.clone()))?;
            if method.is_empty() {
                return Err(invalid("method must not be empty", id));
            }
            Ok(match id {
                Some(id) => Message::Request(Request {
                    id,
                    method,
                    params: env.params,
                }),
                None => Message::Notification(Notification {
                    method,
                    params: env.params,
                }),
            })
        }
        (None, Some(result), None) => {
            if id.is_none() {
                return Err(invalid("a result needs an id", None));
            }
            Ok(Message::Response(Response {
                id,
                outcome: Outcome::Result(result),
            }))
        }
        (None, None, Some(error)) => {
            let error: ErrorObject = serde_json::from_str(error.get())
                .map_err(|e| invalid(&format!("malformed error object: {e}"), id.clone()))?;
            Ok(Message::Response(Response {
                id,
                outcome: Outcome::Error(error),
            }))
        }
        _ => Err(invalid(
            "a message needs exactly one of method, result or error",
            id,
        )),
    }
}

#[derive(Serialize)]
struct OutRequest<'a> {
    jsonrpc: &'static str,
    id: &'a Id,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct OutNotification<'a> {
    jsonrpc: &'static str,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct OutResult<'a> {
    jsonrpc: &'static str,
    id: &'a Id,
    result: &'a RawValue,
}

#[derive(Serialize)]
struct OutError<'a> {
    jsonrpc: &'static str,
    id: Option<&'a Id>,
    error: &'a ErrorObject,
}

/// `v` as JSON text, in a buffer sized for `payload` (the raw JSON it carries) and the envelope
/// around it, so a large message is written once, not copied while its buffer grows.
fn to_vec<T: Serialize>(v: &T, payload: Option<&RawValue>) -> Vec<u8> {
    const ENVELOPE: usize = 256;
    let mut out = Vec::with_capacity(payload.map_or(0, |p| p.get().len()) + ENVELOPE);
    // Serializing these structs (strings, ids, already-valid raw JSON) cannot fail.
    match serde_json::to_writer(&mut out, v) {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}

impl Request {
    pub fn to_bytes(&self) -> Vec<u8> {
        to_vec(
            &OutRequest {
                jsonrpc: "2.0",
                id: &self.id,
                method: &self.method,
                params: self.params.as_deref(),
            },
            self.params.as_deref(),
        )
    }
}

impl Notification {
    pub fn to_bytes(&self) -> Vec<u8> {
        to_vec(
            &OutNotification {
                jsonrpc: "2.0",
                method: &self.method,
                params: self.params.as_deref(),
            },
            self.params.as_deref(),
        )
    }
}

impl Response {
    pub fn result(id: Id, result: Box<RawValue>) -> Self {
        Self {
            id: Some(id),
            outcome: Outcome::Result(result),
        }
    }

    pub fn error(id: Option<Id>, error: ErrorObject) -> Self {
        Self {
            id,
            outcome: Outcome::Error(error),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        match (&self.outcome, &self.id) {
            (Outcome::Result(r), Some(id)) => to_vec(
                &OutResult {
                    jsonrpc: "2.0",
                    id,
                    result: r,
                },
                Some(r),
            ),
            (Outcome::Result(_), None) => {
                let e = ErrorObject::new(ErrorCode::InternalError, "result without id");
                to_vec(
                    &OutError {
                        jsonrpc: "2.0",
                        id: None,
                        error: &e,
                    },
                    None,
                )
            }
            (Outcome::Error(e), id) => to_vec(
                &OutError {
                    jsonrpc: "2.0",
                    id: id.as_ref(),
                    error: e,
                },
                e.data.as_deref(),
            ),
        }
    }
}

impl Message {
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Notification(n) => n.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

#[cfg(test)]
mod tests;
