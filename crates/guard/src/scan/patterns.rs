//! The phrase rules of the poisoning scan, written from published MCP tool-poisoning write-ups
//! (Invariant Labs' tool poisoning, shadowing and WhatsApp rug-pull examples; CyberArk's
//! full-schema poisoning; Trail of Bits' "line jumping" and ANSI escape examples; Embrace The
//! Red's Unicode tag smuggling). Each is case-insensitive and matched against one text field.

use regex::{Regex, RegexBuilder};

use super::{Rule, Severity};

pub(super) struct Phrase {
    pub rule: Rule,
    pub severity: Severity,
    pub regex: Regex,
}

const PHRASES: &[(Rule, Severity, &str)] = &[
    // Tags that address the model rather than describe the tool.
    (
        Rule::ModelInstruction,
        Severity::Block,
        r#"<\s*/?\s*(important|system|instructions?|secret|hidden|admin|critical|assistant|sudo)\s*>"#,
    ),
    (
        Rule::ModelInstruction,
        Severity::Block,
        r#"\b(ignore|disregard|forget|override|bypass)\s+(all\s+|any\s+)?(of\s+)?(the\s+|your\s+)?(previous|prior|above|earlier|preceding|original|system|other)\s+(instructions?|prompts?|rules|messages|directions|guidelines)"#,
    ),
    (
        Rule::ModelInstruction,
        Severity::Block,
        r#"\b(do\s+not|don'?t|never|without)\s+(tell(ing)?|inform(ing)?|mention(ing)?|reveal(ing)?|notify(ing)?|alert(ing)?|disclos(e|ing)|let(ting)?\s+the\s+user\s+know)\b"#,
    ),
    (
        Rule::ModelInstruction,
        Severity::Block,
        r#"\bbefore\s+(using|calling|invoking|running|executing)\s+(this|any|the|other)\s+(tool|tools|function|command)\b[^.]{0,80}?\b(read|open|cat|call|fetch|send|include|run|execute|pass|upload|forward|share|post|copy|write)\b"#,
    ),
    (
        Rule::ModelInstruction,
        Severity::Block,
        r#"\b(otherwise|or\s+else)\s+(the\s+)?(tool|system|application|server|request)\s+(will|would)\s+(not\s+work|crash|fail|break)|\b(the\s+)?(system|application)\s+will\s+crash\b|\b(very\s+){2,}important\b"#,
    ),
    (
        Rule::ModelInstruction,
        Severity::Block,
        r#"\b(you\s+are\s+now|new\s+instructions?\s*:|from\s+now\s+on,?\s+you|act\s+as\s+(an?\s+)?(system|admin|root))\b"#,
    ),
    // Files and stores that hold credentials.
    (
        Rule::CredentialAccess,
        Severity::Block,
        r#"~/\.(ssh|aws|gnupg|kube|docker|azure|cursor|config/gcloud|npmrc|netrc|pgpass|git-credentials)\b|(^|[^a-z0-9])id_(rsa|dsa|ecdsa|ed25519)\b|\bmcp\.json\b|(^|[\s'`(/])\.env\b|/etc/(passwd|shadow|sudoers)\b|\.aws/credentials\b|\bauthorized_keys\b|\bwallet\.dat\b|\bclaude_desktop_config\.json\b"#,
    ),
    (
        Rule::CredentialAccess,
        Severity::Warn,
        r#"\b(read|send|include|pass|provide|share|extract|collect|upload|copy|print|output|return|attach|append|ask|paste|request|reveal|enter)\b[^.]{0,60}\b(api[\s_-]?keys?|credentials|passwords?|private\s+keys?|ssh\s+keys?|access\s+tokens?|session\s+cookies?|seed\s+phrases?|mnemonics?|secret\s+keys?)\b"#,
    ),
    // Moving data out: to an address, or smuggled into a parameter.
    (
        Rule::Exfiltration,
        Severity::Block,
        r#"\b(send|post|upload|forward|transmit|exfiltrate|leak|copy|report|bcc|cc)\b[^.]{0,80}?\bto\s+(https?://\S+|[\w.+-]+@[\w-]+\.[\w.-]+|\+?[0-9][0-9 ()-]{7,})"#,
    ),
    (
        Rule::Exfiltration,
        Severity::Block,
        r#"\b(pass|include|put|send|provide|embed|insert|append|add)\s+(its|the|their|this|that|your|all|every)?\s*(full\s+|entire\s+|complete\s+|raw\s+)?(content|contents|output|text|data|results?|history|conversation|messages?|file)\b[^.]{0,40}?\b(as|in|into|inside|within)\s+(the\s+)?(['`"]\w+['`"]|\w+\s+(parameter|argument|field|param)\b)"#,
    ),
    (
        Rule::Exfiltration,
        Severity::Block,
        r#"\b(include|pass|send|append|provide|attach|put|add|forward)\b[^.]{0,60}?\b(conversation\s+history|chat\s+history|(full|entire|whole)\s+conversation|previous\s+messages|last\s+messages|list\s+of\s+(last|previous|all)\s+messages|system\s+prompt|result\s+of\s+(a\s+)?previous\s+\w+\s+call)"#,
    ),
    // Describing how *other* tools behave, without naming them.
    (
        Rule::ToolShadowing,
        Severity::Block,
        r#"\bside[\s-]effects?\s+on\s+(the\s+)?(also\s+present\s+|other\s+)?\S+\s+tools?\b|\bwhen\s+(\(\S+\)\s+)?\S+\s+(tool\s+)?is\s+(invoked|called|used|executed),?\s+(make\s+sure|always|you\s+must|change|replace|set)\b|\b(all\s+|any\s+|every\s+)?other\s+tools?\b[^.]{0,60}\b(must|should|always|has\s+to|have\s+to)\b"#,
    ),
];

pub(super) fn compile() -> Result<Vec<Phrase>, regex::Error> {
    PHRASES
        .iter()
        .map(|(rule, severity, pattern)| {
            Ok(Phrase {
                rule: *rule,
                severity: *severity,
                regex: RegexBuilder::new(pattern).case_insensitive(true).build()?,
            })
        })
        .collect()
}

/// Directive words that, next to another tool's name, tell the model how to call that tool.
pub(super) const COERCION: &str = r"(?i)\b(must|should|always|never|has\s+to|have\s+to|needs?\s+to|make\s+sure|instead\s+of|change\s+the|replace|redirect|is\s+(invoked|called|used))\b";
