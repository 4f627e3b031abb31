//! JSON-RPC 2.0 envelope: raw bytes → typed [`Message`], and replies → wire text.
//!
//! Parsing never panics; every malformed input becomes an [`RpcError`] with the standard code
//! (`-32700` unparseable, `-32600` not a single valid message, `-32602` params not an object).

use serde::Serialize;
use serde_json::{Map, Value};

pub(crate) const PARSE_ERROR: i64 = -32700;
pub(crate) const INVALID_REQUEST: i64 = -32600;
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
pub(crate) const INVALID_PARAMS: i64 = -32602;
pub(crate) const INTERNAL_ERROR: i64 = -32603;
/// Resource not found in 2025-11-25 and earlier (replaced by `-32602` in 2026-07-28).
pub(crate) const RESOURCE_NOT_FOUND_LEGACY: i64 = -32002;
pub(crate) const HEADER_MISMATCH: i64 = -32020;
pub(crate) const MISSING_CLIENT_CAPABILITY: i64 = -32021;
pub(crate) const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// A JSON-RPC error object, as sent on the wire.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub(crate) fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub(crate) fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub(crate) fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }

    pub(crate) fn method_not_found(method: &str) -> Self {
        Self::new(METHOD_NOT_FOUND, format!("Method not found: {method}"))
    }
}

/// A request id: a string or an integer (never null, never fractional).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Id(Value);

impl Id {
    pub(crate) fn from_value(value: Value) -> Option<Self> {
        let ok = match &value {
            Value::String(_) => true,
            Value::Number(n) => n.is_i64() || n.is_u64(),
            _ => false,
        };
        ok.then_some(Self(value))
    }

    pub(crate) fn string(s: String) -> Self {
        Self(Value::String(s))
    }

    /// A map key that tells `1` and `"1"` apart.
    pub(crate) fn key(&self) -> String {
        self.0.to_string()
    }

    pub(crate) fn as_value(&self) -> &Value {
        &self.0
    }
}

/// A client request: it expects exactly one response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    pub id: Id,
    pub method: String,
    pub params: Map<String, Value>,
}

/// One well-formed incoming JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Message {
    Request(Request),
    Notification {
        method: String,
        params: Map<String, Value>,
    },
    /// The client's answer to a request this server sent (legacy elicitation).
    Response {
        id: Id,
        outcome: Result<Value, Value>,
    },
}

/// Why bytes were not a message; `id` is set when it could be read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rejected {
    pub id: Option<Id>,
    pub error: RpcError,
}

fn reject(id: Option<Id>, code: i64, message: &str) -> Box<Rejected> {
    Box::new(Rejected {
        id,
        error: RpcError::new(code, message),
    })
}

/// Parses one JSON-RPC message. Batches (arrays) are refused: MCP sends one message at a time.
pub(crate) fn parse(bytes: &[u8]) -> Result<Message, Box<Rejected>> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|_| reject(None, PARSE_ERROR, "Parse error: body is not valid JSON"))?;
    let Value::Object(mut obj) = value else {
        return Err(reject(
            None,
            INVALID_REQUEST,
            "Invalid request: expected a single JSON-RPC object (batches are not supported)",
        ));
    };
    let id = match obj.remove("id") {
        None => None,
        Some(raw) => Some(Id::from_value(raw).ok_or_else(|| {
            reject(
                None,
                INVALID_REQUEST,
                "Invalid request: id must be a string or an integer",
            )
        })?),
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(reject(
            id,
            INVALID_REQUEST,
            "Invalid request: jsonrpc must be \"2.0\"",
        ));
    }
    match obj.remove("method") {
        Some(Value::String(method)) => {
            let params = match obj.remove("params") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(params)) => params,
                Some(_) => {
                    return Err(reject(
                        id,
                        INVALID_PARAMS,
                        "Invalid params: params must be an object",
                    ));
                }
            };
            Ok(match id {
                Some(id) => Message::Request(Request { id, method, params }),
                None => Message::Notification { method, params },
            })
        }
        Some(_) => Err(reject(
            id,
            INVALID_REQUEST,
            "Invalid request: method must be a string",
        )),
        None => {
            let outcome = match (obj.remove("result"), obj.remove("error")) {
                (Some(result), None) => Ok(result),
                (None, Some(error)) => Err(error),
                _ => {
                    return Err(reject(
                        id,
                        INVALID_REQUEST,
                        "Invalid request: a message needs a method, or exactly one of result and error",
                    ));
                }
            };
            match id {
                Some(id) => Ok(Message::Response { id, outcome }),
                None => Err(reject(
                    None,
                    INVALID_REQUEST,
                    "Invalid request: a response needs an id",
                )),
            }
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a RpcError>,
}

