//! The Portcullis gateway: one MCP endpoint in front of many upstream MCP servers.
//!
//! [`pipeline`] sets the order of stages; [`http`] is the downstream surface; [`relay`] talks to
//! upstreams; [`federation`] namespaces and routes; [`session`] holds 2025-era sessions.

pub mod audit;
pub mod authn;
pub mod authorize;
pub mod catalog;
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
pub mod tasks;
pub mod upstream_auth;
pub mod validate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_audit::AuditLog;
use portcullis_audit::sink::{SinkOptions, SinkSet, SinkSpec};
use portcullis_authn::Authenticator;
use portcullis_config::Config;
use portcullis_guard::GuardSet;
use portcullis_guard::pins::PinStore;
use portcullis_store::{Commit, Store};
use portcullis_transport::upstream::{self, UpstreamLimits};
use tokio_util::sync::CancellationToken;

use crate::authorize::Policy;
use crate::catalog::Catalogs;
use crate::federation::{Federation, Member};
use crate::metrics::Metrics;
use crate::session::Sessions;

/// Limits the request path enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_request_bytes: u64,
    pub max_json_depth: usize,
    pub max_response_bytes: u64,
    pub call_timeout: Duration,
    /// Results longer than this pass through as they arrive when nothing needs them whole
    /// (`relay.rs::streaming`); `None`: every result is held.
    pub stream_results_above: Option<u64>,
    pub max_streamed_bytes: u64,
}

