//! Valid snippets: defaults, value syntaxes and the shapes each section accepts.

use std::path::PathBuf;
use std::time::Duration;

use portcullis_config::{
    Config, HostPort, Network, Rate, RateLimitBackend, RedactSet, Sandbox, Sink, UpstreamTransport,
};

use super::support::parse;

const NO_POLICIES: &str = "no [authz] policies: every call will be denied";

#[test]
fn empty_file_gets_every_default() {
    let config = parse("").unwrap();
    assert_eq!(config.source, Some(PathBuf::from("/cfg/portcullis.toml")));
    assert_eq!(config.listen.addr.to_string(), "127.0.0.1:8080");
    assert!(config.listen.allowed_origins.is_empty());
    assert!(config.listen.tls.is_none());
    assert_eq!(config.listen.max_connections, 1024);
    assert_eq!(config.storage.url, "sqlite:///cfg/portcullis.db");
    assert!(config.storage.synchronous_commit);
    let limits = &config.limits;
    assert_eq!(limits.max_request_bytes, 1 << 20);
    assert_eq!(limits.max_response_bytes, 10 << 20);
    assert_eq!(limits.max_json_depth, 64);
    assert_eq!(limits.call_timeout, Duration::from_secs(30));
    assert_eq!(limits.session_idle_timeout, Duration::from_secs(30 * 60));
    assert_eq!(limits.max_sessions, 10_000);
    assert_eq!(limits.stream_results_above, None);
    assert_eq!(limits.max_streamed_bytes, 1 << 30);
    assert_eq!(config.federation.separator, "__");
    assert!(!config.auth.api_keys && !config.auth.dangerous_allow_anonymous);
    assert!(config.auth.jwt.is_empty() && config.auth.introspection.is_none());
    assert!(config.auth.mtls.is_none());
    assert!(config.upstreams.is_empty());
    assert!(matches!(config.rate_limit.backend, RateLimitBackend::Local));
    assert!(config.rate_limit.default.is_none() && config.rate_limit.rules.is_empty());
    assert!(config.authz.policies.is_empty());
    assert_eq!(config.authz.roles_claim, "roles");
    assert_eq!(config.guard.redact, [RedactSet::Secrets]);
    assert!(config.guard.pin_tools && config.guard.scan_tools);
    assert!(config.audit.signing_key.is_none() && config.audit.encryption_key.is_none());
    assert!(config.audit.retention.is_none() && config.audit.sinks.is_empty());
    assert_eq!(config.audit.checkpoint_records, 1000);
    assert_eq!(config.audit.checkpoint_interval, Duration::from_secs(60));
    assert_eq!(config.approval.timeout, Duration::from_secs(600));
    assert_eq!(config.approval.approvers_role, "approver");
    assert!(!config.anomaly.enabled && config.anomaly.alerts.is_empty());
    assert_eq!(
        config.warnings,
        [
            "no authentication method enabled (auth.api_keys, [[auth.jwt]], [auth.introspection], \
             [auth.mtls]): every request will be refused",
            NO_POLICIES,
        ]
    );
}

type Check = fn(&Config);

fn has_warning(config: &Config, warning: &str) -> bool {
    config.warnings.iter().any(|w| w == warning)
}

