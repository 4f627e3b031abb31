//! The Ed25519 key that signs checkpoints: loaded from `[audit] signing_key` (PKCS#8 PEM), or
//! generated on first start next to the store (SQLite only; see [`CheckpointSigner::load`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use portcullis_store::Dialect;
use sha2::{Digest, Sha256};

use crate::error::AuditError;

/// The file a generated signing key is kept in, in the store's directory.
pub const GENERATED_KEY_FILE: &str = "audit-signing-key.pem";

/// Short id of a public key: the first 16 hex digits of SHA-256 of its 32 bytes.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// The private key that signs checkpoints. `Debug` shows only the key id.
pub struct CheckpointSigner {
    key: SigningKey,
    id: String,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckpointSigner({})", self.id)
    }
}

impl CheckpointSigner {
    pub fn new(key: SigningKey) -> CheckpointSigner {
        let id = key_id(&key.verifying_key());
        CheckpointSigner { key, id }
    }

    /// From PKCS#8 PEM text (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pem(pem: &str) -> Result<CheckpointSigner, String> {
        SigningKey::from_pkcs8_pem(pem)
            .map(CheckpointSigner::new)
            .map_err(|e| format!("not an Ed25519 PKCS#8 PEM private key: {e}"))
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<CheckpointSigner, String> {
        let mut seed = zeroize::Zeroizing::new([0_u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|e| format!("no randomness: {e}"))?;
        Ok(CheckpointSigner::new(SigningKey::from_bytes(&seed)))
    }

    pub fn to_pem(&self) -> Result<zeroize::Zeroizing<String>, String> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| zeroize::Zeroizing::new(pem.to_string()))
            .map_err(|e| e.to_string())
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        self.key.sign(message)
    }

    /// The signing key for this deployment:
    /// - `[audit] signing_key` when set;
    /// - otherwise, with SQLite, the key in `key_dir/audit-signing-key.pem`, generated (mode
    ///   0600) on first start;
    /// - otherwise (PostgreSQL) an error: replicas on different machines would each generate
    ///   their own key, and checkpoints signed by a key nobody can find cannot be verified.
    pub fn load(
        config: &portcullis_config::Audit,
        dialect: Dialect,
        key_dir: &Path,
    ) -> Result<CheckpointSigner, AuditError> {
        if let Some(secret) = &config.signing_key {
            return CheckpointSigner::from_pem(secret.expose()).map_err(|reason| {
                AuditError::SigningKey {
                    origin: secret.origin().to_owned(),
                    reason,
                }
            });
        }
        if dialect == Dialect::Postgres {
            return Err(AuditError::SigningKeyRequired);
        }
        load_or_generate(&key_dir.join(GENERATED_KEY_FILE))
    }
}

fn load_or_generate(path: &Path) -> Result<CheckpointSigner, AuditError> {
    let fail = |reason: String| AuditError::KeyFile {
        path: path.to_owned(),
        reason,
    };
    match std::fs::read_to_string(path) {
        Ok(pem) => return CheckpointSigner::from_pem(&pem).map_err(fail),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e.to_string())),
    }
    let signer = CheckpointSigner::generate().map_err(fail)?;
    let pem = signer.to_pem().map_err(fail)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(pem.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| fail(e.to_string()))?;
            tracing::warn!(
                path = %path.display(),
                key_id = signer.id(),
                "generated an audit signing key; back it up, and set [audit] signing_key to keep it"
            );
            Ok(signer)
        }
        // Another process generated it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let pem = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
            CheckpointSigner::from_pem(&pem).map_err(fail)
        }
        Err(e) => Err(fail(e.to_string())),
    }
}

/// Public keys trusted to have signed checkpoints.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<(String, VerifyingKey)>,
}

impl TrustedKeys {
    pub fn new(keys: impl IntoIterator<Item = VerifyingKey>) -> TrustedKeys {
        TrustedKeys {
            keys: keys.into_iter().map(|k| (key_id(&k), k)).collect(),
        }
    }

    pub fn push(&mut self, key: VerifyingKey) {
        self.keys.push((key_id(&key), key));
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|(id, _)| id.as_str()).collect()
    }

    /// Whether a trusted key with this id made this signature over `message`.
    pub fn verify(&self, key_id: &str, message: &[u8], signature: &[u8]) -> Result<(), String> {
        let (_, key) = self
            .keys
            .iter()
            .find(|(id, _)| id == key_id)
            .ok_or_else(|| format!("signed by key {key_id}, which is not trusted"))?;
        let signature = Signature::from_slice(signature).map_err(|_| "malformed signature")?;
        key.verify_strict(message, &signature)
            .map_err(|_| format!("signature does not verify with key {key_id}"))
    }
}

/// A public key from PEM (`-----BEGIN PUBLIC KEY-----`) or a private key PEM (its public half).
pub fn verifying_key_from_pem(pem: &str) -> Result<VerifyingKey, String> {
    VerifyingKey::from_public_key_pem(pem)
        .or_else(|_| SigningKey::from_pkcs8_pem(pem).map(|k| k.verifying_key()))
        .map_err(|e| format!("not an Ed25519 public or private key in PEM: {e}"))
}

/// The public half as PEM, for `audit verify --public-key` on another machine.
pub fn verifying_key_to_pem(key: &VerifyingKey) -> Result<String, String> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|e| e.to_string())
}

/// The trusted key for `audit verify` on this deployment: the configured signing key, or the
/// generated one next to the store. `Ok(None)` when neither exists (nothing was signed here).
pub fn local_verifying_key(
    config: &portcullis_config::Audit,
    key_dir: &Path,
) -> Result<Option<VerifyingKey>, AuditError> {
    if let Some(secret) = &config.signing_key {
        return verifying_key_from_pem(secret.expose())
            .map(Some)
            .map_err(|reason| AuditError::SigningKey {
                origin: secret.origin().to_owned(),
                reason,
            });
    }
    let path: PathBuf = key_dir.join(GENERATED_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(pem) => verifying_key_from_pem(&pem)
            .map(Some)
            .map_err(|reason| AuditError::KeyFile { path, reason }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AuditError::KeyFile {
            path,
            reason: e.to_string(),
        }),
    }
}
