//! `[rate_limit]`, `[auth]` and `[authz]`.

use std::collections::BTreeMap;

use super::context::{Ctx, PlainHttp};
use crate::model::{
    Auth, Authz, Introspection, JwtIssuer, Listen, Mtls, PrincipalFrom, Rate, RateLimit,
    RateLimitBackend, RateRule, Storage, mask_password,
};
use crate::raw::{RawAuth, RawAuthz, RawIntrospection, RawJwt, RawMtls, RawRateLimit};
use crate::secret::Secret;
use crate::units;

const NO_POLICIES: &str = "no [authz] policies: every call will be denied";

pub(super) fn rate_limit(raw: RawRateLimit, ctx: &mut Ctx<'_>) -> RateLimit {
    let backend = match raw.backend.as_deref() {
        None | Some("local") => RateLimitBackend::Local,
        Some(text) => redis_backend(text, ctx).unwrap_or(RateLimitBackend::Local),
    };
    let default = raw.default.and_then(|text| match units::parse_rate(&text) {
        Ok(rate) => Some(rate),
        Err(reason) => {
            ctx.error("rate_limit.default", reason);
            None
        }
    });
    let mut rules = Vec::new();
    for (i, rule) in raw.rule.unwrap_or_default().into_iter().enumerate() {
        let key = |field: &str| format!("rate_limit.rule[{i}].{field}");
        let principal = rule.principal.unwrap_or_else(|| "*".to_owned());
        let principal = ctx.non_empty(&key("principal"), principal);
        let tool = rule.tool.unwrap_or_else(|| "*".to_owned());
        let tool = ctx.non_empty(&key("tool"), tool);
        let limit = ctx.required(&key("limit"), rule.limit).and_then(|text| {
            units::parse_rate(&text)
                .map_err(|reason| ctx.error(&key("limit"), reason))
                .ok()
        });
        if let (Some(principal), Some(tool), Some(limit)) = (principal, tool, limit) {
            rules.push(RateRule {
                principal,
                tool,
                limit,
            });
        }
    }
    RateLimit {
        backend,
        default,
        rules,
    }
}

fn redis_backend(text: &str, ctx: &mut Ctx<'_>) -> Option<RateLimitBackend> {
    const KEY: &str = "rate_limit.backend";
    let url = ctx.secret(KEY, text, false)?;
    let value = url.expose();
    if !(value.starts_with("redis://") || value.starts_with("rediss://")) {
        // The value may come from a secret: never echo it.
        ctx.error(KEY, "expected \"local\" or a redis:// or rediss:// URL");
        return None;
    }
    if url.origin() == "inline" && mask_password(value) != value {
        ctx.warn(format!(
            "inline secret at {KEY} (password in URL); use env: or file:"
        ));
    }
    Some(RateLimitBackend::Redis { url })
}

/// Failed authentications per client IP before it gets 429 (`auth.max_failures`).
const DEFAULT_MAX_FAILURES: Rate = Rate {
    count: 20,
    per: std::time::Duration::from_secs(60),
};

/// Shortest accepted `auth.key_pepper`, in bytes.
const MIN_PEPPER_BYTES: usize = 16;

pub(super) fn auth(raw: RawAuth, listen: &Listen, storage: &Storage, ctx: &mut Ctx<'_>) -> Auth {
    let api_keys = raw.api_keys.unwrap_or(false);
    let dangerous_allow_anonymous = raw.dangerous_allow_anonymous.unwrap_or(false);
    let mut jwt = Vec::new();
    let mut issuers: BTreeMap<String, usize> = BTreeMap::new();
    for (i, raw) in raw.jwt.unwrap_or_default().into_iter().enumerate() {
        if let Some(issuer) = jwt_issuer(i, raw, ctx) {
            if let Some(first) = issuers.insert(issuer.issuer.clone(), i) {
                ctx.error(
                    &format!("auth.jwt[{i}].issuer"),
                    format!("duplicate of auth.jwt[{first}]"),
                );
            }
            jwt.push(issuer);
        }
    }
    let introspection = raw.introspection.and_then(|raw| introspection(raw, ctx));
    let mtls = raw.mtls.and_then(|raw| mtls(raw, listen, ctx));
    if dangerous_allow_anonymous {
        ctx.warn(
            "auth.dangerous_allow_anonymous = true: requests without credentials pass as \
             principal \"anonymous\"",
        );
    } else if !api_keys && jwt.is_empty() && introspection.is_none() && mtls.is_none() {
        ctx.warn(
            "no authentication method enabled (auth.api_keys, [[auth.jwt]], \
             [auth.introspection], [auth.mtls]): every request will be refused",
        );
    }
    let key_pepper = raw.key_pepper.and_then(|text| key_pepper(&text, ctx));
    let is_postgres = storage.url.starts_with("postgres");
    if api_keys && key_pepper.is_none() && is_postgres {
        ctx.error(
            "auth.key_pepper",
            "required with a postgres:// storage.url when auth.api_keys = true (every replica \
             must hash keys with the same pepper); e.g. key_pepper = \"env:PORTCULLIS_KEY_PEPPER\"",
        );
    }
    let oauth = !jwt.is_empty() || introspection.is_some();
    let resource = resource(raw.resource, listen, oauth, ctx);
    let required_scopes = required_scopes(raw.required_scopes.unwrap_or_default(), ctx);
    let max_failures = match raw.max_failures {
        None => DEFAULT_MAX_FAILURES,
        Some(text) => units::parse_rate(&text).unwrap_or_else(|reason| {
            ctx.error("auth.max_failures", reason);
            DEFAULT_MAX_FAILURES
        }),
    };
    Auth {
        api_keys,
        dangerous_allow_anonymous,
        jwt,
        introspection,
        mtls,
        key_pepper,
        resource,
        required_scopes,
        max_failures,
    }
}

