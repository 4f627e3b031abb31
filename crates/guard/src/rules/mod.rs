//! Operator rules on arguments (`[[upstream.tool]] args.NAME = { … }`) and on `resources/read`
//! URIs.
//!
//! # Addressing arguments
//! `NAME` is a top-level argument name (`args.path`). A `NAME` starting with `/` is a JSON
//! pointer into the arguments object (RFC 6901, `~1` for `/`, `~0` for `~`), where a `*` segment
//! matches every array element or object member: `args."/options/target"`,
//! `args."/edits/*/path"`. When the addressed value is an array, the rule applies to each element
//! (`args.paths = { within = […] }` checks every path of `read_multiple_files`). An absent
//! argument is not checked here (the tool's `inputSchema` decides whether it is required).

mod ip;
mod path;
mod resolve;
mod resource;
mod url;
mod value;

use serde_json::Value;

pub use ip::{NonPublic, non_public};
pub use path::{PathRule, PathViolation, lexical as lexical_path, principal_component};
pub use resolve::{Resolver, SystemResolver, check_resolved};
pub use resource::check_resource_uri;
pub use url::{CheckedHost, UrlRule, UrlViolation};
pub use value::{ValueRule, ValueViolation};

/// Where a rule applies within the arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// A top-level argument.
    Name(String),
    /// JSON pointer segments (unescaped); `*` matches any element or member.
    Pointer(Vec<String>),
}

impl Selector {
    pub fn parse(name: &str) -> Selector {
        match name.strip_prefix('/') {
            Some(rest) => Selector::Pointer(
                rest.split('/')
                    .map(|s| s.replace("~1", "/").replace("~0", "~"))
                    .collect(),
            ),
            None => Selector::Name(name.to_owned()),
        }
    }

    /// Every value this selector addresses in `args`, with its location for messages
    /// (`path`, `paths/2`, `edits/0/path`). Arrays at the end are expanded element by element.
    pub fn select<'a>(&self, args: &'a Value) -> Vec<(String, &'a Value)> {
        let mut found = Vec::new();
        match self {
            Selector::Name(name) => {
                if let Some(v) = args.get(name) {
                    expand(name.clone(), v, &mut found);
                }
            }
            Selector::Pointer(segments) => walk(args, segments, String::new(), &mut found),
        }
        found
    }
}

fn walk<'a>(
    value: &'a Value,
    segments: &[String],
    at: String,
    found: &mut Vec<(String, &'a Value)>,
) {
    let Some((first, rest)) = segments.split_first() else {
        expand(at, value, found);
        return;
    };
    let join = |key: &str| {
        if at.is_empty() {
            key.to_owned()
        } else {
            format!("{at}/{key}")
        }
    };
    match (first.as_str(), value) {
        ("*", Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, rest, join(&i.to_string()), found);
            }
        }
        ("*", Value::Object(map)) => {
            for (key, item) in map {
                walk(item, rest, join(key), found);
            }
        }
        (key, Value::Object(map)) => {
            if let Some(item) = map.get(key) {
                walk(item, rest, join(key), found);
            }
        }
        (key, Value::Array(items)) => {
            if let Some(item) = key.parse::<usize>().ok().and_then(|i| items.get(i)) {
                walk(item, rest, join(key), found);
            }
        }
        _ => {}
    }
}

fn expand<'a>(at: String, value: &'a Value, found: &mut Vec<(String, &'a Value)>) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                expand(format!("{at}/{i}"), item, found);
            }
        }
        _ => found.push((at, value)),
    }
}

/// An argument that broke a rule. `Display` is the public message for JSON-RPC `-32602`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("argument {argument:?} {violation}")]
pub struct ArgViolation {
    /// Where in the arguments (`path`, `paths/2`).
    pub argument: String,
    pub violation: ValueViolation,
}

/// A DNS name a URL argument named, to be resolved and judged before the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingHost {
    pub argument: String,
    pub host: String,
    pub port: u16,
}

/// The compiled rules of one tool's arguments.
#[derive(Debug, Clone, Default)]
pub struct ArgRules {
    rules: Vec<(Selector, ValueRule)>,
}

impl ArgRules {
    pub fn new(rules: Vec<(Selector, ValueRule)>) -> ArgRules {
        ArgRules { rules }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Checks every addressed argument; the first violation wins. On success, returns the DNS
    /// names of URL arguments under `deny_private`, for [`check_resolved`].
    pub fn check(&self, args: &Value, principal: &str) -> Result<Vec<PendingHost>, ArgViolation> {
        let mut pending = Vec::new();
        for (selector, rule) in &self.rules {
            for (argument, value) in selector.select(args) {
                match rule.check(value, principal) {
                    Ok(Some((host, port))) => pending.push(PendingHost {
                        argument,
                        host,
                        port,
                    }),
                    Ok(None) => {}
                    Err(violation) => {
                        return Err(ArgViolation {
                            argument,
                            violation,
                        });
                    }
                }
            }
        }
        Ok(pending)
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
