//! Table tests for the tools, called through the server's request handling.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::era::{ClientCaps, Era, Legacy};
use crate::jsonrpc::{Id, RpcError};
use crate::peer::{Peer, Pending};
use crate::server::tests::{LEGACY, ctx, req, server};
use crate::server::{Ctx, Server};

async fn call(server: &Server, ctx: &Ctx, name: &str, args: Value) -> Result<Value, RpcError> {
    server
        .handle(
            &req("tools/call", json!({ "name": name, "arguments": args })),
            ctx,
        )
        .await
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn tools_are_listed_in_a_fixed_order_with_truthful_annotations() {
    let (_tmp, server) = server();
    let list = server
        .handle(&req("tools/list", json!({})), &ctx(LEGACY, false))
        .await
        .unwrap();
    let tools = list["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "echo",
            "add",
            "list_files",
            "read_file",
            "write_file",
            "fetch_url",
            "slow",
            "ask_name"
        ]
    );
    for tool in tools {
        assert_eq!(tool["inputSchema"]["type"], "object", "{}", tool["name"]);
        let a = &tool["annotations"];
        let name = tool["name"].as_str().unwrap();
        assert_eq!(a["readOnlyHint"], name != "write_file", "{name}");
        assert_eq!(a["destructiveHint"], name == "write_file", "{name}");
        assert_eq!(a["openWorldHint"], name == "fetch_url", "{name}");
    }
    assert_eq!(tools[0]["outputSchema"]["required"], json!(["message"]));
}

#[tokio::test]
async fn simple_tools_answer_or_report_errors_as_results() {
    let (_tmp, server) = server();
    let c = ctx(Era::Modern, false);
    // (tool, arguments, isError, text)
    let rows: Vec<(&str, Value, bool, &str)> = vec![
        ("echo", json!({ "message": "hi" }), false, "hi"),
        (
            "echo",
            json!({}),
            true,
            "Invalid arguments: missing required argument: message",
        ),
        (
            "echo",
            json!({ "message": 1 }),
            true,
            "Invalid arguments: argument message must be a string",
        ),
        (
            "echo",
            json!({ "message": "hi", "x": 1 }),
            true,
            "Invalid arguments: unexpected argument: x",
        ),
        ("add", json!({ "a": 1, "b": 2 }), false, "3"),
        ("add", json!({ "a": -1.5, "b": 2 }), false, "0.5"),
        (
            "add",
            json!({ "a": 9_223_372_036_854_775_807_i64, "b": 1 }),
            false,
            "9223372036854775808",
        ),
        (
            "add",
            json!({ "a": 1 }),
            true,
            "Invalid arguments: missing required argument: b",
        ),
        (
            "add",
            json!({ "a": "1", "b": 2 }),
            true,
            "Invalid arguments: argument a must be a number",
        ),
        (
            "add",
            json!({ "a": 1e308, "b": 1e308 }),
            true,
            "Invalid arguments: the sum is not a finite number",
        ),
        ("list_files", json!({}), false, "hello.txt"),
        (
            "read_file",
            json!({ "path": "hello.txt" }),
            false,
            "hello, world",
        ),
        (
            "read_file",
            json!({ "path": "../etc/passwd" }),
            true,
            "Cannot read ../etc/passwd: path must be relative to the served directory, without '..' or '.' parts",
        ),
        (
            "read_file",
            json!({ "path": "/etc/passwd" }),
            true,
            "Cannot read /etc/passwd: path must be relative to the served directory, without '..' or '.' parts",
        ),
        (
            "read_file",
            json!({ "path": "nope.txt" }),
            true,
            "Cannot read nope.txt: no such file",
        ),
        (
            "slow",
            json!({ "seconds": 61 }),
            true,
            "Invalid arguments: seconds must be from 0 to 60",
        ),
        (
            "slow",
            json!({ "seconds": -1 }),
            true,
            "Invalid arguments: seconds must be from 0 to 60",
        ),
        (
            "slow",
            json!({ "seconds": 0, "steps": 0 }),
            true,
            "Invalid arguments: argument steps must be an integer from 1 to 100",
        ),
        (
            "slow",
            json!({ "seconds": 0 }),
            false,
            "Waited 0 seconds in 1 steps",
        ),
    ];
    for (name, args, is_error, want) in rows {
        let got = call(&server, &c, name, args.clone()).await.unwrap();
        assert_eq!(got["isError"], is_error, "{name} {args}");
        assert_eq!(text(&got), want, "{name} {args}");
        assert_eq!(got["resultType"], "complete");
    }
    let echo = call(&server, &c, "echo", json!({ "message": "hi" }))
        .await
        .unwrap();
    assert_eq!(echo["structuredContent"], json!({ "message": "hi" }));
}

#[tokio::test]
async fn malformed_calls_are_protocol_errors() {
    let (_tmp, server) = server();
    let c = ctx(LEGACY, false);
    for params in [
        json!({ "name": "nope" }),
        json!({}),
        json!({ "name": 3 }),
        json!({ "name": "echo", "arguments": [1] }),
    ] {
        let got = server.handle(&req("tools/call", params.clone()), &c).await;
        assert_eq!(got.unwrap_err().code, -32602, "{params}");
    }
}

