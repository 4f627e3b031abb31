//! An issuer's signing keys (JWKS), fetched over HTTP and cached.
//!
//! - Keys are refreshed when older than `refresh_after`; an unknown `kid` forces a refetch,
//!   at most once per `min_refetch` (a flood of made-up `kid`s cannot hammer the issuer).
//! - A key rotation is seen on the first token signed with the new key; keys the issuer
//!   dropped disappear with the next successful fetch.
//! - When the issuer is unreachable the last keys keep serving for up to `max_stale`;
//!   with nothing usable cached the request gets 503, not 401.
//! - Only asymmetric signing keys are kept (`kty` RSA, EC P-256/P-384, OKP Ed25519; `use`
//!   absent or `sig`). Each key is bound to the algorithms its `alg` (or else its type) allows.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use serde_json::Value;

use super::header::Alg;
use crate::failure::{Fail, FailureKind, clean};

/// Cache timings. [`Default`] is what the gateway runs with.
#[derive(Debug, Clone, Copy)]
pub struct JwksTuning {
    /// Refetch keys older than this (in the background while the old ones keep serving).
    pub refresh_after: Duration,
    /// At most one fetch per this interval, whatever the number of unknown `kid`s.
    pub min_refetch: Duration,
    /// Keys not confirmed by a fetch for this long are no longer used.
    pub max_stale: Duration,
    /// Per-fetch timeout.
    pub timeout: Duration,
}

impl Default for JwksTuning {
    fn default() -> Self {
        Self {
            refresh_after: Duration::from_secs(600),
            min_refetch: Duration::from_secs(2),
            max_stale: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(5),
        }
    }
}

/// Largest JWKS document read.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// One verification key.
pub(crate) struct KeyEntry {
    pub kid: Option<String>,
    pub algs: Vec<Alg>,
    pub key: DecodingKey,
}

#[derive(Default)]
struct Snapshot {
    keys: Vec<Arc<KeyEntry>>,
    fetched: Option<Instant>,
}

/// Where verification keys come from.
pub(crate) enum KeySource {
    /// An issuer's JWKS URL.
    Http { url: String, http: reqwest::Client },
    /// The gateway's own signing keys in the store.
    Store(crate::minted::SigningKeys),
}

impl KeySource {
    fn name(&self) -> &str {
        match self {
            KeySource::Http { url, .. } => url,
            KeySource::Store(_) => "the store (gateway signing keys)",
        }
    }
}

pub(crate) struct Jwks {
    source: KeySource,
    tuning: JwksTuning,
    snapshot: RwLock<Snapshot>,
    /// Held during a fetch; holds when the last fetch was attempted.
    fetching: tokio::sync::Mutex<Option<Instant>>,
}

enum Refresh {
    Fetched,
    Skipped,
    Failed(String),
}

impl Jwks {
    pub fn new(source: KeySource, tuning: JwksTuning) -> Self {
        Self {
            source,
            tuning,
            snapshot: RwLock::new(Snapshot::default()),
            fetching: tokio::sync::Mutex::new(None),
        }
    }

    /// The key for `kid` (a token without `kid` may use the only key of a one-key set).
    pub async fn key(self: &Arc<Self>, kid: Option<&str>) -> Result<Arc<KeyEntry>, Fail> {
        let (found, age) = self.lookup(kid);
        if let (Some(key), Some(age)) = (&found, age) {
            if age < self.tuning.refresh_after {
                return Ok(key.clone());
            }
            if age < self.tuning.max_stale {
                // Serve the cached key now; refresh in the background.
                let me = Arc::clone(self);
                tokio::spawn(async move {
                    me.refresh().await;
                });
                return Ok(key.clone());
            }
        }
        let outcome = self.refresh().await;
        let (found, age) = self.lookup(kid);
        let usable = age.is_some_and(|a| a < self.tuning.max_stale);
        match (found, usable, outcome) {
            (Some(key), true, _) => Ok(key),
            (_, false, Refresh::Failed(reason)) => Err(Fail::new(
                FailureKind::Unavailable,
                format!(
                    "JWKS {} unavailable and no usable cached keys: {reason}",
                    self.source.name()
                ),
            )),
            (_, false, _) => Err(Fail::new(
                FailureKind::Unavailable,
                format!(
                    "JWKS {} not fetched yet (refetch rate-limited)",
                    self.source.name()
                ),
            )),
            (None, true, _) => Err(Fail::new(
                FailureKind::UnknownSigningKey,
                match kid {
                    Some(kid) => format!(
                        "kid {:?} is not in the JWKS at {}",
                        clean(kid),
                        self.source.name()
                    ),
                    None => format!(
                        "token has no kid and the JWKS at {} does not hold exactly one key",
                        self.source.name()
                    ),
                },
            )),
        }
    }

    /// The matching key and the age of the snapshot it came from.
    fn lookup(&self, kid: Option<&str>) -> (Option<Arc<KeyEntry>>, Option<Duration>) {
        let snap = self
            .snapshot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let age = snap.fetched.map(|t| t.elapsed());
        let found = match kid {
            Some(kid) => snap.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None if snap.keys.len() == 1 => snap.keys.first(),
            None => None,
        };
        (found.cloned(), age)
    }