fn key_pepper(text: &str, ctx: &mut Ctx<'_>) -> Option<Secret> {
    const KEY: &str = "auth.key_pepper";
    let secret = ctx.secret(KEY, text, true)?;
    if secret.expose().len() < MIN_PEPPER_BYTES {
        // Never echo the value: it is a secret.
        ctx.error(
            KEY,
            format!(
                "must be at least {MIN_PEPPER_BYTES} bytes (32 random bytes recommended, e.g. \
                 `openssl rand -hex 32`)"
            ),
        );
        return None;
    }
    Some(secret)
}

/// `auth.resource`, or `http[s]://LISTEN_ADDR/mcp`.
fn resource(raw: Option<String>, listen: &Listen, oauth: bool, ctx: &mut Ctx<'_>) -> String {
    const KEY: &str = "auth.resource";
    let scheme = if listen.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let derived = format!("{scheme}://{}/mcp", listen.addr);
    let Some(text) = raw else {
        if oauth && listen.addr.ip().is_unspecified() {
            ctx.warn(format!(
                "{KEY} is not set and listen.addr is unspecified: tokens and metadata name \
                 {derived}, which clients cannot reach; set {KEY} to the public URL"
            ));
        }
        return derived;
    };
    if text.contains(['#', '?']) {
        ctx.error(KEY, "must not contain a query or fragment (RFC 8707)");
        return derived;
    }
    ctx.http_url(KEY, &text, PlainHttp::Refuse(""))
        .map(|url| url.trim_end_matches('/').to_owned())
        .unwrap_or(derived)
}

/// RFC 6749 scope tokens: `%x21 / %x23-5B / %x5D-7E`, at least one character.
fn required_scopes(raw: Vec<String>, ctx: &mut Ctx<'_>) -> Vec<String> {
    let mut scopes = Vec::new();
    for (i, scope) in raw.into_iter().enumerate() {
        let valid = !scope.is_empty()
            && scope
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if !valid {
            ctx.error(
                &format!("auth.required_scopes[{i}]"),
                format!("{scope:?} is not a scope token (no spaces, quotes or backslashes)"),
            );
        } else if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    scopes
}

fn jwt_issuer(i: usize, raw: RawJwt, ctx: &mut Ctx<'_>) -> Option<JwtIssuer> {
    let key = |field: &str| format!("auth.jwt[{i}].{field}");
    let issuer = ctx.required(&key("issuer"), raw.issuer);
    let jwks_url = ctx
        .required(&key("jwks_url"), raw.jwks_url)
        .and_then(|url| ctx.http_url(&key("jwks_url"), &url, PlainHttp::Refuse("")));
    let audience = ctx.required(&key("audience"), raw.audience);
    Some(JwtIssuer {
        issuer: issuer?,
        jwks_url: jwks_url?,
        audience: audience?,
    })
}

fn introspection(raw: RawIntrospection, ctx: &mut Ctx<'_>) -> Option<Introspection> {
    let url = ctx
        .required("auth.introspection.url", raw.url)
        .and_then(|url| ctx.http_url("auth.introspection.url", &url, PlainHttp::Refuse("")));
    let client_id = ctx.required("auth.introspection.client_id", raw.client_id);
    let client_secret = ctx
        .required("auth.introspection.client_secret", raw.client_secret)
        .and_then(|text| ctx.secret("auth.introspection.client_secret", &text, true));
    Some(Introspection {
        url: url?,
        client_id: client_id?,
        client_secret: client_secret?,
    })
}

fn mtls(raw: RawMtls, listen: &Listen, ctx: &mut Ctx<'_>) -> Option<Mtls> {
    let principal_from = match raw.principal_from.as_deref() {
        None | Some("san_uri") => PrincipalFrom::SanUri,
        Some("subject_cn") => PrincipalFrom::SubjectCn,
        Some(other) => {
            ctx.error(
                "auth.mtls.principal_from",
                format!("unknown value {other:?}: expected \"san_uri\" or \"subject_cn\""),
            );
            return None;
        }
    };
    if listen
        .tls
        .as_ref()
        .is_none_or(|tls| tls.client_ca.is_none())
    {
        ctx.error(
            "auth.mtls",
            "requires listen.tls.client_ca (client certificates are not verified)",
        );
    }
    Some(Mtls { principal_from })
}

pub(super) fn authz(raw: Option<RawAuthz>, ctx: &mut Ctx<'_>) -> Authz {
    let Some(raw) = raw else {
        ctx.warn(NO_POLICIES);
        return Authz {
            policies: Vec::new(),
            roles_claim: "roles".to_owned(),
        };
    };
    let mut policies = Vec::new();
    for (i, pattern) in raw.policies.unwrap_or_default().iter().enumerate() {
        let key = format!("authz.policies[{i}]");
        let Some(path) = ctx.path(&key, pattern) else {
            continue;
        };
        let is_glob = pattern.contains(['*', '?', '[']);
        if !is_glob && !path.is_file() {
            ctx.error(&key, format!("policy file {} not found", path.display()));
        }
        policies.push(path);
    }
    if policies.is_empty() {
        ctx.warn(NO_POLICIES);
    }
    let roles_claim = raw
        .roles_claim
        .and_then(|claim| ctx.non_empty("authz.roles_claim", claim))
        .unwrap_or_else(|| "roles".to_owned());
    Authz {
        policies,
        roles_claim,
    }
}
