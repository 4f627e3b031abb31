//! The decision functions: pure, over a [`PolicySet`] and a [`Request`].
//!
//! - [`decide`]: allow, deny or approval-required, with the deciding policy ids and reasons.
//! - [`visible`] / [`Lister`]: whether an item shows in a list (its use is not definitely
//!   denied whatever the arguments).

use std::sync::LazyLock;

use cedar_policy::{Decision as CedarDecision, Effect, PolicyId};

use crate::entities::{self, Args, Prepared, PreparedSubject};
use crate::index::Facts;
use crate::model::{Action, CallTime, Request, Subject, Target};
use crate::policies::PolicySet;
use crate::schema::Names;

static AUTHORIZER: LazyLock<cedar_policy::Authorizer> =
    LazyLock::new(cedar_policy::Authorizer::new);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Allow,
    Deny,
    /// Permitted by a policy annotated `@approval("required")`: hold for a person.
    ApprovalRequired,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::ApprovalRequired => "approval_required",
        }
    }
}

/// The outcome of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// The policies that decided (sorted): the satisfied permits of an allow, the satisfied
    /// forbids of a deny, the failing forbids of a deny by evaluation error; empty for the
    /// default deny.
    pub policy_ids: Vec<String>,
    /// For the caller: says what decided, names no policy and shows no internals (a forbid's
    /// `@reason("…")` text is used when it has one).
    pub reason: String,
    /// For the operator's log: evaluation errors with policy ids, why a request could not be
    /// built.
    pub diagnostics: Vec<String>,
}

impl Decision {
    pub fn is_allow(&self) -> bool {
        self.verdict == Verdict::Allow
    }

    fn deny(policy_ids: Vec<String>, reason: impl Into<String>, diagnostics: Vec<String>) -> Self {
        Decision {
            verdict: Verdict::Deny,
            policy_ids,
            reason: reason.into(),
            diagnostics,
        }
    }
}

/// Public reasons (stable wording; tests and the e2e suite match them).
pub mod reasons {
    pub const NO_PERMIT: &str = "denied by default: no policy permits this request";
    pub const FORBIDDEN: &str = "forbidden by policy";
    pub const EVAL_ERROR: &str = "denied: a policy could not be evaluated for this request";
    pub const BAD_REQUEST: &str = "denied: the request could not be evaluated";
    pub const PERMITTED: &str = "permitted by policy";
    pub const APPROVAL: &str = "permitted by policy once a person approves";
}

/// Decides `req` against `set`. Default deny; a forbid that fails to evaluate denies (Cedar
/// would skip it, which could turn into an allow); a permit that fails simply does not permit.
/// If any satisfied permit is annotated `@approval("required")`, an allow becomes
/// [`Verdict::ApprovalRequired`] (the strictest reading wins).
pub fn decide(set: &PolicySet, req: &Request<'_>) -> Decision {
    let prepared = Names::get()
        .map_err(str::to_owned)
        .and_then(|names| entities::request(names, None, req, Args::Known(req.args), set.context));
    let prepared = match prepared {
        Ok(p) => p,
        Err(e) => return Decision::deny(Vec::new(), reasons::BAD_REQUEST, vec![e]),
    };
    let subset = candidates(set, &prepared);
    let policies = subset.as_deref().unwrap_or(&set.cedar);
    let response = AUTHORIZER.is_authorized(&prepared.request, policies, &prepared.store.entities);
    let mut diagnostics: Vec<String> = response
        .diagnostics()
        .errors()
        .map(ToString::to_string)
        .collect();
    let failed_forbids = sorted_ids(
        response
            .diagnostics()
            .errors()
            .map(error_policy)
            .filter(|id| set.meta.get(id).is_some_and(|m| m.effect == Effect::Forbid)),
    );
    if !failed_forbids.is_empty() {
        return Decision::deny(failed_forbids, reasons::EVAL_ERROR, diagnostics);
    }
    let deciding = sorted_ids(response.diagnostics().reason());
    match response.decision() {
        CedarDecision::Allow => {
            let approval = response
                .diagnostics()
                .reason()
                .any(|id| set.meta.get(id).is_some_and(|m| m.approval));
            Decision {
                verdict: if approval {
                    Verdict::ApprovalRequired
                } else {
                    Verdict::Allow
                },
                policy_ids: deciding,
                reason: if approval {
                    reasons::APPROVAL
                } else {
                    reasons::PERMITTED
                }
                .to_owned(),
                diagnostics,
            }
        }
        CedarDecision::Deny if deciding.is_empty() => {
            if set.is_empty() {
                diagnostics.push("no policies are loaded: every request is denied".into());
            }
            Decision::deny(deciding, reasons::NO_PERMIT, diagnostics)
        }
        CedarDecision::Deny => {
            let reason = response
                .diagnostics()
                .reason()
                .filter_map(|id| {
                    set.meta
                        .get(id)
                        .and_then(|m| m.reason.as_ref())
                        .map(|r| (id.to_string(), r))
                })
                .min()
                .map_or_else(|| reasons::FORBIDDEN.to_owned(), |(_, r)| r.clone());
            Decision::deny(deciding, reason, diagnostics)
        }
    }
}

