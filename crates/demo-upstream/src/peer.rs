//! The way back to the client while one request runs: notifications (progress) and, in the
//! legacy era, requests from this server (elicitation) whose answers arrive as separate messages.
//!
//! On stdio both go to stdout; over HTTP they go on the POST's SSE stream, and the client's
//! answer arrives as another POST in the same session. [`Pending`] matches answers to waiters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::jsonrpc::{self, Id};

/// How long a server-to-client request waits for its answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);

type Answer = Result<Value, Value>;

/// Requests this server sent and is waiting on, by id. Closed when the scope ends.
#[derive(Debug)]
pub(crate) struct Pending {
    next: AtomicU64,
    /// `None` once closed: no new waiters, and the old ones were told.
    waiting: Mutex<Option<HashMap<String, oneshot::Sender<Answer>>>>,
}

impl Pending {
    pub(crate) fn new() -> Self {
        Self {
            next: AtomicU64::new(1),
            waiting: Mutex::new(Some(HashMap::new())),
        }
    }

    fn with<R>(
        &self,
        f: impl FnOnce(&mut Option<HashMap<String, oneshot::Sender<Answer>>>) -> R,
    ) -> R {
        let mut guard = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    fn register(&self) -> Option<(Id, oneshot::Receiver<Answer>)> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = Id::string(format!("portcullis-demo-{n}"));
        let (tx, rx) = oneshot::channel();
        self.with(|w| w.as_mut().map(|map| map.insert(id.key(), tx)))?;
        Some((id, rx))
    }

    fn forget(&self, id: &Id) {
        self.with(|w| w.as_mut().map(|map| map.remove(&id.key())));
    }

    /// Hands the client's answer to its waiter; `false` when nobody waits for that id.
    pub(crate) fn resolve(&self, id: &Id, answer: Answer) -> bool {
        match self.with(|w| w.as_mut().and_then(|map| map.remove(&id.key()))) {
            Some(tx) => tx.send(answer).is_ok(),
            None => false,
        }
    }

    /// Ends the scope: current waiters fail now, later requests fail at once.
    pub(crate) fn close(&self) {
        self.with(Option::take);
    }
}

/// Removes a waiter when its request is dropped (cancelled) before the answer came.
struct Waiter<'a> {
    pending: &'a Pending,
    id: Id,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.pending.forget(&self.id);
    }
}

/// Why a server-to-client request got no result.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PeerError {
    #[error("this transport cannot carry requests to the client")]
    Unsupported,
    #[error("the client went away")]
    Gone,
    #[error("the client did not answer in time")]
    Timeout,
    #[error("the client answered with an error: {0}")]
    Refused(Value),
}

/// One request's link back to the client.
#[derive(Debug, Clone, Default)]
pub(crate) struct Peer {
    out: Option<mpsc::Sender<String>>,
    pending: Option<Arc<Pending>>,
}

impl Peer {
    /// No way back: plain JSON responses over HTTP, and unit tests.
    pub(crate) fn none() -> Self {
        Self::default()
    }

    pub(crate) fn new(out: mpsc::Sender<String>, pending: Option<Arc<Pending>>) -> Self {
        Self {
            out: Some(out),
            pending,
        }
    }

    /// Sends a notification; a client that went away is not an error here.
    pub(crate) async fn notify(&self, method: &str, params: Value) {
        if let Some(out) = &self.out {
            let _ = out.send(jsonrpc::outgoing(None, method, &params)).await;
        }
    }

    /// Sends a request to the client and waits for its answer.
    pub(crate) async fn request(&self, method: &str, params: Value) -> Result<Value, PeerError> {
        let (Some(out), Some(pending)) = (&self.out, &self.pending) else {
            return Err(PeerError::Unsupported);
        };
        let (id, rx) = pending.register().ok_or(PeerError::Gone)?;
        let _waiter = Waiter {
            pending,
            id: id.clone(),
        };
        out.send(jsonrpc::outgoing(Some(&id), method, &params))
            .await
            .map_err(|_| PeerError::Gone)?;
        match tokio::time::timeout(ANSWER_TIMEOUT, rx).await {
            Err(_) => Err(PeerError::Timeout),
            Ok(Err(_)) => Err(PeerError::Gone),
            Ok(Ok(Ok(result))) => Ok(result),
            Ok(Ok(Err(error))) => Err(PeerError::Refused(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn answers_reach_their_waiter_and_close_fails_the_rest() {
        let (tx, mut rx) = mpsc::channel(4);
        let pending = Arc::new(Pending::new());
        let peer = Peer::new(tx, Some(pending.clone()));
        let ask = tokio::spawn({
            let peer = peer.clone();
            async move { peer.request("elicitation/create", json!({})).await }
        });
        let sent: Value = serde_json::from_str(&rx.recv().await.unwrap()).unwrap();
        let id = Id::string(sent["id"].as_str().unwrap().to_owned());
        assert!(!pending.resolve(&Id::string("other".into()), Ok(json!({}))));
        assert!(pending.resolve(&id, Ok(json!({ "action": "accept" }))));
        assert_eq!(ask.await.unwrap().unwrap(), json!({ "action": "accept" }));

        let ask = tokio::spawn({
            let peer = peer.clone();
            async move { peer.request("elicitation/create", json!({})).await }
        });
        rx.recv().await.unwrap();
        pending.close();
        assert!(matches!(ask.await.unwrap(), Err(PeerError::Gone)));
        assert!(matches!(
            peer.request("x", json!({})).await,
            Err(PeerError::Gone)
        ));
        assert!(matches!(
            Peer::none().request("x", json!({})).await,
            Err(PeerError::Unsupported)
        ));
    }
}
