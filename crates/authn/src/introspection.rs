//! Opaque access tokens, checked by RFC 7662 token introspection (`[auth.introspection]`).
//!
//! The gateway authenticates to the endpoint with HTTP Basic (RFC 6749 §2.3.1). Results are
//! cached by the token's SHA-256 (never the token): an active token for at most
//! [`IntrospectionTuning::positive_ttl`] and never past its `exp`; a refused one for
//! [`IntrospectionTuning::negative_ttl`]. An unreachable endpoint is a 503, not a 401.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::failure::{Fail, FailureKind};
use crate::jwt::claims::{self, ClaimNames, Expect, LEEWAY_SECS};
use crate::lock;
use crate::principal::{AuthMethod, Credential, Principal};

/// Cache and request timings. [`Default`] is what the gateway runs with.
#[derive(Debug, Clone, Copy)]
pub struct IntrospectionTuning {
    pub positive_ttl: Duration,
    pub negative_ttl: Duration,
    pub timeout: Duration,
}

impl Default for IntrospectionTuning {
    fn default() -> Self {
        Self {
            positive_ttl: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
        }
    }
}

const CACHE_MAX: usize = 10_000;

type CachedOutcome = (Instant, Result<Principal, Fail>);
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

pub(crate) struct Introspector {
    url: String,
    client_id: String,
    client_secret: portcullis_config::Secret,
    http: reqwest::Client,
    /// Accepted `aud` values when the response has one.
    audiences: Vec<String>,
    tuning: IntrospectionTuning,
    /// SHA-256 of the token → (valid until, outcome).
    cache: Mutex<HashMap<[u8; 32], CachedOutcome>>,
}

