//! Request handling, independent of transport: `(request, context) → result or error`.
//!
//! Transports decide the [`Era`] (and hold legacy scopes); this file decides what each method
//! answers in each era, and shapes modern results (`resultType`, cache hints, `serverInfo`).

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::era::{ClientCaps, Era, Legacy, META_SERVER_INFO, SUPPORTED_VERSIONS};
use crate::files::Root;
use crate::jsonrpc::{Request, RpcError};
use crate::peer::Peer;
use crate::tools::Tools;
use crate::{prompts, resources};

pub(crate) const SERVER_NAME: &str = "portcullis-demo";
pub(crate) const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");
const INSTRUCTIONS: &str = "Demo MCP server bundled with Portcullis. Tools: echo, add, list_files, \
read_file, write_file, fetch_url, slow, ask_name. Resources: the files of its root directory.";

/// How long clients may cache static lists (tools, prompts, templates, discovery).
const TTL_STATIC_MS: u64 = 300_000;
/// How long clients may cache views of the directory (which can change at any time).
const TTL_FILES_MS: u64 = 5_000;

const LOG_LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// What a request is served with besides its own body.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub era: Era,
    pub caps: ClientCaps,
    pub peer: Peer,
}

/// The demo server: its directory and its tools. Shared by every request.
#[derive(Debug)]
pub(crate) struct Server {
    root: Root,
    tools: Tools,
}

pub(crate) fn server_info() -> Value {
    json!({ "name": SERVER_NAME, "version": SERVER_VERSION })
}

fn capabilities() -> Value {
    json!({
        "tools": { "listChanged": false },
        "resources": { "subscribe": false },
        "prompts": {},
        "logging": {},
    })
}

impl Server {
    pub(crate) fn new(root: &Path) -> std::io::Result<Self> {
        let root = Root::new(root)?;
        let tools = Tools::new(root.clone());
        Ok(Self { root, tools })
    }

    /// Legacy `initialize`: negotiates the revision and returns what the scope should remember.
    pub(crate) fn initialize(
        &self,
        params: &Map<String, Value>,
    ) -> Result<(Legacy, ClientCaps, Value), RpcError> {
        let Some(requested) = params.get("protocolVersion").and_then(Value::as_str) else {
            return Err(RpcError::invalid_params(
                "Invalid params: initialize needs protocolVersion (a string)",
            ));
        };
        let version = Legacy::negotiate(requested);
        let caps = ClientCaps::from_value(params.get("capabilities"));
        let result = json!({
            "protocolVersion": version.as_str(),
            "capabilities": capabilities(),
            "serverInfo": server_info(),
            "instructions": INSTRUCTIONS,
        });
        Ok((version, caps, result))
    }

    /// Answers one request in the given context.
    pub(crate) async fn handle(&self, req: &Request, ctx: &Ctx) -> Result<Value, RpcError> {
        let p = &req.params;
        let result = match (req.method.as_str(), ctx.era) {
            ("server/discover", Era::Modern) => Ok(json!({
                "supportedVersions": SUPPORTED_VERSIONS,
                "capabilities": capabilities(),
                "instructions": INSTRUCTIONS,
            })),
            ("ping", Era::Legacy(_)) => Ok(json!({})),
            ("logging/setLevel", Era::Legacy(_)) => set_level(p),
            ("tools/list", _) => no_cursor(p).map(|()| json!({ "tools": self.tools.list() })),
            ("tools/call", _) => self.tools.call(p, ctx).await,
            ("resources/list", _) => resources::list(&self.root, p).await,
            ("resources/read", era) => resources::read(&self.root, p, era).await,
            ("resources/templates/list", _) => no_cursor(p).map(|()| resources::templates()),
            ("prompts/list", _) => no_cursor(p).map(|()| prompts::list()),
            ("prompts/get", _) => prompts::get(p),
            (method, _) => Err(RpcError::method_not_found(method)),
        }?;
        Ok(match ctx.era {
            Era::Modern => finish_modern(&req.method, result),
            Era::Legacy(_) => result,
        })
    }
}

/// Lists here fit one page, so no cursor is ever issued: any cursor is invalid.
fn no_cursor(params: &Map<String, Value>) -> Result<(), RpcError> {
    match params.get("cursor") {
        None | Some(Value::Null) => Ok(()),
        Some(_) => Err(RpcError::invalid_params("Invalid params: unknown cursor")),
    }
}

fn set_level(params: &Map<String, Value>) -> Result<Value, RpcError> {
    match params.get("level").and_then(Value::as_str) {
        Some(level) if LOG_LEVELS.contains(&level) => Ok(json!({})),
        _ => Err(RpcError::invalid_params(
            "Invalid params: level must be a syslog level name",
        )),
    }
}

/// Modern results say what they are, how long they keep, and who answered.
fn finish_modern(method: &str, mut result: Value) -> Value {
    let Value::Object(map) = &mut result else {
        return result;
    };
    let complete = match map.get("resultType") {
        None => {
            map.insert("resultType".into(), Value::from("complete"));
            true
        }
        Some(kind) => kind == "complete",
    };
    let ttl = match method {
        "server/discover" | "tools/list" | "prompts/list" | "resources/templates/list" => {
            Some(TTL_STATIC_MS)
        }
        "resources/list" | "resources/read" => Some(TTL_FILES_MS),
        _ => None,
    };
    if let (true, Some(ttl)) = (complete, ttl) {
        map.insert("ttlMs".into(), Value::from(ttl));
        map.insert("cacheScope".into(), Value::from("public"));
    }
    if let Value::Object(meta) = map
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()))
    {
        meta.insert(META_SERVER_INFO.into(), server_info());
    }
    result
}

#[cfg(test)]
pub(crate) mod tests;
