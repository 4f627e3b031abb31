//! Legacy HTTP sessions: minted by `initialize`, named by `Mcp-Session-Id`, ended by DELETE.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::era::{ClientCaps, Legacy};
use crate::inflight::Inflight;
use crate::peer::Pending;

/// Most live sessions; `initialize` beyond this is refused (503) rather than growing forever.
const MAX_SESSIONS: usize = 10_000;

/// What one legacy session remembers from its `initialize`.
#[derive(Debug)]
pub(crate) struct Session {
    pub version: Legacy,
    pub caps: ClientCaps,
    /// Elicitations sent on this session's streams, awaiting the client's answering POST.
    pub pending: Arc<Pending>,
    /// This session's streamed requests, for `notifications/cancelled`.
    pub inflight: Inflight,
}

/// The result of looking a request's session up.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// No `Mcp-Session-Id` header.
    Missing,
    /// A header naming no live session (ended, or never minted here).
    Unknown,
    Found(Arc<Session>),
}

#[derive(Debug, Default)]
pub(crate) struct Sessions {
    live: Mutex<HashMap<String, Arc<Session>>>,
}

impl Sessions {
    fn live(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens a session and returns its id (random, 128 bits, hex); `None` when full.
    pub(crate) fn open(&self, version: Legacy, caps: ClientCaps) -> Option<String> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let session = Arc::new(Session {
            version,
            caps,
            pending: Arc::new(Pending::new()),
            inflight: Inflight::default(),
        });
        let mut live = self.live();
        if live.len() >= MAX_SESSIONS {
            return None;
        }
        live.insert(id.clone(), session);
        Some(id)
    }

    pub(crate) fn lookup(&self, header: Option<&str>) -> Lookup {
        match header {
            None => Lookup::Missing,
            Some(id) => match self.live().get(id) {
                Some(session) => Lookup::Found(session.clone()),
                None => Lookup::Unknown,
            },
        }
    }

    /// Ends a session: its waiting elicitations fail and its streamed requests stop.
    /// `false` when it was not live.
    pub(crate) fn close(&self, id: &str) -> bool {
        let removed = self.live().remove(id);
        match removed {
            Some(session) => {
                session.pending.close();
                session.inflight.cancel_all();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_look_up_and_close() {
        let sessions = Sessions::default();
        let id = sessions
            .open(Legacy::LATEST, ClientCaps::default())
            .unwrap();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(
            matches!(sessions.lookup(Some(&id)), Lookup::Found(s) if s.version == Legacy::LATEST)
        );
        assert!(matches!(sessions.lookup(None), Lookup::Missing));
        assert!(matches!(sessions.lookup(Some("nope")), Lookup::Unknown));
        assert!(sessions.close(&id));
        assert!(!sessions.close(&id));
        assert!(matches!(sessions.lookup(Some(&id)), Lookup::Unknown));
        let other = sessions
            .open(Legacy::LATEST, ClientCaps::default())
            .unwrap();
        assert_ne!(id, other);
    }
}
