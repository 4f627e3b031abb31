//! Pure checks of a verified token's claims, and the claims → [`Principal`] mapping.
//! Shared by JWT access tokens, introspection responses and the gateway's own tokens.

use serde_json::{Map, Value};

use crate::failure::{Fail, FailureKind, clean};
use crate::principal::{AuthMethod, Principal, PrincipalKind};
use crate::timestamps::system_time_secs;

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub(crate) const LEEWAY_SECS: u64 = 60;

/// What the claims must say.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expect<'a> {
    /// Exact `iss`; `None`: not checked (introspection responses without `iss`).
    pub issuer: Option<&'a str>,
    /// One of these must appear in `aud` (string or array). `None`: not checked.
    pub audience: Option<&'a [String]>,
    /// Whether `exp` must be present.
    pub require_exp: bool,
    pub now: u64,
    pub leeway: u64,
}

/// The checks in order: `iss`, `aud`, `exp`, `nbf`, `iat`.
pub(crate) fn check(claims: &Map<String, Value>, expect: &Expect<'_>) -> Result<(), Fail> {
    if let Some(issuer) = expect.issuer {
        match claims.get("iss") {
            None => return Err(missing("iss")),
            Some(Value::String(iss)) if iss == issuer => {}
            Some(found) => {
                return Err(Fail::new(
                    FailureKind::WrongIssuer,
                    format!("iss {} is not {issuer:?}", shown(found)),
                ));
            }
        }
    }
    if let Some(audience) = expect.audience {
        let ours = |aud: &str| audience.iter().any(|a| a == aud);
        let ok = match claims.get("aud") {
            Some(Value::String(aud)) => ours(aud),
            Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(ours),
            _ => false,
        };
        if !ok {
            return Err(Fail::new(
                FailureKind::WrongAudience,
                format!(
                    "aud {} does not contain {}",
                    claims.get("aud").map_or_else(|| "absent".to_owned(), shown),
                    audience.join(" or ")
                ),
            ));
        }
    }
    let now = expect.now;
    match numeric_date(claims, "exp")? {
        Some(exp) if now >= exp.saturating_add(expect.leeway) => {
            return Err(Fail::new(
                FailureKind::Expired,
                format!("exp {exp} is past (now {now}, leeway {}s)", expect.leeway),
            ));
        }
        None if expect.require_exp => return Err(missing("exp")),
        _ => {}
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && nbf > now.saturating_add(expect.leeway)
    {
        return Err(Fail::new(
            FailureKind::NotYetValid,
            format!(
                "nbf {nbf} is in the future (now {now}, leeway {}s)",
                expect.leeway
            ),
        ));
    }
    if let Some(iat) = numeric_date(claims, "iat")?
        && iat > now.saturating_add(expect.leeway)
    {
        return Err(Fail::new(
            FailureKind::NotYetValid,
            format!(
                "iat {iat} is in the future (now {now}, leeway {}s)",
                expect.leeway
            ),
        ));
    }
    Ok(())
}

/// A NumericDate claim (seconds; fractions dropped). Present but not a non-negative number:
/// malformed.
pub(crate) fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, Fail> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| *f >= 0.0 && f.is_finite())
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or_else(|| bad_claim(name)),
        Some(_) => Err(bad_claim(name)),
    }
}

fn bad_claim(name: &'static str) -> Fail {
    Fail::new(
        FailureKind::Malformed("bad claim type"),
        format!("claim {name} is not a NumericDate"),
    )
}

fn missing(name: &'static str) -> Fail {
    Fail::new(
        FailureKind::MissingClaim(name),
        format!("claim {name} is missing"),
    )
}

/// A claim value for a log line: strings cleaned, others as compact JSON, truncated.
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{:?}", clean(s)),
        other => clean(&other.to_string()),
    }
}

/// Where roles and scopes are read from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClaimNames<'a> {
    /// `authz.roles_claim`: a top-level claim name, or a dotted path (`realm_access.roles`).
    pub roles: &'a str,
}

/// The principal the (already checked) claims name.
///
/// Id: `sub`, else `client_id`. Kind: `service` when the token names no user (no `sub`, or
/// `sub` equals `client_id`, as in the client-credentials grant), else `user`. Roles from the
/// configured claim (array of strings, or one space/comma separated string). Scopes from
/// `scope` (space separated) and `scp` (array or string).
pub(crate) fn principal(
    claims: &Map<String, Value>,
    names: ClaimNames<'_>,
    method: AuthMethod,
) -> Result<Principal, Fail> {
    let sub = non_empty_str(claims, "sub");
    let client_id = non_empty_str(claims, "client_id");
    let id = sub.or(client_id).ok_or_else(|| missing("sub"))?;
    if id.chars().count() > 256 || id.chars().any(char::is_control) {
        return Err(Fail::new(
            FailureKind::Malformed("bad subject"),
            "sub is longer than 256 characters or holds control characters",
        ));
    }
    let kind = match (sub, client_id) {
        (None, _) => PrincipalKind::Service,
        (Some(s), Some(c)) if s == c => PrincipalKind::Service,
        _ => PrincipalKind::User,
    };
    let mut scopes = Vec::new();
    for name in ["scope", "scp"] {
        push_words(claims.get(name), &mut scopes);
    }
    let mut roles = Vec::new();
    push_words(claim_at(claims, names.roles), &mut roles);
    let expires_at = numeric_date(claims, "exp")?.map(system_time_secs);
    Ok(Principal {
        id: id.to_owned(),
        kind,
        roles,
        scopes,
        method,
        client_ip: None,
        credential_id: non_empty_str(claims, "jti").map(clean),
        issuer: non_empty_str(claims, "iss").map(str::to_owned),
        cert_identity: None,
        expires_at,
    })
}

