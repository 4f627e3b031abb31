//! Stage 2: raw TOML structs → validated [`Config`], collecting every error.
//!
//! Sections are checked in file order (`listen`, `storage`, `limits`, …) so errors come out in
//! the order a reader meets them. Defaults for absent keys are applied here and nowhere else.

mod access;
mod context;
mod oversight;
mod tools;
mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub(crate) use context::{Ctx, normalize};

use crate::model::{
    Approval, Config, Federation, Guard, Limits, Listen, RedactScope, Storage, Tls, Upstream,
    UpstreamTransport, mask_password,
};
use crate::net;
use crate::raw::{RawApproval, RawConfig, RawFederation, RawLimits, RawListen, RawStorage, RawTls};

const DEFAULT_ADDR: &str = "127.0.0.1:8080";
const DEFAULT_STORAGE_URL: &str = "sqlite://portcullis.db";
const DEFAULT_SEPARATOR: &str = "__";

/// Builds the whole configuration; problems go into `ctx`.
pub(crate) fn config(raw: RawConfig, source: Option<PathBuf>, ctx: &mut Ctx<'_>) -> Config {
    let listen = listen(raw.listen.unwrap_or_default(), ctx);
    let storage = storage(raw.storage.unwrap_or_default(), ctx);
    let limits = limits(raw.limits.unwrap_or_default(), ctx);
    let federation = federation(raw.federation.unwrap_or_default(), ctx);
    let rate_limit = access::rate_limit(raw.rate_limit.unwrap_or_default(), ctx);
    let auth = access::auth(raw.auth.unwrap_or_default(), &listen, &storage, ctx);
    let authz = access::authz(raw.authz, ctx);
    let upstreams = upstream::upstreams(raw.upstream.unwrap_or_default(), &federation, ctx);
    let guard = oversight::guard(raw.guard.unwrap_or_default(), ctx);
    let audit = oversight::audit(raw.audit.unwrap_or_default(), ctx);
    let approval = approval(raw.approval.unwrap_or_default(), ctx);
    let anomaly = oversight::anomaly(raw.anomaly.unwrap_or_default(), ctx);
    if limits.stream_results_above.is_some() && !any_result_may_pass(&upstreams, &guard) {
        ctx.warn(
            "limits.stream_results_above has no effect: results pass through only from HTTP \
             upstreams and only unredacted (set [guard] redact_results = false, or redact = \
             \"logs\" on the tools whose long results may pass through)",
        );
    }
    Config {
        source,
        listen,
        storage,
        limits,
        federation,
        auth,
        upstreams,
        rate_limit,
        authz,
        guard,
        audit,
        approval,
        anomaly,
        warnings: Vec::new(),
    }
}

/// Whether some result could pass through as it arrives: one from an HTTP upstream that is
/// not redacted (redaction needs the whole result).
fn any_result_may_pass(upstreams: &[Upstream], guard: &Guard) -> bool {
    upstreams
        .iter()
        .filter(|u| matches!(u.transport, UpstreamTransport::Http { .. }))
        .any(|u| {
            !guard.redact_results || u.tools.iter().any(|t| t.redact == Some(RedactScope::Logs))
        })
}

fn listen(raw: RawListen, ctx: &mut Ctx<'_>) -> Listen {
    let text = raw.addr.unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    let addr = text.parse::<SocketAddr>().unwrap_or_else(|_| {
        ctx.error(
            "listen.addr",
            format!("invalid address {text:?}: expected IP:PORT, e.g. {DEFAULT_ADDR}"),
        );
        SocketAddr::from(([127, 0, 0, 1], 8080))
    });
    let mut allowed_origins = Vec::new();
    for (i, origin) in raw.allowed_origins.unwrap_or_default().iter().enumerate() {
        match net::parse_origin(origin) {
            Ok(origin) => allowed_origins.push(origin),
            Err(reason) => ctx.error(&format!("listen.allowed_origins[{i}]"), reason),
        }
    }
    let max_connections = ctx
        .count("listen.max_connections", raw.max_connections, 1)
        .unwrap_or(1024);
    let tls = raw.tls.map(|raw| tls(raw, ctx));
    if tls.is_none() && !addr.ip().is_loopback() {
        ctx.warn(format!(
            "listen.addr {addr} is not a loopback address and [listen.tls] is not set: \
             clients connect over plain HTTP"
        ));
    }
    Listen {
        addr,
        allowed_origins,
        tls,
        max_connections,
    }
}

