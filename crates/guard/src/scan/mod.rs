//! Poisoning scan of tool, prompt and resource-template definitions.
//!
//! An upstream's definitions are text the model reads as instructions. The scan looks, in every
//! string and object key of a definition (descriptions, titles, and everything inside
//! `inputSchema`/`outputSchema`: property names, descriptions, defaults, enums), for:
//!
//! | rule | severity | what |
//! |---|---|---|
//! | `hidden_unicode` | block | tag characters, zero-width, bidi overrides, control/ANSI escapes |
//! | `model_instruction` | block | `<IMPORTANT>`, "ignore previous instructions", "do not tell the user", "before using this tool, read …", coercion ("otherwise the tool will not work") |
//! | `credential_access` | block / warn | credential files (`~/.ssh`, `id_rsa`, `.env`, `mcp.json`, …) / asking for keys or passwords |
//! | `exfiltration` | block | sending data to an address, smuggling content into a parameter, including the conversation |
//! | `tool_shadowing` | block | naming another tool and saying how it must be called, or "side effect on … tool" |
//! | `long_description` | warn | a description longer than [`ScanOptions::max_description_chars`] |
//! | `padding` | warn | long runs of blank lines or spaces that push text out of view |
//!
//! Findings are pure data; what a `block` finding does is the caller's policy (`[guard]
//! scan_tools`, `scan_action`).

mod patterns;

use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

use crate::pins::{Definition, Kind};
use crate::unicode;

/// A scan rule's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    HiddenUnicode,
    ModelInstruction,
    CredentialAccess,
    Exfiltration,
    ToolShadowing,
    LongDescription,
    Padding,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::HiddenUnicode => "hidden_unicode",
            Rule::ModelInstruction => "model_instruction",
            Rule::CredentialAccess => "credential_access",
            Rule::Exfiltration => "exfiltration",
            Rule::ToolShadowing => "tool_shadowing",
            Rule::LongDescription => "long_description",
            Rule::Padding => "padding",
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The definition is hidden and calls to it are refused (unless `scan_action = "warn"`).
    Block,
    /// Reported and logged only.
    Warn,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Block => "block",
            Severity::Warn => "warn",
        }
    }
}

/// One suspicious spot in a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    pub kind: Kind,
    /// The definition's name (the upstream's own).
    pub name: String,
    /// JSON pointer inside the definition (`/description`,
    /// `/inputSchema/properties/sidenote/description`); a key is shown with a trailing `#key`.
    pub location: String,
    /// The text around the match, one line, hidden characters escaped, at most ~120 chars.
    pub excerpt: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanOptions {
    /// Descriptions longer than this (in characters) get a `long_description` warning.
    pub max_description_chars: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            max_description_chars: 4000,
        }
    }
}

struct Compiled {
    phrases: Vec<patterns::Phrase>,
    coercion: Regex,
    padding: Regex,
}

fn compiled() -> Option<&'static Compiled> {
    static COMPILED: OnceLock<Option<Compiled>> = OnceLock::new();
    COMPILED
        .get_or_init(|| {
            let built = (|| {
                Ok::<_, regex::Error>(Compiled {
                    phrases: patterns::compile()?,
                    coercion: Regex::new(patterns::COERCION)?,
                    padding: Regex::new(r"(\r?\n[ \t]*){12,}|[ \t\u{3000}]{120,}")?,
                })
            })();
            match built {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(error = %e, "poisoning scan patterns do not compile");
                    None
                }
            }
        })
        .as_ref()
}

/// Scans one upstream's definitions. `known_tools` are the names of every tool the gateway can
/// see (this upstream's and others', with and without prefixes): a description that names one of
/// them — other than itself — and tells how it must be called is `tool_shadowing`.
pub fn scan(defs: &[Definition], known_tools: &[String], options: &ScanOptions) -> Vec<Finding> {
    defs.iter()
        .flat_map(|def| scan_definition(def, known_tools, options))
        .collect()
}

/// Scans one definition.
pub fn scan_definition(
    def: &Definition,
    known_tools: &[String],
    options: &ScanOptions,
) -> Vec<Finding> {
    let mut texts = Vec::new();
    collect(&def.value, String::new(), &mut texts);
    let mut findings = Vec::new();
    let Some(compiled) = compiled() else {
        // Fail closed: an unscannable definition is reported as blocked.
        findings.push(finding(
            def,
            Rule::ModelInstruction,
            Severity::Block,
            "",
            "scanner unavailable",
            0,
        ));
        return findings;
    };
    for (location, text) in texts {
        let mut push = |rule, severity, at: usize| {
            if !findings
                .iter()
                .any(|f: &Finding| f.rule == rule && f.location == location)
            {
                findings.push(finding(def, rule, severity, &location, text, at));
            }
        };
        if let Some((at, _)) = text
            .char_indices()
            .find(|(_, c)| unicode::classify(*c).is_some())
        {
            push(Rule::HiddenUnicode, Severity::Block, at);
        }
        for phrase in &compiled.phrases {
            if let Some(m) = phrase.regex.find(text) {
                push(phrase.rule, phrase.severity, m.start());
            }
        }
        if let Some(at) = shadowing(text, known_tools, &def.name, &compiled.coercion) {
            push(Rule::ToolShadowing, Severity::Block, at);
        }
        if let Some(m) = compiled.padding.find(text) {
            push(Rule::Padding, Severity::Warn, m.start());
        }
        if location.ends_with("/description")
            && text.chars().count() > options.max_description_chars
        {
            push(Rule::LongDescription, Severity::Warn, 0);
        }
    }
    findings
}

