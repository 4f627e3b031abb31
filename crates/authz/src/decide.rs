//! The decision functions: pure, over a [`PolicySet`] and a [`Request`].
//!
//! - [`decide`]: allow, deny or approval-required, with the deciding policy ids and reasons.
//! - [`visible`] / [`Lister`]: whether an item shows in a list (its use is not definitely
//!   denied whatever the arguments).

use std::sync::{Arc, LazyLock};

use cedar_policy::{Decision as CedarDecision, Effect, EntityUid, PolicyId};

use crate::entities::{self, Args, Parties, PreparedSubject, Store};
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
    decide_with(set, req, Reuse::Yes)
}

/// Whether [`respond`] may use (and keep) a response that does not depend on the context.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reuse {
    Yes,
    #[cfg(test)]
    No,
}

fn decide_with(set: &PolicySet, req: &Request<'_>, reuse: Reuse) -> Decision {
    let parties = Names::get()
        .map_err(str::to_owned)
        .and_then(|names| entities::parties(names, None, req))
        .and_then(|parties| entities::check_context(req, set.context).map(|()| parties));
    let parties = match parties {
        Ok(p) => p,
        Err(e) => return Decision::deny(Vec::new(), reasons::BAD_REQUEST, vec![e]),
    };
    let response = match respond(set, req, &parties, reuse) {
        Ok(r) => r,
        Err(e) => return Decision::deny(Vec::new(), reasons::BAD_REQUEST, vec![e]),
    };
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

/// Cedar's response to `req` under the candidates of `set` for its parties `p`.
///
/// The first time a (principal, target) pair meets an action under a policy set, the
/// policies are evaluated with the context unknown: when every one of them comes out plainly
/// true or false without an error (the common case: conditions on the target or the caller
/// that settle before they reach `context`), that response holds whatever the context, and
/// later calls use it instead of evaluating again. Otherwise (some policy's outcome waits on
/// the context, or fails) every call is evaluated in full. This is exact, not a
/// heuristic: Cedar's own evaluation is this partial evaluation with the context known, and
/// a part of a condition that reads an unknown context stays unevaluated (a residual) rather
/// than being guessed.
fn respond(
    set: &PolicySet,
    req: &Request<'_>,
    p: &Parties,
    reuse: Reuse,
) -> Result<Arc<cedar_policy::Response>, String> {
    // `Some(None)`: the response depends on the context, evaluate every call.
    let remembered = match reuse {
        Reuse::Yes => p.store.remembered(set.generation, &p.action),
        #[cfg(test)]
        Reuse::No => Some(None),
    };
    if let Some(Some(kept)) = remembered {
        return Ok(kept);
    }
    // Neither the candidates nor the call's context are needed for a kept response.
    let subset = candidates(set, &p.action, &p.store);
    let policies = subset.as_deref().unwrap_or(&set.cedar);
    let evaluate = || {
        let request = p.cedar_request(req, Args::Known(req.args), set.context)?;
        Ok(Arc::new(AUTHORIZER.is_authorized(
            &request,
            policies,
            &p.store.entities,
        )))
    };
    if remembered.is_some() {
        return evaluate();
    }
    let without_context = cedar_policy::Request::builder()
        .principal(p.store.principal.clone())
        .action(p.action.clone())
        .resource(p.store.resource.clone())
        .build();
    let partial = AUTHORIZER.is_authorized_partial(&without_context, policies, &p.store.entities);
    let settled = partial.decision().is_some()
        && partial.nontrivial_residuals().next().is_none()
        && partial.definitely_errored().next().is_none();
    let response = settled.then(|| Arc::new(partial.concretize()));
    p.store
        .remember(set.generation, &p.action, response.clone());
    response.map_or_else(evaluate, Ok)
}

/// The policies whose scope can match (see [`crate::index`]); `None`: all of them.
fn candidates(
    set: &PolicySet,
    action: &EntityUid,
    store: &Store,
) -> Option<std::sync::Arc<cedar_policy::PolicySet>> {
    set.index.select(&Facts {
        principal: &store.principal,
        roles: &store.roles,
        action,
        resource: &store.resource,
        upstream: store.upstream.as_ref(),
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
                let subset = candidates(set, &p.action, &p.store);
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
    let subset = candidates(set, &p.action, &p.store);
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

    /// Condition fragments for generated policies: on the target, the caller and the context;
    /// `limit > 100` fails on calls whose arguments have no `limit`.
    const FRAGMENTS: [&str; 9] = [
        "resource.read_only",
        "resource.destructive",
        "context.hour < 6",
        r#"context.args has path && context.args.path like "/etc/*""#,
        "context.args.limit > 100",
        r#"principal in Portcullis::Role::"dev""#,
        r#"resource.upstream == "fs""#,
        "context.weekday == 1",
        "!resource.open_world",
    ];

    /// One policy's text after its id: effect, scope and a condition of up to three fragments
    /// joined by `&&` or `||`, in any order.
    fn policy_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        (
            any::<bool>(),
            0usize..3,
            0usize..2,
            proptest::collection::vec(0..FRAGMENTS.len(), 0..4),
            any::<bool>(),
        )
            .prop_map(|(permit, principal, resource, parts, and)| {
                let effect = if permit { "permit" } else { "forbid" };
                let principal = [
                    "principal",
                    r#"principal in Portcullis::Role::"dev""#,
                    r#"principal in Portcullis::Role::"admin""#,
                ][principal];
                let resource = ["resource", r#"resource == Portcullis::Tool::"fs__read""#][resource];
                let mut text = format!(
                    r#"{effect} ({principal}, action == Portcullis::Action::"call_tool", {resource})"#
                );
                if !parts.is_empty() {
                    let joined: Vec<String> =
                        parts.iter().map(|&i| format!("({})", FRAGMENTS[i])).collect();
                    let joiner = if and { " && " } else { " || " };
                    text.push_str(&format!(" when {{ {} }}", joined.join(joiner)));
                }
                text.push(';');
                text
            })
    }

    fn call_args() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        proptest::prop_oneof![
            proptest::strategy::Just(serde_json::json!({})),
            proptest::strategy::Just(serde_json::json!({"path": "/etc/passwd"})),
            proptest::strategy::Just(serde_json::json!({"path": "/srv/a"})),
            proptest::strategy::Just(serde_json::json!({"limit": 5})),
            proptest::strategy::Just(serde_json::json!({"limit": 500})),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// A response kept because it did not depend on the context is what evaluating each
        /// call gives: for generated policy sets and a run of calls by one caller to one tool
        /// with different contexts (hour, weekday, arguments), deciding with reuse equals
        /// deciding with every call evaluated, verdict, policy ids, reason and diagnostics.
        #[test]
        fn a_kept_response_is_what_evaluating_the_call_gives(
            texts in proptest::collection::vec(policy_text(), 1..6),
            roles in proptest::sample::subsequence(vec!["dev", "admin"], 0..=2),
            tool in (proptest::prelude::any::<bool>(), proptest::prelude::any::<bool>(), proptest::prelude::any::<bool>(), 0usize..2),
            calls in proptest::collection::vec((0u8..24, 1u8..8, call_args()), 1..6),
        ) {
            let source: Vec<String> = texts
                .iter()
                .enumerate()
                .map(|(i, t)| format!("@id(\"p{i}\")\n{t}"))
                .collect();
            let set = PolicySet::from_sources(vec![(
                std::path::PathBuf::from("gen.cedar"),
                source.join("\n\n"),
            )])
            .unwrap();
            let subject = Subject {
                // The same caller in every case: the entity store (and what it keeps) is
                // shared across the generated sets, as across policy reloads.
                id: "u".into(),
                kind: SubjectKind::User,
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                auth_method: "api_key".into(),
                scopes: vec![],
                client_ip: None,
            };
            let (read_only, destructive, open_world, name) = tool;
            let name = ["fs__read", "db__query"][name];
            let target = Target::Tool(ToolAttrs {
                upstream: name.split("__").next().unwrap_or("x").to_owned(),
                name: name.to_owned(),
                read_only,
                destructive,
                open_world,
            });
            for (hour, weekday, args) in &calls {
                let req = Request {
                    subject: &subject,
                    action: Action::CallTool,
                    target: &target,
                    args: Some(args),
                    protocol_version: "2026-07-28",
                    time: CallTime { hour: *hour, weekday: *weekday },
                };
                let reused = decide_with(&set, &req, Reuse::Yes);
                let evaluated = decide_with(&set, &req, Reuse::No);
                proptest::prop_assert_eq!(reused.verdict, evaluated.verdict, "{}", source.join("\n"));
                proptest::prop_assert_eq!(&reused.policy_ids, &evaluated.policy_ids);
                proptest::prop_assert_eq!(&reused.reason, &evaluated.reason);
                let mut a = reused.diagnostics.clone();
                let mut b = evaluated.diagnostics.clone();
                a.sort();
                b.sort();
                proptest::prop_assert_eq!(a, b);
            }
        }
    }

    /// A user with the role `dev`, and a read-only tool of the upstream `fs`.
    fn dev_and_read_only_tool(id: &str, tool: &str) -> (Subject, Target) {
        let subject = Subject {
            id: id.into(),
            kind: SubjectKind::User,
            roles: vec!["dev".into()],
            auth_method: "api_key".into(),
            scopes: vec![],
            client_ip: None,
        };
        let target = Target::Tool(ToolAttrs {
            upstream: "fs".into(),
            name: tool.into(),
            read_only: true,
            destructive: false,
            open_world: false,
        });
        (subject, target)
    }

    /// A response is kept only when no policy's outcome waits on the context.
    #[test]
    fn a_response_is_kept_only_when_the_context_cannot_change_it() {
        let names = Names::get().unwrap();
        let (subject, target) = dev_and_read_only_tool("keep-test", "fs__read");
        let req = Request {
            subject: &subject,
            action: Action::CallTool,
            target: &target,
            args: None,
            protocol_version: "2026-07-28",
            time: CallTime {
                hour: 3,
                weekday: 1,
            },
        };
        for (policy, kept) in [
            (
                r#"permit (principal, action == Portcullis::Action::"call_tool", resource) when { resource.read_only };"#,
                true,
            ),
            // Settled before the context is read.
            (
                r#"forbid (principal, action == Portcullis::Action::"call_tool", resource) when { resource.destructive && context.hour < 6 };"#,
                true,
            ),
            // Reads the context first: waits on it.
            (
                r#"forbid (principal, action == Portcullis::Action::"call_tool", resource) when { context.hour < 6 && resource.destructive };"#,
                false,
            ),
            (
                r#"permit (principal, action == Portcullis::Action::"call_tool", resource) when { context.args.limit > 1 };"#,
                false,
            ),
        ] {
            let set = PolicySet::from_sources(vec![(
                std::path::PathBuf::from("k.cedar"),
                format!("@id(\"k\")\n{policy}"),
            )])
            .unwrap();
            let _ = decide(&set, &req);
            let p = entities::request(names, None, &req, Args::Known(None), set.context).unwrap();
            let remembered = p.store.remembered(set.generation, &p.action);
            assert_eq!(
                remembered.as_ref().map(Option::is_some),
                Some(kept),
                "{policy}"
            );
        }
    }

    /// Arguments that are not an object are refused when a policy can read them, also once a
    /// response that never reads them is kept (the context is not built for a kept response).
    #[test]
    fn arguments_that_are_not_an_object_are_refused_with_a_kept_response() {
        let (subject, target) = dev_and_read_only_tool("keep-args", "fs__list");
        let call = |args| Request {
            subject: &subject,
            action: Action::CallTool,
            target: &target,
            args,
            protocol_version: "2026-07-28",
            time: CallTime {
                hour: 3,
                weekday: 1,
            },
        };
        let set = PolicySet::from_sources(vec![(
            std::path::PathBuf::from("k.cedar"),
            r#"@id("k")
permit (principal, action == Portcullis::Action::"call_tool", resource)
when { resource.read_only || context.args.limit > 1 };"#
                .into(),
        )])
        .unwrap();
        let object = serde_json::json!({"limit": 0});
        let array = serde_json::json!([1]);
        for _ in 0..2 {
            assert_eq!(decide(&set, &call(Some(&object))).verdict, Verdict::Allow);
            let refused = decide(&set, &call(Some(&array)));
            assert_eq!(refused.verdict, Verdict::Deny);
            assert_eq!(refused.reason, reasons::BAD_REQUEST);
            assert!(
                refused.diagnostics.iter().any(|d| d.contains("an array")),
                "{:?}",
                refused.diagnostics
            );
        }
        let p = entities::parties(Names::get().unwrap(), None, &call(None)).unwrap();
        assert!(matches!(
            p.store.remembered(set.generation, &p.action),
            Some(Some(_))
        ));
    }

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
                            let subset = candidates(&set, &p.action, &p.store);
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
