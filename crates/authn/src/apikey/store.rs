//! The `authn_keys` table: one row per API key, holding its owner, roles, lifetime and the
//! HMAC of its secret. Never the secret.

use std::time::Duration;

use portcullis_store::sqlx::{self, Row};
use portcullis_store::{Migration, Store};
use secrecy::SecretString;
use serde_json::json;

use crate::error::AuthnError;
use crate::pepper::{Pepper, hex};
use crate::principal::PrincipalKind;
use crate::timestamps::{duration_ms, rfc3339_ms};

/// Component name in the migration ledger.
pub const COMPONENT: &str = "authn_keys";

const MIGRATIONS: &[Migration] = &[Migration::same(
    1,
    "CREATE TABLE authn_keys (
        id TEXT PRIMARY KEY,
        principal TEXT NOT NULL,
        kind TEXT NOT NULL,
        roles TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        expires_ms BIGINT,
        revoked_ms BIGINT,
        last_used_ms BIGINT,
        digest TEXT NOT NULL
    )",
)];

const COLUMNS: &str =
    "id, principal, kind, roles, created_ms, expires_ms, revoked_ms, last_used_ms, digest";

/// What `keys create` asks for.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub principal: String,
    pub kind: PrincipalKind,
    pub roles: Vec<String>,
    /// Lifetime from now; `None` = until revoked.
    pub expires_in: Option<Duration>,
}

/// A key as `keys list` shows it. No secret, no digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    pub principal: String,
    pub kind: PrincipalKind,
    pub roles: Vec<String>,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
    pub last_used_ms: Option<i64>,
}

impl KeyInfo {
    /// `active`, `expired` or `revoked` at `now_ms`.
    pub fn status(&self, now_ms: i64) -> &'static str {
        if self.revoked_ms.is_some() {
            "revoked"
        } else if self.expires_ms.is_some_and(|e| e <= now_ms) {
            "expired"
        } else {
            "active"
        }
    }

    /// The `keys list --format json` object: times as RFC 3339 UTC or `null`.
    pub fn to_json(&self, now_ms: i64) -> serde_json::Value {
        json!({
            "id": self.id,
            "principal": self.principal,
            "kind": self.kind.as_str(),
            "roles": self.roles,
            "created": rfc3339_ms(self.created_ms),
            "expires": self.expires_ms.map(rfc3339_ms),
            "last_used": self.last_used_ms.map(rfc3339_ms),
            "revoked": self.revoked_ms.map(rfc3339_ms),
            "status": self.status(now_ms),
        })
    }
}

/// A freshly created key: its record and the key text, shown once.
pub struct CreatedKey {
    pub info: KeyInfo,
    pub key: SecretString,
}

impl std::fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKey")
            .field("info", &self.info)
            .field("key", &"…")
            .finish()
    }
}

/// A row with its digest, for verification.
#[derive(Debug, Clone)]
pub(crate) struct StoredKey {
    pub info: KeyInfo,
    pub digest: Vec<u8>,
}

/// API keys in the gateway's store.
#[derive(Debug, Clone)]
pub struct KeyStore {
    store: Store,
}

impl KeyStore {
    /// Opens the key table, creating or upgrading it.
    pub async fn open(store: Store) -> Result<KeyStore, AuthnError> {
        store.migrate(COMPONENT, MIGRATIONS).await?;
        Ok(KeyStore { store })
    }

