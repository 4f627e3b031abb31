//! Table tests for `decide`: every rule of the decision function, with the deciding policy ids
//! and the public reason.

#![cfg(test)]

pub mod support;

use portcullis_authz::{Action, PolicySet, Target, Verdict, decide, reasons};
use serde_json::{Value, json};
use support::*;

const RBAC: &str = r#"
@id("admin-all")
permit (principal in Portcullis::Role::"admin", action, resource);

@id("viewer-ro")
permit (principal in Portcullis::Role::"viewer", action == Portcullis::Action::"call_tool", resource)
when { resource.read_only };

@id("dev-approve")
@approval("required")
permit (principal in Portcullis::Role::"dev", action == Portcullis::Action::"call_tool", resource)
when { resource.destructive };

@id("no-exec")
@reason("shell access is disabled")
forbid (principal, action == Portcullis::Action::"call_tool", resource == Portcullis::Tool::"sh__exec");

@id("write-public")
permit (principal in Portcullis::Role::"dev", action == Portcullis::Action::"call_tool", resource == Portcullis::Tool::"fs__write_file")
when { context.args has path && context.args.path like "/srv/data/public/*" };

@id("unguarded-forbid")
forbid (principal in Portcullis::Role::"strict", action == Portcullis::Action::"call_tool", resource == Portcullis::Tool::"db__query")
when { context.args.limit > 100 };

@id("unguarded-permit")
permit (principal in Portcullis::Role::"strict", action == Portcullis::Action::"call_tool", resource == Portcullis::Tool::"db__query")
when { context.args.limit <= 100 };
"#;

struct Row {
    about: &'static str,
    roles: &'static [&'static str],
    action: Action,
    target: Target,
    args: Option<Value>,
    verdict: Verdict,
    ids: &'static [&'static str],
    reason: &'static str,
}

#[test]
fn rbac_table() {
    let set = set(RBAC);
    let ro = tool("fs__read_file", true, false, false);
    let rw = tool("fs__write_file", false, true, false);
    let rows = vec![
        Row {
            about: "no role: default deny",
            roles: &[],
            action: Action::CallTool,
            target: ro.clone(),
            args: None,
            verdict: Verdict::Deny,
            ids: &[],
            reason: reasons::NO_PERMIT,
        },
        Row {
            about: "admin: anything",
            roles: &["admin"],
            action: Action::CallTool,
            target: rw.clone(),
            args: None,
            verdict: Verdict::Allow,
            ids: &["admin-all"],
            reason: reasons::PERMITTED,
        },
        Row {
            about: "viewer: read-only tool",
            roles: &["viewer"],
            action: Action::CallTool,
            target: ro.clone(),
            args: None,
            verdict: Verdict::Allow,
            ids: &["viewer-ro"],
            reason: reasons::PERMITTED,
        },
        Row {
            about: "viewer: read-write tool",
            roles: &["viewer"],
            action: Action::CallTool,
            target: rw.clone(),
            args: None,
            verdict: Verdict::Deny,
            ids: &[],
            reason: reasons::NO_PERMIT,
        },
        Row {
            about: "viewer: other actions are not call_tool",
            roles: &["viewer"],
            action: Action::ListTools,
            target: Target::Upstream("fs".into()),
            args: None,
            verdict: Verdict::Deny,
            ids: &[],
            reason: reasons::NO_PERMIT,
        },
        Row {
            about: "dev: destructive tool needs approval",
            roles: &["dev"],
            action: Action::CallTool,
            target: rw.clone(),
            args: None,
            verdict: Verdict::ApprovalRequired,
            ids: &["dev-approve"],
            reason: reasons::APPROVAL,
        },
        Row {
            about: "dev + admin: a satisfied approval permit still asks for approval",
            roles: &["dev", "admin"],
            action: Action::CallTool,
            target: rw.clone(),
            args: None,
            verdict: Verdict::ApprovalRequired,
            ids: &["admin-all", "dev-approve"],
            reason: reasons::APPROVAL,
        },
        Row {
            about: "dev: write in the public area (argument rule) also needs approval",
            roles: &["dev"],
            action: Action::CallTool,
            target: rw.clone(),
            args: Some(json!({"path": "/srv/data/public/a.txt"})),
            verdict: Verdict::ApprovalRequired,
            ids: &["dev-approve", "write-public"],
            reason: reasons::APPROVAL,
        },
        Row {
            about: "forbid beats admin, with its @reason",
            roles: &["admin"],
            action: Action::CallTool,
            target: tool("sh__exec", false, true, true),
            args: None,
            verdict: Verdict::Deny,
            ids: &["no-exec"],
            reason: "shell access is disabled",
        },
        Row {
            about: "a forbid that cannot be evaluated denies, even for admin",
            roles: &["admin", "strict"],
            action: Action::CallTool,
            target: tool("db__query", true, false, false),
            args: Some(json!({"sql": "select 1"})),
            verdict: Verdict::Deny,
            ids: &["unguarded-forbid"],
            reason: reasons::EVAL_ERROR,
        },
        Row {
            about: "a forbid of the wrong type denies",
            roles: &["admin", "strict"],
            action: Action::CallTool,
            target: tool("db__query", true, false, false),
            args: Some(json!({"limit": "many"})),
            verdict: Verdict::Deny,
            ids: &["unguarded-forbid"],
            reason: reasons::EVAL_ERROR,
        },
        Row {
            about: "strict: in range",
            roles: &["strict"],
            action: Action::CallTool,
            target: tool("db__query", true, false, false),
            args: Some(json!({"limit": 100})),
            verdict: Verdict::Allow,
            ids: &["unguarded-permit"],
            reason: reasons::PERMITTED,
        },
        Row {
            about: "strict: over the limit",
            roles: &["strict"],
            action: Action::CallTool,
            target: tool("db__query", true, false, false),
            args: Some(json!({"limit": 101})),
            verdict: Verdict::Deny,
            ids: &["unguarded-forbid"],
            reason: reasons::FORBIDDEN,
        },
        Row {
            about: "action and target that do not fit are refused",
            roles: &["admin"],
            action: Action::ListTools,
            target: ro.clone(),
            args: None,
            verdict: Verdict::Deny,
            ids: &[],
            reason: reasons::BAD_REQUEST,
        },
        Row {
            about: "arguments that are not an object are refused",
            roles: &["admin"],
            action: Action::CallTool,
            target: ro.clone(),
            args: Some(json!(["x"])),
            verdict: Verdict::Deny,
            ids: &[],
            reason: reasons::BAD_REQUEST,
        },
    ];
    for row in rows {
        let subject = user("alice", row.roles);
        let got = decide(
            &set,
            &request(&subject, row.action, &row.target, row.args.as_ref()),
        );
        assert_eq!(got.verdict, row.verdict, "{}: {got:?}", row.about);
        assert_eq!(got.policy_ids, row.ids, "{}", row.about);
        assert_eq!(got.reason, row.reason, "{}", row.about);
    }
}