    async fn refresh(&self) -> Refresh {
        let mut last = self.fetching.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.tuning.min_refetch) {
            return Refresh::Skipped;
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::debug!(source = %self.source.name(), keys = keys.len(), "JWKS fetched");
                let mut snap = self
                    .snapshot
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                *snap = Snapshot {
                    keys,
                    fetched: Some(Instant::now()),
                };
                Refresh::Fetched
            }
            Err(reason) => {
                tracing::warn!(source = %self.source.name(), %reason, "JWKS fetch failed; keeping cached keys");
                Refresh::Failed(reason)
            }
        }
    }

    async fn fetch(&self) -> Result<Vec<Arc<KeyEntry>>, String> {
        let (url, http) = match &self.source {
            KeySource::Http { url, http } => (url, http),
            KeySource::Store(keys) => {
                return keys
                    .verification_keys(portcullis_store::now_ms())
                    .await
                    .map_err(|e| e.to_string());
            }
        };
        let mut response = http
            .get(url)
            .header(
                http::header::ACCEPT,
                "application/jwk-set+json, application/json",
            )
            .timeout(self.tuning.timeout)
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("reading the body failed: {e}"))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("document larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let keys = parse_jwks(&body)?;
        if keys.is_empty() {
            tracing::warn!(source = %self.source.name(), "the JWKS holds no usable signing keys");
        }
        Ok(keys)
    }
}

/// The fields of one JWK this gateway reads.
#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// The usable signing keys of a JWKS document; unusable entries are skipped (and logged).
pub(crate) fn parse_jwks(body: &[u8]) -> Result<Vec<Arc<KeyEntry>>, String> {
    #[derive(Deserialize)]
    struct Set {
        keys: Vec<Value>,
    }
    let set: Set = serde_json::from_slice(body).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut out = Vec::new();
    for value in set.keys {
        let entry = serde_json::from_value::<RawJwk>(value)
            .map_err(|e| format!("unreadable JWK: {e}"))
            .and_then(|raw| key_entry(&raw));
        match entry {
            Ok(Some(entry)) => out.push(Arc::new(entry)),
            Ok(None) => {}
            Err(reason) => tracing::debug!(%reason, "JWK skipped"),
        }
    }
    Ok(out)
}

/// `Ok(None)`: not a signing key we use (encryption key, symmetric key).
fn key_entry(raw: &RawJwk) -> Result<Option<KeyEntry>, String> {
    if raw.use_.as_deref().is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    if raw
        .key_ops
        .as_ref()
        .is_some_and(|ops| !ops.iter().any(|o| o == "verify"))
    {
        return Ok(None);
    }
    let need = |v: &Option<String>, name: &str| {
        v.clone()
            .ok_or_else(|| format!("{} key without {name}", raw.kty))
    };
    let (family, key): (&[Alg], DecodingKey) = match (raw.kty.as_str(), raw.crv.as_deref()) {
        ("RSA", _) => (
            Alg::RSA,
            DecodingKey::from_rsa_components(&need(&raw.n, "n")?, &need(&raw.e, "e")?)
                .map_err(|e| format!("bad RSA key: {e}"))?,
        ),
        ("EC", Some("P-256")) => (&[Alg::ES256], ec(raw)?),
        ("EC", Some("P-384")) => (&[Alg::ES384], ec(raw)?),
        ("OKP", Some("Ed25519")) => (
            &[Alg::EdDSA],
            DecodingKey::from_ed_components(&need(&raw.x, "x")?)
                .map_err(|e| format!("bad Ed25519 key: {e}"))?,
        ),
        // Symmetric (oct) keys, other curves and key types are never used for verification.
        _ => return Ok(None),
    };
    let algs: Vec<Alg> = match raw.alg.as_deref() {
        None => family.to_vec(),
        Some("Ed25519") if family == [Alg::EdDSA] => vec![Alg::EdDSA],
        Some(name) => match Alg::parse(name).filter(|a| family.contains(a)) {
            Some(alg) => vec![alg],
            None => return Err(format!("alg {name:?} does not fit a {} key", raw.kty)),
        },
    };
    Ok(Some(KeyEntry {
        kid: raw.kid.clone(),
        algs,
        key,
    }))
}

fn ec(raw: &RawJwk) -> Result<DecodingKey, String> {
    match (&raw.x, &raw.y) {
        (Some(x), Some(y)) => {
            DecodingKey::from_ec_components(x, y).map_err(|e| format!("bad EC key: {e}"))
        }
        _ => Err("EC key without x or y".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_selection_table() {
        let doc = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "rs", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"},
            {"kty": "RSA", "kid": "rs-hs", "alg": "HS256", "n": "AQAB", "e": "AQAB"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "kid": "x", "crv": "X25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            "not an object"
        ]});
        let keys = parse_jwks(doc.to_string().as_bytes()).unwrap();
        let found: Vec<(Option<&str>, Vec<Alg>)> = keys
            .iter()
            .map(|k| (k.kid.as_deref(), k.algs.clone()))
            .collect();
        assert_eq!(
            found,
            vec![
                (Some("rs"), Alg::RSA.to_vec()),
                (Some("ps"), vec![Alg::PS256]),
                (Some("ed"), vec![Alg::EdDSA]),
            ]
        );
        assert!(parse_jwks(b"[]").is_err());
    }
}
