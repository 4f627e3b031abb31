//! Tools: their definitions (in a fixed order) and `tools/call` dispatch.
//!
//! Unknown tools and malformed calls are protocol errors (`-32602`); bad arguments and failures
//! while running are tool results with `isError: true`, so a model can correct itself.

use serde_json::{Map, Number, Value, json};

use crate::files::Root;
use crate::jsonrpc::RpcError;
use crate::server::Ctx;
use crate::{fetch, interactive};

/// A successful tool result with one text block.
pub(crate) fn text_result(text: impl Into<String>) -> Value {
    json!({ "content": [{ "type": "text", "text": text.into() }], "isError": false })
}

/// A failed tool result (an execution error the model can see and act on).
pub(crate) fn error_result(text: impl Into<String>) -> Value {
    json!({ "content": [{ "type": "text", "text": text.into() }], "isError": true })
}

fn annotations(read_only: bool, destructive: bool, idempotent: bool, open_world: bool) -> Value {
    json!({
        "readOnlyHint": read_only,
        "destructiveHint": destructive,
        "idempotentHint": idempotent,
        "openWorldHint": open_world,
    })
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn definitions() -> Vec<Value> {
    let string = |d: &str| json!({ "type": "string", "description": d });
    vec![
        json!({
            "name": "echo", "title": "Echo",
            "description": "Returns the message it is given.",
            "inputSchema": object(json!({ "message": string("Text to send back") }), &["message"]),
            "outputSchema": object(json!({ "message": { "type": "string" } }), &["message"]),
            "annotations": annotations(true, false, true, false),
        }),
        json!({
            "name": "add", "title": "Add",
            "description": "Adds two numbers.",
            "inputSchema": object(json!({
                "a": { "type": "number", "description": "First addend" },
                "b": { "type": "number", "description": "Second addend" },
            }), &["a", "b"]),
            "annotations": annotations(true, false, true, false),
        }),
        json!({
            "name": "list_files", "title": "List files",
            "description": "Lists the names of the files in the demo directory.",
            "inputSchema": object(json!({}), &[]),
            "annotations": annotations(true, false, true, false),
        }),
        json!({
            "name": "read_file", "title": "Read file",
            "description": "Reads a text file from the demo directory.",
            "inputSchema": object(json!({
                "path": { "type": "string", "minLength": 1, "description": "Path relative to the demo directory" },
            }), &["path"]),
            "annotations": annotations(true, false, true, false),
        }),
        json!({
            "name": "write_file", "title": "Write file",
            "description": "Creates or replaces a text file in the demo directory.",
            "inputSchema": object(json!({
                "path": { "type": "string", "minLength": 1, "description": "Path relative to the demo directory" },
                "content": string("The new content of the file"),
            }), &["path", "content"]),
            "annotations": annotations(false, true, true, false),
        }),
        json!({
            "name": "fetch_url", "title": "Fetch URL",
            "description": "Fetches a URL with HTTP GET and returns the status and the start of the body.",
            "inputSchema": object(json!({
                "url": { "type": "string", "format": "uri", "description": "http or https URL" },
                "max_bytes": {
                    "type": "integer", "minimum": 1, "maximum": fetch::MAX_BYTES_LIMIT,
                    "description": "Most body bytes to return (default 65536)",
                },
            }), &["url"]),
            "annotations": annotations(true, false, true, true),
        }),
        json!({
            "name": "slow", "title": "Slow",
            "description": "Waits, reporting progress at each step. Useful to test progress and cancellation.",
            "inputSchema": object(json!({
                "seconds": { "type": "number", "minimum": 0, "maximum": interactive::MAX_SLOW_SECONDS, "description": "How long to wait" },
                "steps": {
                    "type": "integer", "minimum": 1, "maximum": interactive::MAX_SLOW_STEPS,
                    "description": "Progress notifications to send (default: one per second, at least 1)",
                },
            }), &["seconds"]),
            "annotations": annotations(true, false, true, false),
        }),
        json!({
            "name": "ask_name", "title": "Ask name",
            "description": "Asks the user for their name (elicitation) and greets them.",
            "inputSchema": object(json!({}), &[]),
            "annotations": annotations(true, false, false, false),
        }),
    ]
}

/// Typed access to a call's arguments; each error is a message for an `isError` result.
pub(crate) struct Args<'a>(pub(crate) &'a Map<String, Value>);

