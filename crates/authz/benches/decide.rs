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

fn policies(n: usize) -> PolicySet {
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
    match PolicySet::from_sources(vec![(PathBuf::from("bench.cedar"), src)]) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    }
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
        upstream: "fs".into(),
        name: "fs__read_file".into(),
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

/// One item of a tools/list page (partial evaluation, arguments unknown).
#[divan::bench]
fn visible_100_policies(bencher: divan::Bencher<'_, '_>) {
    let set = policies(100);
    let lister = Lister::new(&set, &SUBJECT, "2026-07-28", TIME);
    bencher.bench_local(|| lister.visible(Action::CallTool, divan::black_box(&TOOL)));
}
