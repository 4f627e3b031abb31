//! Every JWT validation rule, through `Authenticator`, against a local JWKS server with keys
//! generated here.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis_authn::{Authenticator, FailureKind, Tuning};
use serde_json::{Value, json};

use super::support::*;

const ISSUER: &str = "https://idp.example";
const OTHER_ISSUER: &str = "https://idp2.example";
const AUDIENCE: &str = "https://gw.example/mcp";

struct Setup {
    _dir: tempfile::TempDir,
    server: wiremock::MockServer,
    authn: Authenticator,
    rsa: TestKey,
    ec: TestKey,
    ed: TestKey,
}

async fn setup(tuning: Tuning) -> Setup {
    let rsa = TestKey::rsa("rsa-1");
    let ec = TestKey::ec("ec-1");
    let ed = TestKey::ed("ed-1");
    let server = jwks_server(&[&rsa, &ec, &ed]).await;
    let other = jwks_server(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[auth]\nresource = \"{AUDIENCE}\"\nrequired_scopes = [\"mcp\"]\nmax_failures = \"1000/min\"\n\
         [[auth.jwt]]\nissuer = \"{ISSUER}\"\njwks_url = \"{}/jwks\"\naudience = \"{AUDIENCE}\"\n\
         [[auth.jwt]]\nissuer = \"{OTHER_ISSUER}\"\njwks_url = \"{}/jwks\"\naudience = \"{AUDIENCE}\"\n\
         [authz]\nroles_claim = \"groups\"",
        server.uri(),
        other.uri(),
    );
    let config = config(dir.path(), &toml);
    let store = portcullis_store::testing::sqlite(dir.path()).await.unwrap();
    let authn = Authenticator::with_tuning(&config, store, http(), tuning)
        .await
        .unwrap();
    std::mem::forget(other);
    Setup {
        _dir: dir,
        server,
        authn,
        rsa,
        ec,
        ed,
    }
}

fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "exp": now() + 300,
        "iat": now(),
        "jti": "jti-1",
        "scope": "mcp files:read",
        "groups": ["dev"],
    })
}

