//! mTLS end to end: the built binary serving HTTPS with `[listen.tls]` (client certificates
//! required) and `[auth.mtls]`, in front of the bundled demo upstream (stdio). Certificates are
//! made here with rcgen; requests go through reqwest with a client identity.
//!
//! - a valid client certificate calls a tool (2026-07-28 `tools/call`) as the principal its SAN
//!   URI names: a policy that permits only that principal lets it through and denies another
//!   valid certificate, and the audit records name them;
//! - no certificate, an expired one, or one from another CA: the TLS handshake is refused;
//! - `[auth.mtls]` with API keys: both are required, the principal is the key's.

#![expect(clippy::unwrap_used, clippy::panic, reason = "test")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, date_time_ymd,
};
use serde_json::{Value, json};

const AGENT: &str = "spiffe://portcullis.test/agent";
const OTHER: &str = "spiffe://portcullis.test/intruder";
const VERSION: &str = "2026-07-28";

// --- certificates ----------------------------------------------------------------------------

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A leaf's certificate and key, PEM.
struct Leaf {
    cert: String,
    key: String,
}

impl Leaf {
    fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.cert, self.key).as_bytes()).unwrap()
    }
}

fn server_leaf(ca: &Ca) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    params
        .distinguished_name
        .push(DnType::CommonName, "portcullis test server");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    Leaf {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

fn client_leaf(ca: &Ca, uri: &str, expired: bool) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "agent");
    params
        .subject_alt_names
        .push(SanType::URI(uri.try_into().unwrap()));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    if expired {
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2021, 1, 1);
    }
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    Leaf {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

struct Pki {
    ca: Ca,
    agent: Leaf,
    other: Leaf,
    expired: Leaf,
    foreign: Leaf,
}

/// Writes the server's files into `dir`; returns the client side.
fn pki(dir: &Path) -> Pki {
    let ca = ca("Portcullis e2e CA");
    let server = server_leaf(&ca);
    std::fs::write(dir.join("server.pem"), &server.cert).unwrap();
    std::fs::write(dir.join("server-key.pem"), &server.key).unwrap();
    std::fs::write(dir.join("ca.pem"), &ca.pem).unwrap();
    let stranger = self::ca("Some other CA");
    Pki {
        agent: client_leaf(&ca, AGENT, false),
        other: client_leaf(&ca, OTHER, false),
        expired: client_leaf(&ca, AGENT, true),
        foreign: client_leaf(&stranger, AGENT, false),
        ca,
    }
}

fn client(pki: &Pki, leaf: Option<&Leaf>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca.pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(30))
        .no_proxy();
    if let Some(leaf) = leaf {
        builder = builder.identity(leaf.identity());
    }
    builder.build().unwrap()
}

// --- the gateway -----------------------------------------------------------------------------

fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_portcullis")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes `portcullis.toml` (TLS with required client certificates, `[auth.mtls]`, the demo
/// upstream) and `policies/p.cedar`; returns the config path.
fn write_config(dir: &Path, port: u16, auth_extra: &str, policy: &str) -> PathBuf {
    let root = dir.join("demo-root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(dir.join("policies/p.cedar"), policy).unwrap();
    let command = json!([binary(), "demo-upstream", "--root", root.to_str().unwrap()]);
    let text = format!(
        r#"[listen]
addr = "127.0.0.1:{port}"

[listen.tls]
cert = "server.pem"
key = "server-key.pem"
client_ca = "ca.pem"
require_client_cert = true

[storage]
url = "sqlite://portcullis.db"

[auth]
max_failures = "1000/min"
{auth_extra}

[auth.mtls]
principal_from = "san_uri"

[authz]
policies = ["policies/*.cedar"]

[[upstream]]
name = "demo"
command = {command}
"#
    );
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `portcullis run`; stopped with SIGTERM (then killed) when dropped.
struct Gateway {
    child: Child,
    base: String,
    config: PathBuf,
    log: PathBuf,
}

impl Gateway {
    async fn start(config: PathBuf, port: u16, probe: &reqwest::Client) -> Gateway {
        let dir = config.parent().unwrap().to_owned();
        let log = dir.join("gateway.log");
        let child = Command::new(binary())
            .args(["run", "--log-format", "json", "--config"])
            .arg(&config)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("gateway.out")).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut gw = Gateway {
            child,
            base: format!("https://127.0.0.1:{port}"),
            config,
            log,
        };
        gw.wait_ready(probe).await;
        gw
    }

    /// `/readyz` 200 over mTLS (the listener is up and the demo upstream connected).
    async fn wait_ready(&mut self, probe: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "gateway exited with {status} before it was ready\n{}",
                    self.logs()
                );
            }
            match probe.get(format!("{}/readyz", self.base)).send().await {
                Ok(r) if r.status() == 200 => return,
                Ok(r) => last = format!("HTTP {}", r.status()),
                Err(e) => last = chain(&e),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "gateway not ready within 60 s (last: {last})\n{}",
            self.logs()
        );
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn cli(&self, args: &[&str]) -> String {
        cli(&self.config, args)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cli(config: &Path, args: &[&str]) -> String {
    let out = Command::new(binary())
        .args(args)
        .arg("--config")
        .arg(config)
        .current_dir(config.parent().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "portcullis {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn audit_records(gw: &Gateway) -> Vec<Value> {
    gw.cli(&["audit", "export", "--format", "jsonl"])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The records of `tools/call` requests among `records`.
fn tool_calls(records: &[Value]) -> Vec<&Value> {
    records
        .iter()
        .filter(|r| r["method"] == "tools/call")
        .collect()
}

/// An error and its sources, for failure messages.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A 2026-07-28 `tools/call` of `demo__echo` (envelope in `_meta`, mirrored headers).
async fn call_echo(
    client: &reqwest::Client,
    gw: &Gateway,
    message: &str,
    api_key: Option<&str>,
) -> Result<(u16, Value), reqwest::Error> {
    let body = json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "demo__echo",
            "arguments": { "message": message },
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": VERSION,
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": { "name": "portcullis-mtls-test", "version": "0" },
            },
        },
    });
    let mut request = client
        .post(format!("{}/mcp", gw.base))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", VERSION)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "demo__echo")
        .body(body.to_string());
    if let Some(key) = api_key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    let reply = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, reply))
}

fn echoed(reply: &Value) -> Option<&str> {
    reply["result"]["content"][0]["text"].as_str()
}

/// Each client must be refused at the TLS layer: the request fails, no HTTP answer comes back.
async fn assert_handshake_refused(gw: &Gateway, clients: &[(&str, reqwest::Client)]) {
    for (name, client) in clients {
        match call_echo(client, gw, "should not pass", None).await {
            Ok((status, reply)) => {
                panic!(
                    "{name}: the gateway answered HTTP {status} instead of refusing the handshake: {reply}"
                )
            }
            Err(e) => assert!(
                e.is_connect() || e.is_request() || e.is_body(),
                "{name}: unexpected error kind: {}",
                chain(&e)
            ),
        }
    }
}

// --- tests -----------------------------------------------------------------------------------

