//! `policy test`: one decision against the configured policies, offline (no upstream is
//! contacted; tool hints come from `--annotations` and the config's `[[upstream.tool]]
//! read_only`).
//!
//! Output (stdout), one `key: value` per line:
//! `decision: allow|deny`, then `approval: required` when a permit asks for a person's approval
//! (the decision is still `allow`: the policy permits it once approved), `policies: ID, ID`
//! (empty for the default deny) and `reason: …`. Evaluation notes go to stderr.
//! Exit 0 allow (approval included), 1 deny, 2 bad config, policies or flags.

use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use portcullis_authz::jiff;
use portcullis_authz::{
    Action, CallTime, PolicySet, Request, Subject, SubjectKind, ToolOverrides, Verdict, decide,
    offline,
};

use crate::run::EXIT_BAD_CONFIG;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Decide one request against the configured policies and print the deciding policies.
    /// Exit 0 allow, 1 deny, 2 bad configuration or policies.
    Test(Box<TestArgs>),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    User,
    Service,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// Principal id.
    #[arg(long)]
    principal: String,
    /// A role the principal holds (repeatable).
    #[arg(long = "role")]
    roles: Vec<String>,
    #[arg(long, value_enum, default_value_t = Kind::User)]
    kind: Kind,
    /// MCP method: tools/call, resources/read, resources/subscribe, prompts/get,
    /// completion/complete, tools/list, resources/list, resources/templates/list, prompts/list.
    #[arg(long)]
    method: String,
    /// Exposed tool or prompt name (fs__read_file) or resource URI, as a client sends it.
    #[arg(long)]
    name: Option<String>,
    /// The call's arguments as a JSON object.
    #[arg(long)]
    args: Option<String>,
    /// A token scope (repeatable).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// The upstream (needed for list methods, or when names have no prefix).
    #[arg(long)]
    upstream: Option<String>,
    /// Time of the call (RFC 3339); default now. Policies see its hour and weekday in UTC.
    #[arg(long)]
    at: Option<String>,
    /// The tool's MCP annotations as the server reports them (JSON), e.g. '{"readOnlyHint":true}'.
    #[arg(long)]
    annotations: Option<String>,
    #[arg(long, default_value = "api_key")]
    auth_method: String,
    #[arg(long)]
    client_ip: Option<IpAddr>,
    #[arg(long, default_value = "2026-07-28")]
    protocol_version: String,
}

pub fn dispatch(config: &Path, command: PolicyCommand) -> ExitCode {
    match command {
        PolicyCommand::Test(args) => test(config, &args),
    }
}

fn bad(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_BAD_CONFIG)
}

fn json_flag(flag: &str, text: Option<&str>) -> Result<Option<serde_json::Value>, ExitCode> {
    text.map(serde_json::from_str)
        .transpose()
        .map_err(|e| bad(format!("--{flag} is not valid JSON: {e}")))
}

fn test(config_path: &Path, a: &TestArgs) -> ExitCode {
    let config = match crate::run::load(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let set = match PolicySet::load(&config.authz.policies) {
        Ok(set) => set,
        Err(errors) => {
            eprintln!("{errors}");
            return bad(format!("policies invalid: {} problem(s)", errors.len()));
        }
    };
    let Some(action) = Action::from_method(&a.method) else {
        return bad(format!("{} is not a method policies decide", a.method));
    };
    let (args, annotations) = match (
        json_flag("args", a.args.as_deref()),
        json_flag("annotations", a.annotations.as_deref()),
    ) {
        (Ok(args), Ok(annotations)) => (args, annotations),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let at = match a
        .at
        .as_deref()
        .map(str::parse::<jiff::Timestamp>)
        .transpose()
    {
        Ok(at) => at.unwrap_or_else(jiff::Timestamp::now),
        Err(e) => return bad(format!("--at is not an RFC 3339 time: {e}")),
    };
    let overrides = ToolOverrides::from_config(&config);
    let target = match offline::target(
        &config,
        &overrides,
        action,
        a.name.as_deref(),
        a.upstream.as_deref(),
        annotations.as_ref(),
    ) {
        Ok(t) => t,
        Err(e) => return bad(e),
    };
    let subject = Subject {
        id: a.principal.clone(),
        kind: match a.kind {
            Kind::User => SubjectKind::User,
            Kind::Service => SubjectKind::Service,
        },
        roles: a.roles.clone(),
        auth_method: a.auth_method.clone(),
        scopes: a.scopes.clone(),
        client_ip: a.client_ip,
    };
    let decision = decide(
        &set,
        &Request {
            subject: &subject,
            action,
            target: &target,
            args: args.as_ref(),
            protocol_version: &a.protocol_version,
            time: CallTime::at(at, &jiff::tz::TimeZone::UTC),
        },
    );
    for note in &decision.diagnostics {
        eprintln!("note: {note}");
    }
    let allowed = decision.verdict != Verdict::Deny;
    println!("decision: {}", if allowed { "allow" } else { "deny" });
    if decision.verdict == Verdict::ApprovalRequired {
        println!("approval: required");
    }
    if decision.policy_ids.is_empty() {
        println!("policies:");
    } else {
        println!("policies: {}", decision.policy_ids.join(", "));
    }
    println!("reason: {}", decision.reason);
    if allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
