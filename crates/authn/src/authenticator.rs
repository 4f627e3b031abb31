//! The authentication stage: a request's credentials → [`Principal`] or [`AuthFailure`].
//!
//! Order, for every request:
//! 1. per-address lockout (429 before any credential is looked at);
//! 2. credentials in the query string are refused;
//! 3. `[auth.mtls]`: a verified client certificate is required and names an identity;
//! 4. exactly one credential is extracted (`X-API-Key` or `Authorization: Bearer`);
//! 5. it is checked by its kind: API key (store), gateway token (`iss` = [`OWN_ISSUER`]),
//!    JWT from a configured issuer (JWKS), anything else by introspection when configured;
//! 6. tokens must carry `auth.required_scopes` (403 `insufficient_scope`);
//! 7. a failure that counts is recorded against the address.
//!
//! mTLS combined with another method (`[auth.mtls]` and API keys, JWT or introspection): both
//! are required. The principal is the credential's; the certificate's identity is kept in
//! [`Principal::cert_identity`] and the method is `mtls+<credential>`. They need not match:
//! the certificate names the client workload, the credential the caller on whose behalf it
//! acts. With `[auth.mtls]` alone the certificate's identity is the principal (kind service).

use std::sync::Arc;
use std::time::Instant;

use portcullis_config::{Config, Mtls};
use portcullis_store::Store;
use sha2::{Digest, Sha256};

use crate::apikey::{self, ApiKeys, KeyStore};
use crate::credentials::{CredentialsSeen, Presented, extract, query_has_credentials};
use crate::error::AuthnError;
use crate::failure::{Attempt, AuthFailure, ChallengeContext, Fail, FailureKind, clean};
use crate::introspection::{IntrospectionTuning, Introspector};
use crate::jwt::Issuer;
use crate::jwt::claims::ClaimNames;
use crate::jwt::header::{header, looks_like_jwt, unverified_claims};
use crate::jwt::jwks::JwksTuning;
use crate::limiter::{DEFAULT_CAPACITY, FailureLimiter};
use crate::metadata;
use crate::minted::{OWN_ISSUER, OwnTokens, SigningKeys};
use crate::pepper::{Pepper, hex};
use crate::principal::{AuthMethod, Credential, Principal, PrincipalKind};
use crate::timestamps::now_secs;
use crate::tls::principal_from_cert;

/// Timings of the caches and the limiter's size. [`Default`] is what the gateway runs with;
/// tests shorten them.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    pub jwks: JwksTuning,
    pub introspection: IntrospectionTuning,
    /// Client addresses the failure limiter tracks at most.
    pub limiter_capacity: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            jwks: JwksTuning::default(),
            introspection: IntrospectionTuning::default(),
            limiter_capacity: DEFAULT_CAPACITY,
        }
    }
}

/// Authenticates requests. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("resource", &self.inner.resource)
            .field("api_keys", &self.inner.api_keys.is_some())
            .field(
                "issuers",
                &self
                    .inner
                    .issuers
                    .iter()
                    .map(|i| &i.issuer)
                    .collect::<Vec<_>>(),
            )
            .field("introspection", &self.inner.introspection.is_some())
            .field("mtls", &self.inner.mtls)
            .finish_non_exhaustive()
    }
}

struct Inner {
    allow_anonymous: bool,
    api_keys: Option<ApiKeys>,
    issuers: Vec<Issuer>,
    introspection: Option<Introspector>,
    own: OwnTokens,
    mtls: Option<Mtls>,
    /// API keys, JWT or introspection configured: with mTLS, a credential is also required.
    token_methods: bool,
    roles_claim: String,
    required_scopes: Vec<String>,
    resource: String,
    limiter: FailureLimiter,
    challenge: ChallengeContext,
}

impl Authenticator {
    /// Builds the authenticator for `config`: opens (and migrates) the key tables in `store`,
    /// resolves the pepper when API keys are on. `http` fetches JWKS and calls introspection.
    pub async fn new(
        config: &Config,
        store: Store,
        http: reqwest::Client,
    ) -> Result<Authenticator, AuthnError> {
        Self::with_tuning(config, store, http, Tuning::default()).await
    }

