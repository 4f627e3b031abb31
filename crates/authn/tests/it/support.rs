//! Shared test helpers: keys generated here, a JWKS server, configurations in temp dirs.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{HeaderMap, HeaderValue};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis_authn::{AuthFailure, Authenticator, CredentialsSeen, PeerInfo, Principal};
use portcullis_config::Config;
use rcgen::{KeyPair, PublicKeyData};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};
use x509_parser::prelude::FromDer;

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A signing key made in the test, with its public JWK.
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Value,
    /// The public key as PEM (what an HS/RS confusion attack uses as the HMAC secret).
    pub public_pem: String,
}

impl TestKey {
    pub fn rsa(kid: &str) -> TestKey {
        let pair = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let spki = pair.subject_public_key_info();
        let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki)
            .map_err(|e| format!("{e:?}"))
            .unwrap();
        let x509_parser::public_key::PublicKey::RSA(rsa) = info.parsed().unwrap() else {
            panic!("not RSA")
        };
        let strip = |b: &[u8]| {
            b.iter()
                .skip_while(|x| **x == 0)
                .copied()
                .collect::<Vec<u8>>()
        };
        TestKey {
            kid: kid.to_owned(),
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_pem(pair.serialize_pem().as_bytes()).unwrap(),
            jwk: json!({"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
                        "n": b64(strip(rsa.modulus)), "e": b64(strip(rsa.exponent))}),
            public_pem: pem("PUBLIC KEY", &spki),
        }
    }

    pub fn ec(kid: &str) -> TestKey {
        let pair = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let raw = pair.public_key_raw();
        assert_eq!(raw.len(), 65);
        TestKey {
            kid: kid.to_owned(),
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
            jwk: json!({"kty": "EC", "kid": kid, "crv": "P-256",
                        "x": b64(&raw[1..33]), "y": b64(&raw[33..])}),
            public_pem: pem("PUBLIC KEY", &pair.subject_public_key_info()),
        }
    }

    pub fn ed(kid: &str) -> TestKey {
        let pair = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        TestKey {
            kid: kid.to_owned(),
            alg: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_pem(pair.serialize_pem().as_bytes()).unwrap(),
            jwk: json!({"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(pair.public_key_raw())}),
            public_pem: pem("PUBLIC KEY", &pair.subject_public_key_info()),
        }
    }

    /// Signs `claims` with header `{alg, kid, typ: at+jwt}`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        header.typ = Some("at+jwt".to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }

    pub fn sign_with(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// An unsigned token (`alg: none`).
pub fn unsigned(kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "none", "kid": kid, "typ": "at+jwt"});
    format!("{}.{}.", b64(header.to_string()), b64(claims.to_string()))
}

pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
}

/// A JWKS server at `GET /jwks` serving `keys`.
pub async fn jwks_server(keys: &[&TestKey]) -> MockServer {
    let server = MockServer::start().await;
    serve_jwks(&server, keys).await;
    server
}

/// Replaces what the server answers at `/jwks`.
pub async fn serve_jwks(server: &MockServer, keys: &[&TestKey]) {
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks(keys)))
        .mount(server)
        .await;
}

/// GET requests the server has seen at `/jwks` (since its last reset).
pub async fn jwks_fetches(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == "/jwks")
        .count()
}

/// A configuration in `dir` (SQLite store in it), from `toml` plus that storage section.
pub fn config(dir: &Path, toml: &str) -> Config {
    config_with_env(dir, toml, &[])
}

pub fn config_with_env(dir: &Path, toml: &str, env: &[(&str, &str)]) -> Config {
    let text = format!(
        "[storage]\nurl = \"sqlite://{}\"\n{toml}",
        dir.join("store.db").display()
    );
    let path = dir.join("portcullis.toml");
    std::fs::write(&path, &text).unwrap();
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    portcullis_config::from_str(&text, Some(&path), &env).unwrap_or_else(|e| panic!("{e}"))
}

pub fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

pub fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    headers
}

pub fn api_key_header(key: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-api-key", HeaderValue::from_str(key).unwrap());
    headers
}

/// Authenticates `headers` from `ip` (no client certificate, no query).
pub async fn auth(
    a: &Authenticator,
    headers: &HeaderMap,
    ip: IpAddr,
) -> Result<Principal, AuthFailure> {
    let peer = PeerInfo {
        ip,
        client_cert: None,
    };
    a.authenticate(&CredentialsSeen {
        headers,
        peer: &peer,
        query: None,
    })
    .await
}

/// A reqwest client like the gateway's.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}