#[test]
fn empty_set_denies_everything_and_says_so() {
    let subject = user("root", &["admin"]);
    let t = tool("fs__read_file", true, false, false);
    let d = decide(
        &PolicySet::empty(),
        &request(&subject, Action::CallTool, &t, None),
    );
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(d.policy_ids.is_empty());
    assert_eq!(d.reason, reasons::NO_PERMIT);
    assert!(
        d.diagnostics.iter().any(|m| m.contains("no policies")),
        "{d:?}"
    );
}

#[test]
fn evaluation_errors_are_reported_for_the_operator() {
    let set = set(RBAC);
    let subject = user("alice", &["strict"]);
    let t = tool("db__query", true, false, false);
    let args = json!({});
    let d = decide(&set, &request(&subject, Action::CallTool, &t, Some(&args)));
    assert_eq!(d.verdict, Verdict::Deny);
    assert!(
        d.diagnostics
            .iter()
            .any(|m| m.contains("unguarded-forbid") && m.contains("limit")),
        "{d:?}"
    );
    // The public reason names no policy and no attribute.
    assert!(!d.reason.contains("unguarded") && !d.reason.contains("limit"));
}

#[test]
fn context_and_principal_attributes() {
    let set = set(r#"
@id("hours") permit (principal, action == Portcullis::Action::"get_prompt", resource)
when { context.weekday <= 5 && context.hour >= 9 && context.hour < 17 };
@id("net") permit (principal, action == Portcullis::Action::"read_resource", resource)
when { context has client_ip && context.client_ip.isInRange(ip("10.0.0.0/8")) };
@id("scope") permit (principal, action == Portcullis::Action::"subscribe", resource)
when { context.scopes.contains("mcp:subscribe") && principal.scopes.contains("mcp:subscribe") };
@id("svc") permit (principal is Portcullis::Service, action == Portcullis::Action::"list_tools", resource in Portcullis::Upstream::"ci")
when { principal.auth_method == "mtls" && context.auth_method == "mtls" && context.protocol_version == "2026-07-28" };
@id("home") permit (principal, action == Portcullis::Action::"complete", resource)
when { resource is Portcullis::Resource && resource.segments.contains({ parent: "file:///srv/home/", name: principal.id }) };
"#);
    let prompt = Target::Prompt {
        upstream: "p".into(),
        name: "p__review".into(),
    };
    let res = resource("fs", "file:///srv/x");
    let mut alice = user("alice", &[]);
    let at = |hour, weekday| portcullis_authz::CallTime { hour, weekday };
    let verdict = |s: &portcullis_authz::Subject, a, t: &Target, time| {
        let mut r = request(s, a, t, None);
        r.time = time;
        decide(&set, &r).verdict
    };
    assert_eq!(
        verdict(&alice, Action::GetPrompt, &prompt, at(9, 1)),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&alice, Action::GetPrompt, &prompt, at(17, 1)),
        Verdict::Deny
    );
    assert_eq!(
        verdict(&alice, Action::GetPrompt, &prompt, at(10, 6)),
        Verdict::Deny
    );
    assert_eq!(
        verdict(&alice, Action::ReadResource, &res, MON_10),
        Verdict::Deny
    );
    alice.client_ip = Some("10.2.3.4".parse().unwrap());
    assert_eq!(
        verdict(&alice, Action::ReadResource, &res, MON_10),
        Verdict::Allow
    );
    alice.client_ip = Some("192.168.1.1".parse().unwrap());
    assert_eq!(
        verdict(&alice, Action::ReadResource, &res, MON_10),
        Verdict::Deny
    );
    alice.client_ip = Some("::1".parse().unwrap());
    assert_eq!(
        verdict(&alice, Action::ReadResource, &res, MON_10),
        Verdict::Deny
    );
    assert_eq!(
        verdict(&alice, Action::Subscribe, &res, MON_10),
        Verdict::Deny
    );
    alice.scopes = vec!["mcp:subscribe".into()];
    assert_eq!(
        verdict(&alice, Action::Subscribe, &res, MON_10),
        Verdict::Allow
    );

    let mut bot = user("ci-bot", &[]);
    bot.kind = portcullis_authz::SubjectKind::Service;
    bot.auth_method = "mtls".into();
    let ci = Target::Upstream("ci".into());
    let other = Target::Upstream("fs".into());
    assert_eq!(
        verdict(&bot, Action::ListTools, &ci, MON_10),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&bot, Action::ListTools, &other, MON_10),
        Verdict::Deny
    );
    let mut person = user("ci-bot", &[]);
    person.auth_method = "mtls".into();
    assert_eq!(
        verdict(&person, Action::ListTools, &ci, MON_10),
        Verdict::Deny
    );

    let own = resource("fs", "file:///srv/home/alice/{path}");
    let theirs = resource("fs", "file:///srv/home/bob/{path}");
    let sneaky = resource("fs", "file:///srv/home/alice/../bob/x");
    let deeper = resource("fs", "file:///srv/home/x/alice/y");
    assert_eq!(
        verdict(&alice, Action::Complete, &own, MON_10),
        Verdict::Allow
    );
    for t in [&theirs, &sneaky, &deeper] {
        assert_eq!(
            verdict(&alice, Action::Complete, t, MON_10),
            Verdict::Deny,
            "{t:?}"
        );
    }
}

#[test]
fn ids_default_to_file_and_index() {
    let set = PolicySet::from_sources(vec![(
        "dir/base.cedar".into(),
        r#"
permit (principal in Portcullis::Role::"a", action, resource);
permit (principal in Portcullis::Role::"b", action, resource);
@id("named") permit (principal in Portcullis::Role::"c", action, resource);
permit (principal in Portcullis::Role::"d", action, resource);
"#
        .into(),
    )])
    .unwrap();
    assert_eq!(
        set.ids(),
        ["base.cedar:0", "base.cedar:1", "base.cedar:3", "named"]
    );
    let t = tool("x__y", true, false, false);
    for (role, id) in [
        ("a", "base.cedar:0"),
        ("b", "base.cedar:1"),
        ("d", "base.cedar:3"),
    ] {
        let s = user("u", &[role]);
        let d = decide(&set, &request(&s, Action::CallTool, &t, None));
        assert_eq!(d.policy_ids, [id], "{role}");
    }
}
