//! Streamable HTTP on 127.0.0.1: legacy sessions, modern headers, SSE progress, legacy
//! elicitation over SSE, and cancellation by closing the stream.

use std::time::Duration;

use portcullis_demo_upstream::serve_http;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

const V: &str = "2026-07-28";

struct Upstream {
    _root: tempfile::TempDir,
    url: String,
    http: Client,
}

async fn start() -> Upstream {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("hello.txt"), "hello").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(serve_http(listener, root.path().to_path_buf()));
    Upstream {
        _root: root,
        url,
        http: Client::new(),
    }
}

fn rpc(id: i64, method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
}

fn modern(mut params: Value, caps: Value) -> Value {
    params["_meta"] = json!({ "io.modelcontextprotocol/protocolVersion": V, "io.modelcontextprotocol/clientCapabilities": caps });
    params
}

impl Upstream {
    async fn post(&self, headers: &[(&str, &str)], body: impl Into<reqwest::Body>) -> Response {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(body).send().await.unwrap()
    }

    async fn post_json(&self, headers: &[(&str, &str)], body: &Value) -> (StatusCode, Value) {
        let resp = self.post(headers, body.to_string()).await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A modern request with its mirrored headers.
    async fn modern(
        &self,
        id: i64,
        method: &str,
        name: Option<&str>,
        params: Value,
    ) -> (StatusCode, Value) {
        let mut headers = vec![("mcp-protocol-version", V), ("mcp-method", method)];
        if let Some(name) = name {
            headers.push(("mcp-name", name));
        }
        self.post_json(
            &headers,
            &rpc(id, method, modern(params, json!({ "elicitation": {} }))),
        )
        .await
    }

    async fn initialize(&self, caps: Value) -> String {
        let init = rpc(
            1,
            "initialize",
            json!({ "protocolVersion": "2025-11-25", "capabilities": caps, "clientInfo": { "name": "t", "version": "0" } }),
        );
        let resp = self.post(&[], init.to_string()).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let session = resp.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["result"]["protocolVersion"], "2025-11-25");
        let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        let resp = self
            .post(&[("mcp-session-id", &session)], note.to_string())
            .await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        session
    }
}

/// Reads SSE events (their `data` as JSON) until `n` have arrived or the stream ends.
async fn events(resp: &mut Response, buf: &mut String, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        if let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                out.push(serde_json::from_str(data).unwrap());
            }
            continue;
        }
        match tokio::time::timeout(Duration::from_secs(10), resp.chunk())
            .await
            .unwrap()
            .unwrap()
        {
            Some(chunk) => buf.push_str(std::str::from_utf8(&chunk).unwrap()),
            None => break,
        }
    }
    out
}