/// The policies whose scope can match (see [`crate::index`]); `None`: all of them.
fn candidates(set: &PolicySet, p: &Prepared) -> Option<std::sync::Arc<cedar_policy::PolicySet>> {
    set.index.select(&Facts {
        principal: &p.store.principal,
        roles: &p.store.roles,
        action: &p.action,
        resource: &p.store.resource,
        upstream: p.store.upstream.as_ref(),
    })
}

fn error_policy(e: &cedar_policy::AuthorizationError) -> &PolicyId {
    match e {
        cedar_policy::AuthorizationError::PolicyEvaluationError(e) => e.policy_id(),
    }
}

fn sorted_ids<'a>(ids: impl Iterator<Item = &'a PolicyId>) -> Vec<String> {
    let mut v: Vec<String> = ids.map(ToString::to_string).collect();
    v.sort();
    v.dedup();
    v
}

/// Whether `req` is not definitely denied whatever its arguments (`req.args` is ignored):
/// the list rule of DESIGN §3.4. Permits that depend on `context.args` keep an item listed;
/// a forbid that holds for every argument value (or fails for every value) hides it.
pub fn visible(set: &PolicySet, req: &Request<'_>) -> bool {
    match Names::get() {
        Ok(names) => match entities::subject(names, req.subject) {
            Ok(who) => visible_with(set, names, &who, req),
            Err(_) => false,
        },
        Err(_) => false,
    }
}

fn visible_with(set: &PolicySet, names: &Names, who: &PreparedSubject, req: &Request<'_>) -> bool {
    if !set.uses_args {
        // No policy can read the arguments: the concrete answer is the answer for any.
        let concrete = Request { args: None, ..*req };
        return match entities::request(names, Some(who), &concrete, Args::Known(None), set.context)
        {
            Ok(p) => {
                let subset = candidates(set, &p);
                let policies = subset.as_deref().unwrap_or(&set.cedar);
                let r = AUTHORIZER.is_authorized(&p.request, policies, &p.store.entities);
                r.decision() == CedarDecision::Allow
                    && !r
                        .diagnostics()
                        .errors()
                        .any(|e| forbid(set, error_policy(e)))
            }
            Err(_) => false,
        };
    }
    let Ok(p) = entities::request(names, Some(who), req, Args::Unknown, set.context) else {
        return false;
    };
    let subset = candidates(set, &p);
    let policies = subset.as_deref().unwrap_or(&set.cedar);
    let r = AUTHORIZER.is_authorized_partial(&p.request, policies, &p.store.entities);
    r.decision() != Some(CedarDecision::Deny) && !r.definitely_errored().any(|id| forbid(set, id))
}

