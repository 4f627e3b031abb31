//! Authentication: who is calling.
//!
//! [`Authenticator::authenticate`] turns a request's credentials into a [`Principal`] or an
//! [`AuthFailure`] that says exactly how to answer (status, `WWW-Authenticate`, public reason)
//! and what to audit. Methods (DESIGN §3.3 `[auth]`):
//!
//! - API keys (`apikey`): `pk_live_<id>_<secret>`, stored as HMAC-SHA256 with a server-side
//!   pepper ([`Pepper`]), compared in constant time, revocation seen within a second.
//! - OAuth 2.1 resource server: JWT access tokens against their issuer's JWKS (`jwt`), opaque
//!   tokens by RFC 7662 introspection (`introspection`), RFC 9728 metadata (`metadata`).
//! - mTLS: [`tls::server_config`] for the listener and [`tls::principal_from_cert`].
//! - Gateway-minted tokens (`minted`): EdDSA JWTs signed with keys kept (encrypted) in the
//!   store, rotated automatically.
//!
//! Every failure that counts feeds a per-address limiter ([`FailureLimiter`]). Credentials
//! never appear in errors, logs or `Debug` output.

pub mod admin;
mod apikey;
mod authenticator;
pub mod client_credentials;
mod credentials;
mod error;
mod failure;
mod introspection;
mod jwt;
mod limiter;
pub mod metadata;
mod minted;
mod pepper;
mod principal;
mod timestamps;
pub mod tls;

pub use apikey::{CreatedKey, KEY_PREFIX, KeyInfo, KeyStore, NewKey};
pub use authenticator::{Authenticator, Tuning};
pub use credentials::{CredentialsSeen, PeerInfo, query_has_credentials};
pub use error::AuthnError;
pub use failure::{Attempt, AuthFailure, FailureKind};
pub use introspection::IntrospectionTuning;
pub use jwt::header::Alg;
pub use jwt::jwks::JwksTuning;
pub use limiter::FailureLimiter;
pub use minted::{
    MAX_TTL, MintRequest, MintedToken, OWN_ISSUER, PublicSigningKey, SIGNING_PERIOD, SigningKeys,
    is_scope_token, mint,
};
pub use pepper::Pepper;
pub use principal::{AuthMethod, Credential, Principal, PrincipalKind};
pub use timestamps::rfc3339_ms;

/// Locks a cache; a poisoned lock only means another request panicked mid-update of a cache,
/// whose content stays usable.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
