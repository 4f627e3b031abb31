//! The guard configuration compiled once at start: per upstream, per tool, every argument rule
//! with its regex compiled, the resource rule, the redactor, and the pin/scan policy.
//! [`GuardSet::build`] reports every configuration problem as a typed error so `portcullis check`
//! can print them all.

use std::collections::HashMap;
use std::sync::Arc;

use portcullis_config::{Config, RedactScope, ScanAction};
use serde_json::Value;

use crate::redact::{RedactError, Redactor};
use crate::rules::{ArgRules, ArgViolation, PendingHost, Selector, ValueRule, check_resource_uri};
use crate::scan::ScanOptions;
use crate::schema::SchemaCache;

/// A guard setting that cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub enum GuardConfigError {
    #[error("{key}: pattern does not compile: {source}")]
    Pattern {
        /// The config key (`upstream.fs.tool.read_file.args.path.pattern`).
        key: String,
        #[source]
        source: regex::Error,
    },
    #[error("guard.redact: {0}")]
    Redact(#[from] RedactError),
}

/// One tool's compiled rules.
#[derive(Debug, Clone)]
pub struct ToolGuard {
    pub args: ArgRules,
    /// Where redaction applies to this tool's results.
    pub redact: RedactScope,
}

#[derive(Debug, Clone, Default)]
struct UpstreamGuard {
    tools: HashMap<String, ToolGuard>,
    resources: Option<ValueRule>,
}

/// Everything the guard stages need, built once from the configuration.
#[derive(Debug)]
pub struct GuardSet {
    upstreams: HashMap<String, UpstreamGuard>,
    /// Applied to results (per [`GuardSet::redact_scope`]) and always to logs and audit records.
    pub redactor: Arc<Redactor>,
    /// The scope of tools without their own `redact`.
    pub default_redact: RedactScope,
    pub pin_tools: bool,
    pub scan_tools: bool,
    pub scan_action: ScanAction,
    pub scan_options: ScanOptions,
    /// Compiled `inputSchema`/`outputSchema` validators by definition digest.
    pub schemas: SchemaCache,
}

fn compile_rule(
    key: &str,
    rule: &portcullis_config::ArgRule,
    errors: &mut Vec<GuardConfigError>,
) -> Option<ValueRule> {
    ValueRule::compile(rule)
        .map_err(|source| {
            errors.push(GuardConfigError::Pattern {
                key: format!("{key}.pattern"),
                source,
            })
        })
        .ok()
}

impl GuardSet {
    pub fn build(config: &Config) -> Result<GuardSet, Vec<GuardConfigError>> {
        let mut errors = Vec::new();
        let default_redact = if config.guard.redact_results {
            RedactScope::Results
        } else {
            RedactScope::Logs
        };
        let mut upstreams = HashMap::new();
        for u in &config.upstreams {
            let mut guard = UpstreamGuard::default();
            for t in &u.tools {
                let mut rules = Vec::new();
                for (name, rule) in &t.args {
                    let key = format!("upstream.{}.tool.{}.args.{name}", u.name, t.name);
                    if let Some(compiled) = compile_rule(&key, rule, &mut errors) {
                        rules.push((Selector::parse(name), compiled));
                    }
                }
                guard.tools.insert(
                    t.name.clone(),
                    ToolGuard {
                        args: ArgRules::new(rules),
                        redact: t.redact.unwrap_or(default_redact),
                    },
                );
            }
            if let Some(rule) = &u.resources {
                let key = format!("upstream.{}.resources", u.name);
                guard.resources = compile_rule(&key, rule, &mut errors);
            }
            upstreams.insert(u.name.clone(), guard);
        }
        let redactor = match Redactor::from_config(&config.guard) {
            Ok(r) => Some(r),
            Err(e) => {
                errors.push(e.into());
                None
            }
        };
        match redactor {
            Some(redactor) if errors.is_empty() => Ok(GuardSet {
                upstreams,
                redactor: Arc::new(redactor),
                default_redact,
                pin_tools: config.guard.pin_tools,
                scan_tools: config.guard.scan_tools,
                scan_action: config.guard.scan_action,
                scan_options: ScanOptions::default(),
                schemas: SchemaCache::new(),
            }),
            _ => Err(errors),
        }
    }

