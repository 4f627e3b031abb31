//! Why authentication failed: one typed value carrying the public reason, the operator's
//! detail, the HTTP status, the exact `WWW-Authenticate` challenge (RFC 6750 §3, RFC 9728 §5.1,
//! MCP authorization) and what the audit record needs about the attempt. Never the credential.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

use crate::principal::Credential;

/// The rule that refused the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// No credential at all.
    Missing,
    /// A credential that cannot be parsed, or an ambiguous request (two credentials, two
    /// `Authorization` headers). The text names the rule.
    Malformed(&'static str),
    /// `Authorization` with a scheme other than `Bearer`.
    UnsupportedScheme,
    /// A credential in the URL query string (never accepted: it ends up in logs).
    CredentialInQuery,
    /// A well-formed API key whose id is unknown or whose secret does not match.
    UnknownKey,
    /// A revoked API key.
    Revoked,
    /// An expired key or token (`exp` past, with leeway).
    Expired,
    /// A token used before its `nbf` / `iat` (with leeway).
    NotYetValid,
    /// The token's `aud` does not name this gateway (RFC 8707).
    WrongAudience,
    /// The token's `iss` is not a configured issuer, or not the one expected.
    WrongIssuer,
    /// The signature does not verify.
    BadSignature,
    /// `alg` outside the allow-list (`none`, `HS*`, or not the signing key's algorithm).
    DisallowedAlgorithm,
    /// A JWT `typ` that is not an access token's (RFC 9068).
    WrongTokenType,
    /// No key in the issuer's JWKS matches the token's `kid`, even after a refetch.
    UnknownSigningKey,
    /// A required claim is absent.
    MissingClaim(&'static str),
    /// A token no configured method can check (opaque without introspection, API key while
    /// API keys are off).
    UnsupportedToken,
    /// The introspection endpoint says the token is not active.
    IntrospectionInactive,
    /// The token is valid but lacks scopes (403 `insufficient_scope`).
    InsufficientScope { needed: Vec<String> },
    /// `[auth.mtls]` is on and the connection presented no verified client certificate.
    ClientCertRequired,
    /// The client certificate does not name a principal the configured way.
    ClientCertUnusable,
    /// This client address failed too often; refused until `retry_after` has passed.
    TooManyFailures { retry_after: Duration },
    /// A JWKS or introspection endpoint could not be reached and nothing cached can decide.
    Unavailable,
}

impl FailureKind {
    /// The RFC 6750 `error` code, if the challenge carries one.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            FailureKind::Missing
            | FailureKind::UnsupportedScheme
            | FailureKind::ClientCertRequired
            | FailureKind::ClientCertUnusable
            | FailureKind::TooManyFailures { .. }
            | FailureKind::Unavailable => None,
            FailureKind::Malformed(_) | FailureKind::CredentialInQuery => Some("invalid_request"),
            FailureKind::InsufficientScope { .. } => Some("insufficient_scope"),
            FailureKind::UnknownKey
            | FailureKind::Revoked
            | FailureKind::Expired
            | FailureKind::NotYetValid
            | FailureKind::WrongAudience
            | FailureKind::WrongIssuer
            | FailureKind::BadSignature
            | FailureKind::DisallowedAlgorithm
            | FailureKind::WrongTokenType
            | FailureKind::UnknownSigningKey
            | FailureKind::MissingClaim(_)
            | FailureKind::UnsupportedToken
            | FailureKind::IntrospectionInactive => Some("invalid_token"),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            FailureKind::Malformed(_) | FailureKind::CredentialInQuery => StatusCode::BAD_REQUEST,
            FailureKind::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            FailureKind::TooManyFailures { .. } => StatusCode::TOO_MANY_REQUESTS,
            FailureKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// Safe to show the caller: says which rule, never what was expected or found.
    pub fn public_reason(&self) -> &'static str {
        match self {
            FailureKind::Missing => "authentication required",
            FailureKind::Malformed(_) => "malformed credentials",
            FailureKind::UnsupportedScheme => "unsupported authorization scheme; use Bearer",
            FailureKind::CredentialInQuery => "credentials are not accepted in the query string",
            FailureKind::UnknownKey
            | FailureKind::Revoked
            | FailureKind::BadSignature
            | FailureKind::UnknownSigningKey
            | FailureKind::UnsupportedToken
            | FailureKind::IntrospectionInactive => "invalid credentials",
            FailureKind::Expired => "credentials expired",
            FailureKind::NotYetValid => "token not yet valid",
            FailureKind::WrongAudience => "token not issued for this resource",
            FailureKind::WrongIssuer => "token issuer not trusted",
            FailureKind::DisallowedAlgorithm => "token algorithm not allowed",
            FailureKind::WrongTokenType => "not an access token",
            FailureKind::MissingClaim(_) => "token lacks a required claim",
            FailureKind::InsufficientScope { .. } => "insufficient scope",
            FailureKind::ClientCertRequired => "client certificate required",
            FailureKind::ClientCertUnusable => "client certificate does not name a principal",
            FailureKind::TooManyFailures { .. } => "too many failed authentication attempts",
            FailureKind::Unavailable => "authentication temporarily unavailable",
        }
    }

    /// Whether this failure counts toward the per-address limiter. Asking without credentials
    /// (how MCP clients discover OAuth), lacking a scope, being limited already and our own
    /// outages do not.
    pub fn counts_as_failure(&self) -> bool {
        !matches!(
            self,
            FailureKind::Missing
                | FailureKind::InsufficientScope { .. }
                | FailureKind::TooManyFailures { .. }
                | FailureKind::Unavailable
        )
    }
}

