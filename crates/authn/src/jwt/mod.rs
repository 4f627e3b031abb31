//! JWT access tokens from configured issuers (`[[auth.jwt]]`), verified against their JWKS.
//!
//! Order of checks: header shape → key by `kid` (refetching the JWKS once for an unknown one)
//! → algorithm allowed for that key (never `none`, never HMAC) → `typ` → signature →
//! `iss`, `aud`, `exp`, `nbf`, `iat` with [`claims::LEEWAY_SECS`] of leeway.

pub(crate) mod claims;
pub(crate) mod header;
pub(crate) mod jwks;

use std::collections::HashSet;
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Map, Value};

use self::claims::{ClaimNames, Expect, LEEWAY_SECS};
use self::header::{Alg, JoseHeader, check_alg, check_typ};
use self::jwks::{Jwks, JwksTuning, KeySource};
use crate::failure::{Fail, FailureKind};
use crate::principal::{AuthMethod, Credential, Principal};

/// Verifies the signature only (claims are checked by [`claims::check`]), returning the
/// payload. `alg` has already passed the allow-list for this key.
pub(crate) fn verify_signature(
    token: &str,
    alg: Alg,
    key: &DecodingKey,
) -> Result<Map<String, Value>, Fail> {
    let mut validation = Validation::new(alg.jwt());
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims = HashSet::new();
    match jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(e) => Err(match e.kind() {
            ErrorKind::InvalidSignature => {
                Fail::new(FailureKind::BadSignature, "signature does not verify")
            }
            ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::MissingAlgorithm
            | ErrorKind::UnsupportedAlgorithm => Fail::new(
                FailureKind::DisallowedAlgorithm,
                format!("algorithm refused by the verifier: {e}"),
            ),
            ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat => Fail::new(
                FailureKind::BadSignature,
                format!("the issuer's key cannot verify this token: {e}"),
            ),
            _ => Fail::new(
                FailureKind::Malformed("undecodable JWT"),
                format!("JWT not decodable: {e}"),
            ),
        }),
    }
}

/// One trusted issuer and its cached keys.
pub(crate) struct Issuer {
    pub issuer: String,
    /// One element: the configured audience.
    pub audience: Vec<String>,
    jwks: Arc<Jwks>,
}

impl Issuer {
    pub fn new(
        config: &portcullis_config::JwtIssuer,
        http: reqwest::Client,
        tuning: JwksTuning,
    ) -> Self {
        Self {
            issuer: config.issuer.clone(),
            audience: vec![config.audience.clone()],
            jwks: Arc::new(Jwks::new(
                KeySource::Http {
                    url: config.jwks_url.clone(),
                    http,
                },
                tuning,
            )),
        }
    }

    pub async fn verify(
        &self,
        token: &str,
        header: &JoseHeader,
        names: ClaimNames<'_>,
        now: u64,
    ) -> Result<Principal, Fail> {
        let key = self.jwks.key(header.kid.as_deref()).await?;
        let alg = check_alg(header, &key.algs)?;
        check_typ(header.typ.as_deref(), false)?;
        let claims = verify_signature(token, alg, &key.key)?;
        claims::check(
            &claims,
            &Expect {
                issuer: Some(&self.issuer),
                audience: Some(&self.audience),
                require_exp: true,
                now,
                leeway: LEEWAY_SECS,
            },
        )?;
        claims::principal(&claims, names, AuthMethod::Token(Credential::Jwt))
    }

    /// Fetches the keys now (start-up warm-up); failures are logged by the cache.
    pub async fn prefetch(&self) {
        let _ = self.jwks.key(Some("")).await;
    }
}
