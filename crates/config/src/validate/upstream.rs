//! `[[upstream]]`: names, prefixes, transports (command or url), credentials and sandbox.

use std::collections::BTreeMap;

use super::context::{Ctx, PlainHttp, is_env_name, subkey};
use super::tools::{resource_rule, tool_rules};
use crate::model::{
    ClientCredentials, Federation, HostPort, Network, Sandbox, Upstream, UpstreamTransport,
};
use crate::net;
use crate::raw::{RawSandbox, RawUpstream};
use crate::secret::Secret;

/// Headers the gateway sets itself; configuring them would break the transport.
const MANAGED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "mcp-session-id",
    "mcp-protocol-version",
];

pub(super) fn upstreams(
    raw: Vec<RawUpstream>,
    fed: &Federation,
    ctx: &mut Ctx<'_>,
) -> Vec<Upstream> {
    let mut out: Vec<Upstream> = Vec::new();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut prefixes: BTreeMap<String, usize> = BTreeMap::new();
    for (i, mut raw) in raw.into_iter().enumerate() {
        let at = format!("upstream[{i}]");
        // Name and prefix are checked for collisions even when the rest is invalid.
        let name = name(&at, raw.name.take(), ctx);
        let prefix = match (raw.prefix.take(), &name) {
            (Some(prefix), _) if is_prefix(&prefix) => Some(prefix),
            (Some(prefix), _) => {
                let reason = format!("invalid prefix {prefix:?}: at most 64 of A-Z a-z 0-9 _ . -");
                ctx.error(&format!("{at}.prefix"), reason);
                None
            }
            (None, Some(name)) => Some(format!("{name}{}", fed.separator)),
            (None, None) => None,
        };
        let duplicate = name.as_ref().and_then(|name| names.insert(name.clone(), i));
        if let (Some(name), Some(first)) = (&name, duplicate) {
            ctx.error(
                &format!("{at}.name"),
                format!("duplicate name {name:?} (also upstream[{first}])"),
            );
        } else if let Some(prefix) = &prefix
            && let Some(first) = prefixes.insert(prefix.clone(), i)
        {
            ctx.error(
                &format!("{at}.prefix"),
                format!(
                    "prefix {prefix:?} is also used by upstream[{first}]: their names would collide"
                ),
            );
        }
        let raw_tools = raw.tool.take().unwrap_or_default();
        let raw_resources = raw.resources.take();
        let transport = transport(&at, raw, ctx);
        let tools = tool_rules(&at, raw_tools, ctx);
        let resources = raw_resources.map(|r| resource_rule(&format!("{at}.resources"), r, ctx));
        if let (Some(name), Some(prefix), Some((transport, sandbox))) = (name, prefix, transport) {
            out.push(Upstream {
                name,
                prefix,
                transport,
                tools,
                resources,
                sandbox,
            });
        }
    }
    out
}

fn name(at: &str, raw: Option<String>, ctx: &mut Ctx<'_>) -> Option<String> {
    let key = format!("{at}.name");
    let name = ctx.required(&key, raw)?;
    if is_upstream_name(&name) {
        Some(name)
    } else {
        ctx.error(
            &key,
            format!("invalid name {name:?}: expected ^[a-z0-9][a-z0-9_-]{{0,31}}$"),
        );
        None
    }
}