#[tokio::test]
async fn legacy_sessions_are_minted_required_and_ended() {
    let up = start().await;
    let session = up.initialize(json!({})).await;
    let call = rpc(
        2,
        "tools/call",
        json!({ "name": "echo", "arguments": { "message": "hi" } }),
    );
    let with = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let (status, body) = up.post_json(&with, &call).await;
    assert_eq!(
        (status, body["result"]["content"][0]["text"].clone()),
        (StatusCode::OK, json!("hi"))
    );

    let (status, _) = up.post_json(&[], &call).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "missing session");
    let (status, _) = up.post_json(&[("mcp-session-id", "nope")], &call).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "unknown session");
    let (status, _) = up
        .post_json(&[with[0], ("mcp-protocol-version", "1999-01-01")], &call)
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "unsupported version header"
    );
    let (status, body) = up.post_json(&with, &rpc(3, "no/such", json!({}))).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::OK, json!(-32601))
    );

    let get = up.http.get(&up.url).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    let del = up
        .http
        .delete(&up.url)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::OK);
    let (status, _) = up.post_json(&with, &call).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "ended session");
    let del = up.http.delete(&up.url).send().await.unwrap();
    assert_eq!(del.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn modern_requests_are_checked_against_their_headers() {
    let up = start().await;
    let (status, body) = up
        .modern(
            1,
            "tools/call",
            Some("echo"),
            json!({ "name": "echo", "arguments": { "message": "hi" } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["result"]["resultType"], "complete");
    assert_eq!(body["result"]["content"][0]["text"], "hi");
    let (status, body) = up.modern(2, "server/discover", None, json!({})).await;
    assert_eq!(
        (status, body["result"]["supportedVersions"][0].clone()),
        (StatusCode::OK, json!(V))
    );

    let call = rpc(
        3,
        "tools/call",
        modern(
            json!({ "name": "echo", "arguments": { "message": "x" } }),
            json!({}),
        ),
    );
    let rows: Vec<(Vec<(&str, &str)>, i64)> = vec![
        (
            vec![
                ("mcp-protocol-version", V),
                ("mcp-method", "tools/call"),
                ("mcp-name", "add"),
            ],
            -32020,
        ),
        (
            vec![("mcp-protocol-version", V), ("mcp-method", "tools/call")],
            -32020,
        ),
        (
            vec![("mcp-method", "tools/call"), ("mcp-name", "echo")],
            -32020,
        ),
        (
            vec![
                ("mcp-protocol-version", V),
                ("mcp-method", "tools/list"),
                ("mcp-name", "echo"),
            ],
            -32020,
        ),
    ];
    for (headers, code) in rows {
        let (status, body) = up.post_json(&headers, &call).await;
        assert_eq!(
            (status, body["error"]["code"].as_i64()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{headers:?}"
        );
    }
    let mut old = call.clone();
    old["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("1900-01-01");
    let headers = [
        ("mcp-protocol-version", "1900-01-01"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "echo"),
    ];
    let (status, body) = up.post_json(&headers, &old).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(-32022))
    );
    assert_eq!(body["error"]["data"]["supported"][0], V);

    let (status, body) = up.modern(4, "no/such", None, json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (StatusCode::NOT_FOUND, Some(-32601))
    );
    let (status, body) = up
        .modern(
            5,
            "tools/call",
            Some("ask_name"),
            json!({ "name": "ask_name" }),
        )
        .await;
    assert_eq!(
        (status, body["result"]["resultType"].clone()),
        (StatusCode::OK, json!("input_required"))
    );

    let resp = up.post(&[], "{oops").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], -32700);
    let resp = up.post(&[], "[]").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = up
        .post(&[("origin", "http://evil.example")], call.to_string())
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn slow_streams_progress_then_its_result() {
    let up = start().await;
    let mut params = modern(
        json!({ "name": "slow", "arguments": { "seconds": 0.3, "steps": 3 } }),
        json!({}),
    );
    params["_meta"]["progressToken"] = json!(42);
    let headers = [
        ("mcp-protocol-version", V),
        ("mcp-method", "tools/call"),
        ("mcp-name", "slow"),
    ];
    let mut resp = up
        .post(&headers, rpc(9, "tools/call", params).to_string())
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let got = events(&mut resp, &mut String::new(), usize::MAX).await;
    assert_eq!(got.len(), 4, "{got:?}");
    for (i, note) in got[..3].iter().enumerate() {
        assert_eq!(note["method"], "notifications/progress");
        assert_eq!(note["params"]["progressToken"], 42);
        assert_eq!(note["params"]["progress"], i + 1);
        assert_eq!(note["params"]["total"], 3);
    }
    assert_eq!(got[3]["id"], 9);
    assert_eq!(got[3]["result"]["resultType"], "complete");
}

#[tokio::test]
async fn legacy_elicitation_uses_the_stream_and_a_second_post() {
    let up = start().await;
    let session = up.initialize(json!({ "elicitation": {} })).await;
    let with = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let call = rpc(
        2,
        "tools/call",
        json!({ "name": "ask_name", "arguments": {} }),
    );
    let mut resp = up.post(&with, call.to_string()).await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut buf = String::new();
    let ask = events(&mut resp, &mut buf, 1).await.remove(0);
    assert_eq!(ask["method"], "elicitation/create");
    let answer = json!({ "jsonrpc": "2.0", "id": ask["id"], "result": { "action": "accept", "content": { "name": "Ada" } } });
    assert_eq!(
        up.post(&with, answer.to_string()).await.status(),
        StatusCode::ACCEPTED
    );
    let done = events(&mut resp, &mut buf, 1).await.remove(0);
    assert_eq!(done["id"], 2);
    assert_eq!(done["result"]["content"][0]["text"], "Hello, Ada");

    // Closing the stream cancels the request: its pending elicitation is forgotten.
    let mut resp = up
        .post(
            &with,
            rpc(3, "tools/call", json!({ "name": "ask_name" })).to_string(),
        )
        .await;
    let ask = events(&mut resp, &mut String::new(), 1).await.remove(0);
    drop(resp);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = json!({ "jsonrpc": "2.0", "id": ask["id"], "result": { "action": "accept", "content": { "name": "Ada" } } });
    assert_eq!(
        up.post(&with, answer.to_string()).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn legacy_cancel_notification_stops_a_streamed_request() {
    let up = start().await;
    let session = up.initialize(json!({})).await;
    let with = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let call = rpc(
        5,
        "tools/call",
        json!({ "name": "slow", "arguments": { "seconds": 5, "steps": 50 }, "_meta": { "progressToken": "p" } }),
    );
    let mut resp = up.post(&with, call.to_string()).await;
    let mut buf = String::new();
    assert_eq!(
        events(&mut resp, &mut buf, 1).await[0]["method"],
        "notifications/progress"
    );
    let cancel = json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": 5 } });
    assert_eq!(
        up.post(&with, cancel.to_string()).await.status(),
        StatusCode::ACCEPTED
    );
    let rest = events(&mut resp, &mut buf, usize::MAX).await;
    assert!(rest.len() <= 1, "progress stops: {rest:?}");
    assert!(
        rest.iter().all(|e| e.get("id").is_none()),
        "no response for a cancelled request"
    );
}
