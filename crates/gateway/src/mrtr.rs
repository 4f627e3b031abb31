//! A 2026-07-28 upstream asks for client input by answering `input_required` (multi round-trip
//! requests); a 2025-era client expects server-to-client requests on its stream instead. This
//! module bridges that direction: each input request becomes a request to the session, the
//! answers are collected, and the call is retried upstream with `inputResponses` and the
//! upstream's `requestState` echoed untouched. (The other direction, a 2025-era upstream asking
//! a 2026-era client, is `relay::park`.)

use std::sync::Arc;

use bytes::Bytes;
use portcullis_mcp::{Id, Outcome, RawObject, Request};
use serde_json::value::RawValue;
use tokio::sync::oneshot;

use crate::error::GatewayError;
use crate::session::Session;
use crate::stream::EventLog;

/// At most this many input rounds per call: a server that keeps asking is cut off.
pub const MAX_ROUNDS: u32 = 8;

/// The `input_required` result's fields, when `result` is one.
pub fn input_required(result: &RawValue) -> Option<RawObject> {
    // Cheap test before parsing: almost every result is complete.
    if !result.get().contains("input_required") {
        return None;
    }
    let obj = RawObject::from_raw(result).ok()?;
    (obj.get_str("resultType").as_deref() == Some("input_required")).then_some(obj)
}

/// Asks the session's client every input request of `result` and returns the retry's params:
/// `params` plus `inputResponses` (and `requestState` when the upstream sent one).
pub async fn ask_legacy(
    session: &Arc<Session>,
    log: &EventLog,
    upstream: &str,
    params: Option<&RawValue>,
    result: &RawObject,
) -> Result<Box<RawValue>, GatewayError> {
    let failed = |detail: String| GatewayError::UpstreamFailed {
        upstream: upstream.to_owned(),
        detail,
    };
    let requests = match result.get("inputRequests") {
        Some(raw) => RawObject::from_raw(raw)
            .map_err(|e| failed(format!("input_required with malformed inputRequests: {e}")))?,
        None => RawObject::new(),
    };
    let mut pending = Vec::with_capacity(requests.len());
    for (key, raw) in requests.iter() {
        let request = RawObject::from_raw(raw)
            .map_err(|e| failed(format!("input request {key:?} malformed: {e}")))?;
        let method = request
            .get_str("method")
            .ok_or_else(|| failed(format!("input request {key:?} has no method")))?;
        if !session.caps.allows(&method) {
            return Err(GatewayError::UpstreamFailed {
                upstream: upstream.to_owned(),
                detail: format!("needs {method}, which the client did not declare"),
            });
        }
        let (tx, rx) = oneshot::channel();
        let id = session.await_client(tx);
        let msg = Request {
            id: Id::Str(id),
            method: method.clone(),
            params: request.get("params").map(|p| p.to_owned()),
        };
        log.push(Bytes::from(msg.to_bytes()), false);
        pending.push((key.to_owned(), method, rx));
    }
    let mut responses = RawObject::new();
    for (key, method, rx) in pending {
        match rx.await {
            Ok(Outcome::Result(r)) => responses.set_raw(&key, r),
            Ok(Outcome::Error(e)) => {
                return Err(failed(format!(
                    "the client answered {method} with error {}: {}",
                    e.code, e.message
                )));
            }
            Err(_) => {
                return Err(failed(format!(
                    "the session ended before answering {method}"
                )));
            }
        }
    }
    let mut retry = match params {
        Some(p) => RawObject::from_raw(p)
            .map_err(|e| GatewayError::Internal(format!("call params: {e}")))?,
        None => RawObject::new(),
    };
    let encode = |e: serde_json::Error| GatewayError::Internal(format!("retry params: {e}"));
    retry.set_raw("inputResponses", responses.to_raw().map_err(encode)?);
    match result.get("requestState") {
        Some(state) => retry.set_raw("requestState", state.to_owned()),
        None => {
            retry.remove("requestState");
        }
    }
    retry.to_raw().map_err(encode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn recognises_input_required_only() {
        assert!(input_required(&raw(r#"{"content":[],"resultType":"complete"}"#)).is_none());
        assert!(
            input_required(&raw(
                r#"{"content":[{"type":"text","text":"input_required"}]}"#
            ))
            .is_none()
        );
        let r = input_required(&raw(
            r#"{"resultType":"input_required","inputRequests":{"a":{"method":"elicitation/create"}},"requestState":"s"}"#,
        ))
        .unwrap();
        assert_eq!(r.get_str("requestState").as_deref(), Some("s"));
    }
}
