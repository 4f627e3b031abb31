//! mTLS: certificates made here with rcgen; handshakes through tokio-rustls against
//! `tls::server_config`; the certificate's identity through `Authenticator`.

use std::path::Path;
use std::sync::Arc;

use portcullis_authn::tls::{CertIdentityError, principal_from_cert, server_config};
use portcullis_authn::{
    Authenticator, CredentialsSeen, FailureKind, KeyStore, NewKey, PeerInfo, Pepper, PrincipalKind,
};
use portcullis_config::{PrincipalFrom, Tls};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, date_time_ymd,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use secrecy::ExposeSecret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::support::*;

const AGENT_URI: &str = "spiffe://example.org/agent";

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

struct Leaf {
    der: CertificateDer<'static>,
    pem: String,
    key: KeyPair,
}

fn leaf(ca: &Ca, cn: &str, client: bool, expired: bool) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    if client {
        params
            .subject_alt_names
            .push(SanType::URI(AGENT_URI.try_into().unwrap()));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    } else {
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    }
    if expired {
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2021, 1, 1);
    }
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    Leaf {
        der: cert.der().clone(),
        pem: cert.pem(),
        key,
    }
}

struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
    tls: Tls,
}

fn pki(require_client_cert: bool) -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("Portcullis test CA");
    let server = leaf(&ca, "localhost", false, false);
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let tls = Tls {
        cert: write("server.pem", &server.pem),
        key: write("server-key.pem", &server.key.serialize_pem()),
        client_ca: Some(write("ca.pem", &ca.pem)),
        require_client_cert,
    };
    Pki { dir, ca, tls }
}

/// One TLS connection: the server's view (peer certificate or handshake error) and whether
/// the client could read the server's greeting.
async fn handshake(
    tls: &Tls,
    ca_pem: &str,
    client: Option<&Leaf>,
) -> (Result<String, String>, bool) {
    let config = Arc::new(server_config(tls).unwrap());
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        match acceptor.accept(tcp).await {
            Ok(mut stream) => {
                let peer = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first().cloned());
                let identity = match peer {
                    Some(der) => principal_from_cert(&der, PrincipalFrom::SanUri).unwrap(),
                    None => "no certificate".to_owned(),
                };
                stream.write_all(b"hello").await.unwrap();
                stream.shutdown().await.ok();
                Ok(identity)
            }
            Err(e) => Err(e.to_string()),
        }
    });
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![leaf.der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key.serialize_der())),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let read_ok = match connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
    {
        Ok(mut stream) => {
            let mut buf = Vec::new();
            stream.read_to_end(&mut buf).await.is_ok() && buf == b"hello"
        }
        Err(_) => false,
    };
    (server.await.unwrap(), read_ok)
}

#[tokio::test]
async fn handshake_accepts_valid_client_and_refuses_others() {
    let p = pki(true);
    let good = leaf(&p.ca, "agent-cn", true, false);
    let expired = leaf(&p.ca, "old-agent", true, true);
    let other_ca = ca("Someone else's CA");
    let stranger = leaf(&other_ca, "stranger", true, false);

    let (server, client_ok) = handshake(&p.tls, &p.ca.pem, Some(&good)).await;
    assert_eq!(server.as_deref(), Ok(AGENT_URI));
    assert!(client_ok);

    type Row<'a> = (&'a str, Option<&'a Leaf>, &'a str);
    let refused: [Row<'_>; 3] = [
        ("no certificate", None, "peer sent no certificates"),
        ("expired certificate", Some(&expired), "expired"),
        (
            "certificate from another CA",
            Some(&stranger),
            "UnknownIssuer",
        ),
    ];
    for (name, client, reason) in refused {
        let (server, client_ok) = handshake(&p.tls, &p.ca.pem, client).await;
        let err = server.expect_err(name);
        assert!(err.contains(reason), "{name}: {err}");
        assert!(!client_ok, "{name}: the client got data");
    }
}

#[tokio::test]
async fn optional_client_auth_lets_certless_clients_through_the_handshake() {
    let p = pki(false);
    let (server, client_ok) = handshake(&p.tls, &p.ca.pem, None).await;
    assert_eq!(server.as_deref(), Ok("no certificate"));
    assert!(client_ok);
    let other_ca = ca("Someone else's CA");
    let stranger = leaf(&other_ca, "stranger", true, false);
    let (server, _) = handshake(&p.tls, &p.ca.pem, Some(&stranger)).await;
    assert!(server.is_err(), "a presented certificate is still verified");
}

