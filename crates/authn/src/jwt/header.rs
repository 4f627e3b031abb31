//! The JOSE header of a compact JWS, read before any key is chosen: the algorithm allow-list
//! and the access-token `typ` rule live here.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::failure::{Fail, FailureKind};

/// Longest token accepted (bytes); real access tokens are a few KiB.
pub(crate) const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Signature algorithms this gateway verifies. No `none`, no HMAC: a verification key always
/// comes from a JWKS or the store, and is always asymmetric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Alg {
    pub(crate) const RSA: &'static [Alg] = &[
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
        }
    }

    /// An allowed algorithm by its JOSE name (case-sensitive, as RFC 7518 defines them).
    pub fn parse(name: &str) -> Option<Alg> {
        [Alg::ES256, Alg::ES384, Alg::EdDSA]
            .iter()
            .chain(Alg::RSA)
            .copied()
            .find(|a| a.name() == name)
    }

    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as A;
        match self {
            Alg::RS256 => A::RS256,
            Alg::RS384 => A::RS384,
            Alg::RS512 => A::RS512,
            Alg::PS256 => A::PS256,
            Alg::PS384 => A::PS384,
            Alg::PS512 => A::PS512,
            Alg::ES256 => A::ES256,
            Alg::ES384 => A::ES384,
            Alg::EdDSA => A::EdDSA,
        }
    }
}

/// The header fields authentication reads.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct JoseHeader {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default)]
    pub crit: Option<Value>,
}

/// Whether `token` has the compact JWS shape (three base64url segments).
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    let mut parts = 0;
    for part in token.split('.') {
        parts += 1;
        if part.is_empty() && parts < 3 {
            return false;
        }
        if !part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return false;
        }
    }
    parts == 3 || parts == 5
}

fn segments(token: &str) -> Result<[&str; 3], Fail> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(malformed(
            "token too long",
            format!("token longer than {MAX_TOKEN_BYTES} bytes"),
        ));
    }
    let parts: Vec<&str> = token.split('.').collect();
    match parts.as_slice() {
        [h, p, s] => Ok([h, p, s]),
        [_, _, _, _, _] => Err(malformed(
            "encrypted JWT",
            "encrypted JWTs (JWE) are not accepted as access tokens",
        )),
        _ => Err(malformed("not a JWT", "token is not a compact JWS")),
    }
}

fn decode_json(segment: &str, what: &str) -> Result<Map<String, Value>, Fail> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| malformed("bad base64url", format!("JWT {what} is not base64url")))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(malformed(
            "bad JSON",
            format!("JWT {what} is not a JSON object"),
        )),
    }
}

/// The token's header, checked for `crit` (no extensions are understood, so any is refused).
pub(crate) fn header(token: &str) -> Result<JoseHeader, Fail> {
    let [h, _, _] = segments(token)?;
    let map = decode_json(h, "header")?;
    let header: JoseHeader = serde_json::from_value(Value::Object(map)).map_err(|_| {
        malformed(
            "bad JOSE header",
            "JWT header lacks a string alg or has mistyped fields",
        )
    })?;
    if header.crit.is_some() {
        return Err(malformed(
            "critical header extension",
            "JWT header has `crit`; no extensions are supported",
        ));
    }
    Ok(header)
}

/// The claims, read WITHOUT verifying anything: only to route a token to its issuer and to
/// say in the audit record what it claimed.
pub(crate) fn unverified_claims(token: &str) -> Option<Map<String, Value>> {
    let [_, p, _] = segments(token).ok()?;
    decode_json(p, "payload").ok()
}

/// The allowed algorithm the header names, if the key may be used with it.
pub(crate) fn check_alg(header: &JoseHeader, key_algs: &[Alg]) -> Result<Alg, Fail> {
    let name = header.alg.as_str();
    let Some(alg) = Alg::parse(name) else {
        let why = if name.eq_ignore_ascii_case("none") {
            "unsigned tokens (alg none) are never accepted".to_owned()
        } else if name.starts_with("HS") {
            format!("symmetric algorithm {name} is never accepted")
        } else {
            format!("algorithm {:?} is not allowed", crate::failure::clean(name))
        };
        return Err(Fail::new(FailureKind::DisallowedAlgorithm, why));
    };
    if !key_algs.contains(&alg) {
        let allowed: Vec<&str> = key_algs.iter().map(|a| a.name()).collect();
        return Err(Fail::new(
            FailureKind::DisallowedAlgorithm,
            format!(
                "token alg {} does not match its key (allowed: {})",
                alg.name(),
                allowed.join(", ")
            ),
        ));
    }
    Ok(alg)
}

