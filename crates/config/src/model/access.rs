//! Who may come in and how often: token issuers, introspection, mTLS identity, Cedar policies,
//! rate limits.

use std::path::PathBuf;
use std::time::Duration;

use crate::secret::Secret;

/// One `[[auth.jwt]]` entry: a trusted issuer of JWT access tokens.
#[derive(Debug, Clone)]
pub struct JwtIssuer {
    /// Must equal the token's `iss` claim.
    pub issuer: String,
    /// Where the issuer's signing keys are fetched (https, or http to a loopback host).
    pub jwks_url: String,
    /// Must appear in the token's `aud` claim (RFC 8707: this gateway's resource URL).
    pub audience: String,
}

/// `[auth.introspection]`: RFC 7662 token introspection.
#[derive(Debug, Clone)]
pub struct Introspection {
    pub url: String,
    pub client_id: String,
    pub client_secret: Secret,
}

/// `[auth.mtls]`: the principal is read from the verified client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mtls {
    pub principal_from: PrincipalFrom,
}

/// Which part of the client certificate names the principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalFrom {
    /// The first URI subject alternative name (`san_uri`, the default).
    SanUri,
    /// The subject's common name (`subject_cn`).
    SubjectCn,
}

/// `[authz]`: Cedar policies.
#[derive(Debug, Clone)]
pub struct Authz {
    /// Absolute file paths or glob patterns (`*`, `?`, `[…]`), resolved against the config
    /// directory; the authz crate expands them. Empty: every call is denied (a warning says so).
    pub policies: Vec<PathBuf>,
    /// The token claim holding the principal's roles (default `roles`).
    pub roles_claim: String,
}

/// `[rate_limit]`.
#[derive(Debug, Clone)]
pub struct RateLimit {
    pub backend: RateLimitBackend,
    /// Per principal × tool, for calls no rule matches. `None`: unlimited.
    pub default: Option<Rate>,
    /// `[[rate_limit.rule]]` in file order; the first matching rule applies.
    pub rules: Vec<RateRule>,
}

/// Where rate-limit counters live.
#[derive(Debug, Clone)]
pub enum RateLimitBackend {
    /// In this process (one replica).
    Local,
    /// Shared through Redis (several replicas). The URL may hold a password, hence a secret.
    Redis { url: Secret },
}

/// A budget: `count` requests per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// At least 1.
    pub count: u32,
    pub per: Duration,
}

/// One `[[rate_limit.rule]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateRule {
    /// Principal id glob (`*` matches any run of characters); default `*`.
    pub principal: String,
    /// Exposed (prefixed) tool name glob; default `*`.
    pub tool: String,
    pub limit: Rate,
}
