//! Gateway-minted access tokens: short-lived JWTs (`typ` `at+jwt`, `alg` EdDSA) that
//! `portcullis token mint` signs with the gateway's own key, and that the gateway accepts
//! like any other access token: issuer [`OWN_ISSUER`], audience `auth.resource`, `jti`
//! recorded as the credential id.

mod keys;

pub use keys::{MAX_TTL, PublicSigningKey, SIGNING_PERIOD, SigningKeys};

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer;
use secrecy::SecretString;
use serde_json::{Map, Value, json};

use crate::error::AuthnError;
use crate::failure::{Fail, FailureKind};
use crate::jwt::claims::{self, ClaimNames, Expect, LEEWAY_SECS};
use crate::jwt::header::{JoseHeader, check_alg, check_typ};
use crate::jwt::jwks::{Jwks, JwksTuning, KeySource};
use crate::jwt::verify_signature;
use crate::pepper::{Pepper, random_hex};
use crate::principal::{AuthMethod, Credential, Principal, PrincipalKind};

/// The `iss` of every gateway-minted token. The same for every replica and deployment: what
/// makes a token valid is a signature by a key in this gateway's store and an audience naming
/// this gateway.
pub const OWN_ISSUER: &str = "urn:portcullis:gateway";

/// What `token mint` asks for.
#[derive(Debug, Clone)]
pub struct MintRequest {
    pub principal: String,
    pub kind: PrincipalKind,
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
    /// At most [`MAX_TTL`].
    pub ttl: Duration,
    /// Default: `auth.resource`.
    pub audience: Option<String>,
}

/// A minted token and what it says.
pub struct MintedToken {
    pub token: SecretString,
    pub jti: String,
    pub kid: String,
    pub audience: String,
    pub expires_at: SystemTime,
}

impl std::fmt::Debug for MintedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedToken")
            .field("jti", &self.jti)
            .field("kid", &self.kid)
            .field("audience", &self.audience)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// RFC 6749 scope token: `%x21 / %x23-5B / %x5D-7E`.
pub fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// Signs a token for `req` with the current signing key (creating one when none is current).
pub async fn mint(
    keys: &SigningKeys,
    pepper: &Pepper,
    default_audience: &str,
    req: MintRequest,
    now: SystemTime,
) -> Result<MintedToken, AuthnError> {
    if req.ttl.is_zero() || req.ttl > MAX_TTL {
        return Err(AuthnError::Invalid(format!(
            "ttl must be between 1s and {}h",
            MAX_TTL.as_secs() / 3600
        )));
    }
    let principal = req.principal.trim();
    if principal.is_empty()
        || principal.chars().count() > 256
        || principal.chars().any(char::is_control)
    {
        return Err(AuthnError::Invalid(
            "principal must be 1-256 characters without control characters".to_owned(),
        ));
    }
    if let Some(bad) = req.scopes.iter().find(|s| !is_scope_token(s)) {
        return Err(AuthnError::Invalid(format!(
            "scope {bad:?} is not a scope token (no spaces, quotes or backslashes)"
        )));
    }
    if req
        .roles
        .iter()
        .any(|r| r.trim().is_empty() || r.chars().any(char::is_control))
    {
        return Err(AuthnError::Invalid(
            "roles must be non-empty, without control characters".to_owned(),
        ));
    }
    let audience = req.audience.unwrap_or_else(|| default_audience.to_owned());
    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| AuthnError::Invalid("the clock is before 1970".to_owned()))?
        .as_secs();
    let now_ms = i64::try_from(now_secs)
        .unwrap_or(i64::MAX)
        .saturating_mul(1000);
    let (kid, key) = keys.current(pepper, now_ms).await?;
    let exp = now_secs + req.ttl.as_secs().max(1);
    let jti = random_hex(16);
    let mut claims = json!({
        "iss": OWN_ISSUER,
        "sub": principal,
        "aud": audience,
        "iat": now_secs,
        "nbf": now_secs,
        "exp": exp,
        "jti": jti,
        "kind": req.kind.as_str(),
    });
    if !req.scopes.is_empty() {
        claims["scope"] = Value::String(req.scopes.join(" "));
    }
    if !req.roles.is_empty() {
        claims["roles"] = json!(req.roles);
    }
    let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key.sign(signing_input.as_bytes());
    let token = format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_bytes())
    );
    Ok(MintedToken {
        token: SecretString::from(token),
        jti,
        kid,
        audience,
        expires_at: UNIX_EPOCH + Duration::from_secs(exp),
    })
}

/// Verifies gateway-minted tokens against the signing keys in the store (cached like a JWKS:
/// reloaded every minute, and at once, at most every second, for an unknown `kid`).
pub(crate) struct OwnTokens {
    keys: SigningKeys,
    cache: Arc<Jwks>,
    audiences: Vec<String>,
}

impl OwnTokens {
    pub fn new(keys: SigningKeys, resource: &str) -> Self {
        let tuning = JwksTuning {
            refresh_after: Duration::from_secs(60),
            min_refetch: Duration::from_secs(1),
            ..JwksTuning::default()
        };
        Self {
            cache: Arc::new(Jwks::new(KeySource::Store(keys.clone()), tuning)),
            keys,
            audiences: vec![resource.to_owned()],
        }
    }

    pub async fn verify(
        &self,
        token: &str,
        header: &JoseHeader,
        now: u64,
    ) -> Result<Principal, Fail> {
        let Some(kid) = header.kid.as_deref() else {
            return Err(Fail::new(
                FailureKind::UnknownSigningKey,
                "gateway token without kid",
            ));
        };
        let key = self.cache.key(Some(kid)).await?;
        let alg = check_alg(header, &key.algs)?;
        check_typ(header.typ.as_deref(), true)?;
        let claims = verify_signature(token, alg, &key.key)?;
        claims::check(
            &claims,
            &Expect {
                issuer: Some(OWN_ISSUER),
                audience: Some(&self.audiences),
                require_exp: true,
                now,
                leeway: LEEWAY_SECS,
            },
        )?;
        own_principal(&claims)
    }

    /// The JWKS document of the gateway's current verification keys.
    pub async fn jwks_document(&self) -> Result<Value, AuthnError> {
        let keys = self.keys.public_keys(portcullis_store::now_ms()).await?;
        Ok(json!({ "keys": keys.iter().map(PublicSigningKey::to_jwk).collect::<Vec<_>>() }))
    }
}

fn own_principal(claims: &Map<String, Value>) -> Result<Principal, Fail> {
    if claims
        .get("jti")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(Fail::new(
            FailureKind::MissingClaim("jti"),
            "gateway token without jti",
        ));
    }
    let mut principal = claims::principal(
        claims,
        ClaimNames { roles: "roles" },
        AuthMethod::Token(Credential::Minted),
    )?;
    principal.kind = claims
        .get("kind")
        .and_then(Value::as_str)
        .and_then(PrincipalKind::parse)
        .unwrap_or(PrincipalKind::Service);
    Ok(principal)
}
