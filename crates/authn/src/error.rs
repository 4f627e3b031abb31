//! Errors setting up authentication or running the key and token commands (not request
//! failures: those are [`crate::AuthFailure`]).

use std::path::PathBuf;

/// Why the authenticator could not be built, or an operator command failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    #[error(transparent)]
    Store(#[from] portcullis_store::StoreError),
    #[error("store query failed: {0}")]
    Sql(#[from] portcullis_store::sqlx::Error),
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error(
        "auth.key_pepper is required with a {0} store: every replica must hash keys and encrypt \
         signing keys with the same pepper"
    )]
    PepperRequired(&'static str),
    #[error("no API key with id {0:?}")]
    NoSuchKey(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Crypto(String),
    #[error("token endpoint: {0}")]
    TokenEndpoint(String),
}

impl AuthnError {
    pub(crate) fn file(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        AuthnError::File {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}
