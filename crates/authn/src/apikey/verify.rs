//! Checking a presented API key against the store, per request.
//!
//! Rows are read from the store and cached for at most [`ROW_TTL`], so a revocation made by any
//! replica (or `keys revoke`) is seen within that time. `last_used_ms` is written at most once
//! per [`TOUCH_EVERY`] per key and replica, not on every request.

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
/// `last_used_ms` is written at most this often per key.
pub(crate) const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Cached rows kept at most; the cache is emptied when it grows past this.
const CACHE_MAX: usize = 10_000;

pub(crate) struct ApiKeys {
    store: KeyStore,
    pepper: Pepper,
    rows: Mutex<HashMap<String, (Instant, Arc<StoredKey>)>>,
    touched: Mutex<HashMap<String, i64>>,
}

impl ApiKeys {
    pub fn new(store: KeyStore, pepper: Pepper) -> Self {
        Self {
            store,
            pepper,
            rows: Mutex::new(HashMap::new()),
            touched: Mutex::new(HashMap::new()),
        }
    }

    /// The principal `raw` names, or why not. Compares digests in constant time before looking
    /// at revocation or expiry, so a key id alone reveals nothing.
    pub async fn verify(&self, raw: &str, now_ms: i64) -> Result<Principal, Fail> {
        let parsed = super::parse(raw)?;
        let presented = super::digest(&self.pepper, parsed.id, parsed.secret);
        let Some(row) = self.row(parsed.id).await? else {
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

    async fn row(&self, id: &str) -> Result<Option<Arc<StoredKey>>, Fail> {
        let now = Instant::now();
        if let Some((at, row)) = lock(&self.rows).get(id)
            && now.duration_since(*at) < ROW_TTL
        {
            return Ok(Some(row.clone()));
        }
        let found = self.store.find(id).await.map_err(|e| {
            Fail::new(
                FailureKind::Unavailable,
                format!("reading API key {id} from the store failed: {e}"),
            )
        })?;
        let mut rows = lock(&self.rows);
        match found {
            Some(row) => {
                let row = Arc::new(row);
                if rows.len() >= CACHE_MAX {
                    rows.clear();
                }
                rows.insert(id.to_owned(), (now, row.clone()));
                Ok(Some(row))
            }
            None => {
                rows.remove(id);
                Ok(None)
            }
        }
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
