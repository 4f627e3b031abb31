//! 2025-era client sessions: created by `initialize`, named by `Mcp-Session-Id`, ended by
//! `DELETE` or idleness. A session holds what the client declared, its response streams (for
//! resumption), the server-to-client requests waiting for its answer, and its in-flight calls.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_mcp::{Id, Outcome, Revision};
use portcullis_transport::ClientContext;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::error::GatewayError;
use crate::stream::EventLog;

/// What a client may be asked for, and the tasks extension it declares (from its declared
/// capabilities, read once per session or 2026-era request).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCaps {
    pub sampling: bool,
    pub elicitation: bool,
    /// The tasks extension ([`crate::tasks::EXTENSION`]): a task handle may be its result.
    pub tasks: bool,
}

impl ClientCaps {
    pub fn from_json(caps: Option<&serde_json::value::RawValue>) -> Self {
        let Some(obj) = caps.and_then(|c| portcullis_mcp::RawFields::parse(c).ok()) else {
            return Self::default();
        };
        Self {
            sampling: obj.contains("sampling"),
            elicitation: obj.contains("elicitation"),
            tasks: crate::tasks::declared_in(&obj),
        }
    }

    pub fn allows(&self, method: &str) -> bool {
        match method {
            "sampling/createMessage" => self.sampling,
            "elicitation/create" => self.elicitation,
            _ => false,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub struct Session {
    pub id: String,
    pub revision: Revision,
    pub client: ClientContext,
    pub caps: ClientCaps,
    /// The principal that started the session; only it may use the session.
    pub owner: String,
    last_seen: Mutex<Instant>,
    log_level: Mutex<Option<String>>,
    next_stream: AtomicU64,
    next_request: AtomicU64,
    streams: Mutex<HashMap<u64, Arc<EventLog>>>,
    /// The `GET` stream: notifications not tied to a request.
    pub standalone: Arc<EventLog>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    inflight: Mutex<HashMap<Id, CancellationToken>>,
    subscriptions: Mutex<HashSet<String>>,
    pub ended: CancellationToken,
}

impl Session {
    fn new(id: String, revision: Revision, client: ClientContext, owner: String) -> Self {
        let caps = ClientCaps::from_json(client.capabilities.as_deref());
        Self {
            id,
            revision,
            client,
            caps,
            owner,
            last_seen: Mutex::new(Instant::now()),
            log_level: Mutex::new(None),
            next_stream: AtomicU64::new(1),
            next_request: AtomicU64::new(1),
            streams: Mutex::new(HashMap::new()),
            standalone: EventLog::new(0, true),
            waiting: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            subscriptions: Mutex::new(HashSet::new()),
            ended: CancellationToken::new(),
        }
    }

    pub fn touch(&self) {
        *lock(&self.last_seen) = Instant::now();
    }

    /// A new response stream for one request.
    pub fn open_stream(&self) -> Arc<EventLog> {
        let n = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let log = EventLog::new(n, true);
        let mut streams = lock(&self.streams);
        if streams.len() >= KEEP_STREAMS {
            // Finished streams stay resumable for a while; past the bound the oldest go first.
            let mut done: Vec<u64> = streams
                .iter()
                .filter(|(_, l)| l.is_done())
                .map(|(k, _)| *k)
                .collect();
            done.sort_unstable();
            for k in done.iter().take(streams.len() + 1 - KEEP_STREAMS) {
                streams.remove(k);
            }
        }
        streams.insert(n, Arc::clone(&log));
        log
    }

    pub fn stream(&self, n: u64) -> Option<Arc<EventLog>> {
        if n == 0 {
            return Some(Arc::clone(&self.standalone));
        }
        lock(&self.streams).get(&n).cloned()
    }

    /// Registers a server-to-client request; returns the id the client will see.
    pub fn await_client(&self, reply: oneshot::Sender<Outcome>) -> String {
        let id = format!(
            "portcullis-{}",
            self.next_request.fetch_add(1, Ordering::Relaxed)
        );
        lock(&self.waiting).insert(id.clone(), reply);
        id
    }

    /// Delivers the client's answer to a server-to-client request.
    pub fn answer(&self, id: &Id, outcome: Outcome) -> bool {
        let Id::Str(key) = id else { return false };
        match lock(&self.waiting).remove(key) {
            Some(tx) => tx.send(outcome).is_ok(),
            None => false,
        }
    }

    pub fn begin_call(&self, id: &Id) -> CancellationToken {
        let token = self.ended.child_token();
        lock(&self.inflight).insert(id.clone(), token.clone());
        token
    }

    pub fn end_call(&self, id: &Id) {
        lock(&self.inflight).remove(id);
    }

    /// `notifications/cancelled` from the client.
    pub fn cancel_call(&self, id: &Id) -> bool {
        match lock(&self.inflight).remove(id) {
            Some(t) => {
                t.cancel();
                true
            }
            None => false,
        }
    }

    pub fn set_log_level(&self, level: String) {
        *lock(&self.log_level) = Some(level);
    }

    /// The level set by `logging/setLevel`; before one, everything (`debug`): the 2025 revisions
    /// leave it to the server, and the client may still filter.
    pub fn log_level(&self) -> String {
        lock(&self.log_level)
            .clone()
            .unwrap_or_else(|| "debug".to_owned())
    }

    /// Whether a `notifications/message` at `level` should reach this client.
    pub fn wants_log(&self, level: &str) -> bool {
        let Some(min) = lock(&self.log_level).clone() else {
            return true;
        };
        severity(level) >= severity(&min)
    }

    pub fn subscribe(&self, uri: String) {
        lock(&self.subscriptions).insert(uri);
    }

    pub fn unsubscribe(&self, uri: &str) {
        lock(&self.subscriptions).remove(uri);
    }

    pub fn is_subscribed(&self, uri: &str) -> bool {
        lock(&self.subscriptions).contains(uri)
    }

    fn end(&self) {
        self.ended.cancel();
        self.standalone.finish();
        for (_, log) in lock(&self.streams).drain() {
            log.finish();
        }
        lock(&self.waiting).clear();
    }

    fn idle_for(&self) -> Duration {
        lock(&self.last_seen).elapsed()
    }
}

const KEEP_STREAMS: usize = 64;

fn severity(level: &str) -> u8 {
    match level {
        "debug" => 0,
        "info" => 1,
        "notice" => 2,
        "warning" => 3,
        "error" => 4,
        "critical" => 5,
        "alert" => 6,
        "emergency" => 7,
        _ => 1,
    }
}

/// All live sessions.
pub struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
    max: usize,
    idle: Duration,
}

impl Sessions {
    pub fn new(max: usize, idle: Duration) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            max,
            idle,
        }
    }

