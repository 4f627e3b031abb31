//! Targets from the configuration alone, without contacting any upstream: the operator's
//! `[[upstream.tool]] read_only` overrides (the gateway needs them too) and name routing by
//! prefix for `portcullis policy test`.

use std::collections::HashMap;

use portcullis_config::{Config, Upstream};

use crate::model::{Action, Target, ToolAttrs};

/// The operator's `read_only` per (upstream name, the upstream's own tool name).
#[derive(Debug, Clone, Default)]
pub struct ToolOverrides {
    read_only: HashMap<(String, String), bool>,
}

impl ToolOverrides {
    pub fn from_config(config: &Config) -> ToolOverrides {
        let mut read_only = HashMap::new();
        for up in &config.upstreams {
            for rule in &up.tools {
                if let Some(ro) = rule.read_only {
                    read_only.insert((up.name.clone(), rule.name.clone()), ro);
                }
            }
        }
        ToolOverrides { read_only }
    }

    /// `[[upstream.tool]] read_only` for `tool` (the upstream's own name, without prefix).
    pub fn read_only(&self, upstream: &str, tool: &str) -> Option<bool> {
        self.read_only
            .get(&(upstream.to_owned(), tool.to_owned()))
            .copied()
    }

    /// The tool's attributes: the server's `annotations` narrowed by the operator's override.
    pub fn tool(
        &self,
        upstream: &str,
        own_name: &str,
        exposed_name: &str,
        annotations: Option<&serde_json::Value>,
    ) -> ToolAttrs {
        ToolAttrs::from_annotations(
            upstream,
            exposed_name,
            annotations,
            self.read_only(upstream, own_name),
        )
    }
}

/// Which configured upstream serves the exposed name `exposed`, and its own name there: the
/// longest non-empty prefix that matches, else the only upstream without a prefix (as the
/// gateway routes).
pub fn route<'c>(config: &'c Config, exposed: &str) -> Option<(&'c Upstream, String)> {
    let by_prefix = config
        .upstreams
        .iter()
        .filter(|u| {
            !u.prefix.is_empty() && exposed.len() > u.prefix.len() && exposed.starts_with(&u.prefix)
        })
        .max_by_key(|u| u.prefix.len());
    if let Some(u) = by_prefix {
        return Some((u, exposed[u.prefix.len()..].to_owned()));
    }
    let mut bare = config.upstreams.iter().filter(|u| u.prefix.is_empty());
    match (bare.next(), bare.next()) {
        (Some(only), None) => Some((only, exposed.to_owned())),
        _ => None,
    }
}

/// Why a target could not be named from the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("no upstream named {0:?} in the configuration")]
    UnknownUpstream(String),
    #[error("cannot tell which upstream serves {0:?}; pass --upstream")]
    Unrouted(String),
    #[error("{0} needs a name (--name)")]
    MissingName(Action),
    #[error("{0} needs an upstream (--upstream, or a --name with its prefix)")]
    MissingUpstream(Action),
}

/// The target of `action` named `name` (exposed name or URI, as a client sends it), optionally
/// on upstream `upstream`. For `complete`, a name with `://` is a resource template, else a
/// prompt. List actions target the upstream (from `upstream`, or routed from `name`).
pub fn target(
    config: &Config,
    overrides: &ToolOverrides,
    action: Action,
    name: Option<&str>,
    upstream: Option<&str>,
    annotations: Option<&serde_json::Value>,
) -> Result<Target, TargetError> {
    let find = |n: &str| {
        config
            .upstreams
            .iter()
            .find(|u| u.name == n)
            .ok_or_else(|| TargetError::UnknownUpstream(n.to_owned()))
    };
    // (upstream, the upstream's own name for `name`)
    let resolve = |name: &str| -> Result<(&Upstream, String), TargetError> {
        match upstream {
            Some(u) => {
                let up = find(u)?;
                let own = name.strip_prefix(up.prefix.as_str()).unwrap_or(name);
                Ok((up, own.to_owned()))
            }
            None => route(config, name).ok_or_else(|| TargetError::Unrouted(name.to_owned())),
        }
    };
    if action.use_of_listed().is_some() {
        return match (upstream, name) {
            (Some(u), _) => Ok(Target::Upstream(find(u)?.name.clone())),
            (None, Some(n)) => Ok(Target::Upstream(resolve(n)?.0.name.clone())),
            (None, None) => Err(TargetError::MissingUpstream(action)),
        };
    }
    let name = name.ok_or(TargetError::MissingName(action))?;
    let (up, own) = resolve(name)?;
    let upstream = up.name.clone();
    let exposed = format!("{}{own}", up.prefix);
    Ok(match action {
        Action::CallTool => Target::Tool(overrides.tool(&upstream, &own, &exposed, annotations)),
        Action::ReadResource | Action::Subscribe => Target::Resource { upstream, uri: own },
        Action::Complete if name.contains("://") => Target::Resource { upstream, uri: own },
        _ => Target::Prompt {
            upstream,
            name: exposed,
        },
    })
}