/// (snippet, check) rows; every snippet must be valid.
const ROWS: &[(&str, Check)] = &[
    (
        "[limits]\nmax_request_bytes = 2048\nmax_response_bytes = \"1MB\"\nmax_json_depth = 8\n\
         call_timeout = \"250ms\"\nsession_idle_timeout = \"1h\"\nmax_sessions = 5",
        |c| {
            assert_eq!(
                (c.limits.max_request_bytes, c.limits.max_response_bytes),
                (2048, 1_000_000)
            );
            assert_eq!(c.limits.max_json_depth, 8);
            assert_eq!(c.limits.call_timeout, Duration::from_millis(250));
            assert_eq!(c.limits.session_idle_timeout, Duration::from_secs(3600));
            assert_eq!(c.limits.max_sessions, 5);
        },
    ),
    (
        "[listen]\naddr = \"[::1]:9000\"\nallowed_origins = [\"HTTP://LocalHost:3000\"]",
        |c| {
            assert_eq!(c.listen.addr.to_string(), "[::1]:9000");
            assert_eq!(c.listen.allowed_origins, ["http://localhost:3000"]);
        },
    ),
    // Results pass through only unredacted, from HTTP upstreams: a setting that cannot apply
    // is pointed out.
    (
        "[limits]\nstream_results_above = \"1MiB\"\n[[upstream]]\nname = \"r\"\nurl = \"http://127.0.0.1:9/mcp\"",
        |c| {
            assert_eq!(c.limits.stream_results_above, Some(1 << 20));
            assert!(
                c.warnings
                    .iter()
                    .any(|w| w.starts_with("limits.stream_results_above has no effect"))
            );
        },
    ),
    (
        "[limits]\nstream_results_above = \"1MiB\"\n[guard]\nredact_results = false\n\
         [[upstream]]\nname = \"r\"\nurl = \"http://127.0.0.1:9/mcp\"",
        |c| {
            assert!(
                !c.warnings
                    .iter()
                    .any(|w| w.contains("stream_results_above"))
            )
        },
    ),
    (
        "[limits]\nstream_results_above = \"1MiB\"\n[guard]\nredact_results = false\n\
         [[upstream]]\nname = \"s\"\ncommand = [\"server\"]",
        |c| {
            assert!(
                c.warnings
                    .iter()
                    .any(|w| w.contains("stream_results_above"))
            )
        },
    ),
    ("[listen]\naddr = \"0.0.0.0:8080\"", |c| {
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("not a loopback address"))
        );
    }),
    (
        "[[upstream]]\nname = \"fs\"\ncommand = [\"npx\", \"-y\", \"server\"]",
        |c| {
            let up = &c.upstreams[0];
            assert_eq!((up.name.as_str(), up.prefix.as_str()), ("fs", "fs__"));
            assert_eq!(up.sandbox, Some(Sandbox::default()));
            assert_eq!(up.sandbox.as_ref().unwrap().memory, 1 << 30);
            let UpstreamTransport::Stdio { command, env, cwd } = &up.transport else {
                panic!()
            };
            assert_eq!(command, &["npx", "-y", "server"]);
            assert!(env.is_empty() && cwd.is_none());
        },
    ),
    (
        "[[upstream]]\nname = \"py\"\ncommand = [\"./bin/server.py\", \"./data\"]",
        |c| {
            let UpstreamTransport::Stdio { command, .. } = &c.upstreams[0].transport else {
                panic!()
            };
            assert_eq!(
                command,
                &["/cfg/bin/server.py", "./data"],
                "only the program is resolved"
            );
        },
    ),
    (
        "[federation]\nseparator = \".\"\n[[upstream]]\nname = \"a\"\ncommand = [\"a\"]\n\
         [[upstream]]\nname = \"b\"\nprefix = \"\"\nurl = \"http://127.0.0.1:9000/mcp\"",
        |c| {
            assert_eq!(c.upstreams[0].prefix, "a.");
            assert_eq!(c.upstreams[1].prefix, "");
            assert!(c.upstreams[1].sandbox.is_none());
            let UpstreamTransport::Http {
                url,
                bearer,
                headers,
                oauth,
            } = &c.upstreams[1].transport
            else {
                panic!()
            };
            assert_eq!(url, "http://127.0.0.1:9000/mcp");
            assert!(bearer.is_none() && headers.is_empty() && oauth.is_none());
        },
    ),
    (
        "[[upstream]]\nname = \"s\"\nurl = \"https://search.internal/mcp\"\n\
         auth = { bearer = \"env:SEARCH_TOKEN\" }\nheaders = { X-Tenant = \"acme\" }",
        |c| {
            let UpstreamTransport::Http {
                bearer, headers, ..
            } = &c.upstreams[0].transport
            else {
                panic!()
            };
            assert_eq!(bearer.as_ref().unwrap().expose(), "s3cr3t-search");
            assert_eq!(headers["X-Tenant"].expose(), "acme");
            assert!(has_warning(
                c,
                "inline secret at upstream[0].headers.X-Tenant; use env: or file:"
            ));
        },
    ),
    (
        "[[upstream]]\nname = \"lan\"\nurl = \"http://10.0.0.5/mcp\"\ndangerous_allow_plain_http = true",
        |c| {
            assert!(
                c.warnings
                    .iter()
                    .any(|w| w.starts_with("upstream[0]: dangerous_allow_plain_http"))
            )
        },
    ),
    (
        "[[upstream]]\nname = \"fs\"\ncommand = [\"srv\"]\nenv = { LOG = \"debug\", TOKEN = \"env:SEARCH_TOKEN\" }\n\
         [upstream.sandbox]\nfs_read = [\"data\", \"/srv/../etc/x\"]\nfs_write = []\n\
         network = [\"api.example:443\", \"[::1]:53\"]\nmemory = \"512MiB\"\ncpu_time = \"60s\"\n\
         processes = 32\nstorage_quota = \"100MiB\"\ndangerous_allow_weaker_sandbox = true",
        |c| {
            let sandbox = c.upstreams[0].sandbox.as_ref().unwrap();
            assert_eq!(
                sandbox.fs_read,
                [PathBuf::from("/cfg/data"), PathBuf::from("/etc/x")]
            );
            assert!(sandbox.fs_write.is_empty());
            let hp = |h: &str, p| HostPort {
                host: h.into(),
                port: p,
            };
            assert_eq!(
                sandbox.network,
                Network::Allow(vec![hp("api.example", 443), hp("::1", 53)])
            );
            assert_eq!(sandbox.memory, 512 << 20);
            assert_eq!(sandbox.cpu_time, Some(Duration::from_secs(60)));
            assert_eq!(
                (sandbox.processes, sandbox.storage_quota),
                (Some(32), Some(100 << 20))
            );
            assert!(sandbox.dangerous_allow_weaker_sandbox);
            let UpstreamTransport::Stdio { env, .. } = &c.upstreams[0].transport else {
                panic!()
            };
            assert_eq!(
                (env["LOG"].expose(), env["TOKEN"].expose()),
                ("debug", "s3cr3t-search")
            );
            assert!(
                !c.warnings.iter().any(|w| w.contains("inline secret")),
                "env values do not warn"
            );
        },
    ),
    (
        "[[upstream]]\nname = \"fs\"\ncommand = [\"srv\"]\n[upstream.sandbox]\nnetwork = []",
        |c| {
            assert_eq!(
                c.upstreams[0].sandbox.as_ref().unwrap().network,
                Network::None
            );
        },
    ),
    (
        "[[upstream]]\nname = \"fs\"\ncommand = [\"srv\"]\n[[upstream.tool]]\nname = \"read_file\"\n\
         read_only = true\napproval = true\nargs.path = { within = [\"data/../srv\"] }\n\
         args.url = { allow_hosts = [\"*.Example.com\"], deny_private = true, max_length = 200 }\n\
         args.limit = { min = 1, max = 100.5 }\nargs.q = { pattern = '^[\\w ]{1,200}$', enum = [\"a\"] }",
        |c| {
            let tool = &c.upstreams[0].tools[0];
            assert_eq!(
                (tool.name.as_str(), tool.read_only, tool.approval),
                ("read_file", Some(true), true)
            );
            assert_eq!(tool.args["path"].within, [PathBuf::from("/cfg/srv")]);
            assert_eq!(tool.args["url"].allow_hosts, ["*.example.com"]);
            assert!(tool.args["url"].deny_private);
            assert_eq!(tool.args["url"].max_length, Some(200));
            assert_eq!(
                (tool.args["limit"].min, tool.args["limit"].max),
                (Some(1.0), Some(100.5))
            );
            assert_eq!(tool.args["q"].pattern.as_deref(), Some("^[\\w ]{1,200}$"));
            assert_eq!(tool.args["q"].r#enum, ["a"]);
        },
    ),
    (
        "[rate_limit]\nbackend = \"redis://127.0.0.1:6379\"\ndefault = \"120/min\"\n\
         [[rate_limit.rule]]\nprincipal = \"ci-*\"\ntool = \"fs__write_file\"\nlimit = \"10/min\"\n\
         [[rate_limit.rule]]\nlimit = \"5/s\"",
        |c| {
            let RateLimitBackend::Redis { url } = &c.rate_limit.backend else {
                panic!()
            };
            assert_eq!(url.expose(), "redis://127.0.0.1:6379");
            let per_min = Duration::from_secs(60);
            assert_eq!(
                c.rate_limit.default,
                Some(Rate {
                    count: 120,
                    per: per_min
                })
            );
            assert_eq!(c.rate_limit.rules[0].principal, "ci-*");
            assert_eq!(
                c.rate_limit.rules[0].limit,
                Rate {
                    count: 10,
                    per: per_min
                }
            );
            assert_eq!(
                (
                    c.rate_limit.rules[1].principal.as_str(),
                    c.rate_limit.rules[1].tool.as_str()
                ),
                ("*", "*")
            );
            assert!(
                !c.warnings.iter().any(|w| w.contains("rate_limit")),
                "no password, no warning"
            );
        },
    ),
    (
        "[storage]\nurl = \"postgres://app:pw@db.internal/portcullis\"",
        |c| {
            assert_eq!(c.storage.url, "postgres://app:pw@db.internal/portcullis");
            assert!(has_warning(
                c,
                "inline secret at storage.url (password in URL); use env: or file:"
            ));
            assert!(
                !format!("{c:?}").contains(":pw@"),
                "Debug masks the password"
            );
        },
    ),
    ("[storage]\nurl = \"sqlite::memory:\"", |c| {
        assert_eq!(c.storage.url, "sqlite::memory:")
    }),
    ("[storage]\nurl = \"sqlite://../var/p.db?mode=rwc\"", |c| {
        assert_eq!(c.storage.url, "sqlite:///var/p.db?mode=rwc");
    }),
    ("[storage]\nurl = \"sqlite:///srv/p.db\"", |c| {
        assert_eq!(c.storage.url, "sqlite:///srv/p.db")
    }),
    ("[storage]\nsynchronous_commit = false", |c| {
        assert!(!c.storage.synchronous_commit);
        assert_eq!(c.storage.url, "sqlite:///cfg/portcullis.db");
    }),
    (
        "[auth]\napi_keys = true\ndangerous_allow_anonymous = true\n[[auth.jwt]]\n\
         issuer = \"https://idp.example\"\njwks_url = \"https://idp.example/jwks\"\n\
         audience = \"https://gw.example/mcp\"\n[auth.introspection]\nurl = \"http://localhost:9000/i\"\n\
         client_id = \"gw\"\nclient_secret = \"env:SEARCH_TOKEN\"",
        |c| {
            assert!(c.auth.api_keys && c.auth.dangerous_allow_anonymous);
            assert_eq!(c.auth.jwt[0].jwks_url, "https://idp.example/jwks");
            assert_eq!(c.auth.jwt[0].audience, "https://gw.example/mcp");
            let introspection = c.auth.introspection.as_ref().unwrap();
            assert_eq!(introspection.client_secret.origin(), "env:SEARCH_TOKEN");
            assert!(
                c.warnings
                    .iter()
                    .any(|w| w.starts_with("auth.dangerous_allow_anonymous = true"))
            );
        },
    ),
    ("[listen]\naddr = \"127.0.0.1:9443\"", |c| {
        assert_eq!(c.auth.resource, "http://127.0.0.1:9443/mcp");
        assert!(c.auth.key_pepper.is_none() && c.auth.required_scopes.is_empty());
        assert_eq!(
            (c.auth.max_failures.count, c.auth.max_failures.per.as_secs()),
            (20, 60)
        );
    }),
    (
        "[auth]\nkey_pepper = \"inline-pepper-0123456789\"\nresource = \"https://gw.example/mcp/\"\n\
         required_scopes = [\"mcp\", \"mcp\", \"tools:read\"]\nmax_failures = \"5/s\"",
        |c| {
            assert_eq!(c.auth.key_pepper.as_ref().unwrap().origin(), "inline");
            assert_eq!(c.auth.resource, "https://gw.example/mcp");
            assert_eq!(c.auth.required_scopes, ["mcp", "tools:read"]);
            assert_eq!(
                (c.auth.max_failures.count, c.auth.max_failures.per.as_secs()),
                (5, 1)
            );
            assert!(
                c.warnings
                    .iter()
                    .any(|w| w == "inline secret at auth.key_pepper; use env: or file:")
            );
        },
    ),
    (
        "[authz]\npolicies = [\"policies/*.cedar\"]\nroles_claim = \"groups\"",
        |c| {
            assert_eq!(c.authz.policies, [PathBuf::from("/cfg/policies/*.cedar")]);
            assert_eq!(c.authz.roles_claim, "groups");
            assert!(!c.warnings.iter().any(|w| w.contains("[authz]")));
        },
    ),
    ("[authz]\npolicies = []", |c| {
        assert!(c.warnings.iter().any(|w| w.contains("no [authz]")))
    }),
    (
        "[guard]\nredact = [\"pii\", \"secrets\", \"pii\"]\npin_tools = false\nscan_tools = false\n\
         [[guard.redact_pattern]]\nname = \"ticket\"\npattern = 'TICKET-\\d+'",
        |c| {
            assert_eq!(c.guard.redact, [RedactSet::Pii, RedactSet::Secrets]);
            assert!(!c.guard.pin_tools && !c.guard.scan_tools);
            assert_eq!(c.guard.redact_patterns[0].pattern, "TICKET-\\d+");
        },
    ),
    ("[guard]\nredact = []", |c| {
        assert!(c.guard.redact.is_empty())
    }),
    (
        "[audit]\nretention = \"365d\"\ncheckpoint_records = 10\ncheckpoint_interval = \"5s\"\n\
         [[audit.sink]]\nkind = \"jsonl\"\npath = \"audit/out.jsonl\"\nmax_size = \"1MiB\"\nkeep = 3\n[[audit.sink]]\nkind = \"syslog\"\n\
         [[audit.sink]]\nkind = \"syslog\"\naddress = \"siem.internal:514\"\ntransport = \"tcp\"\n[[audit.sink]]\nkind = \"otlp\"\n\
         endpoint = \"http://otel.internal:4318\"\n[[audit.sink]]\nkind = \"webhook\"\n\
         url = \"https://hooks.example/audit\"\nheaders = { Authorization = \"env:SEARCH_TOKEN\" }",
        |c| {
            assert_eq!(c.audit.retention, Some(Duration::from_secs(365 * 86_400)));
            assert_eq!(c.audit.checkpoint_records, 10);
            let sinks = &c.audit.sinks;
            assert!(
                matches!(&sinks[0], Sink::Jsonl { path, max_size: 1_048_576, keep: 3 } if path == &PathBuf::from("/cfg/audit/out.jsonl"))
            );
            assert!(matches!(
                &sinks[1],
                Sink::Syslog {
                    address: None,
                    transport: portcullis_config::SyslogTransport::Udp,
                    ca: None
                }
            ));
            assert!(matches!(
                &sinks[2],
                Sink::Syslog { address: Some(a), transport: portcullis_config::SyslogTransport::Tcp, .. } if a.port == 514
            ));
            assert!(matches!(&sinks[3], Sink::Otlp { .. }));
            assert!(matches!(&sinks[4], Sink::Webhook { headers, .. } if headers.len() == 1));
            assert!(
                c.warnings
                    .iter()
                    .any(|w| w.contains("audit.sink[3].endpoint: plain http"))
            );
        },
    ),
    (
        "[approval]\ntimeout = \"2m\"\napprovers_role = \"sre\"\n[anomaly]\nenabled = true\n\
         [[anomaly.alert]]\nkind = \"webhook\"\nurl = \"https://alerts.example/hook\"",
        |c| {
            assert_eq!(c.approval.timeout, Duration::from_secs(120));
            assert_eq!(c.approval.approvers_role, "sre");
            assert!(c.anomaly.enabled && c.anomaly.alerts.len() == 1);
        },
    ),
    ("[[anomaly.alert]]\nkind = \"syslog\"", |c| {
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("anomaly.enabled is false"))
        );
    }),
];

#[test]
fn valid_snippets() {
    for (i, (text, check)) in ROWS.iter().enumerate() {
        let config = parse(text).unwrap_or_else(|e| panic!("row {i}: {e}\n--- for:\n{text}"));
        check(&config);
    }
}

#[test]
fn storage_url_from_a_secret_is_never_echoed() {
    let errors = parse("[storage]\nurl = \"env:SEARCH_TOKEN\"\n")
        .unwrap_err()
        .to_string();
    assert!(!errors.contains("s3cr3t"), "{errors}");
    assert!(errors.contains("unsupported storage URL:"), "{errors}");
}
