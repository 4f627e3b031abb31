//! List visibility (DESIGN §3.4): an item is listed unless its use is definitely denied for
//! this principal whatever the arguments.

#![cfg(test)]

pub mod support;

use std::path::Path;
use std::sync::LazyLock;

use portcullis_authz::{Action, Lister, PolicySet, Target, Verdict, decide, visible};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::*;

const SET: &str = r#"
@id("dev-write-public")
permit (principal in Portcullis::Role::"dev", action == Portcullis::Action::"call_tool", resource == Portcullis::Tool::"fs__write_file")
when { context.args has path && context.args.path like "/srv/data/public/*" };

@id("dev-read")
permit (principal in Portcullis::Role::"dev", action == Portcullis::Action::"call_tool", resource)
when { resource.read_only };

@id("no-exec")
forbid (principal, action == Portcullis::Action::"call_tool", resource == Portcullis::Tool::"sh__exec");

@id("exec-for-admin")
permit (principal in Portcullis::Role::"admin", action == Portcullis::Action::"call_tool", resource);

@id("no-big-queries")
forbid (principal, action == Portcullis::Action::"call_tool", resource == Portcullis::Tool::"db__query")
when { context.args has limit && context.args.limit > 100 };

@id("overflowing")
forbid (principal in Portcullis::Role::"local", action == Portcullis::Action::"call_tool", resource)
when { context.hour + 9223372036854775800 > 0 };

@id("own-home")
permit (principal, action == Portcullis::Action::"read_resource", resource)
when { resource.segments.contains({ parent: "file:///srv/home/", name: principal.id }) };
"#;

fn shown(set: &PolicySet, roles: &[&str], action: Action, target: &Target) -> bool {
    let s = user("alice", roles);
    visible(set, &request(&s, action, target, None))
}

#[test]
fn visibility_table() {
    let set = set(SET);
    let write = tool("fs__write_file", false, true, false);
    let read = tool("fs__read_file", true, false, false);
    let exec = tool("sh__exec", false, true, true);
    let query = tool("db__query", false, false, false);
    let rows: Vec<(&str, &[&str], Action, &Target, bool)> = vec![
        (
            "argument-dependent permit keeps the tool listed",
            &["dev"],
            Action::CallTool,
            &write,
            true,
        ),
        ("plain permit", &["dev"], Action::CallTool, &read, true),
        (
            "no permit at all hides it",
            &[],
            Action::CallTool,
            &read,
            false,
        ),
        (
            "unconditional forbid hides it even for admin",
            &["admin"],
            Action::CallTool,
            &exec,
            false,
        ),
        (
            "argument-dependent forbid keeps it",
            &["admin"],
            Action::CallTool,
            &query,
            true,
        ),
        // The forbid overflows at 10:00 whatever the arguments, so decide would always deny
        // (a failing forbid denies): hidden.
        (
            "forbid failing whatever the arguments hides it",
            &["admin", "local"],
            Action::CallTool,
            &read,
            false,
        ),
    ];
    for (about, roles, action, target, want) in rows {
        assert_eq!(shown(&set, roles, action, target), want, "{about}");
    }
    let own = resource("fs", "file:///srv/home/alice/notes.txt");
    let other = resource("fs", "file:///srv/home/bob/notes.txt");
    assert!(shown(&set, &[], Action::ReadResource, &own));
    assert!(!shown(&set, &[], Action::ReadResource, &other));
}

#[test]
fn without_argument_rules_the_concrete_answer_is_used() {
    // No policy mentions args: the fast path (one concrete evaluation) must agree.
    let set = set(r#"
permit (principal in Portcullis::Role::"viewer", action == Portcullis::Action::"call_tool", resource) when { resource.read_only };
forbid (principal, action == Portcullis::Action::"call_tool", resource == Portcullis::Tool::"fs__secret");
forbid (principal in Portcullis::Role::"local", action == Portcullis::Action::"call_tool", resource) when { context.hour + 9223372036854775800 > 0 };
"#);
    assert!(shown(
        &set,
        &["viewer"],
        Action::CallTool,
        &tool("fs__read_file", true, false, false)
    ));
    assert!(!shown(
        &set,
        &["viewer"],
        Action::CallTool,
        &tool("fs__write_file", false, true, false)
    ));
    assert!(!shown(
        &set,
        &["viewer"],
        Action::CallTool,
        &tool("fs__secret", true, false, false)
    ));
    assert!(!shown(
        &set,
        &["viewer", "local"],
        Action::CallTool,
        &tool("fs__read_file", true, false, false)
    ));
}

#[test]
fn lister_filters_in_order() {
    let set = set(SET);
    let dev = user("alice", &["dev"]);
    let lister = Lister::new(&set, &dev, "2026-07-28", MON_10);
    let items = vec![
        ("fs__read_file", true),
        ("fs__write_file", false),
        ("sh__exec", false),
        ("fs__list", true),
        ("fs__delete", false),
    ];
    let kept = lister.filter(Action::CallTool, items, |(name, ro)| {
        tool(name, *ro, !ro, false)
    });
    let names: Vec<&str> = kept.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["fs__read_file", "fs__write_file", "fs__list"]);
}

fn example(name: &str) -> &'static PolicySet {
    static SETS: LazyLock<Vec<(&str, PolicySet)>> = LazyLock::new(|| {
        ["rbac", "abac", "office-hours"]
            .into_iter()
            .map(|n| {
                let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../examples/policies")
                    .join(n);
                (n, PolicySet::load(&[dir.join("*.cedar")]).unwrap())
            })
            .collect()
    });
    &SETS.iter().find(|(n, _)| *n == name).unwrap().1
}

fn arg_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({})),
        Just(json!({"path": "/srv/data/public/a"})),
        Just(json!({"path": "/srv/data/x"})),
        Just(json!({"path": "/srv/data/../etc"})),
        Just(json!({"path": 3})),
        Just(json!({"readonly": true, "limit": 10})),
        Just(json!({"readonly": true, "limit": 1000})),
        Just(json!({"readonly": "yes"})),
        Just(json!({"limit": 5.5})),
    ]
}

proptest! {
    /// Soundness: whenever some arguments make a call allowed (or approvable), the tool is
    /// listed. (Listing more than is callable is allowed; hiding a callable tool is not.)
    #[test]
    fn a_callable_tool_is_always_listed(
        set_name in prop::sample::select(vec!["rbac", "abac", "office-hours"]),
        roles in prop::sample::subsequence(vec!["admin", "dev", "viewer", "staff", "oncall"], 0..3),
        tool_name in prop::sample::select(vec!["fs__read_file", "fs__write_file", "db__query", "demo__fetch_url"]),
        hints in (any::<bool>(), any::<bool>(), any::<bool>()),
        args in arg_value(),
        hour in 0u8..24,
        weekday in 1u8..8,
        ip in prop::sample::select(vec![None, Some("127.0.0.1"), Some("10.1.1.1"), Some("203.0.113.5")]),
    ) {
        let set = example(set_name);
        let mut s = user("alice", &roles);
        s.client_ip = ip.map(|i| i.parse().unwrap());
        let t = tool(tool_name, hints.0, hints.1, hints.2);
        let mut r = request(&s, Action::CallTool, &t, Some(&args));
        r.time = portcullis_authz::CallTime { hour, weekday };
        let d = decide(set, &r);
        if d.verdict != Verdict::Deny {
            prop_assert!(visible(set, &r), "{set_name} {roles:?} {t:?} {args} allowed but hidden");
        }
    }
}
