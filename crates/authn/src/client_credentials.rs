//! The gateway's own credential toward an upstream: an OAuth 2.1 client-credentials grant
//! (RFC 6749 §4.4, with an RFC 8707 `resource` when given) against the upstream's token
//! endpoint. The token is cached until shortly before it expires; secrets are held in
//! `SecretString` (zeroized on drop) and never logged. Clients' own tokens are never used.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::AuthnError;

/// Lifetime assumed when the token response has no `expires_in`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// Refresh this long before expiry (or at half-life for short-lived tokens).
const REFRESH_MARGIN: Duration = Duration::from_secs(30);
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// A token source for one upstream.
pub struct ClientCredentials {
    token_url: String,
    client_id: String,
    client_secret: SecretString,
    scope: Option<String>,
    resource: Option<String>,
    http: reqwest::Client,
    cached: tokio::sync::Mutex<Option<(SecretString, Instant)>>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("scope", &self.scope)
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    expires_in: Option<u64>,
}

impl ClientCredentials {
    pub fn new(
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretString,
        http: reqwest::Client,
    ) -> Self {
        Self {
            token_url: token_url.into(),
            client_id: client_id.into(),
            client_secret,
            scope: None,
            resource: None,
            http,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// Space-separated scopes to request.
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The upstream's canonical URL, sent as the RFC 8707 `resource` parameter.
    pub fn with_resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// A valid access token: the cached one, or a fresh one from the token endpoint.
    pub async fn token(&self) -> Result<SecretString, AuthnError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, refresh_at)) = cached.as_ref()
            && Instant::now() < *refresh_at
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.fetch().await?;
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        *cached = Some((token.clone(), Instant::now() + lifetime - margin));
        Ok(token)
    }

    /// Drops the cached token (e.g. after the upstream answered 401 with it).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn fetch(&self) -> Result<(SecretString, Duration), AuthnError> {
        let fail = |why: String| AuthnError::TokenEndpoint(format!("{}: {why}", self.token_url));
        let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        if let Some(resource) = &self.resource {
            form.push(("resource", resource));
        }
        let mut response = self
            .http
            .post(&self.token_url)
            .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
            .header(http::header::ACCEPT, "application/json")
            .form(&form)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| fail(format!("request failed: {}", e.without_url())))?;
        let status = response.status();
        let mut body = Zeroizing::new(Vec::new());
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| fail(format!("reading the response failed: {}", e.without_url())))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(fail("response too large".to_owned()));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            // The error body (RFC 6749 §5.2) holds no secret of ours; show its `error` only.
            let error = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_default();
            return Err(fail(format!("HTTP {status} {error}")));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|_| fail("response is not a token response".to_owned()))?;
        if !parsed.token_type.eq_ignore_ascii_case("bearer") {
            return Err(fail(format!(
                "token_type {:?} is not Bearer",
                parsed.token_type
            )));
        }
        let lifetime = parsed
            .expires_in
            .map_or(DEFAULT_LIFETIME, Duration::from_secs)
            .max(Duration::from_secs(1));
        Ok((SecretString::from(parsed.access_token), lifetime))
    }
}