    pub fn create(
        &self,
        revision: Revision,
        client: ClientContext,
        owner: String,
    ) -> Result<Arc<Session>, GatewayError> {
        let mut map = lock(&self.map);
        if map.len() >= self.max {
            return Err(GatewayError::TooManySessions);
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let s = Arc::new(Session::new(id.clone(), revision, client, owner));
        map.insert(id, Arc::clone(&s));
        Ok(s)
    }

    pub fn get(&self, id: &str) -> Result<Arc<Session>, GatewayError> {
        let s = lock(&self.map)
            .get(id)
            .cloned()
            .ok_or(GatewayError::UnknownSession)?;
        s.touch();
        Ok(s)
    }

    /// The session `id` if `owner` started it; another principal's session is "not found"
    /// (its existence is not revealed).
    pub fn get_owned(&self, id: &str, owner: &str) -> Result<Arc<Session>, GatewayError> {
        let s = self.get(id)?;
        if s.owner == owner {
            Ok(s)
        } else {
            tracing::warn!(session = %id, client.id = %owner, "session presented by a principal that did not start it");
            Err(GatewayError::UnknownSession)
        }
    }

    /// Ends session `id` if `owner` started it.
    pub fn remove_owned(&self, id: &str, owner: &str) -> bool {
        let mut map = lock(&self.map);
        if map.get(id).is_none_or(|s| s.owner != owner) {
            return false;
        }
        match map.remove(id) {
            Some(s) => {
                s.end();
                true
            }
            None => false,
        }
    }

    pub fn remove(&self, id: &str) -> bool {
        match lock(&self.map).remove(id) {
            Some(s) => {
                s.end();
                true
            }
            None => false,
        }
    }

    pub fn all(&self) -> Vec<Arc<Session>> {
        lock(&self.map).values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends sessions idle longer than the limit; returns how many.
    pub fn sweep(&self) -> usize {
        let expired: Vec<Arc<Session>> = {
            let mut map = lock(&self.map);
            let ids: Vec<String> = map
                .iter()
                .filter(|(_, s)| s.idle_for() > self.idle)
                .map(|(k, _)| k.clone())
                .collect();
            ids.iter().filter_map(|k| map.remove(k)).collect()
        };
        for s in &expired {
            s.end();
        }
        expired.len()
    }

    pub fn end_all(&self) {
        let all: Vec<Arc<Session>> = lock(&self.map).drain().map(|(_, s)| s).collect();
        for s in all {
            s.end();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_are_read_once_from_the_declared_capabilities() {
        let raw = |s: &str| serde_json::value::RawValue::from_string(s.to_owned()).unwrap();
        let all = raw(
            r#"{"sampling":{},"elicitation":{},"extensions":{"io.modelcontextprotocol/tasks":{}}}"#,
        );
        let caps = ClientCaps::from_json(Some(&all));
        assert!(caps.sampling && caps.elicitation && caps.tasks);
        assert_eq!(caps.tasks, crate::tasks::declared(Some(&all)));
        // The 2025-era `tasks` capability is not the extension.
        let legacy = ClientCaps::from_json(Some(&raw(r#"{"tasks":{},"extensions":{}}"#)));
        assert!(!legacy.tasks && !legacy.sampling && !legacy.elicitation);
        assert_eq!(ClientCaps::from_json(None), ClientCaps::default());
    }

    #[test]
    fn limits_and_lifecycle() {
        let sessions = Sessions::new(2, Duration::from_secs(60));
        let a = sessions
            .create(
                Revision::V2025_11_25,
                ClientContext::default(),
                "alice".into(),
            )
            .unwrap();
        let _b = sessions
            .create(
                Revision::V2025_06_18,
                ClientContext::default(),
                "alice".into(),
            )
            .unwrap();
        assert!(matches!(
            sessions.create(
                Revision::V2025_11_25,
                ClientContext::default(),
                "alice".into()
            ),
            Err(GatewayError::TooManySessions)
        ));
        assert!(sessions.get(&a.id).is_ok());
        assert!(sessions.remove(&a.id));
        assert!(a.ended.is_cancelled());
        assert!(matches!(
            sessions.get(&a.id),
            Err(GatewayError::UnknownSession)
        ));
    }

    #[test]
    fn idle_sessions_are_swept() {
        let sessions = Sessions::new(10, Duration::from_millis(0));
        let _ = sessions
            .create(
                Revision::V2025_11_25,
                ClientContext::default(),
                "alice".into(),
            )
            .unwrap();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(sessions.sweep(), 1);
        assert!(sessions.is_empty());
    }

    #[test]
    fn client_answers_reach_the_waiting_request() {
        let sessions = Sessions::new(10, Duration::from_secs(60));
        let s = sessions
            .create(
                Revision::V2025_11_25,
                ClientContext::default(),
                "alice".into(),
            )
            .unwrap();
        let (tx, mut rx) = oneshot::channel();
        let id = s.await_client(tx);
        let ok = RawValueBox::ok();
        assert!(s.answer(&Id::Str(id.clone()), Outcome::Result(ok)));
        assert!(rx.try_recv().is_ok());
        assert!(!s.answer(&Id::Str(id), Outcome::Result(RawValueBox::ok())));
    }

    #[test]
    fn log_levels_filter() {
        let sessions = Sessions::new(10, Duration::from_secs(60));
        let s = sessions
            .create(
                Revision::V2025_11_25,
                ClientContext::default(),
                "alice".into(),
            )
            .unwrap();
        assert!(s.wants_log("debug"));
        s.set_log_level("warning".into());
        assert!(!s.wants_log("info"));
        assert!(s.wants_log("error"));
    }

    struct RawValueBox;
    impl RawValueBox {
        fn ok() -> Box<serde_json::value::RawValue> {
            serde_json::value::RawValue::from_string("{}".into()).unwrap()
        }
    }
}
