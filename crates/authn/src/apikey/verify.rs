//! Checking a presented API key against the store, per request.
//!
//! Rows are read from the store and cached for at most [`ROW_TTL`], so a revocation made by any
//! replica (or `keys revoke`) is seen within that time. A row past [`REFRESH_AFTER`] is still
//! used while a task reads it again, so steady traffic never waits for the store. `last_used_ms`
//! is written at most once per [`TOUCH_EVERY`] per key and replica, not on every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

use super::store::{KeyStore, StoredKey};
use crate::failure::{Fail, FailureKind};
use crate::lock;
use crate::pepper::Pepper;
use crate::principal::{AuthMethod, Credential, Principal};
use crate::timestamps::system_time_ms;

/// How long a key row read from the store is trusted (DESIGN §3.6: revocation within 1 s).
pub(crate) const ROW_TTL: Duration = Duration::from_millis(500);
/// A cached row this old is read again in the background while it is still used.
pub(crate) const REFRESH_AFTER: Duration = Duration::from_millis(250);
/// `last_used_ms` is written at most this often per key.
pub(crate) const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Cached rows kept at most; the cache is emptied when it grows past this.
const CACHE_MAX: usize = 10_000;

pub(crate) struct ApiKeys {
    store: KeyStore,
    pepper: Pepper,
    rows: Arc<Mutex<HashMap<String, Cached>>>,
    touched: Mutex<HashMap<String, i64>>,
}

/// Caches what a read of key `id` that started at `at` found (or forgets the key if it is
/// gone), and returns it.
fn cache(
    rows: &Mutex<HashMap<String, Cached>>,
    id: &str,
    found: Option<StoredKey>,
    at: Instant,
) -> Option<Arc<StoredKey>> {
    let mut rows = lock(rows);
    let Some(row) = found else {
        rows.remove(id);
        return None;
    };
    let row = Arc::new(row);
    if rows.len() >= CACHE_MAX {
        rows.clear();
    }
    rows.insert(
        id.to_owned(),
        Cached {
            at,
            row: Arc::clone(&row),
            refreshing: false,
        },
    );
    Some(row)
}

/// A key row as read from the store, and when.
struct Cached {
    at: Instant,
    row: Arc<StoredKey>,
    /// A background read of it is under way.
    refreshing: bool,
}

impl ApiKeys {
    pub fn new(store: KeyStore, pepper: Pepper) -> Self {
        Self {
            store,
            pepper,
            rows: Arc::new(Mutex::new(HashMap::new())),
            touched: Mutex::new(HashMap::new()),
        }
    }

    /// The principal `raw` names, or why not. Compares digests in constant time before looking
    /// at revocation or expiry, so a key id alone reveals nothing.
    pub async fn verify(&self, raw: &str, now_ms: i64) -> Result<Principal, Fail> {
        let parsed = super::parse(raw)?;
        let presented = super::digest(&self.pepper, parsed.id, parsed.secret);
        let Some(row) = self.row(parsed.id, Instant::now()).await? else {
            return Err(Fail::new(
                FailureKind::UnknownKey,
                format!("no API key with id {}", parsed.id),
            ));
        };
        if !bool::from(presented.as_slice().ct_eq(row.digest.as_slice())) {
            return Err(Fail::new(
                FailureKind::UnknownKey,
                format!("API key {}: secret does not match", parsed.id),
            )
            .with_subject(row.info.principal.clone()));
        }
        let info = &row.info;
        if let Some(revoked) = info.revoked_ms {
            return Err(Fail::new(
                FailureKind::Revoked,
                format!("API key {} was revoked at {revoked} ms", info.id),
            )
            .with_subject(info.principal.clone()));
        }
        if let Some(expires) = info.expires_ms.filter(|e| *e <= now_ms) {
            return Err(Fail::new(
                FailureKind::Expired,
                format!("API key {} expired at {expires} ms", info.id),
            )
            .with_subject(info.principal.clone()));
        }
        self.touch(&row, now_ms).await;
        Ok(Principal {
            id: info.principal.clone(),
            kind: info.kind,
            roles: info.roles.clone(),
            scopes: Vec::new(),
            method: AuthMethod::Token(Credential::ApiKey),
            client_ip: None,
            credential_id: Some(info.id.clone()),
            issuer: None,
            cert_identity: None,
            expires_at: info.expires_ms.map(system_time_ms),
        })
    }

