//! Field encryption: AES-256-GCM of the canonical JSON of a call's arguments and result.
//!
//! The key comes from `[audit] encryption_key` (32 bytes as 64 hex digits or base64). Each
//! sealed field names its key by id (the first 8 hex digits of SHA-256 of the key), so keys
//! rotate: the new key encrypts, `[audit] old_encryption_keys` still decrypt. A fresh random
//! 96-bit nonce per field; the associated data binds the ciphertext to its field and request.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use portcullis_config::Secret;
use rand::RngCore as _;
use serde_json::Value;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::canonical;
use crate::error::AuditError;
use crate::record::{Record, Sealed};

/// One AES-256-GCM key and its id. `Debug` shows only the id.
#[derive(Clone)]
pub struct FieldKey {
    kid: String,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for FieldKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FieldKey({})", self.kid)
    }
}

impl FieldKey {
    /// 32 raw bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> FieldKey {
        let kid = hex::encode(&Sha256::digest(bytes)[..4]);
        FieldKey {
            kid,
            cipher: Aes256Gcm::new(&(*bytes).into()),
        }
    }

    /// 64 hex digits, or base64 (standard or URL-safe, padded or not) of 32 bytes.
    pub fn parse(text: &str) -> Result<FieldKey, String> {
        let text = text.trim();
        let decoded = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|e| e.to_string())?
        } else {
            [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(text).ok())
                .ok_or("not 64 hex digits nor base64")?
        };
        let decoded = Zeroizing::new(decoded);
        let bytes: Zeroizing<[u8; 32]> = Zeroizing::new(
            decoded
                .as_slice()
                .try_into()
                .map_err(|_| format!("{} bytes, need exactly 32", decoded.len()))?,
        );
        Ok(FieldKey::from_bytes(&bytes))
    }

    pub fn from_secret(secret: &Secret) -> Result<FieldKey, AuditError> {
        FieldKey::parse(secret.expose()).map_err(|reason| AuditError::EncryptionKey {
            origin: secret.origin().to_owned(),
            reason,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }
}

/// The keys for sealing and opening fields: the current one (if any) and older ones that only
/// decrypt.
#[derive(Debug, Clone, Default)]
pub struct FieldKeys {
    current: Option<FieldKey>,
    old: Vec<FieldKey>,
}

impl FieldKeys {
    pub fn new(current: Option<FieldKey>, old: Vec<FieldKey>) -> FieldKeys {
        FieldKeys { current, old }
    }

    /// From `[audit] encryption_key` and `old_encryption_keys`.
    pub fn from_config(config: &portcullis_config::Audit) -> Result<FieldKeys, AuditError> {
        let current = config
            .encryption_key
            .as_ref()
            .map(FieldKey::from_secret)
            .transpose()?;
        let old = config
            .old_encryption_keys
            .iter()
            .map(FieldKey::from_secret)
            .collect::<Result<_, _>>()?;
        Ok(FieldKeys { current, old })
    }

    pub fn current(&self) -> Option<&FieldKey> {
        self.current.as_ref()
    }

    fn by_kid(&self, kid: &str) -> Option<&FieldKey> {
        self.current.iter().chain(&self.old).find(|k| k.kid == kid)
    }
}

/// Which sealed field: part of the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Args,
    Result,
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::Args => "args",
            Field::Result => "result",
        }
    }
}

fn aad(field: Field, request_id: &str) -> Vec<u8> {
    format!("portcullis-audit/v1/{}/{request_id}", field.name()).into_bytes()
}

