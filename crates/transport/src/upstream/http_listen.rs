//! The upstream's own notification stream, kept open so list changes and resource updates
//! reach the gateway between calls: `subscriptions/listen` for a 2026-07-28 server (list
//! changes it declares, plus the resource URIs clients subscribed to), the `GET` stream for a
//! 2025-era server. Reopened with back-off when it ends, and at once when the set of
//! subscribed resources changes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use portcullis_mcp::headers as mcp_headers;
use portcullis_mcp::{Id, Outcome, RawObject, Request, version::Era};
use reqwest::header::ACCEPT;
use serde_json::value::RawValue;

use super::{Posted, Session, Shared};
use crate::upstream::{ClientContext, UpstreamError, meta};

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Runs until the upstream stops.
pub(super) async fn run(shared: Arc<Shared>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let opened = tokio::time::Instant::now();
        let outcome = tokio::select! {
            () = shared.stop.cancelled() => return,
            () = shared.relisten.notified() => {
                backoff = BACKOFF_MIN;
                continue;
            }
            r = once(&shared) => r,
        };
        match outcome {
            Ok(()) => {
                tracing::debug!(upstream = %shared.name, "upstream notification stream ended")
            }
            Err(e) => {
                tracing::debug!(upstream = %shared.name, error = %e, "upstream notification stream failed")
            }
        }
        // A stream that lived a while was healthy: start the back-off over.
        if opened.elapsed() > BACKOFF_MAX {
            backoff = BACKOFF_MIN;
        }
        tokio::select! {
            () = shared.stop.cancelled() => return,
            () = shared.relisten.notified() => backoff = BACKOFF_MIN,
            () = tokio::time::sleep(backoff) => backoff = (backoff * 2).min(BACKOFF_MAX),
        }
    }
}

/// One stream, until it ends. Returns at once (pending forever) when there is nothing to hear.
async fn once(shared: &Arc<Shared>) -> Result<(), UpstreamError> {
    let session = shared.session().await?;
    match session.identity.era {
        Era::Modern => listen_modern(shared, &session).await,
        Era::Legacy => listen_legacy(shared, &session).await,
    }
}

/// The `notifications` filter for this server: what it declares, and the subscribed URIs.
pub(super) fn filter(capabilities: &RawValue, resources: &BTreeSet<String>) -> serde_json::Value {
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

async fn listen_modern(shared: &Arc<Shared>, session: &Session) -> Result<(), UpstreamError> {
    let resources = shared.subscribed_resources();
    let notifications = filter(&session.identity.capabilities, &resources);
    if notifications.as_object().is_none_or(|o| o.is_empty()) {
        // Nothing to listen for until the subscriptions change.
        std::future::pending::<()>().await;
    }
    let params = serde_json::value::to_raw_value(&serde_json::json!({
        "notifications": notifications,
    }))
    .map_err(|e| UpstreamError::Protocol(e.to_string()))?;
    let prepared = meta::prepare(Some(params), "", true, &ClientContext::default())
        .map_err(|e| UpstreamError::Protocol(format!("params: {e}")))?;
    let req = Request {
        id: Id::Int(shared.next_id.fetch_add(1, Ordering::Relaxed)),
        method: "subscriptions/listen".into(),
        params: prepared.params,
    };
    match shared.post(&req, session, None, None, &[]).await? {
        Posted::Outcome(Outcome::Error(e)) => Err(UpstreamError::Protocol(format!(
            "subscriptions/listen refused: {} ({})",
            e.message, e.code
        ))),
        _ => Ok(()),
    }
}

async fn listen_legacy(shared: &Arc<Shared>, session: &Session) -> Result<(), UpstreamError> {
    let mut rb = shared
        .client
        .get(shared.url.clone())
        .headers(shared.headers.clone())
        .header(ACCEPT, "text/event-stream")
        .header(
            mcp_headers::PROTOCOL_VERSION,
            session.identity.protocol_version.as_str(),
        );
    if let Some(sid) = &session.id {
        rb = rb.header(mcp_headers::SESSION_ID, sid);
    }
    let resp = shared
        .authorize(rb)
        .await?
        .send()
        .await
        .map_err(|e| UpstreamError::Connect(super::without_url(&e)))?;
    if resp.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED {
        // The server offers no standalone stream; notifications come only inside calls.
        std::future::pending::<()>().await;
    }
    if !resp.status().is_success() {
        return Err(UpstreamError::Status(resp.status().as_u16()));
    }
    // No response is awaited on this stream (id 0 is never used for a request).
    shared.read(resp, 0, session, None, None).await.map(|_| ())
}

impl Shared {
    fn subscribed_resources(&self) -> BTreeSet<String> {
        self.resource_subs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// `resources/subscribe` and `resources/unsubscribe` toward a 2026-era server, which has no
    /// such methods: the URI joins or leaves the listen filter, and the stream is reopened.
    pub(super) fn change_subscription(&self, method: &str, params: Option<&RawValue>) -> Outcome {
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
            let mut subs = self.resource_subs.lock().unwrap_or_else(|p| p.into_inner());
            if method == "resources/subscribe" {
                subs.insert(uri)
            } else {
                subs.remove(&uri)
            }
        };
        if changed {
            self.relisten.notify_one();
        }
        Outcome::Result(meta::empty_object())
    }
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