impl Envelope<'_> {
    const EMPTY: Self = Self {
        jsonrpc: "2.0",
        id: None,
        method: None,
        params: None,
        result: None,
        error: None,
    };
}

fn to_text(envelope: &Envelope<'_>) -> String {
    // Serializing these types to a String cannot fail (string keys, finite numbers from serde_json).
    serde_json::to_string(envelope).unwrap_or_else(|_| {
        String::from(
            r#"{"jsonrpc":"2.0","error":{"code":-32603,"message":"Internal error: could not serialize"}}"#,
        )
    })
}

/// A response: `id` is `None` only when the request's id could not be read.
pub(crate) fn response(id: Option<&Id>, outcome: &Result<Value, RpcError>) -> String {
    let id = id.map(Id::as_value);
    match outcome {
        Ok(result) => to_text(&Envelope {
            id,
            result: Some(result),
            ..Envelope::EMPTY
        }),
        Err(error) => to_text(&Envelope {
            id,
            error: Some(error),
            ..Envelope::EMPTY
        }),
    }
}

/// A notification or (with `id`) a request from this server to the client.
pub(crate) fn outgoing(id: Option<&Id>, method: &str, params: &Value) -> String {
    to_text(&Envelope {
        id: id.map(Id::as_value),
        method: Some(method),
        params: Some(params),
        ..Envelope::EMPTY
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn malformed_input_maps_to_standard_codes() {
        let rows: &[(&str, i64, bool)] = &[
            ("{not json", PARSE_ERROR, false),
            ("", PARSE_ERROR, false),
            ("[]", INVALID_REQUEST, false),
            (
                r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
                INVALID_REQUEST,
                false,
            ),
            ("42", INVALID_REQUEST, false),
            (r#"{"id":1,"method":"ping"}"#, INVALID_REQUEST, true),
            (
                r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
                INVALID_REQUEST,
                true,
            ),
            (
                r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
                INVALID_REQUEST,
                false,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
                INVALID_REQUEST,
                false,
            ),
            (
                r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
                INVALID_REQUEST,
                false,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
                INVALID_REQUEST,
                true,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}"#,
                INVALID_PARAMS,
                true,
            ),
            (r#"{"jsonrpc":"2.0","id":1}"#, INVALID_REQUEST, true),
            (r#"{"jsonrpc":"2.0","result":{}}"#, INVALID_REQUEST, false),
        ];
        for (input, code, has_id) in rows {
            let rejected = parse(input.as_bytes()).expect_err(input);
            assert_eq!(rejected.error.code, *code, "{input}");
            assert_eq!(rejected.id.is_some(), *has_id, "{input}");
        }
    }

    #[test]
    fn well_formed_messages_are_classified() {
        let req = parse(br#"{"jsonrpc":"2.0","id":"a","method":"tools/list"}"#).unwrap();
        assert!(
            matches!(req, Message::Request(r) if r.method == "tools/list" && r.params.is_empty())
        );
        let note = parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert!(matches!(note, Message::Notification { .. }));
        let resp = parse(br#"{"jsonrpc":"2.0","id":3,"result":{"action":"accept"}}"#).unwrap();
        assert!(matches!(resp, Message::Response { outcome: Ok(_), .. }));
        let err = parse(br#"{"jsonrpc":"2.0","id":3,"error":{"code":1,"message":"x"}}"#).unwrap();
        assert!(matches!(
            err,
            Message::Response {
                outcome: Err(_),
                ..
            }
        ));
    }

    #[test]
    fn ids_keep_their_type_in_keys_and_replies() {
        assert_ne!(Id(json!(1)).key(), Id(json!("1")).key());
        let text = response(Some(&Id(json!(7))), &Ok(json!({})));
        assert_eq!(text, r#"{"jsonrpc":"2.0","id":7,"result":{}}"#);
        let text = response(None, &Err(RpcError::new(PARSE_ERROR, "Parse error")));
        assert_eq!(
            text,
            r#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"}}"#
        );
    }
}