fn with(changes: Value) -> Value {
    let mut c = claims();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

#[tokio::test]
async fn token_validation_table() {
    let s = setup(Tuning::default()).await;
    let forged = {
        let token = s.rsa.sign(&claims());
        let parts: Vec<&str> = token.split('.').collect();
        let evil = b64(with(json!({"sub": "mallory"})).to_string());
        format!("{}.{evil}.{}", parts[0], parts[2])
    };
    let impostor = TestKey::rsa("rsa-1"); // same kid, different key
    let hs256_with_public_key = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("rsa-1".into());
        jsonwebtoken::encode(
            &header,
            &claims(),
            &EncodingKey::from_secret(s.rsa.public_pem.as_bytes()),
        )
        .unwrap()
    };
    let rs512_on_rs256_key = {
        let mut header = Header::new(Algorithm::RS512);
        header.kid = Some("rsa-1".into());
        s.rsa.sign_with(header, &claims())
    };
    let typed = |typ: &str| {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("rsa-1".into());
        header.typ = Some(typ.into());
        s.rsa.sign_with(header, &claims())
    };
    let es256_key_as_rs256 = {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("rsa-1".into());
        s.ec.sign_with(header, &claims())
    };

    type Row = (&'static str, String, Result<&'static str, FailureKind>);
    let rows: Vec<Row> = vec![
        ("valid RS256", s.rsa.sign(&claims()), Ok("alice")),
        ("valid ES256", s.ec.sign(&claims()), Ok("alice")),
        ("valid EdDSA", s.ed.sign(&claims()), Ok("alice")),
        ("typ JWT", typed("JWT"), Ok("alice")),
        (
            "wrong audience",
            s.rsa
                .sign(&with(json!({"aud": "https://other.example/mcp"}))),
            Err(FailureKind::WrongAudience),
        ),
        (
            "no audience",
            s.rsa.sign(&with(json!({"aud": null}))),
            Err(FailureKind::WrongAudience),
        ),
        (
            "expired",
            s.rsa.sign(&with(json!({"exp": now() - 120}))),
            Err(FailureKind::Expired),
        ),
        (
            "expired within leeway",
            s.rsa.sign(&with(json!({"exp": now() - 30}))),
            Ok("alice"),
        ),
        (
            "no exp",
            s.rsa.sign(&with(json!({"exp": null}))),
            Err(FailureKind::MissingClaim("exp")),
        ),
        (
            "nbf in the future",
            s.rsa.sign(&with(json!({"nbf": now() + 600}))),
            Err(FailureKind::NotYetValid),
        ),
        (
            "unknown issuer",
            s.rsa.sign(&with(json!({"iss": "https://evil.example"}))),
            Err(FailureKind::WrongIssuer),
        ),
        (
            "other configured issuer, our key",
            s.rsa.sign(&with(json!({"iss": OTHER_ISSUER}))),
            Err(FailureKind::UnknownSigningKey),
        ),
        (
            "alg none",
            unsigned("rsa-1", &claims()),
            Err(FailureKind::DisallowedAlgorithm),
        ),
        (
            "HS256 keyed with the RSA public key",
            hs256_with_public_key,
            Err(FailureKind::DisallowedAlgorithm),
        ),
        (
            "RS512 on a key published for RS256",
            rs512_on_rs256_key,
            Err(FailureKind::DisallowedAlgorithm),
        ),
        (
            "ES256 header on the RSA kid",
            es256_key_as_rs256,
            Err(FailureKind::DisallowedAlgorithm),
        ),
        ("forged payload", forged, Err(FailureKind::BadSignature)),
        (
            "signed by another key with our kid",
            impostor.sign(&claims()),
            Err(FailureKind::BadSignature),
        ),
        (
            "DPoP proof as access token",
            typed("dpop+jwt"),
            Err(FailureKind::WrongTokenType),
        ),
        (
            "no subject",
            s.rsa.sign(&with(json!({"sub": null}))),
            Err(FailureKind::MissingClaim("sub")),
        ),
        (
            "missing required scope",
            s.rsa.sign(&with(json!({"scope": "files:read"}))),
            Err(FailureKind::InsufficientScope {
                needed: vec!["mcp".into()],
            }),
        ),
        (
            "garbage",
            "not-a-token".to_owned(),
            Err(FailureKind::UnsupportedToken),
        ),
    ];
    for (i, (name, token, expected)) in rows.into_iter().enumerate() {
        let got = auth(&s.authn, &bearer(&token), ip(u8::try_from(i).unwrap())).await;
        match (&got, &expected) {
            (Ok(p), Ok(id)) => {
                assert_eq!(&p.id, id, "{name}");
                assert_eq!(p.roles, ["dev"], "{name}");
                assert!(p.scopes.contains(&"mcp".to_owned()), "{name}");
                assert_eq!(p.credential_id.as_deref(), Some("jti-1"), "{name}");
                assert_eq!(p.method.as_str(), "jwt", "{name}");
            }
            (Err(f), Err(kind)) => {
                assert_eq!(f.kind(), kind, "{name}: {f}");
                assert!(
                    !f.to_string().contains(&token),
                    "{name}: the token leaked into the message"
                );
                assert!(
                    !format!("{f:?}").contains(&token),
                    "{name}: the token leaked into Debug"
                );
            }
            _ => panic!("{name}: got {got:?}, expected {expected:?}"),
        }
    }
}

#[tokio::test]
async fn challenges_for_oauth_failures() {
    let s = setup(Tuning::default()).await;
    let meta = "resource_metadata=\"https://gw.example/.well-known/oauth-protected-resource/mcp\"";
    let expired = auth(
        &s.authn,
        &bearer(&s.rsa.sign(&with(json!({"exp": now() - 120})))),
        ip(1),
    )
    .await
    .unwrap_err();
    assert_eq!(expired.status(), 401);
    assert_eq!(
        expired.www_authenticate().unwrap(),
        format!(
            "Bearer error=\"invalid_token\", error_description=\"credentials expired\", {meta}"
        )
    );
    assert_eq!(expired.attempt().subject.as_deref(), Some("alice"));
    assert_eq!(expired.attempt().issuer.as_deref(), Some(ISSUER));
    let scope = auth(
        &s.authn,
        &bearer(&s.rsa.sign(&with(json!({"scope": "x"})))),
        ip(2),
    )
    .await
    .unwrap_err();
    assert_eq!(scope.status(), 403);
    assert_eq!(
        scope.www_authenticate().unwrap(),
        format!(
            "Bearer error=\"insufficient_scope\", error_description=\"insufficient scope\", scope=\"mcp\", {meta}"
        )
    );
    let missing = auth(&s.authn, &http::HeaderMap::new(), ip(3))
        .await
        .unwrap_err();
    assert_eq!(
        missing.www_authenticate().unwrap(),
        format!("Bearer scope=\"mcp\", {meta}")
    );
    let doc = s.authn.protected_resource_metadata().unwrap();
    assert_eq!(doc["resource"], AUDIENCE);
    assert_eq!(doc["authorization_servers"], json!([ISSUER, OTHER_ISSUER]));
    assert_eq!(doc["scopes_supported"], json!(["mcp"]));
}