    /// Creates a key for `new`; the returned key text is never stored.
    pub async fn create(
        &self,
        pepper: &Pepper,
        new: NewKey,
        now_ms: i64,
    ) -> Result<CreatedKey, AuthnError> {
        let principal = check_name("principal", &new.principal)?;
        let mut roles: Vec<String> = Vec::new();
        for role in &new.roles {
            let role = check_name("role", role)?;
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        let expires_ms = new
            .expires_in
            .map(|d| now_ms.saturating_add(duration_ms(d)));
        let super::Generated { id, secret, key } = super::generate();
        let digest = super::digest(pepper, &id, &secret);
        let roles_json = serde_json::to_string(&roles)
            .map_err(|e| AuthnError::Corrupt(format!("roles: {e}")))?;
        sqlx::query(
            "INSERT INTO authn_keys (id, principal, kind, roles, created_ms, expires_ms, \
             revoked_ms, last_used_ms, digest) VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, $7)",
        )
        .bind(&id)
        .bind(&principal)
        .bind(new.kind.as_str())
        .bind(&roles_json)
        .bind(now_ms)
        .bind(expires_ms)
        .bind(hex(&digest))
        .execute(self.store.pool())
        .await?;
        Ok(CreatedKey {
            info: KeyInfo {
                id,
                principal,
                kind: new.kind,
                roles,
                created_ms: now_ms,
                expires_ms,
                revoked_ms: None,
                last_used_ms: None,
            },
            key,
        })
    }

    /// Every key, oldest first.
    pub async fn list(&self) -> Result<Vec<KeyInfo>, AuthnError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM authn_keys ORDER BY created_ms, id"
        )))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(|row| stored(row).map(|k| k.info)).collect()
    }

    /// Marks `id` revoked (idempotent: an already revoked key keeps its first revocation time).
    pub async fn revoke(&self, id: &str, now_ms: i64) -> Result<KeyInfo, AuthnError> {
        sqlx::query("UPDATE authn_keys SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL")
            .bind(now_ms)
            .bind(id)
            .execute(self.store.pool())
            .await?;
        match self.find(id).await? {
            Some(key) => Ok(key.info),
            None => Err(AuthnError::NoSuchKey(id.to_owned())),
        }
    }

    pub(crate) async fn find(&self, id: &str) -> Result<Option<StoredKey>, AuthnError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM authn_keys WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(stored).transpose()
    }

    /// Records a use, never moving `last_used_ms` backwards.
    pub(crate) async fn touch(&self, id: &str, now_ms: i64) -> Result<(), AuthnError> {
        sqlx::query(
            "UPDATE authn_keys SET last_used_ms = $1 WHERE id = $2 \
             AND (last_used_ms IS NULL OR last_used_ms < $1)",
        )
        .bind(now_ms)
        .bind(id)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }
}

fn stored(row: &portcullis_store::sqlx::any::AnyRow) -> Result<StoredKey, AuthnError> {
    let kind: String = row.try_get("kind")?;
    let roles: String = row.try_get("roles")?;
    let digest: String = row.try_get("digest")?;
    let id: String = row.try_get("id")?;
    let info = KeyInfo {
        kind: PrincipalKind::parse(&kind)
            .ok_or_else(|| AuthnError::Corrupt(format!("key {id}: kind {kind:?}")))?,
        roles: serde_json::from_str(&roles)
            .map_err(|e| AuthnError::Corrupt(format!("key {id}: roles: {e}")))?,
        principal: row.try_get("principal")?,
        created_ms: row.try_get("created_ms")?,
        expires_ms: row.try_get("expires_ms")?,
        revoked_ms: row.try_get("revoked_ms")?,
        last_used_ms: row.try_get("last_used_ms")?,
        id,
    };
    let digest = unhex(&digest)
        .ok_or_else(|| AuthnError::Corrupt(format!("key {}: digest is not hex", info.id)))?;
    Ok(StoredKey { info, digest })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A principal id or role: 1–256 characters, no control characters.
fn check_name(what: &str, text: &str) -> Result<String, AuthnError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 256 || text.chars().any(char::is_control) {
        return Err(AuthnError::Invalid(format!(
            "{what} must be 1-256 characters without control characters"
        )));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table() {
        let mut info = KeyInfo {
            id: "k".into(),
            principal: "p".into(),
            kind: PrincipalKind::User,
            roles: vec![],
            created_ms: 0,
            expires_ms: None,
            revoked_ms: None,
            last_used_ms: None,
        };
        assert_eq!(info.status(10), "active");
        info.expires_ms = Some(10);
        assert_eq!(info.status(9), "active");
        assert_eq!(info.status(10), "expired");
        info.revoked_ms = Some(5);
        assert_eq!(info.status(0), "revoked");
        let json = info.to_json(0);
        assert_eq!(json["revoked"], "1970-01-01T00:00:00Z");
        assert_eq!(json["last_used"], serde_json::Value::Null);
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(unhex(&hex(&[0, 1, 254, 255])), Some(vec![0, 1, 254, 255]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn names() {
        assert!(check_name("role", "dev").is_ok());
        assert!(check_name("role", " ").is_err());
        assert!(check_name("role", "a\nb").is_err());
        assert!(check_name("role", &"x".repeat(257)).is_err());
    }
}
