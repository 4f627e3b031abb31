//! RFC 7662 introspection against a local endpoint: caching, outages, client authentication;
//! and the client-credentials token source for upstreams.

use std::time::Duration;

use portcullis_authn::client_credentials::ClientCredentials;
use portcullis_authn::{Authenticator, FailureKind, Tuning};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::support::*;

const RESOURCE: &str = "https://gw.example/mcp";
// base64("gateway:s3cret value") — form-encoded secret per RFC 6749 §2.3.1: "s3cret+value".
const BASIC: &str = "Basic Z2F0ZXdheTpzM2NyZXQrdmFsdWU=";

async fn setup(server: &MockServer, tuning: Tuning) -> (tempfile::TempDir, Authenticator) {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[auth]\nresource = \"{RESOURCE}\"\nmax_failures = \"1000/min\"\n[auth.introspection]\n\
         url = \"{}/introspect\"\nclient_id = \"gateway\"\nclient_secret = \"env:SECRET\"",
        server.uri()
    );
    let config = config_with_env(dir.path(), &toml, &[("SECRET", "s3cret value")]);
    let store = portcullis_store::testing::sqlite(dir.path()).await.unwrap();
    let a = Authenticator::with_tuning(&config, store, http(), tuning)
        .await
        .unwrap();
    (dir, a)
}

async fn introspection_calls(server: &MockServer) -> usize {
    server.received_requests().await.unwrap_or_default().len()
}

#[tokio::test]
async fn active_tokens_are_cached_inactive_briefly() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/introspect"))
        .and(header("authorization", BASIC))
        .and(body_string_contains("token=good-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "active": true, "sub": "alice", "scope": "mcp", "aud": RESOURCE,
            "exp": now() + 600, "iss": "https://idp.example", "roles": ["dev"]
        })))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/introspect"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"active": false})))
        .mount(&server)
        .await;
    let mut tuning = Tuning::default();
    tuning.introspection.negative_ttl = Duration::from_millis(300);
    let (_dir, a) = setup(&server, tuning).await;

    let p = auth(&a, &bearer("good-token"), ip(1)).await.unwrap();
    assert_eq!(
        (p.id.as_str(), p.method.as_str()),
        ("alice", "introspection")
    );
    assert_eq!(p.roles, ["dev"]);
    auth(&a, &bearer("good-token"), ip(1)).await.unwrap();
    assert_eq!(
        introspection_calls(&server).await,
        1,
        "the second use is served from the cache"
    );

    let e = auth(&a, &bearer("revoked-token"), ip(2)).await.unwrap_err();
    assert_eq!(e.kind(), &FailureKind::IntrospectionInactive);
    auth(&a, &bearer("revoked-token"), ip(2)).await.unwrap_err();
    assert_eq!(
        introspection_calls(&server).await,
        2,
        "a refusal is cached too"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    auth(&a, &bearer("revoked-token"), ip(2)).await.unwrap_err();
    assert_eq!(introspection_calls(&server).await, 3, "…but only briefly");

    // Active now, past exp but within the leeway for 2-3 more seconds: never cached beyond.
    Mock::given(method("POST"))
        .and(path("/introspect"))
        .and(body_string_contains("token=soon-expired"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "active": true, "sub": "bob", "exp": now() + 3 - 60
        })))
        .with_priority(1)
        .mount(&server)
        .await;
    auth(&a, &bearer("soon-expired"), ip(3)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let e = auth(&a, &bearer("soon-expired"), ip(3)).await.unwrap_err();
    assert_eq!(e.kind(), &FailureKind::Expired);
    assert_eq!(
        introspection_calls(&server).await,
        5,
        "the cache entry ended at exp"
    );
}

#[tokio::test]
async fn endpoint_outage_is_503_and_wrong_credentials_are_reported() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let (_dir, a) = setup(&server, Tuning::default()).await;
    let e = auth(&a, &bearer("any"), ip(1)).await.unwrap_err();
    assert_eq!(e.kind(), &FailureKind::Unavailable);
    assert_eq!(e.status(), 503);
    assert!(e.detail().contains("client credentials"), "{}", e.detail());
    assert!(!e.detail().contains("s3cret"));
    drop(server);
    let e = auth(&a, &bearer("other"), ip(1)).await.unwrap_err();
    assert_eq!(e.kind(), &FailureKind::Unavailable);
}

#[tokio::test]
async fn client_credentials_token_is_cached_until_near_expiry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header(
            "authorization",
            "Basic dXBzdHJlYW0tY2xpZW50OnNlY3JldA==",
        ))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains(
            "resource=https%3A%2F%2Fsearch.internal%2Fmcp",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "upstream-token", "token_type": "Bearer", "expires_in": 2
        })))
        .mount(&server)
        .await;
    let source = ClientCredentials::new(
        format!("{}/token", server.uri()),
        "upstream-client",
        SecretString::from("secret"),
        http(),
    )
    .with_scope("search")
    .with_resource("https://search.internal/mcp");
    assert!(!format!("{source:?}").contains("secret\""));
    assert_eq!(
        source.token().await.unwrap().expose_secret(),
        "upstream-token"
    );
    assert_eq!(
        source.token().await.unwrap().expose_secret(),
        "upstream-token"
    );
    assert_eq!(introspection_calls(&server).await, 1, "cached");
    // A 2 s token is refreshed at half-life.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    source.token().await.unwrap();
    assert_eq!(
        introspection_calls(&server).await,
        2,
        "refreshed before expiry"
    );
    source.invalidate().await;
    source.token().await.unwrap();
    assert_eq!(introspection_calls(&server).await, 3);

    let refusing = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_client"})))
        .mount(&refusing)
        .await;
    let bad = ClientCredentials::new(
        format!("{}/token", refusing.uri()),
        "c",
        SecretString::from("s"),
        http(),
    );
    let err = bad.token().await.unwrap_err().to_string();
    assert!(err.contains("invalid_client"), "{err}");
}