/// `known` is `name` itself or `name` under a prefix (`fs__read_file` for `read_file`).
fn is_same_tool(known: &str, name: &str) -> bool {
    known == name
        || known
            .strip_suffix(name)
            .is_some_and(|prefix| prefix.ends_with(|c: char| !c.is_ascii_alphanumeric()))
}

/// The offset of a sentence that names another tool (one of `known` that is not `name`) and
/// tells how it must be called. The other names are looked at only for a sentence that
/// coerces, so scanning a whole catalog stays linear in its size when nothing does.
fn shadowing(text: &str, known: &[String], name: &str, coercion: &Regex) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut start = 0;
    for sentence in lower.split_inclusive(['.', '!', '?', '\n']) {
        let at = start;
        start += sentence.len();
        if !coercion.is_match(sentence) {
            continue;
        }
        let names_other = known
            .iter()
            .filter(|t| t.len() >= 3 && !is_same_tool(t, name))
            .any(|other| mentions(sentence, &other.to_ascii_lowercase()));
        if names_other {
            return Some(at);
        }
    }
    None
}

/// `name` occurs in `text` as a token of its own (not inside a longer identifier; a leading `_`
/// is allowed so `mcp_tool_send_email` names `send_email`).
fn mentions(text: &str, name: &str) -> bool {
    let bytes = text.as_bytes();
    text.match_indices(name).any(|(i, m)| {
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(i + m.len()).copied();
        !before.is_some_and(|b| b.is_ascii_alphanumeric())
            && !after.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

/// Every string and key in `value` with its JSON pointer; `_meta` and `icons` are skipped (not
/// shown to the model).
fn collect<'a>(value: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::String(s) => out.push((at, s)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect(item, format!("{at}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                if at.is_empty() && (key == "_meta" || key == "icons") {
                    continue;
                }
                let here = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                out.push((format!("{here}#key"), key));
                collect(item, here, out);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn finding(
    def: &Definition,
    rule: Rule,
    severity: Severity,
    location: &str,
    text: &str,
    at: usize,
) -> Finding {
    Finding {
        rule,
        severity,
        kind: def.kind,
        name: def.name.clone(),
        location: location.to_owned(),
        excerpt: excerpt(text, at),
    }
}

const EXCERPT_CHARS: usize = 120;

/// About 120 characters of `text` starting a little before byte `at`, on one line. Hidden
/// characters are made visible: a run of Unicode tag characters is decoded to the ASCII it
/// smuggles (`⟨tags:Read ~/.ssh/id_rsa⟩`), others are written `\u{XXXX}`.
fn excerpt(text: &str, at: usize) -> String {
    let start = text
        .char_indices()
        .map(|(i, _)| i)
        .filter(|&i| i <= at)
        .rev()
        .nth(20)
        .unwrap_or(0);
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut in_tags = false;
    let mut last_space = false;
    for c in text[start..].chars() {
        if out.chars().count() >= EXCERPT_CHARS {
            if in_tags {
                out.push('⟩');
            }
            out.push('…');
            return out;
        }
        let is_tag = unicode::classify(c) == Some(unicode::Hidden::Tag);
        if in_tags && !is_tag {
            out.push('⟩');
        }
        if is_tag && !in_tags {
            out.push_str("⟨tags:");
        }
        in_tags = is_tag;
        if is_tag {
            let ascii = char::from_u32(u32::from(c) - 0xE0000).filter(char::is_ascii_graphic);
            out.push(ascii.unwrap_or(' '));
            last_space = false;
        } else if c.is_whitespace() {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push_str(&unicode::escape_hidden(c.encode_utf8(&mut [0; 4])));
            last_space = false;
        }
    }
    if in_tags {
        out.push('⟩');
    }
    out.trim_end().to_owned()
}

/// Do `findings` block the definition under `action`?
pub fn blocks(findings: &[Finding], action: portcullis_config::ScanAction) -> bool {
    action == portcullis_config::ScanAction::Block
        && findings.iter().any(|f| f.severity == Severity::Block)
}

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