    pub async fn with_tuning(
        config: &Config,
        store: Store,
        http: reqwest::Client,
        tuning: Tuning,
    ) -> Result<Authenticator, AuthnError> {
        // A process-wide JWT crypto backend (explicit, so feature unification elsewhere cannot
        // leave two candidates). Already installed: fine.
        let _ = jsonwebtoken::crypto::CryptoProvider::install_default(
            &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
        );
        let auth = &config.auth;
        let api_keys = if auth.api_keys {
            let pepper = Pepper::require(config)?;
            Some(ApiKeys::new(KeyStore::open(store.clone()).await?, pepper))
        } else {
            None
        };
        let issuers: Vec<Issuer> = auth
            .jwt
            .iter()
            .map(|c| Issuer::new(c, http.clone(), tuning.jwks))
            .collect();
        let mut audiences = vec![auth.resource.clone()];
        for issuer in &auth.jwt {
            if !audiences.contains(&issuer.audience) {
                audiences.push(issuer.audience.clone());
            }
        }
        let introspection = auth
            .introspection
            .as_ref()
            .map(|c| Introspector::new(c, audiences, http.clone(), tuning.introspection));
        let own = OwnTokens::new(SigningKeys::open(store).await?, &auth.resource);
        let oauth = !issuers.is_empty() || introspection.is_some();
        let challenge = ChallengeContext {
            resource_metadata: oauth.then(|| Arc::from(metadata::metadata_url(&auth.resource))),
            required_scopes: (!auth.required_scopes.is_empty())
                .then(|| Arc::from(auth.required_scopes.join(" "))),
        };
        Ok(Authenticator {
            inner: Arc::new(Inner {
                allow_anonymous: auth.dangerous_allow_anonymous,
                token_methods: auth.api_keys || oauth,
                api_keys,
                issuers,
                introspection,
                own,
                mtls: auth.mtls,
                roles_claim: config.authz.roles_claim.clone(),
                required_scopes: auth.required_scopes.clone(),
                resource: auth.resource.clone(),
                limiter: FailureLimiter::new(auth.max_failures, tuning.limiter_capacity),
                challenge,
            }),
        })
    }

    /// Authenticates one request.
    pub async fn authenticate(&self, seen: &CredentialsSeen<'_>) -> Result<Principal, AuthFailure> {
        let inner = &self.inner;
        let ip = seen.peer.ip;
        let now = Instant::now();
        let mut attempt = Attempt {
            client_ip: Some(ip),
            ..Attempt::default()
        };
        if let Err(retry_after) = inner.limiter.check(ip, now) {
            let fail = Fail::new(
                FailureKind::TooManyFailures { retry_after },
                format!("{ip} is locked out after repeated authentication failures"),
            );
            return Err(AuthFailure::new(fail, attempt, inner.challenge.clone()));
        }
        match inner.decide(seen, &mut attempt).await {
            Ok(mut principal) => {
                principal.client_ip = Some(ip);
                Ok(principal)
            }
            Err(fail) => {
                if fail.kind.counts_as_failure()
                    && let Some(lockout) = inner.limiter.record_failure(ip, now)
                {
                    tracing::warn!(
                        client.ip = %ip,
                        lockout_secs = lockout.as_secs(),
                        "too many authentication failures; address locked out"
                    );
                }
                Err(AuthFailure::new(fail, attempt, inner.challenge.clone()))
            }
        }
    }

    /// `auth.resource`: this gateway's canonical MCP URL.
    pub fn resource(&self) -> &str {
        &self.inner.resource
    }

    /// Whether OAuth (`[[auth.jwt]]` or `[auth.introspection]`) is configured: then the RFC 9728
    /// metadata is served and 401 challenges point to it.
    pub fn oauth_configured(&self) -> bool {
        self.inner.challenge.resource_metadata.is_some()
    }

    /// The RFC 9728 metadata URL (`…/.well-known/oauth-protected-resource/mcp`), when OAuth is
    /// configured.
    pub fn resource_metadata_url(&self) -> Option<&str> {
        self.inner.challenge.resource_metadata.as_deref()
    }

    /// The RFC 9728 document for `GET /.well-known/oauth-protected-resource[/mcp]`, when OAuth
    /// is configured.
    pub fn protected_resource_metadata(&self) -> Option<serde_json::Value> {
        let inner = &self.inner;
        self.oauth_configured().then(|| {
            let issuers: Vec<String> = inner.issuers.iter().map(|i| i.issuer.clone()).collect();
            metadata::document(&inner.resource, &issuers, &inner.required_scopes)
        })
    }

    /// The JWKS document of the gateway's own token keys, for `GET /.well-known/jwks.json`.
    pub async fn jwks_document(&self) -> Result<serde_json::Value, AuthnError> {
        self.inner.own.jwks_document().await
    }

    /// Fetches every issuer's JWKS now (failures are logged and retried on demand).
    pub async fn prefetch(&self) {
        for issuer in &self.inner.issuers {
            issuer.prefetch().await;
        }
    }
}

