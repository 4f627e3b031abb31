//! `[rate_limit]`, `[auth]` and `[authz]`.

use std::collections::BTreeMap;

use super::context::{Ctx, PlainHttp};
use crate::model::{
    Auth, Authz, Introspection, JwtIssuer, Listen, Mtls, PrincipalFrom, RateLimit,
    RateLimitBackend, RateRule, mask_password,
};
use crate::raw::{RawAuth, RawAuthz, RawIntrospection, RawJwt, RawMtls, RawRateLimit};
use crate::units;

const NO_POLICIES: &str = "no [authz] policies: calls are not checked against any policy";

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

pub(super) fn auth(raw: RawAuth, listen: &Listen, ctx: &mut Ctx<'_>) -> Auth {
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
    Auth {
        api_keys,
        dangerous_allow_anonymous,
        jwt,
        introspection,
        mtls,
    }
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
