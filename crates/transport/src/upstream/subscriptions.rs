//! What a 2026-07-28 upstream is asked to send on its `subscriptions/listen` stream: the list
//! changes it declares, plus the resource URIs clients subscribed to. Such a server has no
//! `resources/subscribe`, so the transport keeps the set and reopens the stream when it
//! changes. Shared by the HTTP and stdio transports.

use std::collections::BTreeSet;
use std::sync::Mutex;

use portcullis_mcp::{Outcome, RawObject};
use serde_json::value::RawValue;
use tokio::sync::Notify;

use crate::upstream::{ClientContext, UpstreamError, meta};

/// The resource URIs clients subscribed to through this upstream.
#[derive(Default)]
pub(super) struct Subscriptions {
    resources: Mutex<BTreeSet<String>>,
    /// Wakes the listener: the set changed, reopen the stream.
    pub(super) changed: Notify,
}

impl Subscriptions {
    /// The filter for a server that declared `capabilities`.
    pub(super) fn filter(&self, capabilities: &RawValue) -> serde_json::Value {
        let resources = self
            .resources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        filter(capabilities, &resources)
    }

    /// `resources/subscribe` and `resources/unsubscribe` toward a 2026-era server, which has no
    /// such methods: the URI joins or leaves the listen filter, and the stream is reopened.
    pub(super) fn change(&self, method: &str, params: Option<&RawValue>) -> Outcome {
        let uri = params
            .and_then(|p| RawObject::from_raw(p).ok())
            .and_then(|p| p.get_str("uri"));
        let Some(uri) = uri else {
            return Outcome::Error(portcullis_mcp::ErrorObject::new(
                portcullis_mcp::ErrorCode::InvalidParams,
                "uri is required",
            ));
        };
        let changed = {
            let mut subs = self.resources.lock().unwrap_or_else(|p| p.into_inner());
            if method == "resources/subscribe" {
                subs.insert(uri)
            } else {
                subs.remove(&uri)
            }
        };
        if changed {
            self.changed.notify_one();
        }
        Outcome::Result(meta::empty_object())
    }
}

/// Whether a call is a resource (un)subscription, which a 2026-era server hears as a filter.
pub(super) fn is_subscription(method: &str) -> bool {
    matches!(method, "resources/subscribe" | "resources/unsubscribe")
}

/// The params of a `subscriptions/listen` for `notifications`, with the request `_meta`; `None`
/// when there is nothing to listen for.
pub(super) fn listen_params(
    notifications: serde_json::Value,
) -> Result<Option<Box<RawValue>>, UpstreamError> {
    if notifications.as_object().is_none_or(|o| o.is_empty()) {
        return Ok(None);
    }
    let params = serde_json::value::to_raw_value(&serde_json::json!({
        "notifications": notifications,
    }))
    .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
    let prepared = meta::prepare(Some(params), "", true, &ClientContext::default())
        .map_err(|e| UpstreamError::Protocol(format!("params: {e}")))?;
    Ok(Some(prepared.params.unwrap_or_else(meta::empty_object)))
}

/// The `notifications` filter for this server: what it declares, and the subscribed URIs.
fn filter(capabilities: &RawValue, resources: &BTreeSet<String>) -> serde_json::Value {
    let caps: serde_json::Value = serde_json::from_str(capabilities.get()).unwrap_or_default();
    let declared = |kind: &str, flag: &str| caps[kind][flag].as_bool().unwrap_or(false);
    let mut out = serde_json::Map::new();
    for (key, kind) in [
        ("toolsListChanged", "tools"),
        ("promptsListChanged", "prompts"),
        ("resourcesListChanged", "resources"),
    ] {
        if declared(kind, "listChanged") {
            out.insert(key.into(), true.into());
        }
    }
    if declared("resources", "subscribe") && !resources.is_empty() {
        out.insert(
            "resourceSubscriptions".into(),
            resources.iter().cloned().collect(),
        );
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_follows_declared_capabilities() {
        let caps = RawValue::from_string(
            r#"{"tools":{"listChanged":true},"prompts":{},"resources":{"subscribe":true}}"#.into(),
        )
        .unwrap();
        let none = BTreeSet::new();
        assert_eq!(
            filter(&caps, &none),
            serde_json::json!({"toolsListChanged": true})
        );
        let some: BTreeSet<String> = ["file:///a".to_owned()].into();
        assert_eq!(
            filter(&caps, &some),
            serde_json::json!({"toolsListChanged": true, "resourceSubscriptions": ["file:///a"]})
        );
        let bare = RawValue::from_string("{}".into()).unwrap();
        assert_eq!(filter(&bare, &some), serde_json::json!({}));
    }
}
