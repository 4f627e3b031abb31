//! Micro-benchmarks of the request path's hot stages, one by one:
//! `cargo bench -p portcullis-bench` (or `bench/run --micro`).
//!
//! - `parse`: the JSON-RPC envelope of a `tools/call` (raw params kept);
//! - `authn`: an API key (HMAC with the pepper, store lookup cached) and a gateway-minted JWT;
//! - `authz`: a Cedar decision with 10, 100 and 1000 policies;
//! - `schema`: a `tools/call`'s arguments against the tool's `inputSchema`;
//! - `redact`: the secret and personal-data rules over 1 KB, 16 KB and 256 KB of text;
//! - `audit`: one durable record (SQLite, `synchronous=FULL`, group commit);
//! - `result_*`: what a 1 MB `tools/call` result costs on its way back: the envelope check and
//!   parse, the hidden-character check, and the audit digest of its canonical form.
#![expect(clippy::unwrap_used, reason = "benchmark set-up")]

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use divan::Bencher;
use divan::counter::BytesCount;
use portcullis_authz::{Action, CallTime, PolicySet, Subject, SubjectKind, Target, ToolAttrs};
use secrecy::ExposeSecret;
use serde_json::json;

fn main() {
    divan::main();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

const CALL: &[u8] = br#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"fs__read_file","arguments":{"path":"/srv/data/report.txt","limit":100},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"progressToken":"p-1"}}}"#;

#[divan::bench]
fn parse(b: Bencher<'_, '_>) {
    b.counter(BytesCount::of_slice(CALL))
        .bench(|| portcullis_mcp::parse(divan::black_box(CALL), 64).unwrap());
}

struct AuthSetup {
    rt: tokio::runtime::Runtime,
    authn: portcullis_authn::Authenticator,
    api_key: String,
    jwt: String,
    _dir: tempfile::TempDir,
}

fn auth_setup() -> AuthSetup {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[storage]\nurl = \"sqlite://{}\"\n[auth]\napi_keys = true\nresource = \"http://127.0.0.1:8080/mcp\"\n",
        dir.path().join("bench.db").display()
    );
    let config = portcullis_config::from_str(&text, None, &portcullis_config::ProcessEnv).unwrap();
    let rt = runtime();
    let (authn, api_key, jwt) = rt.block_on(async {
        let created = portcullis_authn::admin::create_key(
            &config,
            portcullis_authn::NewKey {
                principal: "alice".into(),
                kind: portcullis_authn::PrincipalKind::User,
                roles: vec!["dev".into()],
                expires_in: None,
            },
        )
        .await
        .unwrap();
        let minted = portcullis_authn::admin::mint_token(
            &config,
            portcullis_authn::MintRequest {
                principal: "ci-bot".into(),
                kind: portcullis_authn::PrincipalKind::Service,
                scopes: vec!["tools:call".into()],
                roles: vec!["dev".into()],
                ttl: Duration::from_secs(600),
                audience: None,
            },
        )
        .await
        .unwrap();
        let store = portcullis_store::Store::open(&config.storage.url)
            .await
            .unwrap();
        let authn = portcullis_authn::Authenticator::new(&config, store, reqwest::Client::new())
            .await
            .unwrap();
        (
            authn,
            created.key.expose_secret().to_owned(),
            minted.token.expose_secret().to_owned(),
        )
    });
    AuthSetup {
        rt,
        authn,
        api_key,
        jwt,
        _dir: dir,
    }
}

fn authenticate(setup: &AuthSetup, headers: &http::HeaderMap) {
    let peer = portcullis_authn::PeerInfo {
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        client_cert: None,
    };
    let seen = portcullis_authn::CredentialsSeen {
        headers,
        peer: &peer,
        query: None,
    };
    setup.rt.block_on(setup.authn.authenticate(&seen)).unwrap();
}

#[divan::bench]
fn authn_api_key(b: Bencher<'_, '_>) {
    let setup = auth_setup();
    let mut headers = http::HeaderMap::new();
    headers.insert("x-api-key", setup.api_key.parse().unwrap());
    authenticate(&setup, &headers);
    b.bench(|| authenticate(&setup, &headers));
}

