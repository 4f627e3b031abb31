//! What a request presents: the headers and connection facts authentication reads, and the
//! pure extraction of at most one credential from them.

use std::net::IpAddr;

use http::HeaderMap;
use rustls_pki_types::CertificateDer;

use crate::failure::{Fail, FailureKind};

/// The connection a request arrived on.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub ip: IpAddr,
    /// The end-entity certificate the client presented, already verified by the TLS handshake
    /// against `listen.tls.client_ca` (`ServerConnection::peer_certificates()[0]`).
    pub client_cert: Option<CertificateDer<'static>>,
}

/// Everything of a request that authentication looks at.
#[derive(Debug, Clone, Copy)]
pub struct CredentialsSeen<'a> {
    pub headers: &'a HeaderMap,
    pub peer: &'a PeerInfo,
    /// The request URI's query string (without `?`), if any: credentials there are refused.
    pub query: Option<&'a str>,
}

/// The one credential a request carries.
#[derive(PartialEq, Eq)]
pub(crate) enum Presented<'a> {
    None,
    /// A Portcullis API key (from `X-API-Key`, or a Bearer value starting `pk_`).
    ApiKey(&'a str),
    /// Any other Bearer token (JWT or opaque).
    Bearer(&'a str),
}

impl std::fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the value.
        f.write_str(match self {
            Presented::None => "None",
            Presented::ApiKey(_) => "ApiKey(…)",
            Presented::Bearer(_) => "Bearer(…)",
        })
    }
}

/// The prefix every Portcullis API key starts with.
pub(crate) const API_KEY_PREFIX: &str = "pk_";

/// Query parameters that carry credentials in common APIs (compared case-insensitively).
const QUERY_CREDENTIAL_NAMES: &[&str] = &[
    "access_token",
    "api_key",
    "apikey",
    "api-key",
    "x-api-key",
    "key",
    "token",
    "id_token",
    "bearer",
    "authorization",
    "auth",
];

/// Whether the query string carries something that looks like a credential: a parameter
/// named like one, or any value starting with the API key prefix.
pub fn query_has_credentials(query: &str) -> bool {
    query.split('&').filter(|p| !p.is_empty()).any(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = name.to_ascii_lowercase();
        QUERY_CREDENTIAL_NAMES.contains(&name.as_str())
            || value.starts_with(API_KEY_PREFIX)
            || name.starts_with(API_KEY_PREFIX)
    })
}

/// Extracts the request's credential. Refuses ambiguity (two headers, two credentials), schemes
/// other than Bearer, and values that are not visible ASCII.
pub(crate) fn extract(headers: &HeaderMap) -> Result<Presented<'_>, Fail> {
    let api_key = single(headers, "x-api-key")?;
    let authorization = single(headers, http::header::AUTHORIZATION.as_str())?;
    match (api_key, authorization) {
        (Some(_), Some(_)) => Err(malformed(
            "both X-API-Key and Authorization",
            "the request carries both X-API-Key and Authorization; send one credential",
        )),
        (Some(key), None) => {
            let key = token_value(key, "X-API-Key")?;
            Ok(Presented::ApiKey(key))
        }
        (None, Some(value)) => bearer(value),
        (None, None) => Ok(Presented::None),
    }
}

fn bearer(value: &str) -> Result<Presented<'_>, Fail> {
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        let shown: String = scheme.chars().take(16).collect();
        return Err(Fail::new(
            FailureKind::UnsupportedScheme,
            format!(
                "Authorization scheme {:?} is not Bearer",
                crate::failure::clean(&shown)
            ),
        ));
    }
    let token = token_value(rest.trim_start_matches(' '), "Authorization: Bearer")?;
    if token.starts_with(API_KEY_PREFIX) {
        Ok(Presented::ApiKey(token))
    } else {
        Ok(Presented::Bearer(token))
    }
}

/// At most one header `name`, as text.
fn single<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, Fail> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(malformed(
            "repeated credential header",
            format!("more than one {name} header"),
        ));
    }
    match first.to_str() {
        Ok(text) => Ok(Some(text)),
        Err(_) => Err(malformed(
            "non-ASCII credential header",
            format!("{name} is not visible ASCII"),
        )),
    }
}

/// RFC 6750 `b64token`-like: non-empty, visible ASCII, no spaces (trailing spaces trimmed).
fn token_value<'v>(value: &'v str, what: &str) -> Result<&'v str, Fail> {
    let value = value.trim_end_matches(' ');
    if value.is_empty() {
        return Err(malformed("empty credential", format!("{what} is empty")));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(malformed(
            "credential with spaces or control characters",
            format!("{what} holds spaces or control characters"),
        ));
    }
    Ok(value)
}

fn malformed(rule: &'static str, detail: impl Into<String>) -> Fail {
    Fail::new(FailureKind::Malformed(rule), detail)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn extraction_table() {
        use FailureKind::*;
        type Row<'a> = (&'a [(&'a str, &'a str)], Result<Presented<'a>, FailureKind>);
        let rows: Vec<Row<'_>> = vec![
            (&[], Ok(Presented::None)),
            (
                &[("x-api-key", "pk_live_a_b")],
                Ok(Presented::ApiKey("pk_live_a_b")),
            ),
            (
                &[("authorization", "Bearer pk_live_a_b")],
                Ok(Presented::ApiKey("pk_live_a_b")),
            ),
            (
                &[("authorization", "bearer  eyJ.x.y")],
                Ok(Presented::Bearer("eyJ.x.y")),
            ),
            (
                &[("authorization", "Bearer opaque ")],
                Ok(Presented::Bearer("opaque")),
            ),
            (
                &[("authorization", "Basic dXNlcjpwYXNz")],
                Err(UnsupportedScheme),
            ),
            (
                &[("authorization", "Bearer")],
                Err(Malformed("empty credential")),
            ),
            (
                &[("authorization", "Bearer a b")],
                Err(Malformed("credential with spaces or control characters")),
            ),
            (&[("x-api-key", "")], Err(Malformed("empty credential"))),
            (
                &[("x-api-key", "pk_1"), ("authorization", "Bearer t")],
                Err(Malformed("both X-API-Key and Authorization")),
            ),
            (
                &[("authorization", "Bearer a"), ("authorization", "Bearer b")],
                Err(Malformed("repeated credential header")),
            ),
            (
                &[("x-api-key", "a"), ("x-api-key", "b")],
                Err(Malformed("repeated credential header")),
            ),
        ];
        for (pairs, expected) in rows {
            let map = headers(pairs);
            let got = extract(&map).map_err(|f| f.kind);
            assert_eq!(got, expected, "{pairs:?}");
        }
    }

    #[test]
    fn non_ascii_header_is_malformed() {
        let mut map = HeaderMap::new();
        map.insert(
            "authorization",
            HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        );
        assert_eq!(
            extract(&map).unwrap_err().kind,
            FailureKind::Malformed("non-ASCII credential header")
        );
    }

    #[test]
    fn query_table() {
        let rows = [
            ("", false),
            ("cursor=abc&limit=3", false),
            ("access_token=eyJ", true),
            ("x=1&API_KEY=pk_live_1", true),
            ("q=pk_live_abc_def", true),
            ("token", true),
            ("monkey=1", false),
        ];
        for (q, expected) in rows {
            assert_eq!(query_has_credentials(q), expected, "{q}");
        }
    }

    #[test]
    fn debug_never_shows_the_value() {
        let shown = format!("{:?}", Presented::Bearer("secret-token"));
        assert!(!shown.contains("secret"));
    }
}