/// Encrypts `canonical`, a value's canonical JSON (RFC 8785), under `key`. The caller owns
/// the plaintext (and clears it).
pub fn encrypt(
    key: &FieldKey,
    field: Field,
    request_id: &str,
    canonical: &str,
) -> Result<Sealed, AuditError> {
    // A random 96-bit nonce from the thread's CSPRNG (ChaCha, seeded and reseeded from the
    // OS): no system call per field.
    let mut nonce = [0_u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let aad = aad(field, request_id);
    let ct = key
        .cipher
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: canonical.as_bytes(),
                aad: &aad,
            },
        )
        .map_err(|_| AuditError::EncryptionKey {
            origin: key.kid.clone(),
            reason: "AES-GCM refused the message (too long)".to_owned(),
        })?;
    Ok(Sealed::Encrypted {
        kid: key.kid.clone(),
        nonce: STANDARD.encode(nonce),
        ct: STANDARD.encode(ct),
    })
}

/// The plaintext value of a sealed field: decrypted with the key its `kid` names, or the
/// redacted value as stored.
pub fn open(
    keys: &FieldKeys,
    field: Field,
    request_id: &str,
    sealed: &Sealed,
) -> Result<Value, String> {
    match sealed {
        Sealed::Redacted { value } => Ok(value.clone()),
        Sealed::Encrypted { kid, nonce, ct } => {
            let key = keys
                .by_kid(kid)
                .ok_or_else(|| format!("no key with id {kid} is configured"))?;
            let nonce: [u8; 12] = STANDARD
                .decode(nonce)
                .ok()
                .and_then(|n| n.try_into().ok())
                .ok_or("the nonce is not 12 bytes of base64")?;
            let ct = STANDARD
                .decode(ct)
                .map_err(|_| "the ciphertext is not base64")?;
            let aad = aad(field, request_id);
            let plaintext = Zeroizing::new(
                key.cipher
                    .decrypt(
                        &Nonce::from(nonce),
                        Payload {
                            msg: &ct,
                            aad: &aad,
                        },
                    )
                    .map_err(|_| format!("authentication failed with key {kid}"))?,
            );
            serde_json::from_slice(&plaintext)
                .map_err(|e| format!("the plaintext is not JSON: {e}"))
        }
    }
}

/// A record's arguments and result in plaintext (for exports and investigations).
#[derive(Debug, Clone, PartialEq)]
pub struct OpenedFields {
    pub args: Option<Value>,
    pub result: Option<Value>,
}

/// Decrypts a record's `args` and `result` with `keys`. An encrypted field must decrypt and
/// match its stored digest; a redacted field is returned as stored.
pub fn decrypt_fields(record: &Record, keys: &FieldKeys) -> Result<OpenedFields, AuditError> {
    let open_one = |field: Field, sealed: &Option<Sealed>, digest: &Option<String>| {
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let fail = |reason: String| AuditError::Decrypt {
            seq: record.seq,
            field: field.name(),
            reason,
        };
        let value = open(keys, field, &record.request_id, sealed).map_err(fail)?;
        if matches!(sealed, Sealed::Encrypted { .. })
            && digest.as_deref() != Some(canonical::digest(&value).as_str())
        {
            return Err(fail(
                "the plaintext does not match the stored digest".to_owned(),
            ));
        }
        Ok(Some(value))
    };
    Ok(OpenedFields {
        args: open_one(Field::Args, &record.args, &record.args_digest)?,
        result: open_one(Field::Result, &record.result, &record.result_digest)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each sealing draws a new nonce, and what it seals opens again.
    #[test]
    fn every_sealing_has_its_own_nonce_and_opens() {
        let key = FieldKey::from_bytes(&[7; 32]);
        let keys = FieldKeys::new(Some(FieldKey::from_bytes(&[7; 32])), Vec::new());
        let mut nonces = std::collections::HashSet::new();
        for _ in 0..1000 {
            let sealed = encrypt(&key, Field::Args, "req-1", r#"{"a":1}"#).unwrap();
            let Sealed::Encrypted { nonce, .. } = &sealed else {
                panic!("not encrypted: {sealed:?}");
            };
            assert!(nonces.insert(nonce.clone()), "nonce {nonce} drawn twice");
            let opened = open(&keys, Field::Args, "req-1", &sealed).unwrap();
            assert_eq!(opened, serde_json::json!({"a": 1}));
        }
    }
}