#[divan::bench]
fn authn_minted_jwt(b: Bencher<'_, '_>) {
    let setup = auth_setup();
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {}", setup.jwt).parse().unwrap(),
    );
    authenticate(&setup, &headers);
    b.bench(|| authenticate(&setup, &headers));
}

/// `n` policies like an operator's: one permit per role and tool family, a few forbids with
/// conditions on arguments and tool attributes.
pub fn policies(n: usize) -> PolicySet {
    PolicySet::from_sources(vec![(PathBuf::from("bench.cedar"), policies_text(n))]).unwrap()
}

fn policies_text(n: usize) -> String {
    let mut text = String::new();
    for i in 0..n {
        let text_i = match i % 4 {
            0 => format!(
                "@id(\"p{i}\")\npermit (principal in Portcullis::Role::\"role{i}\", action == Portcullis::Action::\"call_tool\", resource)\nwhen {{ resource.upstream == \"up{i}\" }};\n"
            ),
            1 => format!(
                "@id(\"p{i}\")\nforbid (principal, action == Portcullis::Action::\"call_tool\", resource == Portcullis::Tool::\"up{i}__write\")\nwhen {{ context.args has path && context.args.path like \"/etc/*\" }};\n"
            ),
            2 => format!(
                "@id(\"p{i}\")\npermit (principal in Portcullis::Role::\"role{i}\", action == Portcullis::Action::\"read_resource\", resource);\n"
            ),
            _ => format!(
                "@id(\"p{i}\")\nforbid (principal, action == Portcullis::Action::\"call_tool\", resource)\nwhen {{ resource.destructive && context.hour < 6 && principal in Portcullis::Role::\"intern{i}\" }};\n"
            ),
        };
        text.push_str(&text_i);
    }
    // The one that decides the benchmarked request.
    text.push_str("@id(\"dev-read-only\")\npermit (principal in Portcullis::Role::\"dev\", action == Portcullis::Action::\"call_tool\", resource)\nwhen { resource.read_only };\n");
    text
}

/// The same caller, tool and arguments decided again: the policies settle without the
/// context, so after the first call the decision reuses Cedar's response.
#[divan::bench(args = [10, 100, 1000])]
fn authz_decide(b: Bencher<'_, '_>, n: usize) {
    authz_bench(b, policies(n));
}

/// As [`authz_decide`], plus one forbid that reads the context before anything else: no
/// response can be reused, so every call is evaluated by Cedar.
#[divan::bench(args = [10, 100, 1000])]
fn authz_decide_evaluated(b: Bencher<'_, '_>, n: usize) {
    let mut text = policies_text(n);
    text.push_str("@id(\"night\")\nforbid (principal, action == Portcullis::Action::\"call_tool\", resource)\nwhen { context.hour < 6 && resource.destructive };\n");
    authz_bench(
        b,
        PolicySet::from_sources(vec![(PathBuf::from("bench.cedar"), text)]).unwrap(),
    );
}

fn authz_bench(b: Bencher<'_, '_>, set: PolicySet) {
    let subject = Subject {
        id: "alice".into(),
        kind: SubjectKind::User,
        roles: vec!["dev".into()],
        auth_method: "api_key".into(),
        scopes: Vec::new(),
        client_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    };
    let target = Target::Tool(ToolAttrs::from_annotations(
        "fs",
        "fs__read_file",
        Some(&json!({"readOnlyHint": true})),
        None,
    ));
    let args = json!({"path": "/srv/data/report.txt", "limit": 100});
    let time = CallTime {
        hour: 10,
        weekday: 3,
    };
    let req = portcullis_authz::Request {
        subject: &subject,
        action: Action::CallTool,
        target: &target,
        args: Some(&args),
        protocol_version: "2026-07-28",
        time,
    };
    assert!(portcullis_authz::decide(&set, &req).is_allow());
    b.bench(|| portcullis_authz::decide(&set, divan::black_box(&req)));
}

