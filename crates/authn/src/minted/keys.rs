//! The gateway's own Ed25519 signing keys (`authn_signing_keys`).
//!
//! Rotation is automatic: a key signs for [`SIGNING_PERIOD`] after its creation
//! (`not_after_ms`); the first mint after that creates a new key. Every key stays valid for
//! verification until `retire_after_ms` = `not_after_ms` + [`MAX_TTL`] + 2 min, so a token
//! signed by the old key in its last second still verifies until it expires: rotation never
//! breaks a live token. Private keys are stored encrypted (AES-256-GCM, key derived from the
//! pepper, the kid as associated data); verification needs only the public keys.

use std::sync::Arc;
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use jsonwebtoken::DecodingKey;
use portcullis_store::sqlx::{self, Row};
use portcullis_store::{Migration, Store};
use rand::RngCore;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::error::AuthnError;
use crate::jwt::header::Alg;
use crate::jwt::jwks::KeyEntry;
use crate::pepper::{Pepper, random_hex};
use crate::timestamps::duration_ms;

/// Component name in the migration ledger.
pub const COMPONENT: &str = "authn_signing_keys";
/// How long one key signs new tokens.
pub const SIGNING_PERIOD: Duration = Duration::from_secs(30 * 24 * 3600);
/// Longest lifetime of a minted token.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Verification outlives signing by the longest token lifetime plus clock skew.
const RETIRE_GRACE: Duration = Duration::from_secs(24 * 3600 + 120);
const ENCRYPTION_LABEL: &str = "portcullis/signing-key-encryption/v1";
const NONCE_LEN: usize = 12;

const MIGRATIONS: &[Migration] = &[Migration::same(
    1,
    "CREATE TABLE authn_signing_keys (
        kid TEXT PRIMARY KEY,
        created_ms BIGINT NOT NULL,
        not_after_ms BIGINT NOT NULL,
        retire_after_ms BIGINT NOT NULL,
        public_key TEXT NOT NULL,
        private_key TEXT NOT NULL
    )",
)];

/// A public signing key, as published in the JWKS document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicSigningKey {
    pub kid: String,
    /// Base64url Ed25519 public key (JWK `x`).
    pub x: String,
    pub created_ms: i64,
    pub not_after_ms: i64,
    pub retire_after_ms: i64,
}

impl PublicSigningKey {
    pub fn to_jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": self.x,
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        })
    }
}

/// The signing key table.
#[derive(Debug, Clone)]
pub struct SigningKeys {
    store: Store,
}

impl SigningKeys {
    pub async fn open(store: Store) -> Result<SigningKeys, AuthnError> {
        store.migrate(COMPONENT, MIGRATIONS).await?;
        Ok(SigningKeys { store })
    }

