//! `tests/full.toml` sets every key; it must load cleanly and land in the right fields.

use std::path::{Path, PathBuf};
use std::time::Duration;

use portcullis_config::{
    HostPort, Network, PrincipalFrom, Rate, RateLimitBackend, RedactSet, Sink, UpstreamTransport,
    from_str,
};

use super::support::env;

const SECRETS: &[(&str, &str)] = &[
    (
        "PORTCULLIS_DATABASE_URL",
        "postgres://portcullis:db-pass-1@db.internal/portcullis",
    ),
    (
        "PORTCULLIS_REDIS_URL",
        "redis://:redis-pass-2@cache.internal:6379",
    ),
    ("INTROSPECT_SECRET", "introspect-secret-3"),
    ("FS_TOKEN", "fs-token-4"),
    ("SEARCH_TOKEN", "search-token-5"),
    ("PORTCULLIS_AUDIT_KEY", "audit-key-6"),
    ("SIEM_TOKEN", "siem-token-7"),
    ("PORTCULLIS_KEY_PEPPER", "key-pepper-8-0123456789abcdef"),
    ("PORTCULLIS_AUDIT_OLD_KEY", "audit-old-key-9"),
];

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn load_full() -> portcullis_config::Config {
    let path = tests_dir().join("full.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    from_str(&text, Some(&path), &env(SECRETS)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn full_example_loads_without_warnings() {
    let config = load_full();
    assert_eq!(config.warnings, Vec::<String>::new());
    assert_eq!(config.source, Some(tests_dir().join("full.toml")));
}

#[test]
fn full_example_fields() {
    let c = load_full();
    let dir = tests_dir();
    let tls = c.listen.tls.as_ref().unwrap();
    assert_eq!(tls.cert, dir.join("fixtures/certs/server.pem"));
    assert_eq!(tls.client_ca, Some(dir.join("fixtures/certs/ca.pem")));
    assert_eq!(c.listen.allowed_origins.len(), 2);
    assert_eq!(c.listen.max_connections, 2048);
    assert_eq!(c.storage.url, SECRETS[0].1);
    assert!(!c.storage.synchronous_commit);
    assert_eq!(c.limits.max_sessions, 10_000);
    assert_eq!(c.limits.stream_results_above, Some(1 << 20));
    assert_eq!(c.limits.max_streamed_bytes, 1 << 30);
    let RateLimitBackend::Redis { url } = &c.rate_limit.backend else {
        panic!()
    };
    assert_eq!(url.origin(), "env:PORTCULLIS_REDIS_URL");
    assert_eq!(
        c.rate_limit.default,
        Some(Rate {
            count: 120,
            per: Duration::from_secs(60)
        })
    );
    assert_eq!(c.rate_limit.rules.len(), 2);
    assert!(c.auth.api_keys && !c.auth.dangerous_allow_anonymous);
    assert_eq!(c.auth.jwt[0].issuer, "https://idp.example");
    assert_eq!(
        c.auth
            .introspection
            .as_ref()
            .unwrap()
            .client_secret
            .expose(),
        SECRETS[2].1
    );
    assert_eq!(c.auth.mtls.unwrap().principal_from, PrincipalFrom::SanUri);
    assert_eq!(c.auth.key_pepper.as_ref().unwrap().expose(), SECRETS[7].1);
    assert_eq!(c.auth.resource, "https://gw.example/mcp");
    assert_eq!(c.auth.required_scopes, ["mcp"]);
    assert_eq!(c.auth.max_failures.count, 20);
    assert_eq!(c.authz.policies, [dir.join("fixtures/policies/*.cedar")]);

    let [fs, search, weather] = &c.upstreams[..] else {
        panic!("three upstreams")
    };
    let UpstreamTransport::Stdio { command, env, cwd } = &fs.transport else {
        panic!()
    };
    assert_eq!(command[0], "npx");
    assert_eq!(env["FS_TOKEN"].expose(), "fs-token-4");
    assert_eq!(cwd.as_deref(), Some(dir.join("fixtures").as_path()));
    let sandbox = fs.sandbox.as_ref().unwrap();
    assert_eq!((sandbox.memory, sandbox.processes), (512 << 20, Some(32)));
    assert_eq!(sandbox.network, Network::None);
    assert_eq!(fs.tools.len(), 2);
    assert!(fs.tools[1].approval);

    let UpstreamTransport::Http {
        bearer, headers, ..
    } = &search.transport
    else {
        panic!()
    };
    assert_eq!(bearer.as_ref().unwrap().expose(), "search-token-5");
    assert_eq!(
        headers["X-Tenant"].expose(),
        "acme-tenant-7",
        "file secret, newline trimmed"
    );
    let fetch = &search.tools[0];
    assert_eq!(fetch.args["limit"].max, Some(100.0));
    assert_eq!(fetch.args["mode"].r#enum, ["fast", "thorough"]);

    assert_eq!(weather.prefix, "wx.");
    let UpstreamTransport::Stdio { command, .. } = &weather.transport else {
        panic!()
    };
    assert_eq!(PathBuf::from(&command[0]), dir.join("bin/weather-server"));
    let allow = vec![HostPort {
        host: "api.weather.example".into(),
        port: 443,
    }];
    assert_eq!(
        weather.sandbox.as_ref().unwrap().network,
        Network::Allow(allow)
    );

    assert_eq!(c.guard.redact, [RedactSet::Secrets, RedactSet::Pii]);
    assert_eq!(c.guard.redact_patterns[0].name, "ticket");
    assert_eq!(c.guard.scan_action, portcullis_config::ScanAction::Warn);
    assert!(c.guard.redact_results);
    assert_eq!(
        fs.tools[0].redact,
        Some(portcullis_config::RedactScope::Logs)
    );
    assert_eq!(fs.tools[1].redact, None);
    let resources = fs.resources.as_ref().expect("[upstream.resources]");
    assert_eq!(resources.within, [std::path::PathBuf::from("/srv/data")]);
    assert!(search.resources.is_none());
    assert!(
        c.audit
            .signing_key
            .as_ref()
            .unwrap()
            .expose()
            .starts_with("placeholder")
    );
    assert_eq!(c.audit.old_encryption_keys[0].expose(), "audit-old-key-9");
    assert_eq!(c.audit.retention, Some(Duration::from_secs(365 * 86_400)));
    assert_eq!(c.audit.sinks.len(), 4);
    assert!(
        matches!(&c.audit.sinks[0], Sink::Jsonl { path, .. } if *path == dir.join("audit/records.jsonl"))
    );
    assert_eq!(c.approval.timeout, Duration::from_secs(600));
    assert!(c.anomaly.enabled);
    assert_eq!(c.anomaly.alerts.len(), 1);
}

#[test]
fn full_example_debug_shows_no_secret_value() {
    let config = load_full();
    for debug in [format!("{config:?}"), format!("{config:#?}")] {
        for (name, value) in SECRETS {
            assert!(
                !debug.contains(value),
                "{name}'s value appears in Debug output"
            );
        }
        assert!(
            !debug.contains("acme-tenant-7"),
            "file secret appears in Debug output"
        );
        assert!(
            !debug.contains("placeholder"),
            "signing key appears in Debug output"
        );
        assert!(
            debug.contains("env:SEARCH_TOKEN"),
            "Debug names where secrets came from"
        );
    }
}