#[tokio::test]
async fn client_certificate_names_the_principal() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let port = free_port();
    // Only the agent's certificate identity is permitted anything.
    let policy = format!(
        "@id(\"agent-only\")\npermit (principal == Portcullis::Service::\"{AGENT}\", action, resource);\n"
    );
    let config = write_config(dir.path(), port, "", &policy);
    let agent = client(&pki, Some(&pki.agent));
    let gw = Gateway::start(config, port, &agent).await;

    let (status, reply) = call_echo(&agent, &gw, "hello over mTLS", None)
        .await
        .unwrap_or_else(|e| panic!("valid client certificate: {}\n{}", chain(&e), gw.logs()));
    assert_eq!(status, 200, "{reply}\n{}", gw.logs());
    assert_eq!(echoed(&reply), Some("hello over mTLS"), "{reply}");

    // Another valid certificate of the same CA is authenticated as its own identity, which the
    // policy does not permit: the mapping decides, not the mere possession of a certificate.
    let other = client(&pki, Some(&pki.other));
    let (status, reply) = call_echo(&other, &gw, "intruder", None).await.unwrap();
    assert_eq!(
        status, 200,
        "a policy denial is a JSON-RPC error, not an HTTP one: {reply}"
    );
    assert!(
        reply["error"].is_object() || reply["result"]["isError"] == true,
        "{reply}"
    );
    assert_ne!(echoed(&reply), Some("intruder"), "{reply}");

    assert_handshake_refused(
        &gw,
        &[
            ("no client certificate", client(&pki, None)),
            (
                "expired client certificate",
                client(&pki, Some(&pki.expired)),
            ),
            (
                "certificate from another CA",
                client(&pki, Some(&pki.foreign)),
            ),
        ],
    )
    .await;

    // Still serving the good client after the refusals.
    let (status, reply) = call_echo(&agent, &gw, "again", None).await.unwrap();
    assert_eq!((status, echoed(&reply)), (200, Some("again")), "{reply}");

    let records = audit_records(&gw);
    let calls = tool_calls(&records);
    let allowed: Vec<&&Value> = calls.iter().filter(|r| r["decision"] == "allow").collect();
    assert_eq!(allowed.len(), 2, "{calls:#?}");
    for r in &allowed {
        assert_eq!(r["principal"], AGENT, "{r}");
        assert_eq!(r["auth_method"], "mtls", "{r}");
        assert_eq!(r["client_ip"], "127.0.0.1", "{r}");
    }
    let denied: Vec<&&Value> = calls.iter().filter(|r| r["decision"] == "deny").collect();
    assert_eq!(denied.len(), 1, "{calls:#?}");
    assert_eq!(denied[0]["principal"], OTHER, "{}", denied[0]);
}

#[tokio::test]
async fn mtls_and_api_key_are_both_required() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let port = free_port();
    let policy = "@id(\"allow-all\")\npermit (principal, action, resource);\n";
    let config = write_config(dir.path(), port, "api_keys = true", policy);
    let out = cli(
        &config,
        &[
            "keys",
            "create",
            "--principal",
            "alice",
            "--role",
            "dev",
            "--expires",
            "1h",
        ],
    );
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .unwrap_or_else(|| panic!("no key line in {out}"))
        .to_owned();
    let agent = client(&pki, Some(&pki.agent));
    let gw = Gateway::start(config, port, &agent).await;

    // Certificate and key: the principal is the key's; the certificate is recorded as the method.
    let (status, reply) = call_echo(&agent, &gw, "both", Some(&key)).await.unwrap();
    assert_eq!(
        (status, echoed(&reply)),
        (200, Some("both")),
        "{reply}\n{}",
        gw.logs()
    );

    // Certificate alone: a credential is also required.
    let (status, reply) = call_echo(&agent, &gw, "cert only", None).await.unwrap();
    assert_eq!(status, 401, "{reply}");
    assert!(reply["error"].is_object(), "{reply}");

    // Certificate plus a wrong key: refused.
    let wrong = format!(
        "{}{}",
        &key[..key.len() - 4],
        if key.ends_with("0000") {
            "1111"
        } else {
            "0000"
        }
    );
    let (status, _) = call_echo(&agent, &gw, "wrong key", Some(&wrong))
        .await
        .unwrap();
    assert_eq!(status, 401);

    // A key without a certificate never gets past the handshake.
    match call_echo(&client(&pki, None), &gw, "key only", Some(&key)).await {
        Ok((status, reply)) => panic!("key without a certificate answered HTTP {status}: {reply}"),
        Err(e) => assert!(
            e.is_connect() || e.is_request() || e.is_body(),
            "{}",
            chain(&e)
        ),
    }

    let records = audit_records(&gw);
    let calls = tool_calls(&records);
    let allowed: Vec<&&Value> = calls.iter().filter(|r| r["decision"] == "allow").collect();
    assert_eq!(allowed.len(), 1, "{calls:#?}");
    assert_eq!(allowed[0]["principal"], "alice", "{}", allowed[0]);
    assert_eq!(allowed[0]["auth_method"], "mtls+api_key", "{}", allowed[0]);
    let denied = calls.iter().filter(|r| r["decision"] == "deny").count();
    assert_eq!(denied, 2, "{calls:#?}");
    let secret = key.rsplit('_').next().unwrap();
    assert!(
        !serde_json::to_string(&records).unwrap().contains(secret),
        "the API key is in the audit trail"
    );
}
