//! Who a request comes from, once authenticated.

use std::net::IpAddr;
use std::time::SystemTime;

/// A person or a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// `Portcullis::User::"…"` in Cedar.
    User,
    /// `Portcullis::Service::"…"` in Cedar.
    Service,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Service => "service",
        }
    }

    /// `user` or `service`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "user" => Some(PrincipalKind::User),
            "service" => Some(PrincipalKind::Service),
            _ => None,
        }
    }
}

/// The kind of credential a request carried (besides a client certificate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Credential {
    /// A Portcullis API key (`X-API-Key` or `Authorization: Bearer pk_…`).
    ApiKey,
    /// A JWT access token from a configured `[[auth.jwt]]` issuer.
    Jwt,
    /// An opaque token, checked by RFC 7662 introspection.
    Introspection,
    /// A token signed by this gateway's own key (`portcullis token mint`).
    Minted,
}

impl Credential {
    pub fn as_str(self) -> &'static str {
        match self {
            Credential::ApiKey => "api_key",
            Credential::Jwt => "jwt",
            Credential::Introspection => "introspection",
            Credential::Minted => "minted",
        }
    }
}

/// How a caller proved who they are (Cedar attribute `auth_method`, audit field `auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// No credentials; only where the operator set `dangerous_allow_anonymous`.
    Anonymous,
    /// A verified client certificate alone.
    Mtls,
    /// A credential alone.
    Token(Credential),
    /// A verified client certificate and a credential, both required (`[auth.mtls]` together
    /// with another method). The principal comes from the credential.
    MtlsAndToken(Credential),
}

impl AuthMethod {
    /// `anonymous`, `mtls`, `api_key`, `jwt`, `introspection`, `minted`, or `mtls+<credential>`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Anonymous => "anonymous",
            AuthMethod::Mtls => "mtls",
            AuthMethod::Token(c) => c.as_str(),
            AuthMethod::MtlsAndToken(Credential::ApiKey) => "mtls+api_key",
            AuthMethod::MtlsAndToken(Credential::Jwt) => "mtls+jwt",
            AuthMethod::MtlsAndToken(Credential::Introspection) => "mtls+introspection",
            AuthMethod::MtlsAndToken(Credential::Minted) => "mtls+minted",
        }
    }

    /// The credential, if one was used.
    pub fn credential(self) -> Option<Credential> {
        match self {
            AuthMethod::Token(c) | AuthMethod::MtlsAndToken(c) => Some(c),
            AuthMethod::Anonymous | AuthMethod::Mtls => None,
        }
    }

    /// Whether a verified client certificate was part of it.
    pub fn uses_mtls(self) -> bool {
        matches!(self, AuthMethod::Mtls | AuthMethod::MtlsAndToken(_))
    }
}

impl std::fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller. Holds no secret: `credential_id` is a key id or a token's `jti`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The principal's id: API key principal, token `sub` (or `client_id`), certificate identity.
    pub id: String,
    pub kind: PrincipalKind,
    /// Cedar parents `Portcullis::Role::"…"`: the key's roles or the token's roles claim.
    pub roles: Vec<String>,
    /// OAuth scopes (`scope` / `scp`); empty for API keys and certificates.
    pub scopes: Vec<String>,
    pub method: AuthMethod,
    pub client_ip: Option<IpAddr>,
    /// The API key id or the token's `jti`; never the secret.
    pub credential_id: Option<String>,
    /// The token's issuer (`iss`), for JWT, introspected and minted tokens.
    pub issuer: Option<String>,
    /// The verified client certificate's identity (SAN URI or subject CN), when mTLS is on.
    pub cert_identity: Option<String>,
    /// When the credential stops being valid, if it says.
    pub expires_at: Option<SystemTime>,
}

impl Principal {
    /// Whether every scope in `needed` was granted.
    pub fn has_scopes(&self, needed: &[String]) -> bool {
        needed.iter().all(|s| self.scopes.contains(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names() {
        let rows = [
            (AuthMethod::Anonymous, "anonymous", false),
            (AuthMethod::Mtls, "mtls", true),
            (AuthMethod::Token(Credential::ApiKey), "api_key", false),
            (AuthMethod::Token(Credential::Jwt), "jwt", false),
            (AuthMethod::Token(Credential::Minted), "minted", false),
            (
                AuthMethod::MtlsAndToken(Credential::Introspection),
                "mtls+introspection",
                true,
            ),
            (AuthMethod::MtlsAndToken(Credential::Jwt), "mtls+jwt", true),
        ];
        for (method, name, mtls) in rows {
            assert_eq!(method.as_str(), name);
            assert_eq!(method.uses_mtls(), mtls, "{name}");
        }
    }

    #[test]
    fn kinds_round_trip() {
        for kind in [PrincipalKind::User, PrincipalKind::Service] {
            assert_eq!(PrincipalKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(PrincipalKind::parse("robot"), None);
    }
}