fn tls(raw: RawTls, ctx: &mut Ctx<'_>) -> Tls {
    let file = |ctx: &mut Ctx<'_>, key: &str, value: Option<String>| {
        let text = ctx.required(key, value)?;
        ctx.existing_file(key, &text)
    };
    let cert = file(ctx, "listen.tls.cert", raw.cert).unwrap_or_default();
    let key = file(ctx, "listen.tls.key", raw.key).unwrap_or_default();
    let client_ca = raw
        .client_ca
        .and_then(|text| ctx.existing_file("listen.tls.client_ca", &text));
    let require_client_cert = raw.require_client_cert.unwrap_or(false);
    if require_client_cert && client_ca.is_none() {
        ctx.error(
            "listen.tls.require_client_cert",
            "requires listen.tls.client_ca",
        );
    }
    Tls {
        cert,
        key,
        client_ca,
        require_client_cert,
    }
}

fn storage(raw: RawStorage, ctx: &mut Ctx<'_>) -> Storage {
    const KEY: &str = "storage.url";
    let synchronous_commit = raw.synchronous_commit.unwrap_or(true);
    let written = raw.url.unwrap_or_else(|| DEFAULT_STORAGE_URL.to_owned());
    let (text, inline) = if written.starts_with("env:") || written.starts_with("file:") {
        match ctx.secret(KEY, &written, false) {
            Some(secret) => (secret.expose().to_owned(), false),
            None => {
                return Storage {
                    url: String::new(),
                    synchronous_commit,
                };
            }
        }
    } else {
        (written, true)
    };
    let url = if let Some(rest) = text.strip_prefix("sqlite:") {
        sqlite_url(rest.strip_prefix("//").unwrap_or(rest), ctx)
    } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        if inline && mask_password(&text) != text {
            ctx.warn(format!(
                "inline secret at {KEY} (password in URL); use env: or file:"
            ));
        }
        text
    } else {
        // Only a well-formed scheme is echoed: the value may have been read from a secret.
        let scheme = text
            .split_once("://")
            .map(|(scheme, _)| scheme)
            .filter(|scheme| {
                !scheme.is_empty()
                    && scheme
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b))
            });
        let found = scheme
            .map(|scheme| format!(" scheme {scheme:?}"))
            .unwrap_or_default();
        ctx.error(
            KEY,
            format!("unsupported storage URL{found}: expected sqlite://PATH or postgres://…"),
        );
        String::new()
    };
    Storage {
        url,
        synchronous_commit,
    }
}

/// `PATH[?options]` after `sqlite://`: the path is made absolute; `:memory:` is kept.
fn sqlite_url(rest: &str, ctx: &mut Ctx<'_>) -> String {
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, format!("?{query}")),
        None => (rest, String::new()),
    };
    if path == ":memory:" {
        return format!("sqlite::memory:{query}");
    }
    match ctx.path("storage.url", path) {
        Some(path) => format!("sqlite://{}{query}", path.display()),
        None => String::new(),
    }
}

fn limits(raw: RawLimits, ctx: &mut Ctx<'_>) -> Limits {
    Limits {
        max_request_bytes: ctx
            .size("limits.max_request_bytes", raw.max_request_bytes.as_ref())
            .unwrap_or(1 << 20),
        max_response_bytes: ctx
            .size("limits.max_response_bytes", raw.max_response_bytes.as_ref())
            .unwrap_or(10 << 20),
        max_json_depth: ctx
            .count("limits.max_json_depth", raw.max_json_depth, 1)
            .unwrap_or(64),
        call_timeout: ctx
            .duration("limits.call_timeout", raw.call_timeout.as_deref())
            .unwrap_or(Duration::from_secs(30)),
        session_idle_timeout: ctx
            .duration(
                "limits.session_idle_timeout",
                raw.session_idle_timeout.as_deref(),
            )
            .unwrap_or(Duration::from_secs(30 * 60)),
        max_sessions: ctx
            .count("limits.max_sessions", raw.max_sessions, 1)
            .unwrap_or(10_000),
        stream_results_above: ctx.size(
            "limits.stream_results_above",
            raw.stream_results_above.as_ref(),
        ),
        max_streamed_bytes: ctx
            .size("limits.max_streamed_bytes", raw.max_streamed_bytes.as_ref())
            .unwrap_or(1 << 30),
    }
}

fn federation(raw: RawFederation, ctx: &mut Ctx<'_>) -> Federation {
    let separator = raw
        .separator
        .unwrap_or_else(|| DEFAULT_SEPARATOR.to_owned());
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if separator.is_empty() {
        ctx.error("federation.separator", "must not be empty");
    } else if !separator.chars().all(valid) || separator.len() > 8 {
        ctx.error(
            "federation.separator",
            format!("invalid separator {separator:?}: at most 8 of A-Z a-z 0-9 _ . -"),
        );
    }
    Federation { separator }
}

fn approval(raw: RawApproval, ctx: &mut Ctx<'_>) -> Approval {
    Approval {
        timeout: ctx
            .duration("approval.timeout", raw.timeout.as_deref())
            .unwrap_or(Duration::from_secs(10 * 60)),
        approvers_role: raw
            .approvers_role
            .and_then(|role| ctx.non_empty("approval.approvers_role", role))
            .unwrap_or_else(|| "approver".to_owned()),
    }
}