fn non_empty_str<'c>(claims: &'c Map<String, Value>, name: &str) -> Option<&'c str> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `name` as a top-level claim, else as a dotted path into nested objects.
fn claim_at<'c>(claims: &'c Map<String, Value>, name: &str) -> Option<&'c Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    let mut parts = name.split('.');
    let mut current = claims.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

/// Adds the words of a string (split on spaces and commas) or an array of strings, deduplicated.
fn push_words(value: Option<&Value>, out: &mut Vec<String>) {
    let mut push = |w: &str| {
        let w = w.trim();
        if !w.is_empty() && !w.chars().any(char::is_control) && !out.iter().any(|o| o == w) {
            out.push(w.to_owned());
        }
    };
    match value {
        Some(Value::String(s)) => s.split([' ', ',']).for_each(&mut push),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).for_each(&mut push),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::principal::Credential;

    const NOW: u64 = 1_800_000_000;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn expect() -> Expect<'static> {
        static AUD: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| vec!["https://gw.example/mcp".to_owned()]);
        Expect {
            issuer: Some("https://idp.example"),
            audience: Some(AUD.as_slice()),
            require_exp: true,
            now: NOW,
            leeway: LEEWAY_SECS,
        }
    }

    fn base() -> Value {
        json!({
            "iss": "https://idp.example",
            "aud": "https://gw.example/mcp",
            "exp": NOW + 300,
            "sub": "alice",
        })
    }

    fn with(changes: Value) -> Map<String, Value> {
        let mut m = map(base());
        for (k, v) in map(changes) {
            if v.is_null() {
                m.remove(&k);
            } else {
                m.insert(k, v);
            }
        }
        m
    }

    #[test]
    fn validation_table() {
        use FailureKind::*;
        let rows: Vec<(&str, Value, Option<FailureKind>)> = vec![
            ("valid", json!({}), None),
            (
                "aud in array",
                json!({"aud": ["other", "https://gw.example/mcp"]}),
                None,
            ),
            (
                "wrong audience",
                json!({"aud": "https://other.example/mcp"}),
                Some(WrongAudience),
            ),
            (
                "audience array without us",
                json!({"aud": ["a", "b"]}),
                Some(WrongAudience),
            ),
            ("no audience", json!({"aud": null}), Some(WrongAudience)),
            (
                "audience prefix only",
                json!({"aud": "https://gw.example"}),
                Some(WrongAudience),
            ),
            (
                "wrong issuer",
                json!({"iss": "https://evil.example"}),
                Some(WrongIssuer),
            ),
            (
                "issuer trailing slash",
                json!({"iss": "https://idp.example/"}),
                Some(WrongIssuer),
            ),
            ("no issuer", json!({"iss": null}), Some(MissingClaim("iss"))),
            ("expired", json!({"exp": NOW - 61}), Some(Expired)),
            (
                "expired at leeway edge",
                json!({"exp": NOW - 60}),
                Some(Expired),
            ),
            ("expired within leeway", json!({"exp": NOW - 59}), None),
            ("no exp", json!({"exp": null}), Some(MissingClaim("exp"))),
            (
                "exp as string",
                json!({"exp": "soon"}),
                Some(Malformed("bad claim type")),
            ),
            (
                "fractional exp",
                json!({"exp": (NOW + 10) as f64 + 0.5}),
                None,
            ),
            ("nbf in future", json!({"nbf": NOW + 61}), Some(NotYetValid)),
            ("nbf within leeway", json!({"nbf": NOW + 60}), None),
            (
                "iat in future",
                json!({"iat": NOW + 3600}),
                Some(NotYetValid),
            ),
            (
                "negative nbf",
                json!({"nbf": -5}),
                Some(Malformed("bad claim type")),
            ),
        ];
        for (name, changes, expected) in rows {
            let got = check(&with(changes), &expect()).err().map(|f| f.kind);
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn principal_table() {
        let names = ClaimNames { roles: "roles" };
        let method = AuthMethod::Token(Credential::Jwt);
        let p = principal(
            &with(json!({"scope": "mcp files:read", "scp": ["mcp", "extra"], "roles": ["dev"], "jti": "j1"})),
            names,
            method,
        )
        .unwrap();
        assert_eq!(p.id, "alice");
        assert_eq!(p.kind, PrincipalKind::User);
        assert_eq!(p.scopes, ["mcp", "files:read", "extra"]);
        assert_eq!(p.roles, ["dev"]);
        assert_eq!(p.credential_id.as_deref(), Some("j1"));
        assert_eq!(p.issuer.as_deref(), Some("https://idp.example"));

        let svc = principal(
            &with(json!({"sub": "bot", "client_id": "bot"})),
            names,
            method,
        )
        .unwrap();
        assert_eq!(svc.kind, PrincipalKind::Service);
        let svc = principal(
            &with(json!({"sub": null, "client_id": "bot"})),
            names,
            method,
        )
        .unwrap();
        assert_eq!((svc.id.as_str(), svc.kind), ("bot", PrincipalKind::Service));
        let none = principal(&with(json!({"sub": null})), names, method).unwrap_err();
        assert_eq!(none.kind, FailureKind::MissingClaim("sub"));

        let nested = ClaimNames {
            roles: "realm_access.roles",
        };
        let p = principal(
            &with(json!({"realm_access": {"roles": ["admin", "dev", "admin"]}})),
            nested,
            method,
        )
        .unwrap();
        assert_eq!(p.roles, ["admin", "dev"]);
        let dotted = ClaimNames {
            roles: "https://example.com/roles",
        };
        let p = principal(
            &with(json!({"https://example.com/roles": "a, b c"})),
            dotted,
            method,
        )
        .unwrap();
        assert_eq!(p.roles, ["a", "b", "c"]);
    }
}
