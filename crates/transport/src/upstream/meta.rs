//! Rewrites of request params the transport owns: progress tokens and 2026-era `_meta`.

use std::borrow::Cow;
use std::sync::LazyLock;

use portcullis_mcp::version::meta;
use portcullis_mcp::{RawEdit, RawFields};
use serde_json::value::RawValue;

use super::ClientContext;

/// The gateway's own identity in `_meta.clientInfo` when the downstream client sent none.
fn gateway_info() -> Box<RawValue> {
    static INFO: LazyLock<Box<RawValue>> = LazyLock::new(|| {
        serde_json::value::to_raw_value(
            &serde_json::json!({"name": "portcullis", "version": env!("CARGO_PKG_VERSION")}),
        )
        .unwrap_or_else(|_| empty_object())
    });
    INFO.clone()
}

pub(crate) fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| Box::<RawValue>::default())
}

/// Prepared params for one upstream request.
pub(crate) struct Prepared {
    pub params: Option<Box<RawValue>>,
    /// The client's progress token, when one was replaced by `token`.
    pub client_token: Option<Box<RawValue>>,
}

/// The `_meta` key carrying the gateway's request id to upstreams.
pub const REQUEST_ID: &str = "io.portcullis/requestId";

/// Replaces `_meta.progressToken` with `token` (remembering the client's), and for a 2026-era
/// upstream makes sure `_meta` carries the protocol version and client capabilities.
pub(crate) fn prepare(
    params: Option<Box<RawValue>>,
    token: &str,
    modern: bool,
    client: &ClientContext,
) -> Result<Prepared, serde_json::Error> {
    let needs_meta = modern
        || client.request_id.is_some()
        || params
            .as_ref()
            .is_some_and(|p| p.get().contains("progressToken"));
    if !needs_meta {
        return Ok(Prepared {
            params,
            client_token: None,
        });
    }
    let mut obj = match &params {
        Some(p) => RawEdit::parse(p)?,
        None => RawEdit::default(),
    };
    let mut m = match obj.original().get("_meta") {
        Some(raw) => RawEdit::parse(raw)?,
        None => RawEdit::default(),
    };
    let client_token = m.original().get("progressToken").map(ToOwned::to_owned);
    if client_token.is_some() {
        m.set("progressToken", token)?;
    }
    if let Some(id) = client.request_id.as_deref() {
        m.set(REQUEST_ID, id)?;
    }
    if modern {
        if !m.contains(meta::PROTOCOL_VERSION) {
            m.set(meta::PROTOCOL_VERSION, "2026-07-28")?;
        }
        if !m.contains(meta::CLIENT_CAPABILITIES) {
            let caps = client
                .capabilities
                .as_deref()
                .map(|c| c.to_owned())
                .unwrap_or_else(empty_object);
            m.set_raw(meta::CLIENT_CAPABILITIES, caps);
        }
        if let Some(level) = client.log_level.as_deref()
            && !m.contains(meta::LOG_LEVEL)
        {
            m.set(meta::LOG_LEVEL, level)?;
        }
        if !m.contains(meta::CLIENT_INFO) {
            let info = client
                .client_info
                .as_deref()
                .map(|c| c.to_owned())
                .unwrap_or_else(gateway_info);
            m.set_raw(meta::CLIENT_INFO, info);
        }
    }
    if m.is_changed() {
        obj.set_raw("_meta", m.to_raw()?);
    }
    let params = obj.to_raw()?;
    Ok(Prepared {
        params: Some(params),
        client_token,
    })
}

/// The progress token of a `notifications/progress`, as a string key.
pub(crate) fn progress_token(params: Option<&RawValue>) -> Option<String> {
    let obj = RawFields::parse(params?).ok()?;
    let raw = obj.get("progressToken")?;
    Some(raw.get().to_owned())
}

/// Puts the client's own token back into a progress notification.
pub(crate) fn restore_token(
    params: Option<Box<RawValue>>,
    client_token: &RawValue,
) -> Option<Box<RawValue>> {
    let p = params?;
    let restored = RawEdit::parse(&p).ok().and_then(|mut obj| {
        obj.set_raw("progressToken", client_token.to_owned());
        obj.to_raw().ok()
    });
    restored.or(Some(p))
}

/// The `notifications/cancelled` the gateway sends when it stops waiting for request `id`.
pub(crate) fn cancelled(id: i64) -> portcullis_mcp::Notification {
    let params = format!(r#"{{"requestId":{id},"reason":"cancelled by the gateway"}}"#);
    portcullis_mcp::Notification {
        method: "notifications/cancelled".into(),
        params: RawValue::from_string(params).ok(),
    }
}

/// Extracts the value of `key` in a string-valued params field (e.g. `name`, `uri`).
pub(crate) fn params_str(params: Option<&RawValue>, key: &str) -> Option<String> {
    RawFields::parse(params?)
        .ok()?
        .get_str(key)
        .map(Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn replaces_progress_token_and_keeps_other_meta() {
        let p = prepare(
            Some(raw(
                r#"{"name":"x","_meta":{"progressToken":"abc","other":1}}"#,
            )),
            "pc-1",
            false,
            &ClientContext::default(),
        )
        .unwrap();
        assert_eq!(
            p.params.unwrap().get(),
            r#"{"name":"x","_meta":{"progressToken":"pc-1","other":1}}"#
        );
        assert_eq!(p.client_token.unwrap().get(), r#""abc""#);
    }

    #[test]
    fn legacy_without_token_is_untouched() {
        let p = prepare(
            Some(raw(r#"{"name":"x" , "arguments":{}}"#)),
            "pc-1",
            false,
            &ClientContext::default(),
        )
        .unwrap();
        assert_eq!(p.params.unwrap().get(), r#"{"name":"x" , "arguments":{}}"#);
    }

    #[test]
    fn a_token_named_outside_meta_leaves_params_verbatim() {
        let text = r#"{"name":"x", "arguments":{"progressToken":"mine"}}"#;
        let p = prepare(Some(raw(text)), "pc-1", false, &ClientContext::default()).unwrap();
        assert_eq!(p.params.unwrap().get(), text);
        assert!(p.client_token.is_none());
    }

    #[test]
    fn modern_gets_required_meta() {
        let p = prepare(None, "pc-1", true, &ClientContext::default()).unwrap();
        let v: serde_json::Value = serde_json::from_str(p.params.unwrap().get()).unwrap();
        assert_eq!(v["_meta"][meta::PROTOCOL_VERSION], "2026-07-28");
        assert!(v["_meta"][meta::CLIENT_CAPABILITIES].is_object());
    }

    #[test]
    fn restores_numeric_token() {
        let out = restore_token(
            Some(raw(r#"{"progressToken":"pc-1","progress":5}"#)),
            &raw("7"),
        )
        .unwrap();
        assert_eq!(out.get(), r#"{"progressToken":7,"progress":5}"#);
    }
}