#[test]
fn identity_mapping() {
    let p = pki(true);
    let good = leaf(&p.ca, "agent-cn", true, false);
    let server = leaf(&p.ca, "localhost", false, false);
    assert_eq!(
        principal_from_cert(&good.der, PrincipalFrom::SanUri).unwrap(),
        AGENT_URI
    );
    assert_eq!(
        principal_from_cert(&good.der, PrincipalFrom::SubjectCn).unwrap(),
        "agent-cn"
    );
    assert_eq!(
        principal_from_cert(&server.der, PrincipalFrom::SanUri),
        Err(CertIdentityError::NoSanUri)
    );
    assert_eq!(
        principal_from_cert(
            &CertificateDer::from(vec![1u8, 2, 3]),
            PrincipalFrom::SubjectCn
        ),
        Err(CertIdentityError::Unparsable)
    );
}

fn mtls_config(dir: &Path, tls: &Tls, extra: &str) -> portcullis_config::Config {
    config(
        dir,
        &format!(
            "[listen.tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\nrequire_client_cert = true\n\
             [auth]\n{extra}\n[auth.mtls]\nprincipal_from = \"san_uri\"",
            tls.cert.display(),
            tls.key.display(),
            tls.client_ca.as_ref().unwrap().display()
        ),
    )
}

#[tokio::test]
async fn certificate_identity_through_the_authenticator() {
    let p = pki(true);
    let good = leaf(&p.ca, "agent-cn", true, false);
    let with_cert = PeerInfo {
        ip: ip(1),
        client_cert: Some(good.der.clone()),
    };
    let without = PeerInfo {
        ip: ip(1),
        client_cert: None,
    };
    let none = http::HeaderMap::new();

    // mTLS alone: the certificate is the principal.
    let config = mtls_config(p.dir.path(), &p.tls, "");
    let store = portcullis_store::testing::sqlite(p.dir.path())
        .await
        .unwrap();
    let a = Authenticator::new(&config, store.clone(), http())
        .await
        .unwrap();
    let seen = |peer, headers| CredentialsSeen {
        headers,
        peer,
        query: None,
    };
    let principal = a.authenticate(&seen(&with_cert, &none)).await.unwrap();
    assert_eq!(principal.id, AGENT_URI);
    assert_eq!(principal.kind, PrincipalKind::Service);
    assert_eq!(principal.method.as_str(), "mtls");
    assert!(principal.credential_id.unwrap().starts_with("sha256:"));
    let err = a.authenticate(&seen(&without, &none)).await.unwrap_err();
    assert_eq!(err.kind(), &FailureKind::ClientCertRequired);
    assert_eq!(err.status(), 401);

    // mTLS with API keys: both required; the key names the principal, the cert is recorded.
    let config = mtls_config(p.dir.path(), &p.tls, "api_keys = true");
    let a = Authenticator::new(&config, store.clone(), http())
        .await
        .unwrap();
    let keys = KeyStore::open(store.clone()).await.unwrap();
    let pepper = Pepper::resolve(&config).unwrap().unwrap();
    let created = keys
        .create(
            &pepper,
            NewKey {
                principal: "alice".into(),
                kind: PrincipalKind::User,
                roles: vec![],
                expires_in: None,
            },
            portcullis_store::now_ms(),
        )
        .await
        .unwrap();
    let key_headers = api_key_header(created.key.expose_secret());
    let principal = a
        .authenticate(&seen(&with_cert, &key_headers))
        .await
        .unwrap();
    assert_eq!(principal.id, "alice");
    assert_eq!(principal.method.as_str(), "mtls+api_key");
    assert_eq!(principal.cert_identity.as_deref(), Some(AGENT_URI));
    let err = a.authenticate(&seen(&with_cert, &none)).await.unwrap_err();
    assert_eq!(
        err.kind(),
        &FailureKind::Missing,
        "certificate alone is not enough"
    );
    let err = a
        .authenticate(&seen(&without, &key_headers))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        &FailureKind::ClientCertRequired,
        "key alone is not enough"
    );

    // A certificate without the configured identity field.
    let server_cert = leaf(&p.ca, "localhost", false, false);
    let odd = PeerInfo {
        ip: ip(2),
        client_cert: Some(server_cert.der.clone()),
    };
    let err = a.authenticate(&seen(&odd, &key_headers)).await.unwrap_err();
    assert_eq!(err.kind(), &FailureKind::ClientCertUnusable);
}
