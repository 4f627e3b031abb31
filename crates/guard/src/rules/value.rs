//! One argument's compiled rule and the check of one JSON value against it.

use portcullis_config::ArgRule;
use regex::Regex;
use serde_json::Value;

use super::path::{PathRule, PathViolation};
use super::url::{CheckedHost, UrlRule, UrlViolation};

/// A compiled `args.NAME = { … }` rule: the regex is compiled once, at start.
#[derive(Debug, Clone)]
pub struct ValueRule {
    pub path: Option<PathRule>,
    pub url: Option<UrlRule>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub pattern: Option<Regex>,
    pub one_of: Vec<String>,
    pub max_length: Option<usize>,
}

/// Why a value was refused. `Display` is the public message, phrased to follow the argument name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueViolation {
    #[error("{0}")]
    Path(PathViolation),
    #[error("{0}")]
    Url(UrlViolation),
    #[error("must be a string")]
    NotString,
    #[error("must be a number")]
    NotNumber,
    #[error("must be at least {0}")]
    BelowMin(String),
    #[error("must be at most {0}")]
    AboveMax(String),
    #[error("does not match the required pattern")]
    Pattern,
    #[error("must be one of the allowed values")]
    NotAllowed,
    #[error("must be at most {0} characters long")]
    TooLong(usize),
}

impl ValueRule {
    /// Compiles a validated config rule. The config crate already checked that the pattern
    /// compiles; an error here means the two disagree and is reported, not ignored.
    pub fn compile(rule: &ArgRule) -> Result<ValueRule, regex::Error> {
        let pattern = rule.pattern.as_deref().map(Regex::new).transpose()?;
        let url = (!rule.allow_hosts.is_empty() || rule.deny_private).then(|| UrlRule {
            allow_hosts: rule
                .allow_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            deny_private: rule.deny_private,
        });
        Ok(ValueRule {
            path: (!rule.within.is_empty()).then(|| PathRule {
                roots: rule.within.clone(),
            }),
            url,
            min: rule.min,
            max: rule.max,
            pattern,
            one_of: rule.r#enum.clone(),
            max_length: rule.max_length,
        })
    }

    /// Checks one scalar value. Returns the URL host when a URL rule with `deny_private` passed
    /// on a DNS name, so the caller can resolve and judge it (I/O, see [`super::check_resolved`]).
    pub fn check(
        &self,
        value: &Value,
        principal: &str,
    ) -> Result<Option<(String, u16)>, ValueViolation> {
        if self.min.is_some() || self.max.is_some() {
            let n = value.as_f64().ok_or(ValueViolation::NotNumber)?;
            if let Some(min) = self.min
                && n < min
            {
                return Err(ValueViolation::BelowMin(number_text(min)));
            }
            if let Some(max) = self.max
                && n > max
            {
                return Err(ValueViolation::AboveMax(number_text(max)));
            }
        }
        if !self.one_of.is_empty() {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return Err(ValueViolation::NotAllowed),
            };
            if !self.one_of.contains(&text) {
                return Err(ValueViolation::NotAllowed);
            }
        }
        let needs_string = self.path.is_some()
            || self.url.is_some()
            || self.pattern.is_some()
            || self.max_length.is_some();
        if !needs_string {
            return Ok(None);
        }
        let text = value.as_str().ok_or(ValueViolation::NotString)?;
        if let Some(max) = self.max_length
            && text.chars().count() > max
        {
            return Err(ValueViolation::TooLong(max));
        }
        if let Some(pattern) = &self.pattern
            && !pattern.is_match(text)
        {
            return Err(ValueViolation::Pattern);
        }
        if let Some(path) = &self.path {
            path.check(text, principal).map_err(ValueViolation::Path)?;
        }
        if let Some(url) = &self.url {
            let (host, port) = url.check(text).map_err(ValueViolation::Url)?;
            if let (true, CheckedHost::Name(name)) = (url.deny_private, host) {
                return Ok(Some((name, port)));
            }
        }
        Ok(None)
    }
}

/// `100` rather than `100.0` for whole numbers.
fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{n:.0}")
    } else {
        n.to_string()
    }
}
