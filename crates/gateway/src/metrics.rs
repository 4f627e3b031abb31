//! Prometheus metrics (`GET /metrics`). Every request is counted once, where its audit record
//! is written (`audit.rs`), so the counts and the trail agree.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub decision: String,
    pub upstream: String,
    /// `user`, `service`, `anonymous` or `unauthenticated` (bounded, unlike principal ids).
    pub principal_class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    pub sink: String,
}

/// The timed stages of the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Authn,
    Authz,
    Validate,
    Upstream,
    Audit,
}

impl Stage {
    fn label(self) -> &'static str {
        match self {
            Stage::Authn => "authn",
            Stage::Authz => "authz",
            Stage::Validate => "validate",
            Stage::Upstream => "upstream",
            Stage::Audit => "audit",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<MethodLabels, Histogram>,
    pub stages: Family<StageLabels, Histogram>,
    pub upstream_up: Family<UpstreamLabels, Gauge>,
    pub sessions: Gauge,
    pub audit_queue: Gauge,
    pub sink_failures: Family<SinkLabels, Gauge>,
    pub sink_lag: Family<SinkLabels, Gauge>,
}

/// Known method names keep label cardinality bounded; anything else is `other`.
fn method_label(method: &str) -> String {
    match portcullis_mcp::Method::parse(method) {
        portcullis_mcp::Method::Other => "other".to_owned(),
        _ => method.to_owned(),
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.00002, 2.0, 22))
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "MCP requests by method, decision, upstream and principal class",
            requests.clone(),
        );
        let latency = Family::<MethodLabels, Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "request_duration_seconds",
            "Time from request to final response",
            latency.clone(),
        );
        let stages = Family::<StageLabels, Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "stage_duration_seconds",
            "Time spent per stage: authn, authz, validate, upstream, audit",
            stages.clone(),
        );
        let upstream_up = Family::<UpstreamLabels, Gauge>::default();
        registry.register(
            "upstream_up",
            "1 when the upstream is connected",
            upstream_up.clone(),
        );
        let sessions = Gauge::default();
        registry.register(
            "sessions",
            "Open 2025-era client sessions",
            sessions.clone(),
        );
        let audit_queue = Gauge::default();
        registry.register(
            "audit_queue_depth",
            "Audit records waiting for the writer",
            audit_queue.clone(),
        );
        let sink_failures = Family::<SinkLabels, Gauge>::default();
        registry.register(
            "audit_sink_failures",
            "Failed deliveries per audit sink since start (each is retried)",
            sink_failures.clone(),
        );
        let sink_lag = Family::<SinkLabels, Gauge>::default();
        registry.register(
            "audit_sink_lag_records",
            "Records committed but not yet delivered, per audit sink",
            sink_lag.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            stages,
            upstream_up,
            sessions,
            audit_queue,
            sink_failures,
            sink_lag,
        }
    }

    /// One request, once it is done.
    pub fn observe(
        &self,
        method: &str,
        decision: &str,
        upstream: &str,
        principal_class: &str,
        latency: Duration,
    ) {
        let method = method_label(method);
        self.requests
            .get_or_create(&RequestLabels {
                method: method.clone(),
                decision: decision.to_owned(),
                upstream: upstream.to_owned(),
                principal_class: principal_class.to_owned(),
            })
            .inc();
        self.latency
            .get_or_create(&MethodLabels { method })
            .observe(latency.as_secs_f64());
    }

    pub fn stage(&self, stage: Stage, took: Duration) {
        self.stages
            .get_or_create(&StageLabels {
                stage: stage.label(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_requests_with_bounded_labels() {
        let m = Metrics::new();
        m.observe(
            "tools/call",
            "allow",
            "fs",
            "user",
            Duration::from_millis(3),
        );
        m.observe(
            "made/up/method",
            "deny",
            "",
            "unauthenticated",
            Duration::from_millis(1),
        );
        m.stage(Stage::Authz, Duration::from_micros(40));
        let text = m.encode();
        assert!(
            text.contains(
                r#"portcullis_requests_total{method="tools/call",decision="allow",upstream="fs",principal_class="user"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"method="other""#));
        assert!(!text.contains("made/up"));
        assert!(
            text.contains(r#"portcullis_stage_duration_seconds_count{stage="authz"} 1"#),
            "{text}"
        );
    }
}
