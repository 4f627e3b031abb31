//! `keys create/list/revoke` and `token mint` through the built binary on a temp SQLite store;
//! the created key authenticates until `keys revoke`, and never appears in the store or listings.

// `#[cfg(test)]` lets clippy treat the helpers as test code.
#[cfg(test)]
mod cli {
    use std::net::{IpAddr, Ipv4Addr};
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use portcullis_authn::{Authenticator, CredentialsSeen, FailureKind, PeerInfo};

    const RESOURCE: &str = "http://127.0.0.1:8080/mcp";

    fn config(dir: &Path) -> PathBuf {
        let path = dir.join("portcullis.toml");
        std::fs::write(
            &path,
            format!("[storage]\nurl = \"sqlite://data/p.db\"\n[auth]\napi_keys = true\nresource = \"{RESOURCE}\"\n"),
        )
        .unwrap();
        path
    }

    fn run(config: &Path, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(args)
            .arg("--config")
            .arg(config)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    async fn authenticate(config: &Path, key: &str) -> Result<String, FailureKind> {
        let config = portcullis_config::load(config).unwrap();
        let store = portcullis_store::Store::open(&config.storage.url)
            .await
            .unwrap();
        let authn = Authenticator::new(&config, store.clone(), reqwest_client())
            .await
            .unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert("x-api-key", key.parse().unwrap());
        let peer = PeerInfo {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            client_cert: None,
        };
        let result = authn
            .authenticate(&CredentialsSeen {
                headers: &headers,
                peer: &peer,
                query: None,
            })
            .await;
        store.close().await;
        result.map(|p| p.id).map_err(|f| f.kind().clone())
    }

    fn reqwest_client() -> reqwest::Client {
        reqwest::Client::new()
    }

    fn db_bytes(dir: &Path) -> Vec<u8> {
        let mut all = Vec::new();
        for entry in std::fs::read_dir(dir.join("data")).unwrap() {
            all.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        all
    }

    #[tokio::test]
    async fn keys_lifecycle_and_token_mint() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());

        let (code, out, err) = run(
            &config,
            &[
                "keys",
                "create",
                "--principal",
                "alice",
                "--role",
                "dev",
                "--role",
                "approver",
                "--expires",
                "90d",
            ],
        );
        assert_eq!(code, 0, "{err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "exactly `id:` and `key:` lines: {out}");
        let id = lines[0].strip_prefix("id: ").unwrap().to_owned();
        let key = lines[1].strip_prefix("key: ").unwrap().to_owned();
        assert!(key.starts_with(&format!("pk_live_{id}_")));
        let secret = key.rsplit('_').next().unwrap().to_owned();

        assert_eq!(authenticate(&config, &key).await, Ok("alice".to_owned()));

        let (code, out, _) = run(&config, &["keys", "list", "--format", "json"]);
        assert_eq!(code, 0);
        assert!(!out.contains(&secret));
        let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
        let row = &listed[0];
        assert_eq!(row["id"], id.as_str());
        assert_eq!(row["principal"], "alice");
        assert_eq!(row["roles"], serde_json::json!(["dev", "approver"]));
        assert_eq!(row["status"], "active");
        assert!(
            row["expires"].is_string()
                && row["created"].is_string()
                && row["last_used"].is_string()
        );
        let (code, table, _) = run(&config, &["keys", "list"]);
        assert_eq!(code, 0);
        assert!(
            table.contains(&id) && table.contains("alice") && !table.contains(&secret),
            "{table}"
        );

        let stored = String::from_utf8_lossy(&db_bytes(dir.path())).into_owned();
        assert!(stored.contains(&id), "the scan reads the database");
        assert!(
            !stored.contains(&secret),
            "the key's secret is in the database in clear"
        );

        let (code, out, _) = run(&config, &["keys", "revoke", &id]);
        assert_eq!((code, out.trim()), (0, format!("revoked: {id}").as_str()));
        assert_eq!(authenticate(&config, &key).await, Err(FailureKind::Revoked));
        let (_, out, _) = run(&config, &["keys", "list", "--format", "json"]);
        assert!(out.contains("\"status\":\"revoked\""), "{out}");
        let (code, _, err) = run(&config, &["keys", "revoke", "0000000000000000"]);
        assert_eq!(code, 1, "{err}");

        // token mint: the token alone on stdout.
        let (code, out, err) = run(
            &config,
            &[
                "token",
                "mint",
                "--principal",
                "ci-bot",
                "--scope",
                "mcp",
                "--scope",
                "tools:call",
                "--ttl",
                "15m",
            ],
        );
        assert_eq!(code, 0, "{err}");
        let token = out.trim_end();
        assert_eq!(out.lines().count(), 1);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        use base64::Engine;
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(parts[1])
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["sub"], "ci-bot");
        assert_eq!(claims["aud"], RESOURCE);
        assert_eq!(claims["scope"], "mcp tools:call");
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            900
        );

        let (code, _, err) = run(
            &config,
            &[
                "token",
                "mint",
                "--principal",
                "x",
                "--scope",
                "mcp",
                "--ttl",
                "48h",
            ],
        );
        assert_eq!(code, 1, "{err}");
        let (code, _, _) = run(
            &config,
            &["token", "mint", "--principal", "x", "--ttl", "1h"],
        );
        assert_eq!(code, 2, "--scope is required");
    }
}
