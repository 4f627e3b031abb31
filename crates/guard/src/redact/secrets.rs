//! The `secrets` rule set: credentials that must not leave the gateway in a result or a log.
//!
//! Most rules are transcribed from gitleaks (MIT; see `secrets_table.rs` and crates/guard/NOTICE):
//! cloud keys (AWS, GCP, Azure), source-forge tokens (GitHub, GitLab), chat and payment tokens
//! (Slack, Stripe, …), JWTs, private key blocks and gitleaks' generic `key = value` rule with its
//! entropy threshold, allowlist and stop words. Two rules are our own, for shapes that appear in
//! tool output rather than in source code: passwords inside URLs and bearer tokens.

use super::Rule;
use super::secrets_table::{RULES, STOPWORDS};

/// One gitleaks rule as transcribed.
pub(super) struct SecretDef {
    pub id: &'static str,
    pub regex: &'static str,
    pub keywords: &'static [&'static str],
    pub entropy: Option<f64>,
    pub secret_group: Option<usize>,
    /// (applies to the whole match rather than the secret, regex)
    pub allow: &'static [(bool, &'static str)],
    pub stopwords: bool,
}

pub(super) fn stopwords() -> &'static [&'static str] {
    STOPWORDS
}

/// The `secrets` rules, compiled.
pub(super) fn rules() -> Result<Vec<Rule>, regex::Error> {
    let mut out = Vec::with_capacity(RULES.len() + 2);
    out.push(
        Rule::new(
            "password_in_url",
            // scheme://user:PASSWORD@host — the password is the secret.
            r"(?i)\b[a-z][a-z0-9+.-]{1,20}://[^\s:/@?#]{0,100}:([^\s/@?#]{1,200})@[a-z0-9\[]",
            &["://"],
        )?
        .group(1),
    );
    out.push(
        Rule::new(
            "bearer_token",
            r"(?i)\bbearer\s+([a-z0-9._~+/-]{20,}=*)",
            &["bearer"],
        )?
        .group(1)
        .entropy(3.0),
    );
    for def in RULES {
        let mut rule = Rule::new(&def.id.replace('-', "_"), def.regex, def.keywords)?;
        if let Some(g) = def.secret_group {
            rule = rule.group(g);
        }
        if let Some(e) = def.entropy {
            rule = rule.entropy(e);
        }
        for (whole_match, allow) in def.allow {
            rule = rule.allow(*whole_match, allow)?;
        }
        if def.stopwords {
            rule = rule.with_stopwords();
        }
        out.push(rule);
    }
    Ok(out)
}
