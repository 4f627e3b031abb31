//! A multiplexed JSON-RPC peer over one ordered byte stream (used by stdio): many in-flight
//! calls, ids and progress tokens assigned here, messages routed back to the call they belong to.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use portcullis_mcp::{
    ErrorCode, ErrorObject, Id, Message, Notification, Outcome, Request, Response,
};
use serde_json::value::RawValue;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{Call, Event, ServerIdentity, ServerRequest, UpstreamError, meta};

struct Pending {
    tx: oneshot::Sender<Outcome>,
    events: Option<mpsc::Sender<Event>>,
    client_token: Option<Box<RawValue>>,
}

/// One live connection to an upstream.
pub(crate) struct Peer {
    name: String,
    writer: mpsc::Sender<Vec<u8>>,
    pending: Mutex<HashMap<i64, Pending>>,
    next_id: AtomicI64,
    pub(crate) identity: OnceLock<ServerIdentity>,
    notifications: broadcast::Sender<Notification>,
}

const TOKEN_PREFIX: &str = "pc-";

impl Peer {
    pub(crate) fn new(
        name: &str,
        writer: mpsc::Sender<Vec<u8>>,
        notifications: broadcast::Sender<Notification>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            writer,
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicI64::new(1),
            identity: OnceLock::new(),
            notifications,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Pending>> {
        // A poisoned map only means another thread panicked mid-insert; the data is still usable.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn modern(&self) -> bool {
        self.identity
            .get()
            .is_some_and(|i| i.era == portcullis_mcp::Era::Modern)
    }

    /// Sends a request and waits for its outcome; dropping the future cancels it upstream.
    pub(crate) async fn request(self: &Arc<Self>, call: Call) -> Result<Outcome, UpstreamError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let token = format!("{TOKEN_PREFIX}{id}");
        let prepared = meta::prepare(call.params, &token, self.modern(), &call.client)
            .map_err(|e| UpstreamError::Protocol(format!("params: {e}")))?;
        let (tx, rx) = oneshot::channel();
        self.lock().insert(
            id,
            Pending {
                tx,
                events: call.events,
                client_token: prepared.client_token,
            },
        );
        let bytes = Request {
            id: Id::Int(id),
            method: call.method,
            params: prepared.params,
        }
        .to_bytes();
        let mut guard = CancelGuard {
            peer: self,
            id,
            armed: true,
        };
        if self.writer.send(bytes).await.is_err() {
            guard.armed = false;
            self.lock().remove(&id);
            return Err(UpstreamError::Unavailable(format!(
                "{} is not running",
                self.name
            )));
        }
        let outcome = rx.await.map_err(|_| {
            UpstreamError::Unavailable(format!("{} stopped during the call", self.name))
        });
        guard.armed = false;
        outcome
    }

    pub(crate) async fn notify(&self, n: Notification) -> Result<(), UpstreamError> {
        self.writer
            .send(n.to_bytes())
            .await
            .map_err(|_| UpstreamError::Unavailable(format!("{} is not running", self.name)))
    }

    /// Fails every in-flight call (the process died).
    pub(crate) fn fail_all(&self) {
        self.lock().clear();
    }

    /// Routes one message read from the upstream.
    pub(crate) fn dispatch(self: &Arc<Self>, msg: Message) {
        match msg {
            Message::Response(Response {
                id: Some(Id::Int(id)),
                outcome,
            }) => {
                if let Some(p) = self.lock().remove(&id) {
                    let _ = p.tx.send(outcome);
                } else {
                    tracing::debug!(upstream = %self.name, id, "response for no pending call");
                }
            }
            Message::Response(r) => {
                tracing::warn!(upstream = %self.name, id = ?r.id, "response with an id we never sent")
            }
            Message::Notification(n) => self.on_notification(n),
            Message::Request(r) => self.on_request(r),
        }
    }

    fn on_notification(&self, n: Notification) {
        if n.method == "notifications/progress" {
            let Some(id) = meta::progress_token(n.params.as_deref()).and_then(|t| parse_token(&t))
            else {
                tracing::debug!(upstream = %self.name, "progress for an unknown token");
                return;
            };
            let pending = self.lock();
            if let Some(Pending {
                events: Some(events),
                client_token: Some(token),
                ..
            }) = pending.get(&id)
            {
                let params = meta::restore_token(n.params, token);
                let _ = events.try_send(Event::Notification(Notification {
                    method: n.method,
                    params,
                }));
            }
            return;
        }
        if n.method == "notifications/message"
            && let Some(events) = self.sole_listener()
        {
            let _ = events.try_send(Event::Notification(n));
            return;
        }
        if n.method == "notifications/cancelled" {
            return;
        }
        let _ = self.notifications.send(n);
    }

    /// The event channel of the only in-flight call that has one. Over stdio a server request
    /// does not say which call it serves; with one candidate it is unambiguous, with several we
    /// refuse rather than risk handing one client's prompt to another.
    fn sole_listener(&self) -> Option<mpsc::Sender<Event>> {
        let pending = self.lock();
        let mut it = pending.values().filter_map(|p| p.events.as_ref());
        match (it.next(), it.next()) {
            (Some(one), None) => Some(one.clone()),
            _ => None,
        }
    }