fn forbid(set: &PolicySet, id: &PolicyId) -> bool {
    set.meta.get(id).is_some_and(|m| m.effect == Effect::Forbid)
}

/// Filters list pages for one caller: the principal entity is built once, then each item is
/// checked with [`visible`]'s rule.
pub struct Lister<'a> {
    set: &'a PolicySet,
    subject: &'a Subject,
    prepared: Option<(&'static Names, PreparedSubject)>,
    protocol_version: &'a str,
    time: CallTime,
}

impl<'a> Lister<'a> {
    pub fn new(
        set: &'a PolicySet,
        subject: &'a Subject,
        protocol_version: &'a str,
        time: CallTime,
    ) -> Lister<'a> {
        let prepared = Names::get()
            .ok()
            .and_then(|names| Some((names, entities::subject(names, subject).ok()?)));
        Lister {
            set,
            subject,
            prepared,
            protocol_version,
            time,
        }
    }

    /// Whether an item whose use is `action` on `target` shows in a list.
    pub fn visible(&self, action: Action, target: &Target) -> bool {
        let Some((names, who)) = &self.prepared else {
            return false;
        };
        let req = Request {
            subject: self.subject,
            action,
            target,
            args: None,
            protocol_version: self.protocol_version,
            time: self.time,
        };
        visible_with(self.set, names, who, &req)
    }

    /// Keeps the items that are visible, in order. `target_of` says what each item is.
    pub fn filter<T>(
        &self,
        action: Action,
        items: impl IntoIterator<Item = T>,
        target_of: impl Fn(&T) -> Target,
    ) -> Vec<T> {
        items
            .into_iter()
            .filter(|item| self.visible(action, &target_of(item)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::entities::ContextKeys;
    use crate::model::{SubjectKind, ToolAttrs};

    /// The scope index leaves out only policies that cannot apply: deciding with the selected
    /// subset and with the whole set gives the same response, for every example set, subject,
    /// action and target tried.
    #[test]
    fn index_selection_is_exact() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies");
        let names = Names::get().unwrap();
        let targets = [
            Target::Tool(ToolAttrs::from_annotations(
                "demo",
                "demo__echo",
                None,
                Some(true),
            )),
            Target::Tool(ToolAttrs::from_annotations(
                "fs",
                "fs__write_file",
                None,
                None,
            )),
            Target::Tool(ToolAttrs::from_annotations(
                "db",
                "db__query",
                None,
                Some(true),
            )),
            Target::Resource {
                upstream: "fs".into(),
                uri: "file:///srv/home/alice/x".into(),
            },
            Target::Prompt {
                upstream: "demo".into(),
                name: "demo__summarize".into(),
            },
            Target::Upstream("fs".into()),
        ];
        let args = serde_json::json!({"path": "/srv/data/public/a", "readonly": true, "limit": 5});
        let mut compared = 0;
        for set_name in ["rbac", "abac", "office-hours"] {
            let set = PolicySet::load(&[root.join(set_name).join("*.cedar")]).unwrap();
            for roles in [
                vec![],
                vec!["admin"],
                vec!["dev", "viewer"],
                vec!["staff"],
                vec!["oncall"],
            ] {
                for kind in [SubjectKind::User, SubjectKind::Service] {
                    let subject = Subject {
                        id: "alice".into(),
                        kind,
                        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                        auth_method: "api_key".into(),
                        scopes: vec![],
                        client_ip: "127.0.0.1".parse().ok(),
                    };
                    let who = entities::subject(names, &subject).unwrap();
                    for target in &targets {
                        for action in Action::ALL {
                            let req = Request {
                                subject: &subject,
                                action,
                                target,
                                args: Some(&args),
                                protocol_version: "2026-07-28",
                                time: CallTime {
                                    hour: 10,
                                    weekday: 1,
                                },
                            };
                            let Ok(p) = entities::request(
                                names,
                                Some(&who),
                                &req,
                                Args::Known(req.args),
                                set.context,
                            ) else {
                                continue; // action and target that do not fit
                            };
                            let full =
                                AUTHORIZER.is_authorized(&p.request, &set.cedar, &p.store.entities);
                            // The context attributes no policy names change nothing.
                            let every = entities::request(
                                names,
                                Some(&who),
                                &req,
                                Args::Known(req.args),
                                ContextKeys::ALL,
                            )
                            .unwrap();
                            let with_all = AUTHORIZER.is_authorized(
                                &every.request,
                                &set.cedar,
                                &every.store.entities,
                            );
                            let what = format!("{set_name} {roles:?} {action} {target:?}");
                            assert_same_answer(&full, &with_all, &what);
                            let subset = candidates(&set, &p);
                            let part = AUTHORIZER.is_authorized(
                                &p.request,
                                subset.as_deref().unwrap_or(&set.cedar),
                                &p.store.entities,
                            );
                            assert_same_answer(&full, &part, &what);
                            compared += 1;
                        }
                    }
                }
            }
        }
        assert!(compared > 300, "{compared}");
    }

    /// Same verdict, same deciding policies, as many errors.
    fn assert_same_answer(a: &cedar_policy::Response, b: &cedar_policy::Response, what: &str) {
        assert_eq!(a.decision(), b.decision(), "{what}");
        assert_eq!(
            sorted_ids(a.diagnostics().reason()),
            sorted_ids(b.diagnostics().reason()),
            "{what}"
        );
        assert_eq!(
            a.diagnostics().errors().count(),
            b.diagnostics().errors().count(),
            "{what}"
        );
    }

    #[test]
    fn context_keys_are_the_named_ones() {
        let keys = |t: &str| ContextKeys::read_by([t]);
        let hours = keys("permit (principal, action, resource) when { context.hour < 9 };");
        assert_eq!(
            hours,
            keys("forbid (principal, action, resource) when { context has hour };")
        );
        assert_ne!(hours, ContextKeys::ALL);
        assert_ne!(
            hours,
            keys("permit (principal, action, resource) when { context.weekday > 5 };")
        );
        assert_eq!(
            keys(
                r#"permit (principal, action, resource) when { context["scopes"].contains("x") };"#
            ),
            keys("permit (principal, action, resource) when { context.scopes.isEmpty() };"),
        );
        assert_eq!(
            keys("permit (principal, action, resource);"),
            ContextKeys::default()
        );
        // Anything but an attribute access reads the whole record, as does a comment about it.
        for whole in [
            "forbid (principal, action, resource) when { context == {} };",
            "// the context decides\npermit (principal, action, resource);",
        ] {
            assert_eq!(keys(whole), ContextKeys::ALL, "{whole}");
        }
    }

    /// A policy that reads one context attribute sees it, and the unread ones are left out.
    #[test]
    fn a_reduced_context_still_decides() {
        let set = PolicySet::from_sources(vec![(
            "hours.cedar".into(),
            "@id(\"night\")\nforbid (principal, action, resource) when { context.hour < 6 };\n\
             @id(\"all\")\npermit (principal, action, resource);"
                .into(),
        )])
        .unwrap();
        assert_ne!(set.context, ContextKeys::ALL);
        let subject = Subject {
            id: "alice".into(),
            ..Subject::default()
        };
        let target = Target::Tool(ToolAttrs::from_annotations(
            "demo",
            "demo__echo",
            None,
            None,
        ));
        let at = |hour| Request {
            subject: &subject,
            action: Action::CallTool,
            target: &target,
            args: None,
            protocol_version: "2026-07-28",
            time: CallTime { hour, weekday: 3 },
        };
        assert_eq!(decide(&set, &at(3)).verdict, Verdict::Deny);
        assert_eq!(decide(&set, &at(3)).policy_ids, vec!["night".to_owned()]);
        assert_eq!(decide(&set, &at(10)).verdict, Verdict::Allow);
    }
}