/// Who tried, from where, with what (for the audit record). Values read from a credential that
/// failed are unverified (a token's `sub`/`iss`/`jti` as written by whoever sent it); they are
/// cleaned of control characters and truncated. Never contains a secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attempt {
    pub client_ip: Option<IpAddr>,
    /// The kind of credential presented, if any.
    pub credential: Option<Credential>,
    /// API key id, or the token's `jti`.
    pub credential_id: Option<String>,
    /// The key's principal (from the store), or the token's claimed `sub`.
    pub subject: Option<String>,
    /// The token's claimed `iss`.
    pub issuer: Option<String>,
    /// The verified client certificate's identity, if any.
    pub cert_identity: Option<String>,
}

/// What the challenge needs besides the failure: set once per authenticator.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChallengeContext {
    /// RFC 9728 metadata URL, when OAuth is configured.
    pub resource_metadata: Option<Arc<str>>,
    /// `auth.required_scopes`, space-separated (scope guidance on a bare 401).
    pub required_scopes: Option<Arc<str>>,
}

/// A refused request. `Display` is the operator's line; the caller sees only
/// [`public_reason`](Self::public_reason), the status and the challenge.
#[derive(Debug, Clone)]
pub struct AuthFailure {
    kind: FailureKind,
    detail: String,
    attempt: Attempt,
    challenge: ChallengeContext,
}

impl AuthFailure {
    pub(crate) fn new(fail: Fail, attempt: Attempt, challenge: ChallengeContext) -> Self {
        let mut attempt = attempt;
        if attempt.subject.is_none() {
            attempt.subject = fail.subject;
        }
        Self {
            kind: fail.kind,
            detail: fail.detail,
            attempt,
            challenge,
        }
    }

    pub fn kind(&self) -> &FailureKind {
        &self.kind
    }

    /// 400, 401, 403, 429 or 503.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    pub fn public_reason(&self) -> &'static str {
        self.kind.public_reason()
    }

    /// The operator's explanation (expected vs found, which endpoint failed); no secrets.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    pub fn attempt(&self) -> &Attempt {
        &self.attempt
    }

    /// `Retry-After` for 429.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.kind {
            FailureKind::TooManyFailures { retry_after } => Some(retry_after),
            _ => None,
        }
    }

    /// `Retry-After` in whole seconds (rounded up, at least 1), for 429.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after()
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
            .map(|s| s.max(1))
    }

    /// The exact `WWW-Authenticate` value for 400/401/403; `None` for 429 and 503.
    ///
    /// `Bearer` alone (no OAuth, nothing presented), else RFC 6750 parameters in the order
    /// `error`, `error_description`, `scope`, `resource_metadata`.
    pub fn www_authenticate(&self) -> Option<String> {
        if matches!(
            self.kind,
            FailureKind::TooManyFailures { .. } | FailureKind::Unavailable
        ) {
            return None;
        }
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(code) = self.kind.error_code() {
            params.push(("error", code.to_owned()));
            params.push(("error_description", self.public_reason().to_owned()));
        }
        match &self.kind {
            FailureKind::InsufficientScope { needed } => params.push(("scope", needed.join(" "))),
            FailureKind::Missing => {
                if let Some(scopes) = &self.challenge.required_scopes {
                    params.push(("scope", scopes.to_string()));
                }
            }
            _ => {}
        }
        if let Some(url) = &self.challenge.resource_metadata {
            params.push(("resource_metadata", url.to_string()));
        }
        if params.is_empty() {
            return Some("Bearer".to_owned());
        }
        let rendered: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", quote(v)))
            .collect();
        Some(format!("Bearer {}", rendered.join(", ")))
    }
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.public_reason(), self.detail)
    }
}

