//! The upstream's own notification stream, kept open so list changes and resource updates
//! reach the gateway between calls: `subscriptions/listen` for a 2026-07-28 server (list
//! changes it declares, plus the resource URIs clients subscribed to), the `GET` stream for a
//! 2025-era server. Reopened with back-off when it ends, and at once when the set of
//! subscribed resources changes.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use portcullis_mcp::headers as mcp_headers;
use portcullis_mcp::{Id, Outcome, Request, version::Era};
use reqwest::header::ACCEPT;

use super::super::subscriptions::listen_params;
use super::{Posted, Session, Shared};
use crate::upstream::UpstreamError;

const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Runs until the upstream stops.
pub(super) async fn run(shared: Arc<Shared>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let opened = tokio::time::Instant::now();
        let outcome = tokio::select! {
            () = shared.stop.cancelled() => return,
            () = shared.subs.changed.notified() => {
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
            () = shared.subs.changed.notified() => backoff = BACKOFF_MIN,
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

async fn listen_modern(shared: &Arc<Shared>, session: &Session) -> Result<(), UpstreamError> {
    let notifications = shared.subs.filter(&session.identity.capabilities);
    let Some(params) = listen_params(notifications)? else {
        // Nothing to listen for until the subscriptions change.
        return std::future::pending().await;
    };
    let req = Request {
        id: Id::Int(shared.next_id.fetch_add(1, Ordering::Relaxed)),
        method: "subscriptions/listen".into(),
        params: Some(params),
    };
    match shared.post(&req, session, None, None, &[], None).await? {
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
    shared
        .read(super::Reply::from(resp), 0, session, None, None, None)
        .await
        .map(|_| ())
}
