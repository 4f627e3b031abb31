//! Cost of one authorization decision (target: well under 50 µs with 100 policies).
//!
//! `cargo bench -p portcullis-authz --bench decide` prints median and spread per case. The
//! policies mix role permits, argument conditions and forbids; the request is a tool call with
//! arguments that several of them read, so evaluation and per-request entity construction
//! (principal with roles, tool with attributes, context with arguments) are both measured.

use std::path::PathBuf;
use std::sync::LazyLock;

use portcullis_authz::{
    Action, CallTime, Lister, PolicySet, Request, Subject, SubjectKind, Target, ToolAttrs, decide,
};
use serde_json::json;

fn main() {
    divan::main();
}

/// A realistic mix: policies spread over 20 roles, 50 tools and 10 upstreams, of which the
/// caller (roles dev and viewer) meets a few.
fn policies(n: usize) -> PolicySet {
    let mut src = String::from(
        "@id(\"dev-read-only\") permit (principal in Portcullis::Role::\"dev\", \
         action == Portcullis::Action::\"call_tool\", resource) when { resource.read_only };\n",
    );
    for i in 1..n {
        let role = ["dev", "viewer"]
            .get(i % 20)
            .map_or_else(|| format!("r{}", i % 20), |r| (*r).to_owned());
        let p = match i % 4 {
            0 => format!(
                "permit (principal in Portcullis::Role::\"{role}\", action == Portcullis::Action::\"call_tool\", \
                 resource == Portcullis::Tool::\"t{}__x\");",
                i % 50
            ),
            1 => format!(
                "permit (principal in Portcullis::Role::\"{role}\", action == Portcullis::Action::\"call_tool\", \
                 resource) when {{ context.args has path && context.args.path like \"/srv/{i}/*\" }};"
            ),
            2 => format!(
                "forbid (principal, action == Portcullis::Action::\"call_tool\", resource in Portcullis::Upstream::\"u{}\") \
                 when {{ context.args has limit && context.args.limit > {i} }};",
                i % 10
            ),
            _ => format!(
                "permit (principal in Portcullis::Role::\"{role}\", action == Portcullis::Action::\"read_resource\", \
                 resource) when {{ context.hour >= 9 && context.weekday <= {} }};",
                i % 7 + 1
            ),
        };
        src.push_str(&p);
        src.push('\n');
    }
    load(src)
}

fn load(src: String) -> PolicySet {
    match PolicySet::from_sources(vec![(PathBuf::from("bench.cedar"), src)]) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    }
}

/// A hard case for the scope index: about half of the policies apply to the caller.
fn policies_half_apply(n: usize) -> PolicySet {
    let mut src = String::from(
        "@id(\"dev-read-only\") permit (principal in Portcullis::Role::\"dev\", \
         action == Portcullis::Action::\"call_tool\", resource) when { resource.read_only };\n",
    );
    for i in 1..n {
        let p = match i % 4 {
            0 => format!(
                "permit (principal in Portcullis::Role::\"r{i}\", action == Portcullis::Action::\"call_tool\", \
                 resource == Portcullis::Tool::\"t{i}__x\");"
            ),
            1 => format!(
                "permit (principal in Portcullis::Role::\"dev\", action == Portcullis::Action::\"call_tool\", \
                 resource) when {{ context.args has path && context.args.path like \"/srv/{i}/*\" }};"
            ),
            2 => format!(
                "forbid (principal, action == Portcullis::Action::\"call_tool\", resource in Portcullis::Upstream::\"u{i}\") \
                 when {{ context.args has limit && context.args.limit > {i} }};"
            ),
            _ => format!(
                "permit (principal in Portcullis::Role::\"viewer\", action == Portcullis::Action::\"call_tool\", \
                 resource) when {{ resource.read_only && context.hour >= 9 && context.weekday <= {} }};",
                i % 7 + 1
            ),
        };
        src.push_str(&p);
        src.push('\n');
    }
    load(src)
}

static SUBJECT: LazyLock<Subject> = LazyLock::new(|| Subject {
    id: "alice".into(),
    kind: SubjectKind::User,
    roles: vec!["dev".into(), "viewer".into()],
    auth_method: "api_key".into(),
    scopes: vec!["mcp:tools".into()],
    client_ip: "10.1.2.3".parse().ok(),
});

static TOOL: LazyLock<Target> = LazyLock::new(|| {
    Target::Tool(ToolAttrs {
        upstream: "u3".into(),
        name: "t7__x".into(),
        read_only: true,
        destructive: false,
        open_world: false,
    })
});

static ARGS: LazyLock<serde_json::Value> = LazyLock::new(|| {
    json!({ "path": "/srv/data/reports/2026/q1.csv", "limit": 5, "encoding": "utf-8",
            "options": { "follow": false, "tags": ["a", "b"] } })
});

const TIME: CallTime = CallTime {
    hour: 10,
    weekday: 2,
};

fn request() -> Request<'static> {
    Request {
        subject: &SUBJECT,
        action: Action::CallTool,
        target: &TOOL,
        args: Some(&ARGS),
        protocol_version: "2026-07-28",
        time: TIME,
    }
}

fn bench_decide(bencher: divan::Bencher<'_, '_>, n: usize) {
    let set = policies(n);
    let req = request();
    assert!(decide(&set, &req).is_allow());
    bencher.bench_local(|| decide(divan::black_box(&set), divan::black_box(&req)));
}

#[divan::bench]
fn decide_10_policies(bencher: divan::Bencher<'_, '_>) {
    bench_decide(bencher, 10);
}

#[divan::bench]
fn decide_100_policies(bencher: divan::Bencher<'_, '_>) {
    bench_decide(bencher, 100);
}

#[divan::bench]
fn decide_1000_policies(bencher: divan::Bencher<'_, '_>) {
    bench_decide(bencher, 1000);
}

#[divan::bench]
fn decide_100_policies_half_apply(bencher: divan::Bencher<'_, '_>) {
    let set = policies_half_apply(100);
    let req = request();
    assert!(decide(&set, &req).is_allow());
    bencher.bench_local(|| decide(divan::black_box(&set), divan::black_box(&req)));
}

/// One item of a tools/list page (partial evaluation, arguments unknown).
#[divan::bench]
fn visible_100_policies(bencher: divan::Bencher<'_, '_>) {
    let set = policies(100);
    let lister = Lister::new(&set, &SUBJECT, "2026-07-28", TIME);
    bencher.bench_local(|| lister.visible(Action::CallTool, divan::black_box(&TOOL)));
}

/// The fixed cost: one policy, arguments and all.
#[divan::bench]
fn decide_1_policy(bencher: divan::Bencher<'_, '_>) {
    bench_decide(bencher, 1);
}

#[divan::bench]
fn decide_0_policies(bencher: divan::Bencher<'_, '_>) {
    let set = PolicySet::empty();
    let req = request();
    bencher.bench_local(|| decide(divan::black_box(&set), divan::black_box(&req)));
}

#[divan::bench]
fn piece_args_context(bencher: divan::Bencher<'_, '_>) {
    bencher.bench_local(|| {
        let a = portcullis_authz::args::args_record(Some(divan::black_box(&ARGS))).ok();
        cedar_policy::Context::from_pairs(a.map(|a| ("args".to_owned(), a))).ok()
    });
}

#[divan::bench]
fn piece_ip_context(bencher: divan::Bencher<'_, '_>) {
    bencher.bench_local(|| {
        cedar_policy::Context::from_pairs([(
            "ip".to_owned(),
            cedar_policy::RestrictedExpression::new_ip("10.1.2.3"),
        )])
        .ok()
    });
}
