//! Shared builders for the integration tests.

use std::path::PathBuf;

use portcullis_authz::{
    Action, CallTime, PolicySet, Request, Subject, SubjectKind, Target, ToolAttrs,
};

/// Monday 10:00.
pub const MON_10: CallTime = CallTime {
    hour: 10,
    weekday: 1,
};

pub fn set(src: &str) -> PolicySet {
    match PolicySet::from_sources(vec![(PathBuf::from("t.cedar"), src.to_owned())]) {
        Ok(s) => s,
        Err(e) => panic!("policies do not load:\n{e}"),
    }
}

pub fn user(id: &str, roles: &[&str]) -> Subject {
    Subject {
        id: id.to_owned(),
        kind: SubjectKind::User,
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        auth_method: "api_key".to_owned(),
        scopes: Vec::new(),
        client_ip: None,
    }
}

pub fn tool(name: &str, read_only: bool, destructive: bool, open_world: bool) -> Target {
    let upstream = name.split("__").next().unwrap_or("x").to_owned();
    Target::Tool(ToolAttrs {
        upstream,
        name: name.to_owned(),
        read_only,
        destructive,
        open_world,
    })
}

pub fn resource(upstream: &str, uri: &str) -> Target {
    Target::Resource {
        upstream: upstream.to_owned(),
        uri: uri.to_owned(),
    }
}

pub fn request<'a>(
    subject: &'a Subject,
    action: Action,
    target: &'a Target,
    args: Option<&'a serde_json::Value>,
) -> Request<'a> {
    Request {
        subject,
        action,
        target,
        args,
        protocol_version: "2026-07-28",
        time: MON_10,
    }
}
