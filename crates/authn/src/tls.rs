//! The listener's TLS configuration (`[listen.tls]`), with client-certificate verification for
//! mTLS, and the principal a verified client certificate names (`[auth.mtls]`).
//!
//! With `client_ca` and `require_client_cert = true`, the handshake itself refuses a client
//! without a certificate, with an expired one, or with one not issued by `client_ca`. With
//! `client_ca` alone, a certificate is optional at the handshake (verified when presented) and
//! [`crate::Authenticator`] refuses requests without one when `[auth.mtls]` is set.

use std::path::Path;
use std::sync::Arc;

use portcullis_config::{PrincipalFrom, Tls};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;

use crate::error::AuthnError;

/// A rustls server configuration for `tls` (aws-lc-rs provider, TLS 1.2 and 1.3, ALPN `h2`
/// and `http/1.1`).
pub fn server_config(tls: &Tls) -> Result<rustls::ServerConfig, AuthnError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs = read_certs(&tls.cert)?;
    if certs.is_empty() {
        return Err(AuthnError::file(
            &tls.cert,
            "no certificate in the PEM file",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| AuthnError::file(&tls.key, format!("no usable private key: {e}")))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| AuthnError::Tls(e.to_string()))?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| AuthnError::file(ca, format!("unusable CA certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(AuthnError::file(ca, "no certificate in the PEM file"));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if tls.require_client_cert {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            let verifier = verifier
                .build()
                .map_err(|e| AuthnError::Tls(format!("client certificate verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| AuthnError::Tls(format!("certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, AuthnError> {
    CertificateDer::pem_file_iter(path)
        .map_err(|e| AuthnError::file(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AuthnError::file(path, format!("bad PEM: {e}")))
}

/// Why a verified certificate names no principal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertIdentityError {
    #[error("the certificate cannot be parsed")]
    Unparsable,
    #[error("the certificate has no URI subject alternative name")]
    NoSanUri,
    #[error("the certificate subject has no common name")]
    NoCommonName,
    #[error("the certificate's identity is empty, too long or holds control characters")]
    BadIdentity,
}

/// The principal a (verified) client certificate names: its first URI subject alternative
/// name (`san_uri`, e.g. `spiffe://example.org/agent`) or its subject common name.
pub fn principal_from_cert(
    cert: &CertificateDer<'_>,
    from: PrincipalFrom,
) -> Result<String, CertIdentityError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|_| CertIdentityError::Unparsable)?;
    let identity = match from {
        PrincipalFrom::SanUri => parsed
            .subject_alternative_name()
            .map_err(|_| CertIdentityError::Unparsable)?
            .and_then(|san| {
                san.value.general_names.iter().find_map(|name| match name {
                    GeneralName::URI(uri) => Some((*uri).to_owned()),
                    _ => None,
                })
            })
            .ok_or(CertIdentityError::NoSanUri)?,
        PrincipalFrom::SubjectCn => parsed
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned)
            .ok_or(CertIdentityError::NoCommonName)?,
    };
    if identity.is_empty()
        || identity.chars().count() > 256
        || identity.chars().any(char::is_control)
    {
        return Err(CertIdentityError::BadIdentity);
    }
    Ok(identity)
}