/// Exactly one of `command` (stdio, always sandboxed) or `url` (Streamable HTTP), each with
/// only its own keys.
fn transport(
    at: &str,
    raw: RawUpstream,
    ctx: &mut Ctx<'_>,
) -> Option<(UpstreamTransport, Option<Sandbox>)> {
    let key = |field: &str| format!("{at}.{field}");
    let (own, other): (&[(&str, bool)], &str) = match (&raw.command, &raw.url) {
        (Some(_), Some(_)) => {
            ctx.error(at, "set exactly one of `command` or `url`, not both");
            return None;
        }
        (None, None) => {
            ctx.error(
                at,
                "set exactly one of `command` (a local stdio server) or `url`",
            );
            return None;
        }
        (Some(_), None) => (
            &[
                ("auth", raw.auth.is_some()),
                ("headers", raw.headers.is_some()),
                (
                    "dangerous_allow_plain_http",
                    raw.dangerous_allow_plain_http.is_some(),
                ),
            ],
            "only allowed with `url` (this upstream uses `command`)",
        ),
        (None, Some(_)) => (
            &[
                ("env", raw.env.is_some()),
                ("cwd", raw.cwd.is_some()),
                ("sandbox", raw.sandbox.is_some()),
            ],
            "only allowed with `command` (this upstream uses `url`)",
        ),
    };
    for (field, _) in own.iter().filter(|(_, set)| *set) {
        ctx.error(&key(field), other);
    }
    if let Some(command) = raw.command {
        let command = stdio_command(&key("command"), command, ctx);
        let env = child_env(&key("env"), raw.env.unwrap_or_default(), ctx);
        let cwd = raw.cwd.and_then(|cwd| ctx.existing_dir(&key("cwd"), &cwd));
        let sandbox = sandbox(&key("sandbox"), raw.sandbox.unwrap_or_default(), ctx);
        return Some((
            UpstreamTransport::Stdio {
                command: command?,
                env,
                cwd,
            },
            Some(sandbox),
        ));
    }
    let allow_plain = raw.dangerous_allow_plain_http.unwrap_or(false);
    let plain = if allow_plain {
        PlainHttp::Allow
    } else {
        PlainHttp::Refuse(" (or set dangerous_allow_plain_http = true on this upstream)")
    };
    let url = raw
        .url
        .and_then(|url| ctx.http_url(&key("url"), &url, plain));
    if allow_plain {
        ctx.warn(format!(
            "{at}: dangerous_allow_plain_http = true: credentials and traffic may travel unencrypted"
        ));
    }
    let auth = raw.auth.unwrap_or_default();
    let bearer = auth
        .bearer
        .and_then(|text| ctx.secret(&key("auth.bearer"), &text, true));
    let oauth = auth.client_credentials.and_then(|cc| {
        let at = key("auth.client_credentials");
        let token_url = match cc.token_url {
            Some(u) => ctx.http_url(&format!("{at}.token_url"), &u, plain),
            None => {
                ctx.error(&format!("{at}.token_url"), "is required");
                None
            }
        };
        let client_id = cc.client_id.filter(|c| !c.is_empty());
        if client_id.is_none() {
            ctx.error(&format!("{at}.client_id"), "is required");
        }
        let client_secret = match cc.client_secret {
            Some(text) => ctx.secret(&format!("{at}.client_secret"), &text, true),
            None => {
                ctx.error(&format!("{at}.client_secret"), "is required");
                None
            }
        };
        Some(ClientCredentials {
            token_url: token_url?,
            client_id: client_id?,
            client_secret: client_secret?,
            scope: cc.scope,
            resource: cc.resource,
        })
    });
    if bearer.is_some() && oauth.is_some() {
        ctx.error(
            &key("auth.client_credentials"),
            "conflicts with auth.bearer; set only one",
        );
    }
    let headers = headers(&key("headers"), raw.headers.unwrap_or_default(), ctx);
    if headers
        .keys()
        .any(|h| h.eq_ignore_ascii_case("authorization"))
    {
        let with = if bearer.is_some() {
            Some("auth.bearer")
        } else if oauth.is_some() {
            Some("auth.client_credentials")
        } else {
            None
        };
        if let Some(with) = with {
            ctx.error(
                &key("headers.Authorization"),
                format!("conflicts with {with}; set only one"),
            );
        }
    }
    Some((
        UpstreamTransport::Http {
            url: url?,
            bearer,
            oauth,
            headers,
        },
        None,
    ))
}

