//! Requests running in their own task, by id, so `notifications/cancelled` can abort them.
//!
//! Aborting drops the request's future: its work stops at the next await, and it sends nothing
//! more (no progress, no response), as cancellation requires.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde_json::{Map, Value};
use tokio::task::AbortHandle;

use crate::jsonrpc::Id;

#[derive(Debug, Default)]
pub(crate) struct Inflight {
    running: Mutex<HashMap<String, AbortHandle>>,
}

impl Inflight {
    fn running(&self) -> MutexGuard<'_, HashMap<String, AbortHandle>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a request's task with `spawn` and records it under `id`. The entry is made
    /// before the task can reach [`Inflight::finished`], so a fast task cannot leave it behind.
    pub(crate) fn start(&self, id: &Id, spawn: impl FnOnce() -> AbortHandle) {
        let mut running = self.running();
        let handle = spawn();
        running.insert(id.key(), handle);
    }

    /// Called by a request's own task when done; keeps a newer request that reused the id.
    pub(crate) fn finished(&self, id: &Id) {
        let mut running = self.running();
        let key = id.key();
        let ours = running
            .get(&key)
            .is_some_and(|h| Some(h.id()) == tokio::task::try_id());
        if ours {
            running.remove(&key);
        }
    }

    /// Handles `notifications/cancelled`: aborts the named request if it still runs.
    pub(crate) fn cancel(&self, params: &Map<String, Value>) {
        let Some(id) = params.get("requestId").cloned().and_then(Id::from_value) else {
            return;
        };
        if let Some(handle) = self.running().remove(&id.key()) {
            tracing::debug!(id = %id.key(), "request cancelled by the client");
            handle.abort();
        }
    }

    /// Aborts everything still running (the scope is ending).
    pub(crate) fn cancel_all(&self) {
        for (_, handle) in self.running().drain() {
            handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn cancel_aborts_and_finished_forgets() {
        let inflight = Arc::new(Inflight::default());
        let id = Id::from_value(json!(1)).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            let _ = tx.send(());
        });
        inflight.start(&id, || task.abort_handle());
        inflight.cancel(json!({ "requestId": "1" }).as_object().unwrap()); // other type: no-op
        assert!(!task.is_finished());
        inflight.cancel(json!({ "requestId": 1 }).as_object().unwrap());
        assert!(task.await.unwrap_err().is_cancelled());
        assert!(rx.await.is_err(), "the aborted task sent nothing");

        let quick = {
            let inflight = inflight.clone();
            let id = id.clone();
            move || tokio::spawn(async move { inflight.finished(&id) }).abort_handle()
        };
        inflight.start(&id, quick);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(inflight.running().is_empty());
    }
}