    /// The row of key `id` as of `now`: cached while younger than [`ROW_TTL`] (and read again
    /// in the background once past [`REFRESH_AFTER`]), else read from the store first.
    async fn row(&self, id: &str, now: Instant) -> Result<Option<Arc<StoredKey>>, Fail> {
        if let Some(cached) = lock(&self.rows).get_mut(id) {
            let age = now.saturating_duration_since(cached.at);
            if age < ROW_TTL {
                if age >= REFRESH_AFTER && !cached.refreshing {
                    cached.refreshing = true;
                    self.refresh(id);
                }
                return Ok(Some(cached.row.clone()));
            }
        }
        let found = self.store.find(id).await.map_err(|e| {
            Fail::new(
                FailureKind::Unavailable,
                format!("reading API key {id} from the store failed: {e}"),
            )
        })?;
        Ok(cache(&self.rows, id, found, now))
    }

    /// Reads key `id` again on a task of its own and replaces its cached row (or drops it, if
    /// the key is gone). A failed read leaves the row to expire.
    fn refresh(&self, id: &str) {
        let store = self.store.clone();
        let rows = Arc::clone(&self.rows);
        let id = id.to_owned();
        tokio::spawn(async move {
            let started = Instant::now();
            match store.find(&id).await {
                Ok(found) => {
                    cache(&rows, &id, found, started);
                }
                Err(e) => {
                    tracing::warn!(key.id = %id, error = %e, "re-reading API key failed; it is read on use once its cached row expires");
                    if let Some(cached) = lock(&rows).get_mut(&id) {
                        cached.refreshing = false;
                    }
                }
            }
        });
    }

    /// Writes `last_used_ms` when neither this replica nor the stored row has a use within
    /// [`TOUCH_EVERY`]. A failed write is logged, never fatal.
    async fn touch(&self, row: &StoredKey, now_ms: i64) {
        let every = i64::try_from(TOUCH_EVERY.as_millis()).unwrap_or(i64::MAX);
        let id = &row.info.id;
        {
            let mut touched = lock(&self.touched);
            let last = touched
                .get(id)
                .copied()
                .max(row.info.last_used_ms)
                .unwrap_or(i64::MIN);
            if now_ms.saturating_sub(last) < every {
                return;
            }
            if touched.len() >= CACHE_MAX {
                touched.clear();
            }
            touched.insert(id.clone(), now_ms);
        }
        if let Err(e) = self.store.touch(id, now_ms).await {
            tracing::warn!(key.id = %id, error = %e, "could not record API key use");
        }
    }
}

#[cfg(test)]
mod tests {
    use portcullis_store::testing;

    use super::*;
    use crate::apikey::store::NewKey;
    use crate::principal::PrincipalKind;

    /// Past half its life a cached row is still used (a revocation made meanwhile is not seen
    /// yet) while it is read again; the read's result replaces it. Past its life it is read
    /// before use.
    #[tokio::test]
    async fn a_row_past_half_its_life_is_used_and_read_again_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(testing::sqlite(dir.path()).await.unwrap())
            .await
            .unwrap();
        let pepper = test_pepper();
        let created = store
            .create(&pepper, new_key(), portcullis_store::now_ms())
            .await
            .unwrap();
        let id = created.info.id.clone();
        let keys = ApiKeys::new(store.clone(), pepper);
        let t0 = Instant::now();
        let read = keys.row(&id, t0).await.unwrap().unwrap();
        assert!(read.info.revoked_ms.is_none());

        store.revoke(&id, portcullis_store::now_ms()).await.unwrap();
        // Young: the cached row, no read.
        let young = keys
            .row(&id, t0 + REFRESH_AFTER / 2)
            .await
            .unwrap()
            .unwrap();
        assert!(young.info.revoked_ms.is_none());
        // Past half its life: still the cached row, and a read starts.
        let old = keys.row(&id, t0 + REFRESH_AFTER).await.unwrap().unwrap();
        assert!(old.info.revoked_ms.is_none(), "used without waiting");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let row = keys.row(&id, t0 + REFRESH_AFTER).await.unwrap().unwrap();
            if row.info.revoked_ms.is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the background read never landed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        // Past its life: read before use.
        let other = store
            .create(&test_pepper(), new_key(), portcullis_store::now_ms())
            .await
            .unwrap();
        let t1 = Instant::now();
        assert!(keys.row(&other.info.id, t1).await.unwrap().is_some());
        store
            .revoke(&other.info.id, portcullis_store::now_ms())
            .await
            .unwrap();
        let expired = keys
            .row(&other.info.id, t1 + ROW_TTL)
            .await
            .unwrap()
            .unwrap();
        assert!(expired.info.revoked_ms.is_some());
    }

    fn test_pepper() -> Pepper {
        Pepper::from_bytes(&[7; 32])
    }

    fn new_key() -> NewKey {
        NewKey {
            principal: "alice".into(),
            kind: PrincipalKind::User,
            roles: Vec::new(),
            expires_in: None,
        }
    }
}