impl Introspector {
    pub fn new(
        config: &portcullis_config::Introspection,
        audiences: Vec<String>,
        http: reqwest::Client,
        tuning: IntrospectionTuning,
    ) -> Self {
        Self {
            url: config.url.clone(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
            http,
            audiences,
            tuning,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn verify(
        &self,
        token: &str,
        names: ClaimNames<'_>,
        now_secs: u64,
    ) -> Result<Principal, Fail> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = Instant::now();
        if let Some((until, outcome)) = lock(&self.cache).get(&key)
            && now < *until
        {
            return outcome.clone();
        }
        let response = self.call(token).await?;
        let outcome = self.decide(&response, names, now_secs);
        let ttl = match &outcome {
            // Never past the moment the token stops being acceptable (exp + leeway).
            Ok(principal) => match principal.expires_at {
                None => self.tuning.positive_ttl,
                Some(exp) => (exp + Duration::from_secs(LEEWAY_SECS))
                    .duration_since(std::time::SystemTime::now())
                    .unwrap_or(Duration::ZERO)
                    .min(self.tuning.positive_ttl),
            },
            Err(_) => self.tuning.negative_ttl,
        };
        let mut cache = lock(&self.cache);
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, (until, _)| *until > now);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(key, (now + ttl, outcome.clone()));
        outcome
    }

    /// The pure part: an introspection response → principal or refusal.
    fn decide(
        &self,
        response: &Map<String, Value>,
        names: ClaimNames<'_>,
        now_secs: u64,
    ) -> Result<Principal, Fail> {
        decide(response, &self.audiences, names, now_secs)
    }

    async fn call(&self, token: &str) -> Result<Map<String, Value>, Fail> {
        let unavailable = |why: String| {
            Fail::new(
                FailureKind::Unavailable,
                format!("introspection at {}: {why}", self.url),
            )
        };
        let mut response = self
            .http
            .post(&self.url)
            .basic_auth(
                form_encode(&self.client_id),
                Some(form_encode(self.client_secret.expose())),
            )
            .header(http::header::ACCEPT, "application/json")
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .timeout(self.tuning.timeout)
            .send()
            .await
            .map_err(|e| unavailable(format!("request failed: {}", e.without_url())))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unavailable(format!("reading the response failed: {}", e.without_url())))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(unavailable(format!(
                    "response larger than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if status == http::StatusCode::BAD_REQUEST
            && let Some(code) = refused_token(&body)
        {
            // The endpoint judged the token itself (e.g. a JWT it will not introspect): a
            // refusal of this credential, not an outage.
            return Err(Fail::new(
                FailureKind::IntrospectionInactive,
                format!("introspection at {} refused the token: {code}", self.url),
            ));
        }
        if !status.is_success() {
            return Err(unavailable(format!(
                "HTTP {status}{}",
                if status == 401 || status == 403 {
                    " (the endpoint refused the gateway's client credentials)"
                } else {
                    ""
                }
            )));
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(unavailable("response is not a JSON object".to_owned())),
        }
    }
}

/// The OAuth error of a 400 answer that is about the token, not the gateway's request
/// (`unsupported_token_type`, `invalid_token`, `invalid_request`).
fn refused_token(body: &[u8]) -> Option<&'static str> {
    let value: Value = serde_json::from_slice(body).ok()?;
    match value.get("error")?.as_str()? {
        "unsupported_token_type" => Some("unsupported_token_type"),
        "invalid_token" => Some("invalid_token"),
        "invalid_request" => Some("invalid_request"),
        _ => None,
    }
}

/// RFC 7662 §2.2: `active` must be `true`; then the usual claim checks, with `aud` checked
/// only when the response carries one and `exp` optional.
pub(crate) fn decide(
    response: &Map<String, Value>,
    audiences: &[String],
    names: ClaimNames<'_>,
    now_secs: u64,
) -> Result<Principal, Fail> {
    if response.get("active") != Some(&Value::Bool(true)) {
        return Err(Fail::new(
            FailureKind::IntrospectionInactive,
            "introspection says the token is not active",
        ));
    }
    claims::check(
        response,
        &Expect {
            issuer: None,
            audience: response.contains_key("aud").then_some(audiences),
            require_exp: false,
            now: now_secs,
            leeway: LEEWAY_SECS,
        },
    )?;
    claims::principal(
        response,
        names,
        AuthMethod::Token(Credential::Introspection),
    )
}

/// `application/x-www-form-urlencoded` encoding of a client id or secret (RFC 6749 §2.3.1).
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._*".contains(&b) {
            out.push(char::from(b));
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn a_400_about_the_token_is_a_refusal_not_an_outage() {
        let rows: [(&[u8], Option<&str>); 5] = [
            (
                br#"{"error":"unsupported_token_type","error_description":"Structured JWT Tokens cannot be introspected"}"#,
                Some("unsupported_token_type"),
            ),
            (br#"{"error":"invalid_token"}"#, Some("invalid_token")),
            (br#"{"error":"invalid_request"}"#, Some("invalid_request")),
            (br#"{"error":"invalid_client"}"#, None),
            (b"<html>bad gateway</html>", None),
        ];
        for (body, want) in rows {
            assert_eq!(
                refused_token(body),
                want,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn decision_table() {
        use FailureKind::*;
        let auds = vec!["https://gw.example/mcp".to_owned()];
        let names = ClaimNames { roles: "roles" };
        let rows: Vec<(&str, Value, Result<&str, FailureKind>)> = vec![
            (
                "active",
                json!({"active": true, "sub": "alice", "scope": "mcp"}),
                Ok("alice"),
            ),
            (
                "client only",
                json!({"active": true, "client_id": "bot"}),
                Ok("bot"),
            ),
            (
                "inactive",
                json!({"active": false}),
                Err(IntrospectionInactive),
            ),
            (
                "active as string",
                json!({"active": "true", "sub": "a"}),
                Err(IntrospectionInactive),
            ),
            ("no active", json!({"sub": "a"}), Err(IntrospectionInactive)),
            (
                "our audience",
                json!({"active": true, "sub": "a", "aud": ["x", "https://gw.example/mcp"]}),
                Ok("a"),
            ),
            (
                "other audience",
                json!({"active": true, "sub": "a", "aud": "https://other/mcp"}),
                Err(WrongAudience),
            ),
            (
                "expired yet active",
                json!({"active": true, "sub": "a", "exp": NOW - 120}),
                Err(Expired),
            ),
            (
                "no subject",
                json!({"active": true}),
                Err(MissingClaim("sub")),
            ),
        ];
        for (name, response, expected) in rows {
            let Value::Object(map) = response else {
                unreachable!()
            };
            let got = decide(&map, &auds, names, NOW);
            assert_eq!(
                got.as_ref()
                    .map(|p| p.id.as_str())
                    .map_err(|f| f.kind.clone()),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn client_credentials_are_form_encoded() {
        assert_eq!(form_encode("a b:c/é"), "a+b%3Ac%2F%C3%A9");
        assert_eq!(form_encode("plain-id_1.x*"), "plain-id_1.x*");
    }
}
