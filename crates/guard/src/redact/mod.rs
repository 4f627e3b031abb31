//! Redaction of secrets and personal data in results, logs and audit records.
//!
//! # Speed
//! Text is scanned once by an Aho-Corasick automaton over every rule's literal keywords (ASCII
//! case-insensitive, as gitleaks does) and once by a [`RegexSet`] holding the rules that have no
//! keyword (personal data shapes, operator patterns). Only the rules those two passes flag run
//! their own regex, so clean text — the common case — costs two linear scans and no allocation
//! (`redact_str` returns `Cow::Borrowed`). `cargo bench -p portcullis-guard` prints the cost per KB.
//!
//! # Markers
//! A match is replaced by `[REDACTED:<rule>]`: the gitleaks rule id in snake case
//! (`aws_access_token`, `github_pat`, `generic_api_key`, `private_key`, `jwt`), our own
//! `password_in_url`, `bearer_token`, the `pii` names (`email`, `phone`, `card_number`, `iban`,
//! `us_ssn`, `uk_nino`, `es_dni`) or an operator pattern's `name`. When a rule captures the
//! secret part (`password = "…"`), only that part is replaced and the context stays readable.
//!
//! # Scope
//! Which results are masked is a policy choice ([`crate::GuardSet::redact_scope`]): masking results
//! returned to clients (`[guard] redact_results`, per tool `redact = "results" | "logs"`); logs
//! and audit records are always redacted.

mod pii;
mod secrets;
mod secrets_table;

use std::borrow::Cow;
use std::collections::BTreeMap;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use portcullis_config::{RedactPattern, RedactSet};
use regex::{Regex, RegexSet};
use serde_json::Value;

/// A rule that could not be compiled (a bug in a built-in table, or an operator pattern the
/// config check accepted but this build rejects).
#[derive(Debug, thiserror::Error)]
#[error("redaction rule {rule:?} does not compile: {source}")]
pub struct RedactError {
    pub rule: String,
    #[source]
    pub source: regex::Error,
}

/// Which part of a match is the secret.
#[derive(Debug, Clone, Copy)]
enum Secret {
    /// The whole match.
    Whole,
    /// This capture group.
    Group(usize),
    /// The first capture group that matched, else the whole match (gitleaks' default).
    FirstGroup,
    /// The group named `secret` (operator patterns).
    Named,
}

/// One compiled rule.
pub(crate) struct Rule {
    marker: String,
    regex: Regex,
    keywords: Vec<String>,
    secret: Secret,
    entropy: Option<f64>,
    allow_secret: Vec<Regex>,
    allow_match: Vec<Regex>,
    stopwords: bool,
    /// Confirms a candidate secret and says how much of it is the secret (bytes from its start).
    validate: Option<fn(&str) -> Option<usize>>,
}

impl Rule {
    fn new(marker: &str, regex: &str, keywords: &[&str]) -> Result<Rule, regex::Error> {
        let regex = Regex::new(regex)?;
        let secret = if regex.captures_len() > 1 {
            Secret::FirstGroup
        } else {
            Secret::Whole
        };
        Ok(Rule {
            marker: marker.to_owned(),
            regex,
            keywords: keywords.iter().map(|k| k.to_ascii_lowercase()).collect(),
            secret,
            entropy: None,
            allow_secret: Vec::new(),
            allow_match: Vec::new(),
            stopwords: false,
            validate: None,
        })
    }

    fn group(mut self, index: usize) -> Rule {
        self.secret = Secret::Group(index);
        self
    }

    fn entropy(mut self, bits: f64) -> Rule {
        self.entropy = Some(bits);
        self
    }

    fn allow(mut self, whole_match: bool, regex: &str) -> Result<Rule, regex::Error> {
        let re = Regex::new(regex)?;
        if whole_match {
            self.allow_match.push(re);
        } else {
            self.allow_secret.push(re);
        }
        Ok(self)
    }

    fn with_stopwords(mut self) -> Rule {
        self.stopwords = true;
        self
    }

