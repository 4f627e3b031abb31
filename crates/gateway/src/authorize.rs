//! The authorization stage: Cedar policies decide every routed call and filter every list.
//! Default deny: with no policy loaded, nothing is permitted. A decision takes one snapshot of
//! the policy set, so a reload never splits a request between two sets.

use std::sync::Arc;

use portcullis_authz::jiff::tz::TimeZone;
use portcullis_authz::{
    Action, Authorizer, CallTime, Decision, Lister, PolicySet, PolicyWatch, Subject, SubjectKind,
    Target, ToolOverrides, Verdict,
};
use portcullis_config::Config;

use crate::error::GatewayError;
use crate::proof::{Authenticated, Authorized, Principal};

/// The live policy set and what decisions need besides it.
pub struct Policy {
    authorizer: Arc<Authorizer>,
    /// Keeps the file watcher (hot reload) alive.
    _watch: Option<PolicyWatch>,
    pub overrides: ToolOverrides,
    tz: TimeZone,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyLoadError {
    #[error("{0}")]
    Invalid(portcullis_authz::PolicyErrors),
    #[error(transparent)]
    Watch(#[from] portcullis_authz::WatchError),
}

impl Policy {
    /// Loads `[authz] policies` and watches the files for changes.
    pub fn load(config: &Config) -> Result<Policy, PolicyLoadError> {
        let authorizer = Arc::new(
            Authorizer::load(config.authz.policies.clone()).map_err(PolicyLoadError::Invalid)?,
        );
        let watch = if config.authz.policies.is_empty() {
            None
        } else {
            // A directory that also holds the SQLite store is scanned, not watched: a watch
            // would be woken by every write to the store.
            let store = config.storage.sqlite_file();
            Some(authorizer.watch_beside(store.as_slice())?)
        };
        for dir in watch.iter().flat_map(PolicyWatch::polled) {
            tracing::info!(
                dir = %dir.display(),
                every = ?portcullis_authz::POLL_BUSY,
                "this policy directory also holds the SQLite store: it is scanned for policy changes, not watched"
            );
        }
        let set = authorizer.current();
        if set.is_empty() {
            tracing::warn!("no authorization policy loaded: every call will be denied");
        } else {
            tracing::info!(policies = set.len(), "authorization policies loaded");
        }
        Ok(Policy {
            authorizer,
            _watch: watch,
            overrides: ToolOverrides::from_config(config),
            // `context.hour` / `context.weekday` are UTC, as `policy test` computes them.
            tz: TimeZone::UTC,
        })
    }

    /// The policy set to use for one request.
    pub fn snapshot(&self) -> Arc<PolicySet> {
        self.authorizer.current()
    }

    pub fn now(&self) -> CallTime {
        CallTime::now(&self.tz)
    }

    /// Decides one request; the operator's log gets the reasons and diagnostics.
    pub fn decide(
        &self,
        principal: &Principal,
        action: Action,
        target: &Target,
        args: Option<&serde_json::Value>,
        protocol_version: &str,
    ) -> Decision {
        let subject = subject(principal);
        let set = self.snapshot();
        let req = portcullis_authz::Request {
            subject: &subject,
            action,
            target,
            args,
            protocol_version,
            time: self.now(),
        };
        let decision = portcullis_authz::decide(&set, &req);
        for d in &decision.diagnostics {
            tracing::warn!(client.id = %principal.id, action = %action, diagnostic = %d, "policy evaluation problem");
        }
        decision
    }

    /// Decides and, when permitted, hands out the proof. `ApprovalRequired` is refused until the
    /// approval stage exists to hold it (never silently allowed).
    pub fn authorize<T>(
        &self,
        who: &Authenticated,
        action: Action,
        target: &Target,
        args: Option<&serde_json::Value>,
        protocol_version: &str,
        call: T,
    ) -> (Decision, Result<Authorized<T>, GatewayError>) {
        let decision = self.decide(who.principal(), action, target, args, protocol_version);
        let outcome = match decision.verdict {
            Verdict::Allow => Ok(Authorized::assert(call, who, decision.policy_ids.clone())),
            Verdict::Deny => Err(GatewayError::Denied {
                reason: decision.reason.clone(),
            }),
            Verdict::ApprovalRequired => Err(GatewayError::Denied {
                reason: "this call needs a person's approval, and approvals are not enabled".into(),
            }),
        };
        (decision, outcome)
    }
}

/// The Cedar principal of an authenticated caller.
pub fn subject(p: &Principal) -> Subject {
    Subject {
        id: p.id.clone(),
        kind: match p.kind {
            portcullis_authn::PrincipalKind::User => SubjectKind::User,
            portcullis_authn::PrincipalKind::Service => SubjectKind::Service,
        },
        roles: p.roles.clone(),
        auth_method: p.method.as_str().to_owned(),
        scopes: p.scopes.clone(),
        client_ip: p.client_ip,
    }
}

/// Filters one list for one caller.
pub struct ListFilter {
    set: Arc<PolicySet>,
    subject: Subject,
    protocol_version: &'static str,
    time: CallTime,
}

impl ListFilter {
    pub fn new(policy: &Policy, who: &Authenticated, protocol_version: &'static str) -> Self {
        ListFilter {
            set: policy.snapshot(),
            subject: subject(who.principal()),
            protocol_version,
            time: policy.now(),
        }
    }

    pub fn lister(&self) -> Lister<'_> {
        Lister::new(&self.set, &self.subject, self.protocol_version, self.time)
    }

    /// Whether the list action itself is permitted on `upstream`.
    pub fn may_list(&self, action: Action, upstream: &str) -> bool {
        let req = portcullis_authz::Request {
            subject: &self.subject,
            action,
            target: &Target::Upstream(upstream.to_owned()),
            args: None,
            protocol_version: self.protocol_version,
            time: self.time,
        };
        portcullis_authz::decide(&self.set, &req).is_allow()
    }
}