/// Everything a request needs, shared by all requests.
pub struct Gateway {
    pub limits: Limits,
    pub origins: origin::OriginPolicy,
    pub store: Store,
    pub authn: Authenticator,
    pub policy: Policy,
    pub guard: Arc<GuardSet>,
    pub pins: PinStore,
    pub catalogs: Catalogs,
    pub audit: AuditLog,
    sinks: Mutex<Option<SinkSet>>,
    pub federation: Federation,
    pub sessions: Sessions,
    /// List changes and resource updates from every upstream, for `subscriptions/listen`.
    pub changes: listen::Changes,
    pub metrics: Metrics,
    /// Cancelled when the gateway stops: ends streams and in-flight calls.
    pub shutdown: CancellationToken,
    /// Calls waiting for a 2026-era client's retry with input (MRTR bridging).
    parked: Mutex<HashMap<String, relay::Parked>>,
    /// Tasks upstreams created for callers (tasks extension), in the store.
    pub tasks: tasks::Tasks,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("upstream {name}: {source}")]
    Upstream {
        name: String,
        source: portcullis_transport::UpstreamError,
    },
    #[error("storage {url}: {source}")]
    Store {
        url: String,
        source: portcullis_store::StoreError,
    },
    #[error("HTTP client: {0}")]
    Http(String),
    #[error("authentication: {0}")]
    Authn(#[from] portcullis_authn::AuthnError),
    #[error("policies: {0}")]
    Policy(#[from] authorize::PolicyLoadError),
    #[error("guard rules: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Guard(Vec<portcullis_guard::GuardConfigError>),
    #[error("tool pins: {0}")]
    Pins(#[from] portcullis_guard::pins::PinError),
    #[error("audit: {0}")]
    Audit(#[from] portcullis_audit::AuditError),
    #[error("audit sinks: {0}")]
    Sinks(#[from] portcullis_audit::sink::SinkError),
}

impl Gateway {
    /// Opens the store, loads credentials, policies, rules and the audit trail, and starts
    /// connecting to the upstreams (in the background).
    pub async fn build(config: &Config) -> Result<Arc<Self>, BuildError> {
        let commit = if config.storage.synchronous_commit {
            Commit::Flushed
        } else {
            Commit::Unflushed
        };
        let store = Store::open_with(&config.storage.url, commit)
            .await
            .map_err(|source| BuildError::Store {
                url: redact_url(&config.storage.url),
                source,
            })?;
        let http = upstream_auth::http_client().map_err(BuildError::Http)?;
        let authn = Authenticator::new(config, store.clone(), http.clone()).await?;
        authn.prefetch().await;
        let policy = Policy::load(config)?;
        let guard = Arc::new(GuardSet::build(config).map_err(BuildError::Guard)?);
        let pins = PinStore::open(store.clone()).await?;
        let tasks =
            tasks::Tasks::open(store.clone())
                .await
                .map_err(|source| BuildError::Store {
                    url: redact_url(&config.storage.url),
                    source,
                })?;
        let redactor = Arc::clone(&guard.redactor);
        let audit = AuditLog::open(
            store.clone(),
            &config.audit,
            &portcullis_audit::key_dir(config),
        )
        .await?
        .with_redactor(Arc::new(move |v: &mut serde_json::Value| {
            redactor.redact_json(v);
        }));
        audit.spawn_retention(Duration::from_secs(60));
        let shutdown = CancellationToken::new();
        let sinks = if config.audit.sinks.is_empty() {
            None
        } else {
            let specs = config
                .audit
                .sinks
                .iter()
                .map(SinkSpec::from_config)
                .collect();
            let mut set = SinkSet::spawn(
                store.clone(),
                specs,
                SinkOptions::default(),
                shutdown.child_token(),
            )
            .await?;
            set.follow(audit.committed());
            Some(set)
        };
        let ulimits = UpstreamLimits {
            max_response_bytes: config.limits.max_response_bytes,
            max_json_depth: config.limits.max_json_depth,
        };
        let mut members = Vec::with_capacity(config.upstreams.len());
        for u in &config.upstreams {
            let upstream = upstream::connect(u, ulimits, upstream_auth::token_source(u, &http))
                .map_err(|source| BuildError::Upstream {
                    name: u.name.clone(),
                    source,
                })?;
            members.push(Member {
                name: u.name.clone(),
                prefix: Arc::from(u.prefix.as_str()),
                upstream,
            });
        }
        Ok(Arc::new(Self {
            limits: Limits {
                max_request_bytes: config.limits.max_request_bytes,
                max_json_depth: config.limits.max_json_depth,
                max_response_bytes: config.limits.max_response_bytes,
                call_timeout: config.limits.call_timeout,
                stream_results_above: config.limits.stream_results_above,
                max_streamed_bytes: config.limits.max_streamed_bytes,
            },
            origins: origin::OriginPolicy::new(
                config.listen.allowed_origins.clone(),
                config.listen.addr,
            ),
            store,
            authn,
            policy,
            guard,
            pins,
            catalogs: Catalogs::new(members.len()),
            audit,
            sinks: Mutex::new(sinks),
            federation: Federation::new(members),
            sessions: Sessions::new(
                config.limits.max_sessions,
                config.limits.session_idle_timeout,
            ),
            changes: listen::Changes::default(),
            metrics: Metrics::new(),
            shutdown,
            parked: Mutex::new(HashMap::new()),
            tasks,
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

    /// Sets the gauges read from other components (audit queue, sinks) before a scrape.
    pub fn refresh_gauges(&self) {
        self.metrics
            .audit_queue
            .set(i64::try_from(self.audit.queue_depth()).unwrap_or(i64::MAX));
        let sinks = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        for s in sinks.iter().flat_map(SinkSet::status) {
            let labels = metrics::SinkLabels { sink: s.label };
            self.metrics
                .sink_failures
                .get_or_create(&labels)
                .set(i64::try_from(s.failures).unwrap_or(i64::MAX));
            self.metrics
                .sink_lag
                .get_or_create(&labels)
                .set(i64::try_from(s.lag).unwrap_or(i64::MAX));
        }
    }

    /// Stops upstreams, ends sessions, and flushes the audit trail and its sinks.
    pub async fn stop(&self) {
        self.shutdown.cancel();
        self.sessions.end_all();
        for m in self.federation.members() {
            m.upstream.shutdown().await;
        }
        if let Err(e) = self.audit.shutdown().await {
            tracing::error!(error = %e, "audit trail did not close cleanly");
        }
        let sinks = self.sinks.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(sinks) = sinks {
            sinks.join().await;
        }
    }
}

/// A database URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}
