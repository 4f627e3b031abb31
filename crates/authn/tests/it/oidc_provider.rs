//! Against a real authorization server: npm `oidc-provider` (tests/e2e/harness/oidc), started
//! here. Installed by `scripts/setup-test-deps` (`npm ci` in that directory); without it this
//! test fails, it does not skip.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use portcullis_authn::{Authenticator, FailureKind, PrincipalKind, Tuning};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::support::*;

const RESOURCE: &str = "https://gw.example/mcp";

struct AuthServer {
    _child: tokio::process::Child,
    info: Value,
}

impl AuthServer {
    async fn start() -> AuthServer {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/harness/oidc");
        assert!(
            dir.join("node_modules/oidc-provider/package.json")
                .is_file(),
            "oidc-provider is not installed in {}: run scripts/setup-test-deps (it runs `npm ci` there)",
            dir.display()
        );
        let mut child = tokio::process::Command::new("node")
            .arg("server.mjs")
            .arg("0")
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start node (is it on PATH?)");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("oidc-provider did not get ready within 30 s")
            .unwrap()
            .expect("oidc-provider exited before it was ready");
        let info: Value = serde_json::from_str(line.strip_prefix("ready ").expect(&line)).unwrap();
        AuthServer {
            _child: child,
            info,
        }
    }

    fn url(&self, name: &str) -> String {
        self.info[name].as_str().unwrap().to_owned()
    }

    async fn token(&self, client: &str, scope: &str, resource: &str) -> String {
        let response: Value = http()
            .post(self.url("token_endpoint"))
            .basic_auth(client, Some(format!("{client}-secret")))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", scope),
                ("resource", resource),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        response["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {response}"))
            .to_owned()
    }

    async fn rotate(&self) {
        http()
            .post(self.url("rotate_endpoint"))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }
}

#[tokio::test]
async fn real_authorization_server_tokens() {
    let idp = AuthServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[auth]\nresource = \"{RESOURCE}\"\nrequired_scopes = [\"mcp\"]\nmax_failures = \"1000/min\"\n\
         [[auth.jwt]]\nissuer = \"{}\"\njwks_url = \"{}\"\naudience = \"{RESOURCE}\"\n\
         [auth.introspection]\nurl = \"{}\"\nclient_id = \"gateway\"\nclient_secret = \"env:INTROSPECTION_SECRET\"",
        idp.url("issuer"),
        idp.url("jwks_uri"),
        idp.url("introspection_endpoint"),
    );
    let config = config_with_env(
        dir.path(),
        &toml,
        &[("INTROSPECTION_SECRET", "gateway-secret")],
    );
    let store = portcullis_store::testing::sqlite(dir.path()).await.unwrap();
    let mut tuning = Tuning::default();
    tuning.jwks.min_refetch = Duration::from_millis(200);
    let a = Authenticator::with_tuning(&config, store, http(), tuning)
        .await
        .unwrap();

    // RS256 JWT access token for this resource.
    let jwt = idp.token("jwt-client", "mcp tools:read", RESOURCE).await;
    assert_eq!(jwt.split('.').count(), 3, "a JWT");
    let p = auth(&a, &bearer(&jwt), ip(1)).await.unwrap();
    assert_eq!(p.id, "jwt-client");
    assert_eq!(p.kind, PrincipalKind::Service);
    assert_eq!(p.method.as_str(), "jwt");
    assert_eq!(p.scopes, ["mcp", "tools:read"]);
    assert_eq!(p.issuer.as_deref(), Some(idp.url("issuer").as_str()));
    assert!(p.credential_id.is_some(), "jti recorded");

    // Opaque token, checked by introspection.
    let opaque = idp.token("opaque-client", "mcp", RESOURCE).await;
    assert_eq!(opaque.split('.').count(), 1, "an opaque token");
    let p = auth(&a, &bearer(&opaque), ip(1)).await.unwrap();
    assert_eq!(p.id, "opaque-client");
    assert_eq!(p.method.as_str(), "introspection");
    assert_eq!(p.scopes, ["mcp"]);

    // Refusals from the real server's tokens.
    let rows: Vec<(&str, String, FailureKind)> = vec![
        (
            "JWT for another resource",
            idp.token("jwt-client", "mcp", "https://other.example/mcp")
                .await,
            FailureKind::WrongAudience,
        ),
        (
            "opaque token for another resource",
            idp.token("opaque-client", "mcp", "https://other.example/mcp")
                .await,
            FailureKind::WrongAudience,
        ),
        (
            "JWT without the required scope",
            idp.token("jwt-client", "tools:read", RESOURCE).await,
            FailureKind::InsufficientScope {
                needed: vec!["mcp".into()],
            },
        ),
        (
            "made-up opaque token",
            "not-issued-by-anyone".to_owned(),
            FailureKind::IntrospectionInactive,
        ),
    ];
    for (name, token, kind) in rows {
        let e = auth(&a, &bearer(&token), ip(2)).await.unwrap_err();
        assert_eq!(e.kind(), &kind, "{name}: {e}");
    }

    // The server rotates its signing key: new tokens verify after one JWKS refetch, tokens
    // signed by the dropped key no longer do.
    idp.rotate().await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let rotated = idp.token("jwt-client", "mcp", RESOURCE).await;
    auth(&a, &bearer(&rotated), ip(3)).await.unwrap();
    let e = auth(&a, &bearer(&jwt), ip(3)).await.unwrap_err();
    assert_eq!(e.kind(), &FailureKind::UnknownSigningKey, "{e}");
}