#[divan::bench]
fn schema_check_args(b: Bencher<'_, '_>) {
    let def = json!({
        "name": "read_file",
        "inputSchema": {
            "type": "object",
            "properties": {
                "path": {"type": "string", "maxLength": 4096},
                "limit": {"type": "integer", "minimum": 1, "maximum": 10000},
                "encoding": {"enum": ["utf-8", "base64"]}
            },
            "required": ["path"],
            "additionalProperties": false
        }
    });
    let cache = portcullis_guard::schema::SchemaCache::new();
    let compiled = cache.get(&def).unwrap();
    let args = json!({"path": "/srv/data/report.txt", "limit": 100, "encoding": "utf-8"});
    b.bench(|| {
        portcullis_guard::schema::check_args(&compiled, Some(divan::black_box(&args))).unwrap()
    });
}

fn redaction_text(bytes: usize) -> String {
    let para = "Quarterly numbers are attached. Contact jane.doe@example.com or call +1 415 555 0100. \
                The deploy key AKIAQWERTYUIOPASDFGH was rotated; card 4111 1111 1111 1111 expired. \
                Nothing else of note in this paragraph, which is mostly ordinary prose for the benchmark.\n";
    para.repeat(bytes / para.len() + 1)[..bytes].to_owned()
}

#[divan::bench(args = [1024, 16 * 1024, 256 * 1024])]
fn redact(b: Bencher<'_, '_>, bytes: usize) {
    let config = portcullis_config::from_str("", None, &portcullis_config::ProcessEnv).unwrap();
    let redactor = portcullis_guard::redact::Redactor::from_config(&config.guard).unwrap();
    let text = redaction_text(bytes);
    assert!(redactor.redact_str(&text).contains("[REDACTED") || redactor.redact_str(&text) != text);
    b.counter(BytesCount::new(bytes))
        .bench(|| redactor.redact_str(divan::black_box(&text)).len());
}

/// A `tools/call` response as an upstream sends it, with `bytes` of plain text.
fn big_response(bytes: usize) -> Vec<u8> {
    let text = "All work and no play makes Jack a dull boy.\n".repeat(bytes / 44 + 1);
    serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": 7, "result": {
        "content": [{"type": "text", "text": &text[..bytes]}], "isError": false
    }}))
    .unwrap()
}

const MB: usize = 1 << 20;

#[divan::bench]
fn result_envelope_parse(b: Bencher<'_, '_>) {
    let body = big_response(MB);
    b.counter(BytesCount::of_slice(&body))
        .bench(|| portcullis_mcp::parse(divan::black_box(&body), 64).unwrap());
}

#[divan::bench]
fn result_sanitize(b: Bencher<'_, '_>) {
    let body = big_response(MB);
    let value: serde_json::Value =
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["result"].clone();
    let options = portcullis_guard::sanitize::SanitizeOptions {
        max_text_bytes: 16 * MB,
    };
    b.counter(BytesCount::new(MB))
        .with_inputs(|| value.clone())
        .bench_local_values(|mut v| {
            assert!(portcullis_guard::sanitize::sanitize_result(&mut v, &options).is_clean());
            v
        });
}

#[divan::bench]
fn result_audit_digest(b: Bencher<'_, '_>) {
    let body = big_response(MB);
    let value = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["result"].clone();
    b.counter(BytesCount::new(MB))
        .bench(|| portcullis_audit::canonical::digest(divan::black_box(&value)));
}

#[divan::bench(sample_count = 20, sample_size = 10)]
fn audit_append(b: Bencher<'_, '_>) {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[storage]\nurl = \"sqlite://{}\"\n",
        dir.path().join("audit.db").display()
    );
    let config = portcullis_config::from_str(&text, None, &portcullis_config::ProcessEnv).unwrap();
    let rt = runtime();
    let log = rt.block_on(async {
        let store = portcullis_store::Store::open(&config.storage.url)
            .await
            .unwrap();
        portcullis_audit::AuditLog::open(store, &config.audit, dir.path())
            .await
            .unwrap()
    });
    let log = Arc::new(log);
    let draft = || {
        let mut d = portcullis_audit::RecordDraft::new(
            "r-1",
            "tools/call",
            portcullis_audit::Decision::Allow,
        );
        d.principal = Some("alice".into());
        d.name = Some("fs__read_file".into());
        d.args = Some(json!({"path": "/srv/data/report.txt"}));
        d.result = Some(json!({"content": [{"type": "text", "text": "hello"}]}));
        d
    };
    b.bench(|| rt.block_on(log.append(draft())).unwrap());
    rt.block_on(log.shutdown()).unwrap();
}