    /// The operator rules of `tool` (the upstream's own name), if any.
    pub fn tool(&self, upstream: &str, tool: &str) -> Option<&ToolGuard> {
        self.upstreams.get(upstream)?.tools.get(tool)
    }

    /// Checks a `tools/call`'s arguments against the operator rules (not the schema: see
    /// [`crate::schema::check_args`]). Returns DNS names to resolve with
    /// [`crate::rules::check_resolved`].
    pub fn check_args(
        &self,
        upstream: &str,
        tool: &str,
        arguments: Option<&Value>,
        principal: &str,
    ) -> Result<Vec<PendingHost>, ArgViolation> {
        let empty = Value::Object(serde_json::Map::new());
        match self.tool(upstream, tool) {
            Some(t) => t.args.check(arguments.unwrap_or(&empty), principal),
            None => Ok(Vec::new()),
        }
    }

    /// Checks a `resources/read` URI (the upstream's own URI, without the gateway's prefix).
    pub fn check_resource_uri(
        &self,
        upstream: &str,
        uri: &str,
        principal: &str,
    ) -> Result<Option<PendingHost>, ArgViolation> {
        match self
            .upstreams
            .get(upstream)
            .and_then(|u| u.resources.as_ref())
        {
            Some(rule) => check_resource_uri(uri, rule, principal),
            None => Ok(None),
        }
    }

    /// Whether `tool`'s results are masked for the client or only in logs.
    pub fn redact_scope(&self, upstream: &str, tool: &str) -> RedactScope {
        self.tool(upstream, tool)
            .map_or(self.default_redact, |t| t.redact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portcullis.toml");
        std::fs::write(&path, text).unwrap();
        portcullis_config::load(&path).unwrap()
    }

    #[test]
    fn builds_rules_per_upstream_and_tool() {
        let c = config(
            r#"
[[upstream]]
name = "fs"
command = ["x"]
[upstream.resources]
within = ["/srv/data"]
[[upstream.tool]]
name = "read_file"
args.path = { within = ["/srv/data"] }
args.limit = { min = 1, max = 10 }
redact = "logs"
[[upstream.tool]]
name = "write_file"
args."/edits/*/path" = { within = ["/srv/data"] }
[guard]
redact = ["secrets", "pii"]
redact_results = true
scan_action = "warn"
"#,
        );
        let g = GuardSet::build(&c).unwrap();
        assert_eq!(g.redact_scope("fs", "read_file"), RedactScope::Logs);
        assert_eq!(g.redact_scope("fs", "write_file"), RedactScope::Results);
        assert_eq!(g.redact_scope("fs", "other"), RedactScope::Results);
        assert_eq!(g.scan_action, ScanAction::Warn);
        let err = g
            .check_args(
                "fs",
                "read_file",
                Some(&serde_json::json!({"path": "/etc/passwd"})),
                "p",
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "argument \"path\" is outside the allowed directories"
        );
        let err = g
            .check_args(
                "fs",
                "read_file",
                Some(&serde_json::json!({"limit": 11})),
                "p",
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "argument \"limit\" must be at most 10");
        let err = g
            .check_args(
                "fs",
                "write_file",
                Some(&serde_json::json!({"edits": [{"path": "/srv/data/a"}, {"path": "/etc/x"}]})),
                "p",
            )
            .unwrap_err();
        assert_eq!(err.argument, "edits/1/path");
        // Tools and upstreams without rules pass.
        assert!(g.check_args("fs", "unruled", None, "p").is_ok());
        assert!(g.check_args("nope", "read_file", None, "p").is_ok());
        let err = g
            .check_resource_uri("fs", "file:///etc/passwd", "p")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "argument \"uri\" is outside the allowed directories"
        );
        assert!(
            g.check_resource_uri("other", "file:///etc/passwd", "p")
                .is_ok()
        );
        assert!(
            g.redactor
                .redact_str("mail me: a.b@example.com")
                .contains("[REDACTED:email]")
        );
    }

    #[test]
    fn defaults_mask_results_and_block() {
        let c = config(
            "[[upstream]]\nname = \"fs\"\ncommand = [\"x\"]\n[guard]\nredact_results = false\n",
        );
        let g = GuardSet::build(&c).unwrap();
        assert_eq!(g.redact_scope("fs", "any"), RedactScope::Logs);
        assert_eq!(g.scan_action, ScanAction::Block);
        assert!(g.pin_tools && g.scan_tools);
    }
}
