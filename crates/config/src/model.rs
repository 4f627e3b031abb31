//! The validated configuration: what every other crate sees.
//!
//! Values here are already checked and resolved (durations parsed, sizes in bytes, relative paths
//! made absolute against the config file's directory, secrets resolved). Nothing past start-up
//! sees the raw TOML structs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::secret::Secret;

mod access;
mod oversight;
mod sandbox;

pub use access::*;
pub use oversight::*;
pub use sandbox::*;

/// A complete, validated gateway configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this configuration was read from (absolute), if any.
    pub source: Option<PathBuf>,
    pub listen: Listen,
    pub storage: Storage,
    pub limits: Limits,
    pub federation: Federation,
    pub auth: Auth,
    pub upstreams: Vec<Upstream>,
    /// `[rate_limit]`: where counters live, the default budget and per-rule budgets.
    pub rate_limit: RateLimit,
    /// `[authz]`: Cedar policy files. No policies means every call is denied.
    pub authz: Authz,
    /// `[guard]`: redaction, tool pinning and poisoning scan.
    pub guard: Guard,
    /// `[audit]`: keys, retention and sinks.
    pub audit: Audit,
    /// `[approval]`: human approval of held calls.
    pub approval: Approval,
    /// `[anomaly]`: unusual-activity detection and where alerts go.
    pub anomaly: Anomaly,
    /// Non-fatal findings (`portcullis check` prints them; `run` logs them).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Listen {
    pub addr: SocketAddr,
    /// Exact origins (`scheme://host[:port]`) allowed in an `Origin` header. A request without
    /// `Origin` is allowed (non-browser clients); one with an origin not listed gets 403.
    pub allowed_origins: Vec<String>,
    pub tls: Option<Tls>,
    /// Maximum simultaneous client connections; further connections wait for a free slot.
    pub max_connections: usize,
}

#[derive(Debug, Clone)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
    pub require_client_cert: bool,
}

#[derive(Clone)]
pub struct Storage {
    /// `sqlite://PATH` (path resolved against the config directory) or `postgres://…`.
    /// May hold a password (`postgres://user:pass@…`): `Debug` masks it.
    pub url: String,
    /// `true` (default): a commit (an audit record, a key, a pin) returns once it is flushed
    /// to disk. `false`: once it is written, so the last commits can be lost when the machine
    /// or the database server crashes (never when only the gateway does).
    pub synchronous_commit: bool,
}

impl Storage {
    /// The SQLite database file (`None` for PostgreSQL and an in-memory database).
    pub fn sqlite_file(&self) -> Option<&Path> {
        let url = &self.url;
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))?;
        let path = rest.split_once('?').map_or(rest, |(path, _)| path);
        (!path.starts_with(":memory:") && !path.is_empty()).then(|| Path::new(path))
    }
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("url", &mask_password(&self.url))
            .field("synchronous_commit", &self.synchronous_commit)
            .finish()
    }
}

/// `scheme://user:secret@host/…` → `scheme://user:***@host/…`; other text unchanged.
pub(crate) fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_request_bytes: u64,
    pub max_response_bytes: u64,
    pub max_json_depth: usize,
    pub call_timeout: Duration,
    /// Legacy (2025-era) sessions idle longer than this are ended.
    pub session_idle_timeout: Duration,
    /// Most legacy sessions held at once; `initialize` beyond it is refused with 503.
    pub max_sessions: usize,
    /// A result body longer than this is passed through as it arrives instead of being held
    /// whole, when nothing needs the whole of it (no `outputSchema`, no redaction of results)
    /// and it comes from an HTTP upstream; `None`: every result is held (bounded by
    /// `max_response_bytes`).
    pub stream_results_above: Option<u64>,
    /// Most bytes of a result body that is passed through.
    pub max_streamed_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct Federation {
    /// Joins an upstream's name and an item's name: `fs` + `__` + `read_file`.
    pub separator: String,
}