/// `^[a-z0-9][a-z0-9_-]{0,31}$`.
fn is_upstream_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 32
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Empty, or at most 64 of `[A-Za-z0-9_.-]` (the characters MCP tool names may contain).
fn is_prefix(prefix: &str) -> bool {
    prefix.len() <= 64
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A non-empty argv; a relative program path containing `/` resolves against the config dir.
fn stdio_command(key: &str, mut command: Vec<String>, ctx: &mut Ctx<'_>) -> Option<Vec<String>> {
    let Some(program) = command.first_mut() else {
        ctx.error(key, "must not be empty");
        return None;
    };
    if program.trim().is_empty() {
        ctx.error(&format!("{key}[0]"), "the program must not be empty");
        return None;
    }
    if program.contains('/') && !program.starts_with('/') {
        *program = ctx
            .path(&format!("{key}[0]"), program)?
            .display()
            .to_string();
    }
    Some(command)
}

fn child_env(
    prefix: &str,
    raw: BTreeMap<String, String>,
    ctx: &mut Ctx<'_>,
) -> BTreeMap<String, Secret> {
    let mut env = BTreeMap::new();
    for (name, value) in raw {
        let key = subkey(prefix, &name);
        if !is_env_name(&name) {
            ctx.error(&key, format!("invalid environment variable name {name:?}"));
            continue;
        }
        // Plain values are ordinary settings for the child (LOG_LEVEL = "debug"): no warning.
        if let Some(secret) = ctx.secret(&key, &value, false) {
            env.insert(name, secret);
        }
    }
    env
}

/// Extra request headers: token names, not ones the gateway manages; values are secrets.
pub(super) fn headers(
    prefix: &str,
    raw: BTreeMap<String, String>,
    ctx: &mut Ctx<'_>,
) -> BTreeMap<String, Secret> {
    let mut headers = BTreeMap::new();
    for (name, value) in raw {
        let key = subkey(prefix, &name);
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(token) {
            ctx.error(&key, format!("invalid header name {name:?}"));
        } else if MANAGED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            ctx.error(&key, "set by the gateway; cannot be configured");
        } else if let Some(secret) = ctx.secret(&key, &value, true) {
            headers.insert(name, secret);
        }
    }
    headers
}

fn sandbox(prefix: &str, raw: RawSandbox, ctx: &mut Ctx<'_>) -> Sandbox {
    let key = |field: &str| format!("{prefix}.{field}");
    let paths = |ctx: &mut Ctx<'_>, field: &str, list: Option<Vec<String>>| {
        let list = list.unwrap_or_default();
        let resolved = list.iter().enumerate();
        resolved
            .filter_map(|(j, p)| ctx.path(&format!("{}[{j}]", key(field)), p))
            .collect()
    };
    let fs_read = paths(ctx, "fs_read", raw.fs_read);
    let fs_write = paths(ctx, "fs_write", raw.fs_write);
    let network = raw
        .network
        .map(|value| network(&key("network"), value, ctx))
        .unwrap_or_default();
    let defaults = Sandbox::default();
    let dangerous_allow_weaker_sandbox = raw.dangerous_allow_weaker_sandbox.unwrap_or(false);
    if dangerous_allow_weaker_sandbox {
        ctx.warn(format!(
            "{}: the upstream starts with weaker confinement when a kernel feature is missing",
            key("dangerous_allow_weaker_sandbox")
        ));
    }
    Sandbox {
        fs_read,
        fs_write,
        network,
        memory: ctx
            .size(&key("memory"), raw.memory.as_ref())
            .unwrap_or(defaults.memory),
        cpu_time: ctx.duration(&key("cpu_time"), raw.cpu_time.as_deref()),
        processes: ctx.count(&key("processes"), raw.processes, 1),
        storage_quota: ctx.size(&key("storage_quota"), raw.storage_quota.as_ref()),
        dangerous_allow_weaker_sandbox,
    }
}

/// `"none"` or a list of `"host:port"` (an empty list means none).
fn network(key: &str, value: toml::Value, ctx: &mut Ctx<'_>) -> Network {
    const EXPECTED: &str = "expected \"none\" or a list of \"host:port\"";
    match value {
        toml::Value::String(text) if text == "none" => Network::None,
        toml::Value::Array(items) => {
            let mut allow: Vec<HostPort> = Vec::new();
            for (j, item) in items.iter().enumerate() {
                let parsed = match item {
                    toml::Value::String(text) => net::parse_host_port(text),
                    other => Err(format!(
                        "expected a \"host:port\" string, found {}",
                        other.type_str()
                    )),
                };
                match parsed {
                    Ok(hp) => allow.push(hp),
                    Err(reason) => ctx.error(&format!("{key}[{j}]"), reason),
                }
            }
            if allow.is_empty() {
                Network::None
            } else {
                Network::Allow(allow)
            }
        }
        toml::Value::String(text) => {
            ctx.error(key, format!("invalid value {text:?}: {EXPECTED}"));
            Network::None
        }
        other => {
            ctx.error(key, format!("invalid {}: {EXPECTED}", other.type_str()));
            Network::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_names() {
        for ok in [
            "fs",
            "0",
            "search-2",
            "a_b",
            "abcdefghijklmnopqrstuvwxyz012345",
        ] {
            assert!(is_upstream_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Fs",
            "-fs",
            "_fs",
            "f s",
            "fs.x",
            "abcdefghijklmnopqrstuvwxyz0123456",
        ] {
            assert!(!is_upstream_name(bad), "{bad}");
        }
    }
}
