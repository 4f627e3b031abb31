//! `subscriptions/listen` (2026-07-28): a long-lived stream of the notifications a client asked
//! for. The gateway is the server here: every upstream's list changes and resource updates
//! reach [`Changes`] (already in exposed, namespaced form), and each open listen stream takes
//! the ones its filter names, tagged with its subscription id.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use portcullis_mcp::{Id, Notification, RawObject, Response};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::broadcast;

use crate::Gateway;
use crate::error::GatewayError;
use crate::stream::EventLog;

/// The key under `_meta` naming the subscription a message belongs to.
pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// Gateway-wide change notifications, for listen streams.
#[derive(Debug, Clone)]
pub struct Changes {
    tx: broadcast::Sender<Notification>,
}

impl Default for Changes {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(256).0,
        }
    }
}

impl Changes {
    pub fn publish(&self, n: &Notification) {
        // No listener is fine: nobody asked.
        let _ = self.tx.send(n.clone());
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Notification> {
        self.tx.subscribe()
    }
}

/// What a client asked to hear about.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(default)]
    pub tools_list_changed: bool,
    #[serde(default)]
    pub prompts_list_changed: bool,
    #[serde(default)]
    pub resources_list_changed: bool,
    #[serde(default)]
    pub resource_subscriptions: BTreeSet<String>,
}

impl Filter {
    pub fn parse(params: Option<&RawValue>) -> Result<Filter, GatewayError> {
        let Some(obj) = params.and_then(|p| RawObject::from_raw(p).ok()) else {
            return Ok(Filter::default());
        };
        match obj.get("notifications") {
            None => Ok(Filter::default()),
            Some(raw) => serde_json::from_str(raw.get())
                .map_err(|e| GatewayError::InvalidParams(format!("notifications: {e}"))),
        }
    }

    /// Whether a notification passes this filter.
    pub fn wants(&self, n: &Notification) -> bool {
        match n.method.as_str() {
            "notifications/tools/list_changed" => self.tools_list_changed,
            "notifications/prompts/list_changed" => self.prompts_list_changed,
            "notifications/resources/list_changed" => self.resources_list_changed,
            "notifications/resources/updated" => n
                .params
                .as_deref()
                .and_then(|p| RawObject::from_raw(p).ok())
                .and_then(|p| p.get_str("uri"))
                .is_some_and(|uri| self.resource_subscriptions.contains(&uri)),
            _ => false,
        }
    }

    fn to_json(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for (key, on) in [
            ("toolsListChanged", self.tools_list_changed),
            ("promptsListChanged", self.prompts_list_changed),
            ("resourcesListChanged", self.resources_list_changed),
        ] {
            if on {
                out.insert(key.into(), true.into());
            }
        }
        if !self.resource_subscriptions.is_empty() {
            out.insert(
                "resourceSubscriptions".into(),
                self.resource_subscriptions.iter().cloned().collect(),
            );
        }
        out.into()
    }
}

/// `n` with `_meta.subscriptionId` set to the listen request's id.
fn tagged(n: &Notification, id: &Id) -> Option<Bytes> {
    let mut params = match n.params.as_deref() {
        Some(p) => RawObject::from_raw(p).ok()?,
        None => RawObject::new(),
    };
    let mut meta = match params.get("_meta") {
        Some(m) => RawObject::from_raw(m).ok()?,
        None => RawObject::new(),
    };
    meta.set(SUBSCRIPTION_ID, id).ok()?;
    params.set_raw("_meta", meta.to_raw().ok()?);
    let out = Notification {
        method: n.method.clone(),
        params: Some(params.to_raw().ok()?),
    };
    Some(Bytes::from(out.to_bytes()))
}

/// Opens a listen stream: acknowledges the filter first, then relays matching changes until
/// the client goes away (`log` is dropped by the closed response) or the gateway stops, when
/// it ends the subscription gracefully with a `complete` result.
pub fn open(gw: &Arc<Gateway>, id: Id, filter: Filter, log: Arc<EventLog>) {
    let mut rx = gw.changes.subscribe();
    let ack = Notification {
        method: "notifications/subscriptions/acknowledged".into(),
        params: serde_json::value::to_raw_value(&serde_json::json!({
            "notifications": filter.to_json(),
        }))
        .ok(),
    };
    if let Some(bytes) = tagged(&ack, &id) {
        log.push(bytes, false);
    }
    let shutdown = gw.shutdown.clone();
    let weak = Arc::downgrade(&log);
    drop(log);
    tokio::spawn(async move {
        loop {
            let n = tokio::select! {
                () = shutdown.cancelled() => {
                    if let Some(log) = weak.upgrade() {
                        let mut meta = serde_json::Map::new();
                        meta.insert(SUBSCRIPTION_ID.into(), serde_json::to_value(&id).unwrap_or_default());
                        let result = serde_json::json!({"resultType": "complete", "_meta": meta});
                        if let Ok(raw) = serde_json::value::to_raw_value(&result) {
                            log.push_response(&Response::result(id.clone(), raw));
                        }
                    }
                    return;
                }
                n = rx.recv() => n,
            };
            let Some(log) = weak.upgrade() else { return };
            match n {
                Ok(n) if filter.wants(&n) => {
                    if let Some(bytes) = tagged(&n, &id) {
                        log.push(bytes, false);
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(k)) => {
                    tracing::warn!(
                        skipped = k,
                        "listen stream fell behind; notifications dropped"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(method: &str, params: Option<&str>) -> Notification {
        Notification {
            method: method.into(),
            params: params.map(|p| RawValue::from_string(p.into()).unwrap()),
        }
    }

    #[test]
    fn filter_table() {
        let raw = RawValue::from_string(
            r#"{"notifications":{"toolsListChanged":true,"resourceSubscriptions":["a__file:///x"]}}"#
                .into(),
        )
        .unwrap();
        let f = Filter::parse(Some(&raw)).unwrap();
        let rows = [
            (note("notifications/tools/list_changed", None), true),
            (note("notifications/prompts/list_changed", None), false),
            (note("notifications/resources/list_changed", None), false),
            (
                note(
                    "notifications/resources/updated",
                    Some(r#"{"uri":"a__file:///x"}"#),
                ),
                true,
            ),
            (
                note(
                    "notifications/resources/updated",
                    Some(r#"{"uri":"a__file:///y"}"#),
                ),
                false,
            ),
            (
                note("notifications/message", Some(r#"{"level":"info"}"#)),
                false,
            ),
        ];
        for (n, want) in rows {
            assert_eq!(f.wants(&n), want, "{}", n.method);
        }
        assert_eq!(
            f.to_json(),
            serde_json::json!({"toolsListChanged": true, "resourceSubscriptions": ["a__file:///x"]})
        );
    }

    #[test]
    fn bad_filter_is_invalid_params() {
        let raw = RawValue::from_string(r#"{"notifications":{"toolsListChanged":"yes"}}"#.into())
            .unwrap();
        assert!(matches!(
            Filter::parse(Some(&raw)),
            Err(GatewayError::InvalidParams(_))
        ));
    }

    #[test]
    fn tags_keep_other_meta() {
        let n = note(
            "notifications/tools/list_changed",
            Some(r#"{"_meta":{"k":1}}"#),
        );
        let bytes = tagged(&n, &Id::Int(7)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["params"]["_meta"]["k"], 1);
        assert_eq!(v["params"]["_meta"][SUBSCRIPTION_ID], 7);
    }
}