impl<'a> Args<'a> {
    fn only(&self, allowed: &[&str]) -> Result<(), String> {
        match self.0.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(extra) => Err(format!("unexpected argument: {extra}")),
            None => Ok(()),
        }
    }

    pub(crate) fn str(&self, name: &str) -> Result<&'a str, String> {
        match self.0.get(name) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(format!("argument {name} must be a string")),
            None => Err(format!("missing required argument: {name}")),
        }
    }

    pub(crate) fn number(&self, name: &str) -> Result<&'a Number, String> {
        match self.0.get(name) {
            Some(Value::Number(n)) => Ok(n),
            Some(_) => Err(format!("argument {name} must be a number")),
            None => Err(format!("missing required argument: {name}")),
        }
    }

    pub(crate) fn opt_u64(&self, name: &str, min: u64, max: u64) -> Result<Option<u64>, String> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(format!(
                    "argument {name} must be an integer from {min} to {max}"
                )),
            },
        }
    }
}

/// The tool set, with what the tools need (the directory and an HTTP client).
#[derive(Debug)]
pub(crate) struct Tools {
    root: Root,
    fetcher: fetch::Fetcher,
    definitions: Value,
}

impl Tools {
    pub(crate) fn new(root: Root) -> Self {
        Self {
            root,
            fetcher: fetch::Fetcher::new(),
            definitions: Value::Array(definitions()),
        }
    }

    pub(crate) fn list(&self) -> Value {
        self.definitions.clone()
    }

    pub(crate) async fn call(
        &self,
        params: &Map<String, Value>,
        ctx: &Ctx,
    ) -> Result<Value, RpcError> {
        let Some(name) = params.get("name").and_then(Value::as_str) else {
            return Err(RpcError::invalid_params(
                "Invalid params: name (a string) is required",
            ));
        };
        let empty = Map::new();
        let args = match params.get("arguments") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(args)) => args,
            Some(_) => {
                return Err(RpcError::invalid_params(
                    "Invalid params: arguments must be an object",
                ));
            }
        };
        let args = Args(args);
        let allowed: &[&str] = match name {
            "echo" => &["message"],
            "add" => &["a", "b"],
            "list_files" | "ask_name" => &[],
            "read_file" => &["path"],
            "write_file" => &["path", "content"],
            "fetch_url" => &["url", "max_bytes"],
            "slow" => &["seconds", "steps"],
            _ => {
                return Err(RpcError::invalid_params(format!(
                    "Invalid params: unknown tool: {name}"
                )));
            }
        };
        if let Err(msg) = args.only(allowed) {
            return Ok(error_result(format!("Invalid arguments: {msg}")));
        }
        let outcome = match name {
            "echo" => args.str("message").map(|m| {
                json!({
                    "content": [{ "type": "text", "text": m }],
                    "structuredContent": { "message": m },
                    "isError": false,
                })
            }),
            "add" => add(&args),
            "list_files" => Ok(self.list_files().await),
            "read_file" => match args.str("path") {
                Ok(path) => Ok(match self.root.read_text(path).await {
                    Ok(text) => text_result(text),
                    Err(e) => error_result(format!("Cannot read {path}: {e}")),
                }),
                Err(e) => Err(e),
            },
            "write_file" => match (args.str("path"), args.str("content")) {
                (Ok(path), Ok(content)) => Ok(match self.root.write_text(path, content).await {
                    Ok(()) => text_result(format!("Wrote {} bytes to {path}", content.len())),
                    Err(e) => error_result(format!("Cannot write {path}: {e}")),
                }),
                (Err(e), _) | (_, Err(e)) => Err(e),
            },
            "fetch_url" => self.fetcher.call(&args).await,
            "slow" => interactive::slow(&args, params, ctx).await,
            _ => return interactive::ask_name(params, ctx).await,
        };
        Ok(outcome.unwrap_or_else(|msg| error_result(format!("Invalid arguments: {msg}"))))
    }

    async fn list_files(&self) -> Value {
        match self.root.top_level_names().await {
            Ok(names) if names.is_empty() => text_result("(no files)"),
            Ok(names) => text_result(names.join("\n")),
            Err(e) => error_result(format!("Cannot list files: {e}")),
        }
    }
}

fn add(args: &Args<'_>) -> Result<Value, String> {
    let (a, b) = (args.number("a")?, args.number("b")?);
    // Integers add exactly (two 64-bit values cannot overflow an i128); others as f64.
    let int = |n: &Number| n.as_i64().map(i128::from).or(n.as_u64().map(i128::from));
    if let (Some(a), Some(b)) = (int(a), int(b)) {
        return Ok(text_result((a + b).to_string()));
    }
    let sum = a.as_f64().unwrap_or(f64::NAN) + b.as_f64().unwrap_or(f64::NAN);
    if sum.is_finite() {
        Ok(text_result(sum.to_string()))
    } else {
        Err("the sum is not a finite number".to_owned())
    }
}

#[cfg(test)]
mod tests;
