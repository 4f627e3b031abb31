//! Secret values: resolved from `env:NAME`, `file:PATH` or (discouraged) inline text.

use secrecy::{ExposeSecret, SecretString};

/// A resolved secret. Never printed: `Debug` shows only where it came from.
#[derive(Clone)]
pub struct Secret {
    origin: String,
    value: SecretString,
}

impl Secret {
    pub fn new(origin: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            origin: origin.into(),
            value: SecretString::from(value.into()),
        }
    }

    /// Where the value came from, e.g. `env:SEARCH_TOKEN` (safe to log).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn expose(&self) -> &str {
        self.value.expose_secret()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({})", self.origin)
    }
}