    /// Keys still valid for verification at `now_ms`, newest first.
    pub async fn public_keys(&self, now_ms: i64) -> Result<Vec<PublicSigningKey>, AuthnError> {
        let rows = sqlx::query(
            "SELECT kid, public_key, created_ms, not_after_ms, retire_after_ms \
             FROM authn_signing_keys WHERE retire_after_ms > $1 ORDER BY created_ms DESC, kid",
        )
        .bind(now_ms)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PublicSigningKey {
                    kid: row.try_get("kid")?,
                    x: row.try_get("public_key")?,
                    created_ms: row.try_get("created_ms")?,
                    not_after_ms: row.try_get("not_after_ms")?,
                    retire_after_ms: row.try_get("retire_after_ms")?,
                })
            })
            .collect()
    }

    pub(crate) async fn verification_keys(
        &self,
        now_ms: i64,
    ) -> Result<Vec<Arc<KeyEntry>>, AuthnError> {
        let mut out = Vec::new();
        for key in self.public_keys(now_ms).await? {
            let decoding = DecodingKey::from_ed_components(&key.x)
                .map_err(|e| AuthnError::Corrupt(format!("signing key {}: {e}", key.kid)))?;
            out.push(Arc::new(KeyEntry {
                kid: Some(key.kid),
                algs: vec![Alg::EdDSA],
                key: decoding,
            }));
        }
        Ok(out)
    }

    /// The key to sign with now: the newest one still in its signing period, else a new one.
    pub(crate) async fn current(
        &self,
        pepper: &Pepper,
        now_ms: i64,
    ) -> Result<(String, SigningKey), AuthnError> {
        let row = sqlx::query(
            "SELECT kid, private_key FROM authn_signing_keys WHERE not_after_ms > $1 \
             AND created_ms <= $1 ORDER BY created_ms DESC, kid LIMIT 1",
        )
        .bind(now_ms)
        .fetch_optional(self.store.pool())
        .await?;
        if let Some(row) = row {
            let kid: String = row.try_get("kid")?;
            let sealed: String = row.try_get("private_key")?;
            let key = open_key(pepper, &kid, &sealed)?;
            return Ok((kid, key));
        }
        self.create(pepper, now_ms).await
    }

    async fn create(
        &self,
        pepper: &Pepper,
        now_ms: i64,
    ) -> Result<(String, SigningKey), AuthnError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(seed.as_mut());
        let key = SigningKey::from_bytes(&seed);
        let kid = random_hex(8);
        let not_after = now_ms.saturating_add(duration_ms(SIGNING_PERIOD));
        let retire_after = not_after.saturating_add(duration_ms(RETIRE_GRACE));
        sqlx::query(
            "INSERT INTO authn_signing_keys (kid, created_ms, not_after_ms, retire_after_ms, \
             public_key, private_key) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&kid)
        .bind(now_ms)
        .bind(not_after)
        .bind(retire_after)
        .bind(URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes()))
        .bind(seal_key(pepper, &kid, &seed)?)
        .execute(self.store.pool())
        .await?;
        tracing::info!(kid = %kid, "created a new token signing key");
        Ok((kid, key))
    }
}

fn cipher(pepper: &Pepper) -> Aes256Gcm {
    let key = pepper.derive(ENCRYPTION_LABEL);
    Aes256Gcm::new((&*key).into())
}

/// `base64url(nonce ‖ AES-256-GCM(seed, aad = kid))`.
fn seal_key(pepper: &Pepper, kid: &str, seed: &[u8; 32]) -> Result<String, AuthnError> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let sealed = cipher(pepper)
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: seed,
                aad: kid.as_bytes(),
            },
        )
        .map_err(|_| AuthnError::Crypto("encrypting the signing key failed".to_owned()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(URL_SAFE_NO_PAD.encode(out))
}

fn open_key(pepper: &Pepper, kid: &str, sealed: &str) -> Result<SigningKey, AuthnError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(sealed)
        .map_err(|_| AuthnError::Corrupt(format!("signing key {kid}: not base64url")))?;
    let (nonce, ciphertext) = bytes
        .split_at_checked(NONCE_LEN)
        .ok_or_else(|| AuthnError::Corrupt(format!("signing key {kid}: too short")))?;
    let nonce: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| AuthnError::Corrupt(format!("signing key {kid}: bad nonce")))?;
    let seed = Zeroizing::new(
        cipher(pepper)
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| {
                AuthnError::Crypto(format!(
                    "cannot decrypt signing key {kid}: wrong auth.key_pepper (or a changed pepper file)"
                ))
            })?,
    );
    let seed: &[u8; 32] = seed
        .as_slice()
        .try_into()
        .map_err(|_| AuthnError::Corrupt(format!("signing key {kid}: wrong length")))?;
    Ok(SigningKey::from_bytes(seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_round_trips_and_binds_kid_and_pepper() {
        let pepper = Pepper::from_bytes(b"pepper-0123456789abcdef");
        let seed = [9u8; 32];
        let sealed = seal_key(&pepper, "kid1", &seed).unwrap();
        assert!(!sealed.contains(&URL_SAFE_NO_PAD.encode(seed)));
        let key = open_key(&pepper, "kid1", &sealed).unwrap();
        assert_eq!(key.to_bytes(), seed);
        assert!(open_key(&pepper, "kid2", &sealed).is_err());
        let other = Pepper::from_bytes(b"pepper-other-0123456789");
        assert!(open_key(&other, "kid1", &sealed).is_err());
    }
}