#[tokio::test]
async fn unknown_kid_triggers_one_refetch() {
    let mut tuning = Tuning::default();
    tuning.jwks.min_refetch = Duration::from_secs(1);
    let s = setup(tuning).await;
    // Tokens are made first so the timed part below is quick.
    let stranger = TestKey::rsa("never-published").sign(&claims());
    let made_up: Vec<String> = (0..5)
        .map(|i| TestKey::ec(&format!("made-up-{i}")).sign(&claims()))
        .collect();
    auth(&s.authn, &bearer(&s.rsa.sign(&claims())), ip(1))
        .await
        .unwrap();
    assert_eq!(jwks_fetches(&s.server).await, 1);
    // Cached: no fetch for a known kid.
    auth(&s.authn, &bearer(&s.ec.sign(&claims())), ip(1))
        .await
        .unwrap();
    assert_eq!(jwks_fetches(&s.server).await, 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let err = auth(&s.authn, &bearer(&stranger), ip(2)).await.unwrap_err();
    assert_eq!(err.kind(), &FailureKind::UnknownSigningKey);
    assert_eq!(
        jwks_fetches(&s.server).await,
        2,
        "an unknown kid refetches once"
    );
    // A burst of made-up kids right after: rate-limited, no further fetch.
    for token in &made_up {
        let err = auth(&s.authn, &bearer(token), ip(3)).await.unwrap_err();
        assert_eq!(err.kind(), &FailureKind::UnknownSigningKey);
    }
    assert_eq!(jwks_fetches(&s.server).await, 2);
}

fn short_refetch() -> Tuning {
    let mut tuning = Tuning::default();
    tuning.jwks.min_refetch = Duration::from_millis(200);
    tuning
}

#[tokio::test]
async fn key_rotation_mid_test() {
    let s = setup(short_refetch()).await;
    let old_token = s.rsa.sign(&claims());
    auth(&s.authn, &bearer(&old_token), ip(1)).await.unwrap();
    // The issuer rotates: the old kid is gone, a new one is served.
    let new_key = TestKey::rsa("rsa-2");
    serve_jwks(&s.server, &[&new_key]).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let p = auth(&s.authn, &bearer(&new_key.sign(&claims())), ip(1))
        .await
        .unwrap();
    assert_eq!(p.id, "alice");
    assert_eq!(
        jwks_fetches(&s.server).await,
        1,
        "the new kid caused one fetch"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    let err = auth(&s.authn, &bearer(&old_token), ip(1))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        &FailureKind::UnknownSigningKey,
        "the dropped key no longer verifies"
    );
}

#[tokio::test]
async fn cached_keys_keep_serving_while_the_issuer_is_down() {
    let s = setup(short_refetch()).await;
    auth(&s.authn, &bearer(&s.rsa.sign(&claims())), ip(1))
        .await
        .unwrap();
    s.server.reset().await; // now every request gets 404
    tokio::time::sleep(Duration::from_millis(250)).await;
    // Known kid: served from the cache.
    auth(&s.authn, &bearer(&s.ed.sign(&claims())), ip(1))
        .await
        .unwrap();
    // Unknown kid: the refetch fails, the cached set does not have it.
    let err = auth(&s.authn, &bearer(&TestKey::rsa("x").sign(&claims())), ip(2))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &FailureKind::UnknownSigningKey);
}

#[tokio::test]
async fn unreachable_issuer_without_cache_is_503() {
    let s = setup(Tuning::default()).await;
    s.server.reset().await;
    let err = auth(&s.authn, &bearer(&s.rsa.sign(&claims())), ip(1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &FailureKind::Unavailable);
    assert_eq!(err.status(), 503);
    assert!(err.www_authenticate().is_none());
    assert!(err.detail().contains("HTTP 404"), "{}", err.detail());
}