impl Inner {
    fn names(&self) -> ClaimNames<'_> {
        ClaimNames {
            roles: &self.roles_claim,
        }
    }

    async fn decide(
        &self,
        seen: &CredentialsSeen<'_>,
        attempt: &mut Attempt,
    ) -> Result<Principal, Fail> {
        if seen.query.is_some_and(query_has_credentials) {
            return Err(Fail::new(
                FailureKind::CredentialInQuery,
                "the query string carries a credential-like parameter",
            ));
        }
        let cert = match (&self.mtls, &seen.peer.client_cert) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(Fail::new(
                    FailureKind::ClientCertRequired,
                    "[auth.mtls] is on and the connection has no verified client certificate",
                ));
            }
            (Some(mtls), Some(der)) => {
                let identity = principal_from_cert(der, mtls.principal_from)
                    .map_err(|e| Fail::new(FailureKind::ClientCertUnusable, e.to_string()))?;
                attempt.cert_identity = Some(identity.clone());
                let fingerprint = hex(&Sha256::digest(der.as_ref()));
                Some((
                    identity,
                    format!("sha256:{}", fingerprint.get(..32).unwrap_or_default()),
                ))
            }
        };
        let presented = extract(seen.headers)?;
        let mut principal = match presented {
            Presented::None => {
                return match cert {
                    Some((identity, fingerprint)) if !self.token_methods => {
                        Ok(cert_principal(identity, fingerprint))
                    }
                    Some(_) => Err(Fail::new(
                        FailureKind::Missing,
                        "a credential is required in addition to the client certificate",
                    )),
                    None if self.allow_anonymous => Ok(anonymous()),
                    None => Err(Fail::new(FailureKind::Missing, "no credentials")),
                };
            }
            Presented::ApiKey(raw) => {
                attempt.credential = Some(Credential::ApiKey);
                attempt.credential_id = apikey::id_hint(raw).map(str::to_owned);
                match &self.api_keys {
                    Some(keys) => keys.verify(raw, portcullis_store::now_ms()).await?,
                    None => {
                        return Err(Fail::new(
                            FailureKind::UnsupportedToken,
                            "an API key was presented but auth.api_keys is off",
                        ));
                    }
                }
            }
            Presented::Bearer(token) => self.bearer(token, attempt).await?,
        };
        if principal.method.credential() != Some(Credential::ApiKey)
            && !principal.has_scopes(&self.required_scopes)
        {
            let missing: Vec<&str> = self
                .required_scopes
                .iter()
                .filter(|s| !principal.scopes.contains(s))
                .map(String::as_str)
                .collect();
            return Err(Fail::new(
                FailureKind::InsufficientScope {
                    needed: self.required_scopes.clone(),
                },
                format!("token lacks required scope(s): {}", missing.join(" ")),
            )
            .with_subject(principal.id));
        }
        if let Some((identity, _)) = cert
            && let Some(credential) = principal.method.credential()
        {
            principal.method = AuthMethod::MtlsAndToken(credential);
            principal.cert_identity = Some(identity);
        }
        Ok(principal)
    }

    /// A Bearer token that is not an API key: route by shape and (unverified) issuer.
    async fn bearer(&self, token: &str, attempt: &mut Attempt) -> Result<Principal, Fail> {
        let now = now_secs();
        let jwt_header = if looks_like_jwt(token) {
            match header(token) {
                Ok(h) => Some(h),
                Err(fail) if self.introspection.is_none() => return Err(fail),
                Err(_) => None,
            }
        } else {
            None
        };
        if let Some(jwt_header) = jwt_header {
            let claims = unverified_claims(token).unwrap_or_default();
            let text = |name: &str| claims.get(name).and_then(|v| v.as_str());
            attempt.issuer = text("iss").map(clean);
            attempt.subject = text("sub").or(text("client_id")).map(clean);
            attempt.credential_id = text("jti").map(clean);
            let iss = text("iss");
            if iss == Some(OWN_ISSUER) {
                attempt.credential = Some(Credential::Minted);
                return self.own.verify(token, &jwt_header, now).await;
            }
            if let Some(issuer) = self.issuers.iter().find(|i| Some(i.issuer.as_str()) == iss) {
                attempt.credential = Some(Credential::Jwt);
                return issuer.verify(token, &jwt_header, self.names(), now).await;
            }
            if self.introspection.is_none() {
                return Err(Fail::new(
                    FailureKind::WrongIssuer,
                    match iss {
                        Some(iss) => format!("iss {:?} is not a configured issuer", clean(iss)),
                        None => "JWT without iss".to_owned(),
                    },
                ));
            }
        }
        attempt.credential = Some(Credential::Introspection);
        match &self.introspection {
            Some(introspector) => introspector.verify(token, self.names(), now).await,
            None => Err(Fail::new(
                FailureKind::UnsupportedToken,
                "an opaque token was presented and [auth.introspection] is not configured",
            )),
        }
    }
}

fn cert_principal(identity: String, fingerprint: String) -> Principal {
    Principal {
        id: identity.clone(),
        kind: PrincipalKind::Service,
        roles: Vec::new(),
        scopes: Vec::new(),
        method: AuthMethod::Mtls,
        client_ip: None,
        credential_id: Some(fingerprint),
        issuer: None,
        cert_identity: Some(identity),
        expires_at: None,
    }
}

fn anonymous() -> Principal {
    Principal {
        id: "anonymous".to_owned(),
        kind: PrincipalKind::User,
        roles: Vec::new(),
        scopes: Vec::new(),
        method: AuthMethod::Anonymous,
        client_ip: None,
        credential_id: None,
        issuer: None,
        cert_identity: None,
        expires_at: None,
    }
}
