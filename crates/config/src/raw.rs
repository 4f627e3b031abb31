//! Stage 1: serde structs mirroring `portcullis.toml` exactly.
//!
//! Unknown keys are accepted here and collected by `crate::unknown` (via `serde_ignored`), so
//! they are reported as errors together with stage 2's. Values are kept as written (durations, sizes and secrets as
//! text, most keys optional) so stage 2 (`crate::validate`) can check them all and report every
//! problem at once, with its key path.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    pub listen: Option<RawListen>,
    pub storage: Option<RawStorage>,
    pub limits: Option<RawLimits>,
    pub federation: Option<RawFederation>,
    pub rate_limit: Option<RawRateLimit>,
    pub auth: Option<RawAuth>,
    pub authz: Option<RawAuthz>,
    pub upstream: Option<Vec<RawUpstream>>,
    pub guard: Option<RawGuard>,
    pub audit: Option<RawAudit>,
    pub approval: Option<RawApproval>,
    pub anomaly: Option<RawAnomaly>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawListen {
    pub addr: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
    pub tls: Option<RawTls>,
    pub max_connections: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawTls {
    pub cert: Option<String>,
    pub key: Option<String>,
    pub client_ca: Option<String>,
    pub require_client_cert: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawStorage {
    pub url: Option<String>,
    pub synchronous_commit: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawLimits {
    pub max_request_bytes: Option<RawSize>,
    pub max_response_bytes: Option<RawSize>,
    pub max_json_depth: Option<i64>,
    pub call_timeout: Option<String>,
    pub session_idle_timeout: Option<String>,
    pub max_sessions: Option<i64>,
    pub stream_results_above: Option<RawSize>,
    pub max_streamed_bytes: Option<RawSize>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawFederation {
    pub separator: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRateLimit {
    pub backend: Option<String>,
    pub default: Option<String>,
    pub rule: Option<Vec<RawRateRule>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRateRule {
    pub principal: Option<String>,
    pub tool: Option<String>,
    pub limit: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawAuth {
    pub api_keys: Option<bool>,
    pub dangerous_allow_anonymous: Option<bool>,
    pub jwt: Option<Vec<RawJwt>>,
    pub introspection: Option<RawIntrospection>,
    pub mtls: Option<RawMtls>,
    pub key_pepper: Option<String>,
    pub resource: Option<String>,
    pub required_scopes: Option<Vec<String>>,
    pub max_failures: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawJwt {
    pub issuer: Option<String>,
    pub jwks_url: Option<String>,
    pub audience: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawIntrospection {
    pub url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawMtls {
    pub principal_from: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawAuthz {
    pub policies: Option<Vec<String>>,
    pub roles_claim: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawUpstream {
    pub name: Option<String>,
    pub prefix: Option<String>,
    pub command: Option<Vec<String>>,
    pub env: Option<BTreeMap<String, String>>,
    pub cwd: Option<String>,
    pub sandbox: Option<RawSandbox>,
    pub url: Option<String>,
    pub auth: Option<RawUpstreamAuth>,
    pub headers: Option<BTreeMap<String, String>>,
    pub dangerous_allow_plain_http: Option<bool>,
    pub tool: Option<Vec<RawTool>>,
    /// Path/URL rules applied to `resources/read` URIs of this upstream.
    pub resources: Option<RawArgRule>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawUpstreamAuth {
    pub bearer: Option<String>,
    pub client_credentials: Option<RawClientCredentials>,
}

/// `auth = { client_credentials = { … } }`: the gateway's own OAuth client toward an upstream.
#[derive(Debug, Default, Deserialize)]
pub struct RawClientCredentials {
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scope: Option<String>,
    pub resource: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawSandbox {
    pub fs_read: Option<Vec<String>>,
    pub fs_write: Option<Vec<String>>,
    /// `"none"` or a list of `"host:port"`; checked in stage 2 for a clearer message.
    pub network: Option<toml::Value>,
    pub memory: Option<RawSize>,
    pub cpu_time: Option<String>,
    pub processes: Option<i64>,
    pub storage_quota: Option<RawSize>,
    pub dangerous_allow_weaker_sandbox: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawTool {
    pub name: Option<String>,
    pub read_only: Option<bool>,
    pub approval: Option<bool>,
    pub args: Option<BTreeMap<String, RawArgRule>>,
    pub redact: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawArgRule {
    pub within: Option<Vec<String>>,
    pub allow_hosts: Option<Vec<String>>,
    pub deny_private: Option<bool>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub pattern: Option<String>,
    pub r#enum: Option<Vec<String>>,
    pub max_length: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawGuard {
    pub redact: Option<Vec<String>>,
    pub redact_pattern: Option<Vec<RawRedactPattern>>,
    pub pin_tools: Option<bool>,
    pub scan_tools: Option<bool>,
    pub scan_action: Option<String>,
    pub redact_results: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRedactPattern {
    pub name: Option<String>,
    pub pattern: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawAudit {
    pub signing_key: Option<String>,
    pub encryption_key: Option<String>,
    pub old_encryption_keys: Option<Vec<String>>,
    pub retention: Option<String>,
    pub checkpoint_records: Option<i64>,
    pub checkpoint_interval: Option<String>,
    pub max_field_bytes: Option<RawSize>,
    pub sink: Option<Vec<RawSink>>,
}

/// `[[audit.sink]]` and `[[anomaly.alert]]`: `kind` decides which other keys apply.
#[derive(Debug, Default, Deserialize)]
pub struct RawSink {
    pub kind: Option<String>,
    pub path: Option<String>,
    pub url: Option<String>,
    pub endpoint: Option<String>,
    pub address: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub transport: Option<String>,
    pub ca: Option<String>,
    pub max_size: Option<RawSize>,
    pub keep: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawApproval {
    pub timeout: Option<String>,
    pub approvers_role: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawAnomaly {
    pub enabled: Option<bool>,
    pub alert: Option<Vec<RawSink>>,
}

/// A size as written: a bare integer (bytes) or text such as `"1MiB"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawSize {
    Bytes(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;

        impl Visitor<'_> for SizeVisitor {
            type Value = RawSize;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"1MiB\" or a number of bytes")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawSize, E> {
                Ok(RawSize::Bytes(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawSize, E> {
                i64::try_from(v)
                    .map(RawSize::Bytes)
                    .map_err(|_| E::custom("size too large"))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawSize, E> {
                Ok(RawSize::Text(v.to_owned()))
            }
        }

        deserializer.deserialize_any(SizeVisitor)
    }
}