    fn validate(mut self, f: fn(&str) -> Option<usize>) -> Rule {
        self.validate = Some(f);
        self
    }
}

/// Shannon entropy in bits per character (gitleaks' measure).
fn shannon(text: &str) -> f64 {
    let mut counts: BTreeMap<char, usize> = BTreeMap::new();
    let mut n = 0usize;
    for c in text.chars() {
        *counts.entry(c).or_default() += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let n = n as f64;
    counts
        .values()
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// What was redacted in a JSON value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedactionReport {
    /// Matches replaced.
    pub count: usize,
    /// Matches per rule marker.
    pub rules: BTreeMap<String, usize>,
}

impl RedactionReport {
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// The compiled rule sets. Build once at start ([`Redactor::from_config`]) and share.
pub struct Redactor {
    rules: Vec<Rule>,
    /// Keyword automaton; pattern i belongs to rule `keyword_owner[i]`.
    keywords: Option<AhoCorasick>,
    keyword_owner: Vec<usize>,
    /// The rules without keywords, in one set; set index i is rule `unkeyed[i]`.
    unkeyed_set: RegexSet,
    unkeyed: Vec<usize>,
    stopwords: AhoCorasick,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("rules", &self.rules.len())
            .finish_non_exhaustive()
    }
}

impl Redactor {
    /// The built-in sets `sets` plus operator `patterns` (`[[guard.redact_pattern]]`; a pattern
    /// may name the part to hide with a `(?P<secret>…)` group).
    pub fn new(sets: &[RedactSet], patterns: &[RedactPattern]) -> Result<Redactor, RedactError> {
        let builtin = |name: &str, r: Result<Vec<Rule>, regex::Error>| {
            r.map_err(|source| RedactError {
                rule: name.to_owned(),
                source,
            })
        };
        let mut rules = Vec::new();
        for set in sets {
            match set {
                RedactSet::Secrets => rules.extend(builtin("secrets", secrets::rules())?),
                RedactSet::Pii => rules.extend(builtin("pii", pii::rules())?),
            }
        }
        for p in patterns {
            let mut rule = Rule::new(&p.name, &p.pattern, &[]).map_err(|source| RedactError {
                rule: p.name.clone(),
                source,
            })?;
            rule.secret = if rule.regex.capture_names().any(|n| n == Some("secret")) {
                Secret::Named
            } else {
                Secret::Whole
            };
            rules.push(rule);
        }
        Self::build(rules)
    }

    /// From `[guard]`.
    pub fn from_config(guard: &portcullis_config::Guard) -> Result<Redactor, RedactError> {
        Redactor::new(&guard.redact, &guard.redact_patterns)
    }

    fn build(rules: Vec<Rule>) -> Result<Redactor, RedactError> {
        let mut patterns = Vec::new();
        let mut keyword_owner = Vec::new();
        let mut unkeyed = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            if rule.keywords.is_empty() {
                unkeyed.push(i);
            }
            for k in &rule.keywords {
                patterns.push(k.clone());
                keyword_owner.push(i);
            }
        }
        let ac_err = |e: aho_corasick::BuildError| RedactError {
            rule: "keywords".to_owned(),
            source: regex::Error::Syntax(e.to_string()),
        };
        let keywords = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .build(&patterns)
                    .map_err(ac_err)?,
            )
        };
        let unkeyed_set =
            RegexSet::new(unkeyed.iter().map(|&i| rules[i].regex.as_str())).map_err(|source| {
                RedactError {
                    rule: "set".to_owned(),
                    source,
                }
            })?;
        let stopwords = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .build(secrets::stopwords())
            .map_err(ac_err)?;
        Ok(Redactor {
            rules,
            keywords,
            keyword_owner,
            unkeyed_set,
            unkeyed,
            stopwords,
        })
    }

    /// Nothing to do (no rule set, no pattern).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Rules whose keyword or set pattern occurs in `text`.
    fn candidates(&self, text: &str) -> Vec<usize> {
        let mut hit = vec![false; self.rules.len()];
        if let Some(ac) = &self.keywords {
            for m in ac.find_overlapping_iter(text) {
                hit[self.keyword_owner[m.pattern().as_usize()]] = true;
            }
        }
        if !self.unkeyed.is_empty() {
            for i in self.unkeyed_set.matches(text).iter() {
                hit[self.unkeyed[i]] = true;
            }
        }
        hit.iter()
            .enumerate()
            .filter_map(|(i, &h)| h.then_some(i))
            .collect()
    }

    /// Secret spans `(start, end, rule)` found by one rule.
    fn spans(&self, index: usize, text: &str, out: &mut Vec<(usize, usize, usize)>) {
        let rule = &self.rules[index];
        for caps in rule.regex.captures_iter(text) {
            let Some(whole) = caps.get(0) else { continue };
            let secret = match rule.secret {
                Secret::Whole => Some(whole),
                Secret::Group(g) => caps.get(g),
                Secret::FirstGroup => (1..caps.len())
                    .find_map(|g| caps.get(g).filter(|m| !m.is_empty()))
                    .or(Some(whole)),
                Secret::Named => caps.name("secret").or(Some(whole)),
            };
            let Some(secret) = secret.filter(|m| !m.is_empty()) else {
                continue;
            };
            let (start, mut end) = (secret.start(), secret.end());
            let value = secret.as_str();
            if let Some(validate) = rule.validate {
                match validate(value) {
                    Some(len) => end = start + len,
                    None => continue,
                }
            }
            let value = &text[start..end];
            if rule.entropy.is_some_and(|min| shannon(value) < min)
                || rule.allow_secret.iter().any(|a| a.is_match(value))
                || rule.allow_match.iter().any(|a| a.is_match(whole.as_str()))
                || (rule.stopwords && self.stopwords.is_match(value))
            {
                continue;
            }
            out.push((start, end, index));
        }
    }

    /// `text` with every secret replaced by its marker, and the markers used.
    pub fn redact_counted<'t>(&self, text: &'t str) -> (Cow<'t, str>, Vec<&str>) {
        let candidates = self.candidates(text);
        if candidates.is_empty() {
            return (Cow::Borrowed(text), Vec::new());
        }
        let mut spans = Vec::new();
        for index in candidates {
            self.spans(index, text, &mut spans);
        }
        if spans.is_empty() {
            return (Cow::Borrowed(text), Vec::new());
        }
        // Earliest first; at one start, the longest; overlapping later spans are dropped.
        spans.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut out = String::with_capacity(text.len());
        let mut used = Vec::new();
        let mut at = 0;
        for (start, end, index) in spans {
            if start < at {
                continue;
            }
            out.push_str(&text[at..start]);
            let marker = self.rules[index].marker.as_str();
            out.push_str("[REDACTED:");
            out.push_str(marker);
            out.push(']');
            used.push(marker);
            at = end;
        }
        out.push_str(&text[at..]);
        (Cow::Owned(out), used)
    }

    /// `text` with every secret replaced by `[REDACTED:<rule>]`.
    pub fn redact_str<'t>(&self, text: &'t str) -> Cow<'t, str> {
        self.redact_counted(text).0
    }

    /// Redacts every string in `value` (object keys are kept as they are).
    pub fn redact_json(&self, value: &mut Value) -> RedactionReport {
        let mut report = RedactionReport::default();
        self.walk(value, &mut report);
        report
    }

    fn walk(&self, value: &mut Value, report: &mut RedactionReport) {
        match value {
            Value::String(s) => {
                let (redacted, used) = self.redact_counted(s);
                if let Cow::Owned(new) = redacted {
                    for marker in used {
                        report.count += 1;
                        *report.rules.entry(marker.to_owned()).or_default() += 1;
                    }
                    *s = new;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.walk(v, report)),
            Value::Object(map) => map.values_mut().for_each(|v| self.walk(v, report)),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

#[cfg(test)]
#[path = "redact_tests.rs"]
mod tests;