impl std::error::Error for AuthFailure {}

/// Escapes `"` and `\` for an RFC 9110 quoted-string.
fn quote(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

/// A verifier's refusal, before the authenticator adds the attempt and challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fail {
    pub kind: FailureKind,
    pub detail: String,
    /// A verified owner when known (the principal of a revoked key).
    pub subject: Option<String>,
}

impl Fail {
    pub fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            subject: None,
        }
    }

    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
}

/// Unverified text from a credential, made safe for logs: control characters replaced,
/// at most 128 characters.
pub(crate) fn clean(text: &str) -> String {
    const MAX: usize = 128;
    let mut out: String = text
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(kind: FailureKind, oauth: bool, scopes: Option<&str>) -> AuthFailure {
        let challenge = ChallengeContext {
            resource_metadata: oauth
                .then(|| Arc::from("https://gw.example/.well-known/oauth-protected-resource/mcp")),
            required_scopes: scopes.map(Arc::from),
        };
        AuthFailure::new(Fail::new(kind, "detail"), Attempt::default(), challenge)
    }

    const META: &str =
        "resource_metadata=\"https://gw.example/.well-known/oauth-protected-resource/mcp\"";

    #[test]
    fn challenges() {
        type Row = (FailureKind, bool, Option<&'static str>, u16, Option<String>);
        let rows: Vec<Row> = vec![
            (FailureKind::Missing, false, None, 401, Some("Bearer".into())),
            (
                FailureKind::Missing,
                true,
                Some("mcp"),
                401,
                Some(format!("Bearer scope=\"mcp\", {META}")),
            ),
            (
                FailureKind::Expired,
                true,
                Some("mcp"),
                401,
                Some(format!(
                    "Bearer error=\"invalid_token\", error_description=\"credentials expired\", {META}"
                )),
            ),
            (
                FailureKind::UnknownKey,
                false,
                None,
                401,
                Some(
                    "Bearer error=\"invalid_token\", error_description=\"invalid credentials\""
                        .into(),
                ),
            ),
            (
                FailureKind::InsufficientScope {
                    needed: vec!["mcp".into(), "files:write".into()],
                },
                true,
                None,
                403,
                Some(format!(
                    "Bearer error=\"insufficient_scope\", error_description=\"insufficient scope\", scope=\"mcp files:write\", {META}"
                )),
            ),
            (
                FailureKind::CredentialInQuery,
                false,
                None,
                400,
                Some("Bearer error=\"invalid_request\", error_description=\"credentials are not accepted in the query string\"".into()),
            ),
            (FailureKind::UnsupportedScheme, true, None, 401, Some(format!("Bearer {META}"))),
            (
                FailureKind::TooManyFailures {
                    retry_after: Duration::from_millis(1500),
                },
                true,
                None,
                429,
                None,
            ),
            (FailureKind::Unavailable, true, None, 503, None),
        ];
        for (kind, oauth, scopes, status, header) in rows {
            let f = failure(kind.clone(), oauth, scopes);
            assert_eq!(f.status().as_u16(), status, "{kind:?}");
            assert_eq!(f.www_authenticate(), header, "{kind:?}");
        }
    }

    #[test]
    fn retry_after_rounds_up() {
        let f = failure(
            FailureKind::TooManyFailures {
                retry_after: Duration::from_millis(1500),
            },
            false,
            None,
        );
        assert_eq!(f.retry_after_secs(), Some(2));
        let f = failure(
            FailureKind::TooManyFailures {
                retry_after: Duration::from_millis(1),
            },
            false,
            None,
        );
        assert_eq!(f.retry_after_secs(), Some(1));
    }

    #[test]
    fn cleaning_and_quoting() {
        assert_eq!(clean("a\nb\u{7}"), "a?b?");
        assert_eq!(clean(&"x".repeat(200)).chars().count(), 129);
        assert_eq!(quote("a\"b\\c\r"), "a\\\"b\\\\c");
    }
}
