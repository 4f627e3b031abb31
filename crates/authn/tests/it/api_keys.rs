//! API keys on both store backends: create → use → revoke → refused, nothing secret stored.

use std::time::{Duration, Instant};

use portcullis_authn::{Authenticator, FailureKind, KeyStore, NewKey, Pepper, PrincipalKind};
use portcullis_store::sqlx::{self, Row};
use portcullis_store::{Dialect, Store};
use secrecy::ExposeSecret;

use super::support::*;

async fn authenticator(config: &portcullis_config::Config, store: &Store) -> Authenticator {
    Authenticator::new(config, store.clone(), http())
        .await
        .unwrap()
}

fn new_key(expires_in: Option<Duration>) -> NewKey {
    NewKey {
        principal: "alice".into(),
        kind: PrincipalKind::User,
        roles: vec!["dev".into(), "approver".into(), "dev".into()],
        expires_in,
    }
}

/// Every text column of every key row, concatenated.
async fn table_text(store: &Store) -> String {
    let sql = match store.dialect() {
        Dialect::Postgres => "SELECT CAST(k AS TEXT) AS t FROM authn_keys k",
        Dialect::Sqlite => {
            "SELECT id || principal || kind || roles || created_ms || COALESCE(expires_ms, '') \
             || COALESCE(revoked_ms, '') || COALESCE(last_used_ms, '') || digest AS t FROM authn_keys"
        }
    };
    let rows = sqlx::query(sql).fetch_all(store.pool()).await.unwrap();
    rows.iter()
        .map(|r| r.get::<String, _>("t"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn lifecycle_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        "[auth]\napi_keys = true\nmax_failures = \"1000/min\"",
    );
    for store in portcullis_store::testing::both(dir.path()).await.unwrap() {
        let backend = store.dialect().name();
        let a = authenticator(&config, &store).await;
        let replica = authenticator(&config, &store).await;
        let keys = KeyStore::open(store.clone()).await.unwrap();
        let pepper = Pepper::resolve(&config).unwrap().unwrap();
        let created = keys
            .create(&pepper, new_key(None), portcullis_store::now_ms())
            .await
            .unwrap();
        let key = created.key.expose_secret().to_owned();
        assert!(key.starts_with("pk_live_"), "{backend}");
        assert!(
            !format!("{created:?}").contains(&key),
            "{backend}: Debug shows the key"
        );
        let secret = key.rsplit('_').next().unwrap().to_owned();

        // Use: X-API-Key and Authorization: Bearer.
        let p = auth(&a, &api_key_header(&key), ip(1)).await.unwrap();
        assert_eq!(p.id, "alice", "{backend}");
        assert_eq!(p.roles, ["dev", "approver"], "{backend}");
        assert_eq!(p.method.as_str(), "api_key", "{backend}");
        assert_eq!(
            p.credential_id.as_deref(),
            Some(created.info.id.as_str()),
            "{backend}"
        );
        assert_eq!(p.client_ip, Some(ip(1)));
        let p = auth(&replica, &bearer(&key), ip(1)).await.unwrap();
        assert_eq!(p.id, "alice", "{backend}");

        // Wrong secret for a real id (differs in the last character only), unknown id.
        let mut wrong = key.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == '0' { '1' } else { '0' });
        let err = auth(&a, &api_key_header(&wrong), ip(2)).await.unwrap_err();
        assert_eq!(err.kind(), &FailureKind::UnknownKey, "{backend}");
        assert_eq!(
            err.attempt().credential_id.as_deref(),
            Some(created.info.id.as_str())
        );
        assert!(!err.to_string().contains(&secret) && !format!("{err:?}").contains(&secret));
        let unknown = format!("pk_live_{}_{}", "0".repeat(16), "a".repeat(64));
        let err = auth(&a, &api_key_header(&unknown), ip(2))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &FailureKind::UnknownKey, "{backend}");
        assert_eq!(
            err.www_authenticate().as_deref(),
            Some("Bearer error=\"invalid_token\", error_description=\"invalid credentials\"")
        );
        let err = auth(&a, &api_key_header("pk_live_short"), ip(2))
            .await
            .unwrap_err();
        assert_eq!(err.status(), 400, "{backend}");

        // The store holds no clear key, on any column.
        let text = table_text(&store).await;
        assert!(
            text.contains(&created.info.id),
            "{backend}: the scan sees the rows"
        );
        assert!(
            !text.contains(&secret),
            "{backend}: the secret is stored in clear"
        );
        assert!(
            !text.contains(&key),
            "{backend}: the key is stored in clear"
        );

        // Listed without the key; last use recorded.
        let listed = keys.list().await.unwrap();
        assert_eq!(listed.len(), 1, "{backend}");
        assert!(
            listed[0].last_used_ms.is_some(),
            "{backend}: last use recorded"
        );

        // Revoke (as `keys revoke` would, from outside): every replica refuses within 1 s.
        let revoked_at = Instant::now();
        keys.revoke(&created.info.id, portcullis_store::now_ms())
            .await
            .unwrap();
        for authn in [&a, &replica] {
            loop {
                match auth(authn, &api_key_header(&key), ip(3)).await {
                    Err(e) => {
                        assert_eq!(e.kind(), &FailureKind::Revoked, "{backend}");
                        assert_eq!(e.attempt().subject.as_deref(), Some("alice"));
                        break;
                    }
                    Ok(_) => assert!(
                        revoked_at.elapsed() < Duration::from_secs(1),
                        "{backend}: revoked key still accepted after 1 s"
                    ),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        assert!(keys.revoke("nope", 0).await.is_err());

        // Expired keys are refused.
        let short = keys
            .create(
                &pepper,
                new_key(Some(Duration::from_millis(1))),
                portcullis_store::now_ms(),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let err = auth(&a, &api_key_header(short.key.expose_secret()), ip(4))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &FailureKind::Expired, "{backend}");
        store.close().await;
    }
}

#[tokio::test]
async fn last_use_is_written_at_most_once_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "[auth]\napi_keys = true");
    let store = portcullis_store::testing::sqlite(dir.path()).await.unwrap();
    let a = authenticator(&config, &store).await;
    let keys = KeyStore::open(store.clone()).await.unwrap();
    let pepper = Pepper::resolve(&config).unwrap().unwrap();
    let created = keys
        .create(&pepper, new_key(None), portcullis_store::now_ms())
        .await
        .unwrap();
    let key = created.key.expose_secret();
    auth(&a, &api_key_header(key), ip(1)).await.unwrap();
    // Mark the row as used long ago: if the next requests wrote, this would change.
    sqlx::query("UPDATE authn_keys SET last_used_ms = 1000")
        .execute(store.pool())
        .await
        .unwrap();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(120)).await; // past the row cache
        auth(&a, &api_key_header(key), ip(1)).await.unwrap();
    }
    let listed = keys.list().await.unwrap();
    assert_eq!(
        listed[0].last_used_ms,
        Some(1000),
        "a request wrote last_used_ms"
    );
}

