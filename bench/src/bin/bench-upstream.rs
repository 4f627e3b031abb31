//! A minimal, fast MCP server for load tests (2026-07-28, stateless, Streamable HTTP, JSON
//! replies): `server/discover`, `tools/list` (`--tools N` tools), `tools/call` of `echo`
//! (returns its `message`; `--result-bytes N` pads the text), and `GET /count` (requests
//! served, to measure the gateway's upstream requests per client call).
//!
//! It also answers a 2025-era client (for peer gateways that speak only the handshake era):
//! `initialize` (negotiates 2025-03-26, 2025-06-18 or 2025-11-25 and hands out an
//! `Mcp-Session-Id`, which it does not require afterwards), `ping`, notifications (202),
//! `GET` of the endpoint (405: no SSE stream) and `DELETE` of a session (204). Replies are
//! always JSON, never SSE. Every request but `GET /count` is counted.
//!
//! `bench-upstream --addr 127.0.0.1:9100 [--tools 1] [--result-bytes 0]`

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};

struct State {
    served: AtomicU64,
    sessions: AtomicU64,
    tools: Value,
    padding: String,
}

fn main() -> ExitCode {
    let mut addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 9100));
    let mut tools = 1usize;
    let mut result_bytes = 0usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        let ok = match flag.as_str() {
            "--addr" => value.parse().map(|v| addr = v).is_ok(),
            "--tools" => value.parse().map(|v| tools = v).is_ok(),
            "--result-bytes" => value.parse().map(|v| result_bytes = v).is_ok(),
            _ => false,
        };
        if !ok {
            eprintln!("usage: bench-upstream --addr HOST:PORT [--tools N] [--result-bytes N]");
            return ExitCode::from(2);
        }
    }
    let state = Arc::new(State {
        served: AtomicU64::new(0),
        sessions: AtomicU64::new(0),
        tools: tool_list(tools),
        padding: "x".repeat(result_bytes),
    });
    portcullis_bench::run("bench-upstream", None, serve(addr, state))
}

fn tool_list(n: usize) -> Value {
    let tools: Vec<Value> = (0..n.max(1))
        .map(|i| {
            let name = if i == 0 {
                "echo".to_owned()
            } else {
                format!("tool_{i}")
            };
            json!({
                "name": name,
                "description": "Returns the message it is given.",
                "inputSchema": {
                    "type": "object",
                    "properties": {"message": {"type": "string", "maxLength": 4096}},
                    "required": ["message"],
                    "additionalProperties": false
                },
                "annotations": {"readOnlyHint": true, "openWorldHint": false}
            })
        })
        .collect();
    // `ttlMs` and `cacheScope` are required on 2026-07-28 list and discover results.
    json!({ "tools": tools, "ttlMs": 0, "cacheScope": "public", "resultType": "complete" })
}

async fn serve(addr: SocketAddr, state: Arc<State>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "bench-upstream listening on http://{}/mcp",
        listener.local_addr()?
    );
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(Arc::clone(&state), req));
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    if req.method() == Method::GET && req.uri().path() == "/count" {
        let n = state.served.load(Ordering::Relaxed);
        return Ok(reply(StatusCode::OK, Bytes::from(n.to_string())));
    }
    state.served.fetch_add(1, Ordering::Relaxed);
    if req.method() == Method::DELETE {
        // A 2025-era client ending its session.
        return Ok(reply(StatusCode::NO_CONTENT, Bytes::new()));
    }
    if req.method() != Method::POST {
        // Includes a 2025-era client's GET for a server-to-client SSE stream: none here.
        return Ok(reply(StatusCode::METHOD_NOT_ALLOWED, Bytes::new()));
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(reply(StatusCode::BAD_REQUEST, Bytes::new())),
    };
    let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
        return Ok(reply(StatusCode::BAD_REQUEST, Bytes::new()));
    };
    let id = msg.get("id").cloned().unwrap_or(Value::Null);
    if id.is_null() {
        return Ok(reply(StatusCode::ACCEPTED, Bytes::new()));
    }
    let result = match msg
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default()
    {
        "server/discover" => json!({
            "supportedVersions": ["2026-07-28"],
            "capabilities": {"tools": {}},
            "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "bench-upstream", "version": "0"}},
            "ttlMs": 0,
            "cacheScope": "public",
            "resultType": "complete"
        }),
        "initialize" => return Ok(initialize(&state, &msg, id)),
        "ping" => json!({}),
        "tools/list" => state.tools.clone(),
        "tools/call" => {
            let message = msg
                .pointer("/params/arguments/message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            json!({
                "content": [{"type": "text", "text": format!("{message}{}", state.padding)}],
                "isError": false,
                "resultType": "complete"
            })
        }
        other => {
            let err = json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": format!("Method not found: {other}")}});
            return Ok(reply(StatusCode::OK, Bytes::from(err.to_string())));
        }
    };
    let out = json!({"jsonrpc": "2.0", "id": id, "result": result});
    Ok(reply(StatusCode::OK, Bytes::from(out.to_string())))
}

/// The 2025-era handshake: the requested version if it is one this server knows, else the
/// newest 2025 one; a fresh `Mcp-Session-Id` on the reply.
fn initialize(state: &State, msg: &Value, id: Value) -> Response<Full<Bytes>> {
    const KNOWN: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];
    let requested = msg
        .pointer("/params/protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let version = KNOWN
        .iter()
        .find(|v| **v == requested)
        .copied()
        .unwrap_or(KNOWN[0]);
    let out = json!({"jsonrpc": "2.0", "id": id, "result": {
        "protocolVersion": version,
        "capabilities": {"tools": {}},
        "serverInfo": {"name": "bench-upstream", "version": "0"}
    }});
    let mut resp = reply(StatusCode::OK, Bytes::from(out.to_string()));
    let session = format!(
        "bench-{:016x}",
        state.sessions.fetch_add(1, Ordering::Relaxed) + 1
    );
    if let Ok(value) = hyper::header::HeaderValue::from_str(&session) {
        resp.headers_mut().insert("mcp-session-id", value);
    }
    resp
}