#[tokio::test]
async fn write_file_stays_inside_the_root() {
    let (tmp, server) = server();
    let c = ctx(LEGACY, false);
    let wrote = call(
        &server,
        &c,
        "write_file",
        json!({ "path": "new.txt", "content": "abc" }),
    )
    .await
    .unwrap();
    assert_eq!(wrote["isError"], false);
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("new.txt")).unwrap(),
        "abc"
    );
    let escaped = call(
        &server,
        &c,
        "write_file",
        json!({ "path": "../x", "content": "abc" }),
    )
    .await
    .unwrap();
    assert_eq!(escaped["isError"], true);
}

#[tokio::test]
async fn slow_reports_progress_with_the_request_token() {
    let (_tmp, server) = server();
    let (tx, mut rx) = mpsc::channel(8);
    let c = Ctx {
        era: Era::Modern,
        caps: ClientCaps::default(),
        peer: Peer::new(tx, None),
    };
    let params = json!({ "name": "slow", "arguments": { "seconds": 0.03, "steps": 3 }, "_meta": { "progressToken": "tok" } });
    let done = server.handle(&req("tools/call", params), &c).await.unwrap();
    assert_eq!(done["isError"], false);
    drop(c);
    let mut progress = Vec::new();
    while let Some(line) = rx.recv().await {
        let note: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(note["method"], "notifications/progress");
        assert_eq!(note["params"]["progressToken"], "tok");
        assert_eq!(note["params"]["total"], 3);
        progress.push(note["params"]["progress"].as_u64().unwrap());
    }
    assert_eq!(progress, [1, 2, 3]);
}

#[tokio::test]
async fn ask_name_in_the_modern_era_is_a_multi_round_trip() {
    let (_tmp, server) = server();
    let no_caps = call(&server, &ctx(Era::Modern, false), "ask_name", json!({}))
        .await
        .unwrap_err();
    assert_eq!(no_caps.code, -32021);
    assert!(no_caps.data.unwrap()["requiredCapabilities"]["elicitation"].is_object());

    let c = ctx(Era::Modern, true);
    let first = call(&server, &c, "ask_name", json!({})).await.unwrap();
    assert_eq!(first["resultType"], "input_required");
    assert!(first.get("ttlMs").is_none());
    let ask = &first["inputRequests"]["name"];
    assert_eq!(ask["method"], "elicitation/create");
    assert_eq!(ask["params"]["mode"], "form");
    assert_eq!(
        ask["params"]["requestedSchema"]["required"],
        json!(["name"])
    );
    let state = first["requestState"].clone();

    let retry = |responses: Value, state: Value| {
        req(
            "tools/call",
            json!({ "name": "ask_name", "arguments": {}, "inputResponses": responses, "requestState": state }),
        )
    };
    let accepted = json!({ "name": { "action": "accept", "content": { "name": "Ada" } } });
    let done = server
        .handle(&retry(accepted.clone(), state.clone()), &c)
        .await
        .unwrap();
    assert_eq!(
        (done["resultType"].as_str(), text(&done)),
        (Some("complete"), "Hello, Ada")
    );
    let declined = server
        .handle(
            &retry(json!({ "name": { "action": "decline" } }), state.clone()),
            &c,
        )
        .await
        .unwrap();
    assert_eq!(text(&declined), "No name given (the user chose to decline)");
    let again = server
        .handle(&retry(json!({ "other": {} }), state.clone()), &c)
        .await
        .unwrap();
    assert_eq!(again["resultType"], "input_required");
    let tampered = server.handle(&retry(accepted, json!("forged")), &c).await;
    assert_eq!(tampered.unwrap_err().code, -32602);
}

#[tokio::test]
async fn ask_name_in_the_legacy_era_asks_the_client() {
    let (_tmp, server) = server();
    let no_caps = call(&server, &ctx(LEGACY, false), "ask_name", json!({}))
        .await
        .unwrap();
    assert_eq!(no_caps["isError"], true);
    assert!(text(&no_caps).contains("elicitation"));

    let (tx, mut rx) = mpsc::channel(8);
    let pending = Arc::new(Pending::new());
    for (version, mode) in [
        (Legacy::V2025_11_25, Some("form")),
        (Legacy::V2025_06_18, None),
    ] {
        let c = Ctx {
            era: Era::Legacy(version),
            caps: ClientCaps {
                elicitation_form: true,
            },
            peer: Peer::new(tx.clone(), Some(pending.clone())),
        };
        let (answer, asked) = tokio::join!(call(&server, &c, "ask_name", json!({})), async {
            let asked: Value = serde_json::from_str(&rx.recv().await.unwrap()).unwrap();
            let id = Id::from_value(asked["id"].clone()).unwrap();
            pending.resolve(
                &id,
                Ok(json!({ "action": "accept", "content": { "name": "Grace" } })),
            );
            asked
        });
        assert_eq!(asked["method"], "elicitation/create");
        assert_eq!(asked["params"]["mode"].as_str(), mode);
        assert_eq!(text(&answer.unwrap()), "Hello, Grace");
    }
}