/// RFC 9068 `typ`. `strict`: must be `at+jwt` (the gateway's own tokens). Otherwise absent,
/// `JWT` or `at+jwt` (many issuers send `JWT`); anything else (ID tokens typed as such, DPoP
/// proofs, logout tokens) is not an access token.
pub(crate) fn check_typ(typ: Option<&str>, strict: bool) -> Result<(), Fail> {
    let normalized = typ.map(|t| {
        let lower = t.to_ascii_lowercase();
        lower
            .strip_prefix("application/")
            .map(str::to_owned)
            .unwrap_or(lower)
    });
    let ok = match normalized.as_deref() {
        Some("at+jwt") => true,
        Some("jwt") | None => !strict,
        Some(_) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Fail::new(
            FailureKind::WrongTokenType,
            format!(
                "JWT typ {:?} is not an access token type{}",
                typ.map(crate::failure::clean),
                if strict { " (at+jwt required)" } else { "" }
            ),
        ))
    }
}

fn malformed(rule: &'static str, detail: impl Into<String>) -> Fail {
    Fail::new(FailureKind::Malformed(rule), detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(header: &str) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode("{}")
        )
    }

    #[test]
    fn alg_table() {
        let key = [Alg::RS256, Alg::PS256];
        let rows = [
            (r#"{"alg":"RS256"}"#, Ok(Alg::RS256)),
            (r#"{"alg":"PS256"}"#, Ok(Alg::PS256)),
            (r#"{"alg":"none"}"#, Err(FailureKind::DisallowedAlgorithm)),
            (r#"{"alg":"NONE"}"#, Err(FailureKind::DisallowedAlgorithm)),
            (r#"{"alg":"HS256"}"#, Err(FailureKind::DisallowedAlgorithm)),
            (r#"{"alg":"ES256"}"#, Err(FailureKind::DisallowedAlgorithm)),
            (r#"{"alg":"rs256"}"#, Err(FailureKind::DisallowedAlgorithm)),
            (r#"{"alg":"RS384"}"#, Err(FailureKind::DisallowedAlgorithm)),
        ];
        for (h, expected) in rows {
            let header = header(&jwt(h)).unwrap();
            assert_eq!(
                check_alg(&header, &key).map_err(|f| f.kind),
                expected,
                "{h}"
            );
        }
    }

    #[test]
    fn header_shape_table() {
        let rows = [
            (jwt(r#"{"alg":"RS256","kid":"k"}"#), None),
            (jwt(r#"{"alg":1}"#), Some("bad JOSE header")),
            (jwt(r#"{"kid":"k"}"#), Some("bad JOSE header")),
            (jwt(r#"["alg"]"#), Some("bad JSON")),
            (
                jwt(r#"{"alg":"RS256","crit":["b64"]}"#),
                Some("critical header extension"),
            ),
            ("a.b".to_owned(), Some("not a JWT")),
            ("a.b.c.d.e".to_owned(), Some("encrypted JWT")),
            ("!!.b.c".to_owned(), Some("bad base64url")),
            ("x".repeat(MAX_TOKEN_BYTES + 1), Some("token too long")),
        ];
        for (token, expected) in rows {
            let got = header(&token).err().map(|f| f.kind);
            assert_eq!(got, expected.map(FailureKind::Malformed), "{token:.40}");
        }
    }

    #[test]
    fn typ_table() {
        let rows = [
            (None, false, true),
            (Some("JWT"), false, true),
            (Some("at+jwt"), false, true),
            (Some("application/at+JWT"), false, true),
            (Some("dpop+jwt"), false, false),
            (Some("logout+jwt"), false, false),
            (None, true, false),
            (Some("JWT"), true, false),
            (Some("at+jwt"), true, true),
        ];
        for (typ, strict, ok) in rows {
            assert_eq!(
                check_typ(typ, strict).is_ok(),
                ok,
                "{typ:?} strict={strict}"
            );
        }
    }

    #[test]
    fn jwt_shapes() {
        assert!(looks_like_jwt("eyJ.eyJ.sig"));
        assert!(looks_like_jwt("eyJ.eyJ."));
        assert!(!looks_like_jwt("opaque-token_123"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a+b.c.d"));
    }
}