    fn on_request(self: &Arc<Self>, r: Request) {
        if r.method == "ping" {
            self.respond(Response::result(r.id, meta::empty_object()));
            return;
        }
        let Some(events) = self.sole_listener() else {
            let e = ErrorObject::new(
                ErrorCode::MethodNotFound,
                format!("{} cannot be relayed: no single originating call", r.method),
            );
            self.respond(Response::error(Some(r.id), e));
            return;
        };
        let (reply, rx) = oneshot::channel();
        let sent = events.try_send(Event::Request(ServerRequest {
            method: r.method,
            params: r.params,
            reply,
        }));
        let peer = Arc::clone(self);
        let id = r.id;
        if sent.is_err() {
            let e = ErrorObject::new(ErrorCode::InternalError, "client is not reachable");
            peer.respond(Response::error(Some(id), e));
            return;
        }
        tokio::spawn(async move {
            let outcome = rx.await.unwrap_or_else(|_| {
                Outcome::Error(ErrorObject::new(
                    ErrorCode::InternalError,
                    "the originating call ended before the client answered",
                ))
            });
            peer.respond(Response {
                id: Some(id),
                outcome,
            });
        });
    }

    fn respond(&self, r: Response) {
        if self.writer.try_send(r.to_bytes()).is_err() {
            tracing::warn!(upstream = %self.name, "could not write a response to the upstream");
        }
    }
}

fn parse_token(raw_json: &str) -> Option<i64> {
    let s: String = serde_json::from_str(raw_json).ok()?;
    s.strip_prefix(TOKEN_PREFIX)?.parse().ok()
}

/// Cancels the upstream request when the caller stops waiting (client gone, timeout).
struct CancelGuard<'a> {
    peer: &'a Arc<Peer>,
    id: i64,
    armed: bool,
}

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.peer.lock().remove(&self.id);
        let n = meta::cancelled(self.id);
        let _ = self.peer.writer.try_send(n.to_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::ClientContext;

    fn peer() -> (Arc<Peer>, mpsc::Receiver<Vec<u8>>) {
        let (tx, rx) = mpsc::channel(16);
        let (ntx, _) = broadcast::channel(16);
        (Arc::new(Peer::new("t", tx, ntx)), rx)
    }

    fn call(params: &str, events: Option<mpsc::Sender<Event>>) -> Call {
        Call {
            method: "tools/call".into(),
            params: RawValue::from_string(params.into()).ok(),
            client: ClientContext::default(),
            events,
        }
    }

    #[tokio::test]
    async fn routes_response_and_progress_to_the_right_call() {
        let (p, mut wire) = peer();
        let (etx, mut erx) = mpsc::channel(8);
        let p2 = Arc::clone(&p);
        let task = tokio::spawn(async move {
            p2.request(call(
                r#"{"name":"x","_meta":{"progressToken":42}}"#,
                Some(etx),
            ))
            .await
        });
        let sent: serde_json::Value = serde_json::from_slice(&wire.recv().await.unwrap()).unwrap();
        assert_eq!(sent["params"]["_meta"]["progressToken"], "pc-1");
        p.dispatch(portcullis_mcp::parse(br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"pc-1","progress":1}}"#, 64).unwrap());
        let Some(Event::Notification(n)) = erx.recv().await else {
            panic!("no progress")
        };
        assert_eq!(
            n.params.unwrap().get(),
            r#"{"progressToken":42,"progress":1}"#
        );
        p.dispatch(
            portcullis_mcp::parse(br#"{"jsonrpc":"2.0","id":1,"result":{"ok":true}}"#, 64).unwrap(),
        );
        let Outcome::Result(r) = task.await.unwrap().unwrap() else {
            panic!("error outcome")
        };
        assert_eq!(r.get(), r#"{"ok":true}"#);
    }

    #[tokio::test]
    async fn dropping_a_call_sends_cancelled() {
        let (p, mut wire) = peer();
        let p2 = Arc::clone(&p);
        let task = tokio::spawn(async move { p2.request(call(r#"{"name":"x"}"#, None)).await });
        let _ = wire.recv().await.unwrap();
        task.abort();
        let cancelled: serde_json::Value =
            serde_json::from_slice(&wire.recv().await.unwrap()).unwrap();
        assert_eq!(cancelled["method"], "notifications/cancelled");
        assert_eq!(cancelled["params"]["requestId"], 1);
    }

    #[tokio::test]
    async fn server_request_with_two_candidates_is_refused() {
        let (p, mut wire) = peer();
        let (e1, _r1) = mpsc::channel(8);
        let (e2, _r2) = mpsc::channel(8);
        let (pa, pb) = (Arc::clone(&p), Arc::clone(&p));
        let _a = tokio::spawn(async move { pa.request(call("{}", Some(e1))).await });
        let _b = tokio::spawn(async move { pb.request(call("{}", Some(e2))).await });
        let _ = wire.recv().await;
        let _ = wire.recv().await;
        p.dispatch(
            portcullis_mcp::parse(
                br#"{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{}}"#,
                64,
            )
            .unwrap(),
        );
        let reply: serde_json::Value = serde_json::from_slice(&wire.recv().await.unwrap()).unwrap();
        assert_eq!(reply["id"], "s1");
        assert!(reply["error"].is_object());
    }
}
