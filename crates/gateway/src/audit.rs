//! The audit stage: one record per request, allowed or refused, durable before the reply is
//! sent. A request whose record cannot be written gets an error instead of its result (fail
//! closed: nothing happens that the trail does not show).

use std::time::Instant;

use portcullis_audit::{Decision, RecordDraft};
use portcullis_mcp::ErrorObject;
use serde_json::Value;

use crate::Gateway;
use crate::error::GatewayError;
use crate::proof::Principal;

/// A request's record while it is being handled.
#[derive(Debug)]
pub struct Entry {
    draft: RecordDraft,
    started: Instant,
    /// For metrics: `user`, `service`, `anonymous` or `unauthenticated`.
    class: &'static str,
}

impl Entry {
    /// A new record for a request of `method`.
    pub fn new(method: &str) -> Entry {
        let mut draft = RecordDraft::new(
            uuid::Uuid::new_v4().simple().to_string(),
            method,
            Decision::Allow,
        );
        draft.status = Some(200);
        Entry {
            draft,
            started: Instant::now(),
            class: "unauthenticated",
        }
    }

    pub fn request_id(&self) -> &str {
        &self.draft.request_id
    }

    pub fn who(&mut self, p: &Principal) -> &mut Self {
        self.draft.principal = Some(p.id.clone());
        self.draft.auth_method = Some(p.method.as_str().to_owned());
        self.draft.client_ip = p.client_ip.map(|ip| ip.to_string());
        self.class = match p.method {
            portcullis_authn::AuthMethod::Anonymous => "anonymous",
            _ => p.kind.as_str(),
        };
        self
    }

    /// For a refused authentication: what the attempt showed (never the credential).
    pub fn attempt(&mut self, a: &portcullis_authn::Attempt) -> &mut Self {
        self.draft.principal = a.subject.clone().or_else(|| a.cert_identity.clone());
        self.draft.auth_method = a.credential.map(|c| c.as_str().to_owned());
        self.draft.client_ip = a.client_ip.map(|ip| ip.to_string());
        self
    }

    pub fn client_ip(&mut self, ip: std::net::IpAddr) -> &mut Self {
        self.draft.client_ip = Some(ip.to_string());
        self
    }

    pub fn target(&mut self, upstream: &str, name: &str) -> &mut Self {
        self.draft.upstream = Some(upstream.to_owned());
        self.draft.name = Some(name.to_owned());
        self
    }

    pub fn args(&mut self, args: Option<&Value>) -> &mut Self {
        self.draft.args = args.cloned();
        self
    }

    pub fn policies(&mut self, ids: &[String]) -> &mut Self {
        self.draft.policy_ids = ids.to_vec();
        self
    }

    /// The request was refused or failed with `err`.
    pub fn failed(&mut self, err: &GatewayError) -> &mut Self {
        self.draft.decision = match err {
            GatewayError::UpstreamUnavailable { .. }
            | GatewayError::UpstreamFailed { .. }
            | GatewayError::Timeout(_)
            | GatewayError::ResponseTooLarge { .. }
            | GatewayError::Internal(_)
            | GatewayError::AuditUnavailable(_) => Decision::Error,
            _ => Decision::Deny,
        };
        self.draft.reason = Some(err.to_string());
        let public = err.public();
        self.draft.status = Some(public.status.as_u16());
        self.draft.result = serde_json::to_value(&public.error).ok();
        self
    }

    /// The call ended without a response to send (cancelled, or the client went away).
    pub fn abandoned(&mut self, why: &str) -> &mut Self {
        self.draft.decision = Decision::Error;
        self.draft.reason = Some(why.to_owned());
        self.draft.status = None;
        self
    }

    /// The upstream answered with a JSON-RPC error (the call was allowed).
    pub fn upstream_error(&mut self, e: &ErrorObject) -> &mut Self {
        self.draft.decision = Decision::Error;
        self.draft.reason = Some(format!("upstream error {}: {}", e.code, e.message));
        self.draft.result = serde_json::to_value(e).ok();
        self
    }

    /// What the client is sent back (digested, then encrypted or redacted).
    pub fn result(&mut self, result: Option<Value>) -> &mut Self {
        self.draft.result = result;
        self
    }

    pub fn reason(&mut self, reason: impl Into<String>) -> &mut Self {
        self.draft.reason = Some(reason.into());
        self
    }

    /// Writes the record and waits until it is durable; counts the request in the metrics.
    pub async fn commit(mut self, gw: &Gateway) -> Result<(), GatewayError> {
        let took = self.started.elapsed();
        self.draft.latency_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        gw.metrics.observe(
            &self.draft.method,
            self.draft.decision.as_str(),
            self.draft.upstream.as_deref().unwrap_or(""),
            self.class,
            took,
        );
        let writing = Instant::now();
        let appended = gw.audit.append(self.draft).await;
        gw.metrics
            .stage(crate::metrics::Stage::Audit, writing.elapsed());
        match appended {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "audit record could not be written; the request fails");
                Err(GatewayError::AuditUnavailable(e.to_string()))
            }
        }
    }
}