#[tokio::test]
async fn repeated_failures_lock_an_address_out() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        "[auth]\napi_keys = true\nmax_failures = \"3/min\"",
    );
    let store = portcullis_store::testing::sqlite(dir.path()).await.unwrap();
    let a = authenticator(&config, &store).await;
    let keys = KeyStore::open(store.clone()).await.unwrap();
    let pepper = Pepper::resolve(&config).unwrap().unwrap();
    let good = keys
        .create(&pepper, new_key(None), portcullis_store::now_ms())
        .await
        .unwrap();
    let good = good.key.expose_secret();
    let bad = format!("pk_live_{}_{}", "1".repeat(16), "b".repeat(64));
    // Missing credentials do not count (clients probe before OAuth).
    for _ in 0..5 {
        let e = auth(&a, &http::HeaderMap::new(), ip(9)).await.unwrap_err();
        assert_eq!(e.kind(), &FailureKind::Missing);
    }
    auth(&a, &api_key_header(good), ip(9)).await.unwrap();
    for _ in 0..3 {
        let e = auth(&a, &api_key_header(&bad), ip(9)).await.unwrap_err();
        assert_eq!(e.kind(), &FailureKind::UnknownKey);
    }
    let e = auth(&a, &api_key_header(good), ip(9)).await.unwrap_err();
    assert!(
        matches!(e.kind(), FailureKind::TooManyFailures { .. }),
        "{e}"
    );
    assert_eq!(e.status(), 429);
    assert!(e.retry_after_secs().unwrap() > 50);
    assert!(e.www_authenticate().is_none());
    // Another address is unaffected, and its success does not unlock the first.
    auth(&a, &api_key_header(good), ip(10)).await.unwrap();
    let e = auth(&a, &api_key_header(good), ip(9)).await.unwrap_err();
    assert_eq!(e.status(), 429);
}

#[tokio::test]
async fn request_shape_rules() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "[auth]\napi_keys = true");
    let store = portcullis_store::testing::sqlite(dir.path()).await.unwrap();
    let a = authenticator(&config, &store).await;
    let peer = portcullis_authn::PeerInfo {
        ip: ip(1),
        client_cert: None,
    };
    let headers = http::HeaderMap::new();
    let seen = portcullis_authn::CredentialsSeen {
        headers: &headers,
        peer: &peer,
        query: Some("api_key=pk_live_0123456789abcdef_x"),
    };
    let e = a.authenticate(&seen).await.unwrap_err();
    assert_eq!(e.kind(), &FailureKind::CredentialInQuery);
    assert_eq!(e.status(), 400);
    let mut both = api_key_header("pk_live_x");
    both.insert(http::header::AUTHORIZATION, "Bearer y".parse().unwrap());
    let e = auth(&a, &both, ip(1)).await.unwrap_err();
    assert_eq!(e.status(), 400);
    let mut basic = http::HeaderMap::new();
    basic.insert(http::header::AUTHORIZATION, "Basic YTpi".parse().unwrap());
    let e = auth(&a, &basic, ip(1)).await.unwrap_err();
    assert_eq!(e.kind(), &FailureKind::UnsupportedScheme);
    assert_eq!(e.www_authenticate().as_deref(), Some("Bearer"));
    // Without OAuth, the metadata is not served.
    assert!(a.protected_resource_metadata().is_none());
    // No API keys configured: a presented key is refused, not looked up.
    let off = config_with_env(dir.path(), "[auth]\ndangerous_allow_anonymous = true", &[]);
    let anon = Authenticator::new(&off, store.clone(), http())
        .await
        .unwrap();
    let e = auth(&anon, &api_key_header("pk_live_x"), ip(1))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), &FailureKind::UnsupportedToken);
    let p = auth(&anon, &http::HeaderMap::new(), ip(1)).await.unwrap();
    assert_eq!(
        (p.id.as_str(), p.method.as_str()),
        ("anonymous", "anonymous")
    );
}
