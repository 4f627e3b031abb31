//! The Portcullis gateway: one MCP endpoint in front of many upstream MCP servers.
//!
//! [`pipeline`] sets the order of stages; [`http`] is the downstream surface; [`relay`] talks to
//! upstreams; [`federation`] namespaces and routes; [`session`] holds 2025-era sessions.

pub mod authn;
pub mod error;
pub mod federation;
pub mod http;
pub mod listen;
pub mod lists;
pub mod metrics;
pub mod mrtr;
pub mod origin;
pub mod pipeline;
pub mod proof;
pub mod relay;
pub mod results;
pub mod serve;
pub mod session;
pub mod stream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_config::Config;
use portcullis_transport::upstream::{self, UpstreamLimits};
use tokio_util::sync::CancellationToken;

use crate::authn::Authenticator;
use crate::federation::{Federation, Member};
use crate::metrics::Metrics;
use crate::session::Sessions;

/// Limits the request path enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_request_bytes: u64,
    pub max_json_depth: usize,
    pub call_timeout: Duration,
}

/// Everything a request needs, shared by all requests.
pub struct Gateway {
    pub limits: Limits,
    pub origins: origin::OriginPolicy,
    pub authn: Authenticator,
    pub federation: Federation,
    pub sessions: Sessions,
    /// List changes and resource updates from every upstream, for `subscriptions/listen`.
    pub changes: listen::Changes,
    pub metrics: Metrics,
    /// Cancelled when the gateway stops: ends streams and in-flight calls.
    pub shutdown: CancellationToken,
    /// Calls waiting for a 2026-era client's retry with input (MRTR bridging).
    parked: Mutex<HashMap<String, relay::Parked>>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("upstream {name}: {source}")]
    Upstream {
        name: String,
        source: portcullis_transport::UpstreamError,
    },
}

impl Gateway {
    /// Builds the gateway and starts connecting to its upstreams (in the background).
    pub fn build(config: &Config) -> Result<Arc<Self>, BuildError> {
        let ulimits = UpstreamLimits {
            max_response_bytes: config.limits.max_response_bytes,
            max_json_depth: config.limits.max_json_depth,
        };
        let mut members = Vec::with_capacity(config.upstreams.len());
        for u in &config.upstreams {
            let upstream =
                upstream::connect(u, ulimits).map_err(|source| BuildError::Upstream {
                    name: u.name.clone(),
                    source,
                })?;
            members.push(Member {
                name: u.name.clone(),
                prefix: u.prefix.clone(),
                upstream,
            });
        }
        Ok(Arc::new(Self {
            limits: Limits {
                max_request_bytes: config.limits.max_request_bytes,
                max_json_depth: config.limits.max_json_depth,
                call_timeout: config.limits.call_timeout,
            },
            origins: origin::OriginPolicy::new(
                config.listen.allowed_origins.clone(),
                config.listen.addr,
            ),
            authn: Authenticator::new(&config.auth),
            federation: Federation::new(members),
            sessions: Sessions::new(
                config.limits.max_sessions,
                config.limits.session_idle_timeout,
            ),
            changes: listen::Changes::default(),
            metrics: Metrics::new(),
            shutdown: CancellationToken::new(),
            parked: Mutex::new(HashMap::new()),
        }))
    }

    fn parked(&self) -> std::sync::MutexGuard<'_, HashMap<String, relay::Parked>> {
        self.parked.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn park(&self, handle: String, parked: relay::Parked) {
        self.parked().insert(handle, parked);
    }

    pub(crate) fn unpark(&self, handle: &str) -> Option<relay::Parked> {
        self.parked().remove(handle)
    }

    /// Stops upstreams and ends sessions.
    pub async fn stop(&self) {
        self.shutdown.cancel();
        self.sessions.end_all();
        for m in self.federation.members() {
            m.upstream.shutdown().await;
        }
    }
}
