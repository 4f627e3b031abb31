//! The authentication stage: request headers → [`Authenticated`] or a refusal.
//!
//! Credential checks (API keys, OAuth bearer tokens, mTLS) plug in here; until one is configured
//! only an operator's explicit `dangerous_allow_anonymous` lets requests through.

use std::net::IpAddr;

use http::HeaderMap;

use crate::error::GatewayError;
use crate::proof::{AuthMethod, Authenticated, Principal};

#[derive(Debug, Clone)]
pub struct Authenticator {
    allow_anonymous: bool,
}

impl Authenticator {
    pub fn new(auth: &portcullis_config::Auth) -> Self {
        Self {
            allow_anonymous: auth.dangerous_allow_anonymous,
        }
    }

    /// Pure decision over the request's headers and peer address.
    pub fn authenticate(
        &self,
        _headers: &HeaderMap,
        client_ip: Option<IpAddr>,
    ) -> Result<Authenticated, GatewayError> {
        if self.allow_anonymous {
            return Ok(Authenticated::assert(Principal {
                id: "anonymous".into(),
                auth_method: AuthMethod::Anonymous,
                client_ip,
            }));
        }
        Err(GatewayError::Unauthenticated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let rows = [(true, true), (false, false)];
        for (allow, ok) in rows {
            let a = Authenticator {
                allow_anonymous: allow,
            };
            let got = a.authenticate(&HeaderMap::new(), None);
            assert_eq!(got.is_ok(), ok, "allow_anonymous={allow}");
            if let Ok(p) = got {
                assert_eq!(p.principal().id, "anonymous");
            }
        }
    }
}
