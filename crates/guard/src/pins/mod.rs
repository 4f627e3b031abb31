//! Tool pinning (rug-pull protection): the first definition of each tool, prompt and resource
//! template an upstream shows is recorded; a later, different definition is blocked until an
//! operator accepts it (`portcullis pins accept`).
//!
//! A definition's digest is the SHA-256 (hex) of its canonical JSON (RFC 8785: sorted keys,
//! shortest numbers, minimal escapes), over the whole object except `_meta` — name, title,
//! description, inputSchema, outputSchema, annotations and any field a future revision adds.

mod store;

use serde_json::Value;
use sha2::{Digest, Sha256};

pub use store::{Accepted, BlockedPin, PinError, PinStore};

/// What kind of definition a pin holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Tool,
    Prompt,
    ResourceTemplate,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tool => "tool",
            Kind::Prompt => "prompt",
            Kind::ResourceTemplate => "resource_template",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        match text {
            "tool" => Some(Kind::Tool),
            "prompt" => Some(Kind::Prompt),
            "resource_template" => Some(Kind::ResourceTemplate),
            _ => None,
        }
    }

    /// The `…/list` method and the result key that list these definitions.
    pub fn list_method(self) -> (&'static str, &'static str) {
        match self {
            Kind::Tool => ("tools/list", "tools"),
            Kind::Prompt => ("prompts/list", "prompts"),
            Kind::ResourceTemplate => ("resources/templates/list", "resourceTemplates"),
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One definition as an upstream listed it (the upstream's own name, without the gateway's prefix).
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    pub kind: Kind,
    /// `name` for tools and prompts, `uriTemplate` for resource templates.
    pub name: String,
    pub value: Value,
}

impl Definition {
    /// Reads the identifying name from a listed object; `None` when it has none.
    pub fn new(kind: Kind, value: Value) -> Option<Definition> {
        let key = match kind {
            Kind::ResourceTemplate => "uriTemplate",
            Kind::Tool | Kind::Prompt => "name",
        };
        let name = value.get(key)?.as_str()?.to_owned();
        Some(Definition { kind, name, value })
    }

    pub fn digest(&self) -> String {
        digest(&self.value)
    }
}

/// SHA-256 (hex) of `value`'s canonical JSON, without a top-level `_meta`.
pub fn digest(value: &Value) -> String {
    let bytes = match value {
        Value::Object(map) if map.contains_key("_meta") => {
            let mut map = map.clone();
            map.remove("_meta");
            canonical(&Value::Object(map))
        }
        _ => canonical(value),
    };
    hex::encode(Sha256::digest(bytes))
}

/// RFC 8785 canonical JSON. Serializing a `serde_json::Value` cannot fail (its keys are strings
/// and its numbers finite), so the fallback is unreachable; it still yields a stable encoding.
pub fn canonical(value: &Value) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(value).unwrap_or_else(|_| value.to_string().into_bytes())
}

/// How a listed definition compares with its pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinState {
    /// Seen for the first time (and pinned now, unless only peeking).
    New,
    Unchanged,
    /// Different from the pinned definition: blocked until accepted.
    Changed {
        pinned_digest: String,
        seen_digest: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinStatus {
    pub kind: Kind,
    pub name: String,
    pub state: PinState,
}

impl PinStatus {
    pub fn is_blocked(&self) -> bool {
        matches!(self.state, PinState::Changed { .. })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn digest_ignores_key_order_and_meta_but_nothing_else() {
        let a = json!({"name": "t", "description": "d", "inputSchema": {"type": "object", "properties": {"x": {"type": "number"}}}});
        let b = json!({"inputSchema": {"properties": {"x": {"type": "number"}}, "type": "object"}, "description": "d", "name": "t", "_meta": {"v": 1}});
        assert_eq!(digest(&a), digest(&b));
        let rows = [
            json!({"name": "t", "description": "d ", "inputSchema": {"type": "object", "properties": {"x": {"type": "number"}}}}),
            json!({"name": "t", "description": "d", "inputSchema": {"type": "object", "properties": {"x": {"type": "integer"}}}}),
            json!({"name": "t", "description": "d", "inputSchema": {"type": "object", "properties": {"x": {"type": "number"}}}, "annotations": {"readOnlyHint": true}}),
            json!({"name": "t", "description": "d", "inputSchema": {"type": "object", "properties": {"x": {"type": "number"}}}, "title": "T"}),
            json!({"name": "t", "description": "d", "inputSchema": {"type": "object", "properties": {"x": {"type": "number"}}}, "outputSchema": {"type": "object"}}),
        ];
        for changed in rows {
            assert_ne!(digest(&a), digest(&changed), "{changed}");
        }
    }

    #[test]
    fn canonical_form_is_rfc8785() {
        let v = json!({"b": [1.0, 1e21, "é\u{7f}"], "a": {"z": null, "y": true}});
        assert_eq!(
            String::from_utf8(canonical(&v)).unwrap(),
            "{\"a\":{\"y\":true,\"z\":null},\"b\":[1,1e+21,\"é\u{7f}\"]}"
        );
    }

    #[test]
    fn definitions_are_named_by_name_or_uri_template() {
        let t = Definition::new(Kind::Tool, json!({"name": "echo"})).unwrap();
        assert_eq!(t.name, "echo");
        let r = Definition::new(
            Kind::ResourceTemplate,
            json!({"name": "Doc", "uriTemplate": "doc://{id}"}),
        )
        .unwrap();
        assert_eq!(r.name, "doc://{id}");
        assert!(Definition::new(Kind::Prompt, json!({"title": "x"})).is_none());
    }
}
