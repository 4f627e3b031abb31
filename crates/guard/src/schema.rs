//! A tool's `inputSchema` and `outputSchema`, compiled once per definition.
//!
//! Schemas come from upstream servers, so compiling them is itself guarded: remote `$ref`s are
//! never fetched (`jsonschema` is built without its HTTP and file resolvers and every validator
//! is built `offline()`), and `pattern` keywords run on the linear-time `regex` engine. A schema
//! that does not compile fails closed: the gateway must refuse calls to that tool.
//!
//! Compiled tools are cached by the SHA-256 of their definition, so a changed definition is a new
//! entry and an unchanged one is compiled once however many sessions list it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jsonschema::{PatternOptions, Validator};
use serde_json::Value;

use crate::pins::digest;

/// A tool's compiled schemas.
pub struct CompiledTool {
    pub name: String,
    /// `None` when the tool declares no `inputSchema` (any object is accepted).
    input: Option<Validator>,
    output: Option<Validator>,
    /// SHA-256 (hex) of the canonical definition.
    pub digest: String,
}

impl std::fmt::Debug for CompiledTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledTool")
            .field("name", &self.name)
            .field("input", &self.input.is_some())
            .field("output", &self.output.is_some())
            .field("digest", &self.digest)
            .finish()
    }
}

/// Why a tool's schema could not be compiled. The tool must not be callable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tool {tool:?}: {which} does not compile: {reason}")]
pub struct SchemaError {
    pub tool: String,
    /// `inputSchema` or `outputSchema`.
    pub which: &'static str,
    pub reason: String,
}

/// Which JSON Schema keyword a value broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message} ({keyword})", if pointer.is_empty() { "arguments" } else { pointer.as_str() })]
pub struct Violation {
    /// JSON pointer to the offending value (`/limit`, `/edits/0/oldText`; empty for the root).
    pub pointer: String,
    /// The keyword that failed (`type`, `required`, `maximum`, `additionalProperties`, …).
    pub keyword: String,
    /// What was wrong, without echoing the value.
    pub message: String,
}

/// Why a result does not match the tool's `outputSchema`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputViolation {
    #[error("the tool declares an outputSchema but its result has no structuredContent")]
    MissingStructuredContent,
    #[error("structuredContent {0}")]
    Invalid(Violation),
}

fn compile(tool: &str, which: &'static str, schema: &Value) -> Result<Validator, SchemaError> {
    jsonschema::options()
        .offline()
        .with_pattern_options(PatternOptions::regex())
        .build(schema)
        .map_err(|e| SchemaError {
            tool: tool.to_owned(),
            which,
            reason: e.to_string(),
        })
}

impl CompiledTool {
    /// Whether the tool declares an `outputSchema` its results are checked against.
    pub fn has_output(&self) -> bool {
        self.output.is_some()
    }

    /// Compiles a tool definition (an object from `tools/list`).
    pub fn compile(definition: &Value) -> Result<CompiledTool, SchemaError> {
        let name = definition
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let input = definition
            .get("inputSchema")
            .map(|s| compile(&name, "inputSchema", s))
            .transpose()?;
        let output = definition
            .get("outputSchema")
            .map(|s| compile(&name, "outputSchema", s))
            .transpose()?;
        Ok(CompiledTool {
            name,
            input,
            output,
            digest: digest(definition),
        })
    }

    pub fn has_output_schema(&self) -> bool {
        self.output.is_some()
    }
}

/// The first violation of `validator` by `instance`, described without echoing the value.
fn first_violation(validator: &Validator, instance: &Value) -> Option<Violation> {
    let error = validator.iter_errors(instance).next()?;
    Some(Violation {
        pointer: error.instance_path().as_str().to_owned(),
        keyword: error.kind().keyword().to_owned(),
        message: error.masked().to_string(),
    })
}

/// Checks a `tools/call`'s `arguments` (absent arguments are checked as `{}`).
pub fn check_args(tool: &CompiledTool, arguments: Option<&Value>) -> Result<(), Violation> {
    let Some(validator) = &tool.input else {
        return Ok(());
    };
    let empty = Value::Object(serde_json::Map::new());
    match first_violation(validator, arguments.unwrap_or(&empty)) {
        None => Ok(()),
        Some(v) => Err(v),
    }
}

/// Checks a `tools/call` result against the tool's `outputSchema`, when it declares one: a
/// result that is not an error must carry `structuredContent` that validates (MCP 2025-06-18+).
pub fn check_output(tool: &CompiledTool, result: &Value) -> Result<(), OutputViolation> {
    let Some(validator) = &tool.output else {
        return Ok(());
    };
    if result.get("isError").and_then(Value::as_bool) == Some(true) {
        return Ok(());
    }
    let Some(structured) = result.get("structuredContent") else {
        return Err(OutputViolation::MissingStructuredContent);
    };
    match first_violation(validator, structured) {
        None => Ok(()),
        Some(v) => Err(OutputViolation::Invalid(v)),
    }
}

/// Compiled tools by the digest of their definition. Bounded: when full, it starts over (the
/// definitions in use are compiled again on their next call).
#[derive(Default)]
pub struct SchemaCache {
    entries: Mutex<HashMap<String, Arc<CompiledTool>>>,
}

impl std::fmt::Debug for SchemaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaCache").finish_non_exhaustive()
    }
}

const CACHE_CAPACITY: usize = 4096;

impl SchemaCache {
    pub fn new() -> SchemaCache {
        SchemaCache::default()
    }

    /// The compiled form of `definition`, compiling it on first sight.
    pub fn get(&self, definition: &Value) -> Result<Arc<CompiledTool>, SchemaError> {
        let key = digest(definition);
        if let Some(hit) = self.lock().get(&key) {
            return Ok(Arc::clone(hit));
        }
        let compiled = Arc::new(CompiledTool::compile(definition)?);
        let mut entries = self.lock();
        if entries.len() >= CACHE_CAPACITY {
            entries.clear();
        }
        entries.insert(key, Arc::clone(&compiled));
        Ok(compiled)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<CompiledTool>>> {
        // A panic while holding the lock cannot leave the map inconsistent (single inserts).
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
