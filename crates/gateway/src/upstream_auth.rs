//! The gateway's own credentials toward an upstream (never a client's): a configured bearer
//! goes straight into the transport; `auth.client_credentials` becomes a token source that
//! runs the OAuth client credentials grant at the upstream's authorization server.

use std::sync::Arc;

use async_trait::async_trait;
use portcullis_authn::client_credentials::ClientCredentials;
use portcullis_config::{Upstream, UpstreamTransport};
use portcullis_transport::upstream::TokenSource;
use secrecy::SecretString;

struct Grant(ClientCredentials);

#[async_trait]
impl TokenSource for Grant {
    async fn token(&self) -> Result<SecretString, String> {
        self.0.token().await.map_err(|e| e.to_string())
    }

    async fn invalidate(&self) {
        self.0.invalidate().await;
    }
}

/// An HTTP client for token endpoints (and the authenticator's JWKS and introspection calls).
pub fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())
}

/// The token source of `upstream`, when it is configured with `auth.client_credentials`.
pub fn token_source(upstream: &Upstream, http: &reqwest::Client) -> Option<Arc<dyn TokenSource>> {
    let UpstreamTransport::Http {
        url,
        oauth: Some(cc),
        ..
    } = &upstream.transport
    else {
        return None;
    };
    let mut grant = ClientCredentials::new(
        cc.token_url.clone(),
        cc.client_id.clone(),
        SecretString::from(cc.client_secret.expose().to_owned()),
        http.clone(),
    )
    .with_resource(cc.resource.clone().unwrap_or_else(|| url.clone()));
    if let Some(scope) = &cc.scope {
        grant = grant.with_scope(scope.clone());
    }
    Some(Arc::new(Grant(grant)))
}