#[derive(Debug, Clone)]
pub struct Auth {
    pub api_keys: bool,
    /// Requests without credentials pass as principal `anonymous`. Local experiments only.
    pub dangerous_allow_anonymous: bool,
    /// `[[auth.jwt]]`: trusted token issuers, in file order.
    pub jwt: Vec<JwtIssuer>,
    /// `[auth.introspection]`: RFC 7662 token introspection for opaque tokens.
    pub introspection: Option<Introspection>,
    /// `[auth.mtls]`: take the principal from the client certificate (needs `listen.tls.client_ca`).
    pub mtls: Option<Mtls>,
    /// `auth.key_pepper`: the server-side secret API keys are HMAC'd with (and the gateway's
    /// token-signing keys are encrypted with). `None` with SQLite: generated once into a 0600
    /// file beside the database. Required with PostgreSQL (every replica must agree).
    pub key_pepper: Option<Secret>,
    /// `auth.resource`: this gateway's public MCP endpoint URL (RFC 8707 resource / RFC 9728
    /// `resource`), the audience of the gateway's own tokens. Default: derived from
    /// `listen.addr` (`http[s]://ADDR/mcp`).
    pub resource: String,
    /// `auth.required_scopes`: every OAuth or gateway-minted token must carry all of these
    /// scopes, else 403 `insufficient_scope`. Not applied to API keys or mTLS alone.
    pub required_scopes: Vec<String>,
    /// `auth.max_failures`: failed authentications allowed per client IP in the window; past
    /// it the address gets 429 until the window has passed (default 20/min).
    pub max_failures: Rate,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    /// Unique, `[a-z0-9_-]+`.
    pub name: String,
    /// Prepended to tool/prompt names and resource URIs; default `<name><separator>`; may be empty.
    pub prefix: String,
    pub transport: UpstreamTransport,
    /// Per-tool operator rules, by the upstream's own (un-prefixed) tool name.
    pub tools: Vec<ToolRule>,
    /// `[upstream.resources]`: path (`within`) and URL (`allow_hosts`, `deny_private`) rules
    /// applied to the URIs of `resources/read` (`file://` → path rule, `http(s)://` → URL rule).
    pub resources: Option<ArgRule>,
    /// The confinement of a stdio upstream: always `Some` for [`UpstreamTransport::Stdio`]
    /// (defaults when `[upstream.sandbox]` is absent), always `None` for HTTP.
    pub sandbox: Option<Sandbox>,
}

#[derive(Debug, Clone)]
pub enum UpstreamTransport {
    /// A Streamable HTTP server.
    Http {
        url: String,
        /// Sent as `Authorization: Bearer …`: the gateway's own credential.
        bearer: Option<Secret>,
        /// Or a token the gateway obtains itself (OAuth 2.1 client credentials grant).
        oauth: Option<ClientCredentials>,
        /// Extra headers sent on every request (values may be secrets).
        headers: BTreeMap<String, Secret>,
    },
    /// A local process speaking newline-delimited JSON-RPC on stdin/stdout.
    Stdio {
        command: Vec<String>,
        /// The child's whole environment (plus PATH and HOME).
        env: BTreeMap<String, Secret>,
        cwd: Option<PathBuf>,
    },
}

/// `auth.client_credentials` of an HTTP upstream: the gateway's own OAuth client at the
/// upstream's authorization server. Tokens are fetched, cached and refreshed by the gateway.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Space-separated scopes to request.
    pub scope: Option<String>,
    /// RFC 8707 `resource` (default: the upstream's URL).
    pub resource: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ToolRule {
    pub name: String,
    pub read_only: Option<bool>,
    pub approval: bool,
    /// Argument rules by argument name, kept as validated TOML values for the guard stage.
    pub args: BTreeMap<String, ArgRule>,
    /// `redact = "results" | "logs"`: overrides `[guard] redact_results` for this tool.
    pub redact: Option<RedactScope>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArgRule {
    pub within: Vec<PathBuf>,
    pub allow_hosts: Vec<String>,
    pub deny_private: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub pattern: Option<String>,
    pub r#enum: Vec<String>,
    pub max_length: Option<usize>,
}

/// A `host:port` pair (sandbox network allow-list, syslog address).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPort {
    /// A DNS name or an IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{Storage, mask_password};

    #[test]
    fn the_sqlite_file_of_a_storage_url() {
        let rows = [
            ("sqlite:///srv/p.db", Some("/srv/p.db")),
            ("sqlite:///srv/p.db?mode=rwc", Some("/srv/p.db")),
            ("sqlite:p.db", Some("p.db")),
            ("sqlite::memory:", None),
            ("postgres://app@db/portcullis", None),
        ];
        for (url, file) in rows {
            let storage = Storage {
                url: url.to_owned(),
                synchronous_commit: true,
            };
            assert_eq!(storage.sqlite_file(), file.map(Path::new), "{url}");
        }
    }

    #[test]
    fn masks_url_passwords() {
        let rows = [
            (
                "postgres://app:hunter2@db/portcullis",
                "postgres://app:***@db/portcullis",
            ),
            (
                "postgres://app@db/portcullis",
                "postgres://app@db/portcullis",
            ),
            ("redis://:pw@127.0.0.1:6379", "redis://:***@127.0.0.1:6379"),
            ("sqlite:///srv/p.db", "sqlite:///srv/p.db"),
            ("postgres://db/x?user=a@b", "postgres://db/x?user=a@b"),
            ("not a url", "not a url"),
        ];
        for (url, masked) in rows {
            assert_eq!(mask_password(url), masked, "{url}");
        }
    }
}
