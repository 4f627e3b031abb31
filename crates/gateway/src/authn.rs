//! The authentication stage: the request's credentials and connection → [`Authenticated`] or a
//! refusal. The checks themselves live in `portcullis-authn`; this stage only hands them what
//! the request carried and turns the answer into the pipeline's types.

use std::net::SocketAddr;

use http::HeaderMap;
use portcullis_authn::{AuthFailure, CredentialsSeen, PeerInfo};
use rustls_pki_types::CertificateDer;

use crate::Gateway;
use crate::proof::Authenticated;

/// What authentication sees of one request.
pub struct Seen<'a> {
    pub headers: &'a HeaderMap,
    pub peer: SocketAddr,
    pub client_cert: Option<&'a CertificateDer<'static>>,
    pub query: Option<&'a str>,
}

/// Authenticates one request. A failure says how to answer (status, challenge) and what to
/// audit; it never holds the credential.
pub async fn authenticate(
    gw: &Gateway,
    seen: &Seen<'_>,
) -> Result<Authenticated, Box<AuthFailure>> {
    let peer = PeerInfo {
        ip: seen.peer.ip(),
        client_cert: seen.client_cert.cloned(),
    };
    let creds = CredentialsSeen {
        headers: seen.headers,
        peer: &peer,
        query: seen.query,
    };
    match gw.authn.authenticate(&creds).await {
        Ok(principal) => Ok(Authenticated::assert(principal)),
        Err(failure) => Err(Box::new(failure)),
    }
}
