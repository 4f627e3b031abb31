//! Replays the decision corpus (`tests/corpus/authz/*.json`, format in its README) through the
//! pure decision function, with tool attributes built as the gateway builds them (server
//! annotations narrowed by the operator's `[[upstream.tool]] read_only`).

#![cfg(test)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use portcullis_authz::{
    Action, CallTime, PolicySet, Request, Subject, SubjectKind, ToolOverrides, Verdict, decide,
    offline, visible,
};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CorpusFile {
    #[serde(rename = "about")]
    _about: String,
    policies: String,
    upstreams: Vec<UpstreamDef>,
    rows: Vec<Row>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpstreamDef {
    name: String,
    #[serde(default)]
    tools: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    about: String,
    principal: Principal,
    method: String,
    name: Option<String>,
    upstream: Option<String>,
    args: Option<Value>,
    at: Option<String>,
    protocol_version: Option<String>,
    decision: String,
    policies: Vec<String>,
    reason: Option<String>,
    listed: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Principal {
    id: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
    auth_method: Option<String>,
    client_ip: Option<String>,
}

const DEFAULT_AT: &str = "2026-01-05T10:00:00Z";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The gateway configuration the corpus file describes (upstreams are never contacted).
fn config(file: &CorpusFile) -> portcullis_config::Config {
    let mut toml = String::from("[auth]\ndangerous_allow_anonymous = true\n");
    for (i, up) in file.upstreams.iter().enumerate() {
        let _ = write!(
            toml,
            "\n[[upstream]]\nname = {:?}\nurl = \"http://127.0.0.1:{}/mcp\"\n",
            up.name,
            9 + i
        );
        for (tool, def) in &up.tools {
            if let Some(ro) = def.get("read_only").and_then(Value::as_bool) {
                let _ = write!(
                    toml,
                    "[[upstream.tool]]\nname = {tool:?}\nread_only = {ro}\n"
                );
            }
        }
    }
    match portcullis_config::from_str(&toml, None, &portcullis_config::ProcessEnv) {
        Ok(c) => c,
        Err(e) => panic!("corpus configuration:\n{toml}\n{e}"),
    }
}

fn replay(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let file: CorpusFile =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let set = PolicySet::load(&[repo().join(&file.policies).join("*.cedar")])
        .unwrap_or_else(|e| panic!("{}:\n{e}", file.policies));
    let config = config(&file);
    let overrides = ToolOverrides::from_config(&config);
    let mut failures = Vec::new();
    for (i, row) in file.rows.iter().enumerate() {
        let label = format!(
            "{}[{i}] {}",
            path.file_name().unwrap().to_string_lossy(),
            row.about
        );
        if let Err(e) = check_row(row, &set, &config, &overrides, &file.upstreams) {
            failures.push(format!("{label}: {e}"));
        }
    }
    assert!(!file.rows.is_empty());
    failures
}

fn check_row(
    row: &Row,
    set: &PolicySet,
    config: &portcullis_config::Config,
    overrides: &ToolOverrides,
    upstreams: &[UpstreamDef],
) -> Result<(), String> {
    let action = Action::from_method(&row.method).ok_or("unknown method")?;
    let annotations = row.name.as_deref().and_then(|n| {
        let (up, own) = offline::route(config, n)?;
        upstreams
            .iter()
            .find(|u| u.name == up.name)?
            .tools
            .get(&own)?
            .get("annotations")
            .cloned()
    });
    let target = offline::target(
        config,
        overrides,
        action,
        row.name.as_deref(),
        row.upstream.as_deref(),
        annotations.as_ref(),
    )
    .map_err(|e| e.to_string())?;
    let p = &row.principal;
    let subject = Subject {
        id: p.id.clone(),
        kind: match p.kind.as_deref() {
            None | Some("user") => SubjectKind::User,
            Some("service") => SubjectKind::Service,
            Some(other) => return Err(format!("unknown kind {other}")),
        },
        roles: p.roles.clone(),
        auth_method: p.auth_method.clone().unwrap_or_else(|| "api_key".into()),
        scopes: p.scopes.clone(),
        client_ip: Some(
            p.client_ip
                .as_deref()
                .unwrap_or("127.0.0.1")
                .parse()
                .map_err(|e| format!("client_ip: {e}"))?,
        ),
    };
    let at: jiff::Timestamp = row
        .at
        .as_deref()
        .unwrap_or(DEFAULT_AT)
        .parse()
        .map_err(|e| format!("at: {e}"))?;
    let request = Request {
        subject: &subject,
        action,
        target: &target,
        args: row.args.as_ref(),
        protocol_version: row.protocol_version.as_deref().unwrap_or("2026-07-28"),
        time: CallTime::at(at, &jiff::tz::TimeZone::UTC),
    };
    let d = decide(set, &request);
    let want = match row.decision.as_str() {
        "allow" => Verdict::Allow,
        "deny" => Verdict::Deny,
        "approval_required" => Verdict::ApprovalRequired,
        other => return Err(format!("unknown decision {other}")),
    };
    if d.verdict != want || d.policy_ids != row.policies {
        return Err(format!(
            "got {} {:?}, want {} {:?} ({:?})",
            d.verdict.as_str(),
            d.policy_ids,
            row.decision,
            row.policies,
            d.diagnostics
        ));
    }
    if let Some(reason) = &row.reason
        && *reason != d.reason
    {
        return Err(format!("reason {:?}, want {reason:?}", d.reason));
    }
    if let Some(listed) = row.listed {
        let use_action = match action {
            Action::Complete | Action::Subscribe => return Err("listed applies to uses".into()),
            a => a,
        };
        let got = visible(
            set,
            &Request {
                action: use_action,
                ..request
            },
        );
        if got != listed {
            return Err(format!("listed {got}, want {listed}"));
        }
    }
    Ok(())
}

#[test]
fn corpus_replays_through_the_decision_function() {
    let dir = repo().join("tests/corpus/authz");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    let failures: Vec<String> = files.iter().flat_map(|f| replay(f)).collect();
    assert!(
        failures.is_empty(),
        "{} corpus rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
