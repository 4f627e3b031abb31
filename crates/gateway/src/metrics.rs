//! Prometheus metrics (`GET /metrics`).

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
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub upstream: String,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<MethodLabels, Histogram>,
    pub upstream_up: Family<UpstreamLabels, Gauge>,
    pub sessions: Gauge,
}

/// Known method names keep label cardinality bounded; anything else is `other`.
fn method_label(method: &str) -> String {
    match portcullis_mcp::Method::parse(method) {
        portcullis_mcp::Method::Other => "other".to_owned(),
        _ => method.to_owned(),
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "MCP requests by method, decision and upstream",
            requests.clone(),
        );
        let latency = Family::<MethodLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 20))
        });
        registry.register(
            "request_duration_seconds",
            "Time from request to final response",
            latency.clone(),
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
        Self {
            registry,
            requests,
            latency,
            upstream_up,
            sessions,
        }
    }

    pub fn observe(&self, method: &str, decision: &str, upstream: &str, latency: Duration) {
        let method = method_label(method);
        self.requests
            .get_or_create(&RequestLabels {
                method: method.clone(),
                decision: decision.to_owned(),
                upstream: upstream.to_owned(),
            })
            .inc();
        self.latency
            .get_or_create(&MethodLabels { method })
            .observe(latency.as_secs_f64());
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
        m.observe("tools/call", "allow", "fs", Duration::from_millis(3));
        m.observe(
            "made/up/method",
            "method_not_found",
            "",
            Duration::from_millis(1),
        );
        let text = m.encode();
        assert!(
            text.contains(
                r#"portcullis_requests_total{method="tools/call",decision="allow",upstream="fs"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"method="other""#));
        assert!(!text.contains("made/up"));
    }
}
