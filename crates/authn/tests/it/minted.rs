//! Gateway-minted tokens: mint → accepted; audience, expiry, scopes, tampering, rotation.

use std::time::{Duration, SystemTime};

use portcullis_authn::{
    Authenticator, FailureKind, MintRequest, OWN_ISSUER, Pepper, PrincipalKind, SigningKeys, admin,
};
use secrecy::ExposeSecret;
use serde_json::Value;

use super::support::*;

const RESOURCE: &str = "https://gw.example/mcp";

fn request(scopes: &[&str], ttl: Duration) -> MintRequest {
    MintRequest {
        principal: "ci-bot".into(),
        kind: PrincipalKind::Service,
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        roles: vec!["deployer".into()],
        ttl,
        audience: None,
    }
}

fn payload(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn minted_tokens_are_accepted_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &format!(
            "[auth]\nresource = \"{RESOURCE}\"\nrequired_scopes = [\"mcp\"]\nmax_failures = \"1000/min\""
        ),
    );
    // Minted through the command's function (its own store connection), verified by a running
    // authenticator on the same database.
    let minted = admin::mint_token(
        &config,
        request(&["mcp", "tools:call"], Duration::from_secs(900)),
    )
    .await
    .unwrap();
    let token = minted.token.expose_secret().to_owned();
    assert!(!format!("{minted:?}").contains(&token));
    let claims = payload(&token);
    assert_eq!(claims["iss"], OWN_ISSUER);
    assert_eq!(claims["aud"], RESOURCE);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        900
    );

    let store = portcullis_store::testing::sqlite(dir.path()).await.unwrap();
    let a = Authenticator::new(&config, store.clone(), http())
        .await
        .unwrap();
    let p = auth(&a, &bearer(&token), ip(1)).await.unwrap();
    assert_eq!(p.id, "ci-bot");
    assert_eq!(p.kind, PrincipalKind::Service);
    assert_eq!(p.method.as_str(), "minted");
    assert_eq!(p.scopes, ["mcp", "tools:call"]);
    assert_eq!(p.roles, ["deployer"]);
    assert_eq!(p.credential_id.as_deref(), Some(minted.jti.as_str()));
    assert_eq!(p.issuer.as_deref(), Some(OWN_ISSUER));

    // The published JWKS holds the signing key's public half only.
    let doc = a.jwks_document().await.unwrap();
    assert_eq!(doc["keys"][0]["kid"], minted.kid.as_str());
    assert_eq!(doc["keys"][0]["kty"], "OKP");
    assert!(doc["keys"][0].get("d").is_none());

    // Rules.
    let other_audience = admin::mint_token(
        &config,
        MintRequest {
            audience: Some("https://other.example/mcp".into()),
            ..request(&["mcp"], Duration::from_secs(60))
        },
    )
    .await
    .unwrap();
    let no_scope = admin::mint_token(&config, request(&["tools:call"], Duration::from_secs(60)))
        .await
        .unwrap();
    let tampered = {
        let parts: Vec<&str> = token.split('.').collect();
        let mut claims = payload(&token);
        claims["sub"] = "admin".into();
        format!("{}.{}.{}", parts[0], b64(claims.to_string()), parts[2])
    };
    let rows: Vec<(&str, String, FailureKind)> = vec![
        (
            "other audience",
            other_audience.token.expose_secret().to_owned(),
            FailureKind::WrongAudience,
        ),
        (
            "lacks required scope",
            no_scope.token.expose_secret().to_owned(),
            FailureKind::InsufficientScope {
                needed: vec!["mcp".into()],
            },
        ),
        ("tampered", tampered, FailureKind::BadSignature),
    ];
    for (name, token, kind) in rows {
        let e = auth(&a, &bearer(&token), ip(2)).await.unwrap_err();
        assert_eq!(e.kind(), &kind, "{name}: {e}");
    }

    // TTL is capped.
    let err = admin::mint_token(&config, request(&["mcp"], Duration::from_secs(25 * 3600)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ttl"), "{err}");
    let err = admin::mint_token(&config, request(&["bad scope"], Duration::from_secs(60)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("scope"), "{err}");
}

#[tokio::test]
async fn rotation_keeps_live_tokens_valid() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &format!("[auth]\nresource = \"{RESOURCE}\""));
    let store = portcullis_store::testing::sqlite(dir.path()).await.unwrap();
    let keys = SigningKeys::open(store.clone()).await.unwrap();
    let pepper = Pepper::resolve(&config).unwrap().unwrap();
    let now = SystemTime::now();
    let first = portcullis_authn::mint(
        &keys,
        &pepper,
        RESOURCE,
        request(&[], Duration::from_secs(3600)),
        now,
    )
    .await
    .unwrap();
    let again = portcullis_authn::mint(
        &keys,
        &pepper,
        RESOURCE,
        request(&[], Duration::from_secs(60)),
        now,
    )
    .await
    .unwrap();
    assert_eq!(first.kid, again.kid, "one key signs during its period");
    // Past the signing period a new key signs; the old one still verifies.
    let later = now + portcullis_authn::SIGNING_PERIOD + Duration::from_secs(1);
    let next = portcullis_authn::mint(
        &keys,
        &pepper,
        RESOURCE,
        request(&[], Duration::from_secs(60)),
        later,
    )
    .await
    .unwrap();
    assert_ne!(first.kid, next.kid, "a new key after the signing period");
    let a = Authenticator::new(&config, store.clone(), http())
        .await
        .unwrap();
    auth(&a, &bearer(first.token.expose_secret()), ip(1))
        .await
        .unwrap();
    let published: Vec<String> = keys
        .public_keys(portcullis_store::now_ms())
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert!(published.contains(&first.kid) && published.contains(&next.kid));
    // A store with the wrong pepper cannot sign with the existing key.
    let wrong = config_with_env(
        dir.path(),
        "[auth]\nkey_pepper = \"env:P\"",
        &[("P", "a-different-pepper-0123456789")],
    );
    let err = admin::mint_token(&wrong, request(&[], Duration::from_secs(60)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("pepper"), "{err}");
}
