//! The server-side pepper: the HMAC key API keys are hashed with, and the root of the key that
//! encrypts the gateway's token-signing keys at rest.
//!
//! From `auth.key_pepper` when configured. Otherwise, with SQLite, generated once (32 random
//! bytes, hex) into `<database file>.pepper`, mode 0600, beside the store. PostgreSQL serves
//! several replicas, which must agree: there it has to be configured.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use portcullis_config::Config;
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::AuthnError;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The pepper's bytes; never printed.
#[derive(Clone)]
pub struct Pepper(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for Pepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pepper(…)")
    }
}

/// Where the pepper comes from for a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    Configured,
    File(PathBuf),
    /// `sqlite::memory:`: a fresh pepper per process (keys die with the database anyway).
    Ephemeral,
    /// PostgreSQL without `auth.key_pepper`.
    Missing,
}

pub(crate) fn source(config: &Config) -> Source {
    if config.auth.key_pepper.is_some() {
        return Source::Configured;
    }
    if !config.storage.url.starts_with("sqlite:") {
        return Source::Missing;
    }
    let Some(path) = config.storage.sqlite_file() else {
        return Source::Ephemeral;
    };
    let mut file = path.as_os_str().to_owned();
    file.push(".pepper");
    Source::File(PathBuf::from(file))
}

impl Pepper {
    /// The pepper for `config`, or `None` when the store is PostgreSQL and none is configured.
    pub fn resolve(config: &Config) -> Result<Option<Pepper>, AuthnError> {
        match source(config) {
            Source::Configured => Ok(config
                .auth
                .key_pepper
                .as_ref()
                .map(|secret| Pepper::from_bytes(secret.expose().as_bytes()))),
            Source::File(path) => load_or_create(&path).map(Some),
            Source::Ephemeral => Ok(Some(Pepper::random())),
            Source::Missing => Ok(None),
        }
    }

    /// Like [`resolve`](Self::resolve), but a missing pepper is an error.
    pub fn require(config: &Config) -> Result<Pepper, AuthnError> {
        Self::resolve(config)?.ok_or(AuthnError::PepperRequired("PostgreSQL"))
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Pepper {
        Pepper(Zeroizing::new(bytes.to_vec()))
    }

    fn random() -> Pepper {
        Pepper::from_bytes(random_hex(32).as_bytes())
    }

    /// A fresh HMAC-SHA256 keyed with the pepper.
    pub(crate) fn mac(&self) -> HmacSha256 {
        hmac_sha256(&self.0)
    }

    /// A 32-byte key for one purpose, derived as HMAC-SHA256(pepper, label).
    pub(crate) fn derive(&self, label: &str) -> Zeroizing<[u8; 32]> {
        let mut mac = self.mac();
        mac.update(label.as_bytes());
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    }
}

/// HMAC-SHA256 with a key of any length, built infallibly the way RFC 2104 defines it: a key
/// longer than the block is hashed first, and the key is zero-padded to the block size.
pub(crate) fn hmac_sha256(key: &[u8]) -> HmacSha256 {
    use sha2::Digest;
    let mut block = Zeroizing::new([0u8; 64]);
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let key: &hmac::digest::Key<HmacSha256> = (&*block).into();
    <HmacSha256 as KeyInit>::new(key)
}

/// `n` random bytes as lowercase hex (from the thread CSPRNG, seeded by the OS).
pub(crate) fn random_hex(n: usize) -> String {
    let mut bytes = Zeroizing::new(vec![0u8; n]);
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn load_or_create(path: &Path) -> Result<Pepper, AuthnError> {
    match read(path) {
        Ok(Some(pepper)) => return Ok(pepper),
        Ok(None) => {}
        Err(e) => return Err(e),
    }
    create(path)?;
    read(path)?.ok_or_else(|| AuthnError::file(path, "pepper file vanished after creation"))
}

/// The pepper in `path`; `None` when the file does not exist. Refuses a file others can read.
fn read(path: &Path) -> Result<Option<Pepper>, AuthnError> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(AuthnError::file(path, e)),
    };
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(AuthnError::file(
            path,
            format!(
                "pepper file is accessible to group or others (mode {:o}); chmod 600 it",
                meta.permissions().mode() & 0o777
            ),
        ));
    }
    let text =
        Zeroizing::new(std::fs::read_to_string(path).map_err(|e| AuthnError::file(path, e))?);
    let trimmed = text.trim();
    if trimmed.len() < 32 {
        return Err(AuthnError::file(
            path,
            "pepper file is shorter than 32 characters",
        ));
    }
    Ok(Some(Pepper::from_bytes(trimmed.as_bytes())))
}

/// Writes a new pepper atomically: a private temp file, then a hard link that fails if another
/// process won the race (its pepper is then the one read back).
fn create(path: &Path) -> Result<(), AuthnError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| AuthnError::file(dir, e))?;
    let tmp = dir.join(format!(".pepper-{}.tmp", random_hex(8)));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        let value = Zeroizing::new(format!("{}\n", random_hex(32)));
        file.write_all(value.as_bytes())?;
        file.sync_all()?;
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    result.map_err(|e| AuthnError::file(path, e))?;
    tracing::info!(path = %path.display(), "generated the API key pepper");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/store.db.pepper");
        let a = load_or_create(&path).unwrap();
        let b = load_or_create(&path).unwrap();
        assert_eq!(*a.0, *b.0);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(format!("{a:?}"), "Pepper(…)");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read(&path).unwrap_err().to_string().contains("chmod 600"));
    }

    #[test]
    fn sources() {
        let config = |storage: &str, pepper: &str| {
            let text = format!("[storage]\nurl = \"{storage}\"\n[auth]\n{pepper}");
            portcullis_config::from_str(
                &text,
                Some(Path::new("/cfg/p.toml")),
                &std::collections::BTreeMap::new(),
            )
            .unwrap()
        };
        let rows = [
            (
                "sqlite://data/p.db",
                "",
                Source::File(PathBuf::from("/cfg/data/p.db.pepper")),
            ),
            ("sqlite::memory:", "", Source::Ephemeral),
            ("postgres://db/p", "", Source::Missing),
            (
                "postgres://db/p",
                "key_pepper = \"0123456789abcdef0123\"",
                Source::Configured,
            ),
        ];
        for (storage, pepper, expected) in rows {
            assert_eq!(source(&config(storage, pepper)), expected, "{storage}");
        }
    }

    #[test]
    fn hmac_matches_the_crate_for_every_key_length() {
        for len in [0usize, 1, 32, 63, 64, 65, 200] {
            let key = vec![7u8; len];
            let mut ours = hmac_sha256(&key);
            let mut theirs = <HmacSha256 as KeyInit>::new_from_slice(&key).unwrap();
            ours.update(b"message");
            theirs.update(b"message");
            assert_eq!(
                ours.finalize().into_bytes(),
                theirs.finalize().into_bytes(),
                "{len}"
            );
        }
    }

    #[test]
    fn derivation_depends_on_label_and_pepper() {
        let p = Pepper::from_bytes(b"one");
        let q = Pepper::from_bytes(b"two");
        assert_ne!(*p.derive("a"), *p.derive("b"));
        assert_ne!(*p.derive("a"), *q.derive("a"));
        assert_eq!(*p.derive("a"), *p.derive("a"));
    }
}
